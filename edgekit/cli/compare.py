from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        run_a: Annotated[Path, typer.Argument(help="first run folder or report.json (A)")],
        run_b: Annotated[Path, typer.Argument(help="second run folder or report.json (B)")],
        html: Annotated[Optional[Path], typer.Option(help="also write a self-contained HTML page here")] = None,
    ) -> None:
        """Print the difference between two runs (accuracy, latency, size per artifact@device)."""
        from edgekit.report.atomic import atomic_write_text
        from edgekit.report.compare import compare_html, compare_rows, format_compare
        from edgekit.report.io import load_report, report_dir

        a, b = load_report(run_a), load_report(run_b)
        rows = compare_rows(a, b)
        typer.echo(format_compare(rows))
        if html:
            atomic_write_text(html, compare_html(a, b, report_dir(run_a), report_dir(run_b), rows))
            typer.echo(f"wrote {html}")
