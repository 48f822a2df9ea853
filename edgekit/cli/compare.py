from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import echo


class Timing(StrEnum):
    interleaved = "interleaved"
    recorded = "recorded"


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        run_a: Annotated[Path, typer.Argument(help="first run folder or report.json (A)")],
        run_b: Annotated[Path, typer.Argument(help="second run folder or report.json (B)")],
        html: Annotated[Optional[Path], typer.Option(help="also write a self-contained HTML page here")] = None,
        json: Annotated[Optional[Path], typer.Option(help="also write the rows as JSON here")] = None,
        timing: Annotated[Timing, typer.Option(
            help="interleaved: also time both runs' files now, alternating, for a p50 ratio with its confidence "
                 "interval; recorded: only divide the latencies the runs recorded")] = Timing.interleaved,
    ) -> None:
        """Print the difference between two runs (accuracy, latency, size per artifact@device)."""
        import json as jsonlib

        from edgekit import api
        from edgekit.atomic import atomic_write_text
        from edgekit.report.compare import format_compare

        rows = api.compare(run_a, run_b, html, timing=timing.value)
        echo(format_compare(rows))
        if json:
            atomic_write_text(json, jsonlib.dumps(rows, indent=2) + "\n")
        for path in (html, json):
            if path:
                echo(f"wrote {path}")
