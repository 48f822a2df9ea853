"""Option aliases shared by the commands, and how they print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML file", show_default=False)]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="run folder (default: OUTPUT_DIR/NAME-TIMESTAMP)")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a recipe value: KEY=VALUE (repeatable)")]


def echo(msg: str = "") -> None:
    """A result line on stdout (nothing under --quiet)."""
    from edgekit.console import quiet

    if not quiet():
        typer.echo(msg)


def summary(report, run_dir=None) -> None:
    """The end-of-run summary (results, gates, verdict, report paths); under --quiet only a failing verdict."""
    from edgekit.console import quiet
    from edgekit.report.terminal import print_summary, verdict_line

    if not quiet():
        print_summary(report, run_dir)
    elif verdict_line(report).startswith("FAIL"):
        typer.secho(verdict_line(report), fg="red", err=True)


def exit_code(run) -> None:
    """Exit 1 when a gate or a stage failed."""
    failed = [g for g in run.report.gates if not g.passed and g.severity == "error"]
    if failed or run.report.errors:
        raise typer.Exit(1)
