from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import summary


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        run_dir: Annotated[Path, typer.Argument(help="run folder written by `edgekit run` or `edgekit export`")],
        device: Annotated[Optional[list[str]], typer.Option("--device", "-d", help="device profile (repeatable)")] = None,
        threads: Annotated[Optional[int], typer.Option(help="intra-op threads")] = None,
        iterations: Annotated[Optional[int], typer.Option(help="minimum timed iterations")] = None,
        min_time: Annotated[Optional[float], typer.Option("--min-time", help="minimum timed seconds")] = None,
        batch_size: Annotated[Optional[int], typer.Option("--batch-size")] = None,
    ) -> None:
        """Benchmark every artifact in a run folder; results are added to its report.json."""
        from edgekit import api

        r = api.bench(run_dir, device, threads=threads, iterations=iterations, min_time_s=min_time,
                      batch_size=batch_size)
        summary(r.report, r.run_dir)
        if any(x.status == "failed" for x in r.report.results):
            raise typer.Exit(1)
