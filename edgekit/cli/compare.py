from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import echo


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        run_a: Annotated[Path, typer.Argument(help="first run folder or report.json (A)")],
        run_b: Annotated[Path, typer.Argument(help="second run folder or report.json (B)")],
        html: Annotated[Optional[Path], typer.Option(help="also write a self-contained HTML page here")] = None,
    ) -> None:
        """Print the difference between two runs (accuracy, latency, size per artifact@device)."""
        from edgekit import api
        from edgekit.report.compare import format_compare

        echo(format_compare(api.compare(run_a, run_b, html)))
        if html:
            echo(f"wrote {html}")
