"""Option aliases shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML file", show_default=False)]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="run folder (default: OUTPUT_DIR/NAME-TIMESTAMP)")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a recipe value: KEY=VALUE (repeatable)")]


def log(msg: str) -> None:
    typer.echo(msg, err=True)
