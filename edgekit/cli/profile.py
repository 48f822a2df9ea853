"""`edgekit profile ARTIFACT|RUN_DIR --device NAME`: per-layer times, costs and roofline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import echo


def register(app: typer.Typer) -> None:
    @app.command("profile")
    def profile(
        target: Annotated[Path, typer.Argument(help="an .onnx/.tflite artifact, or a run folder (profiles are stored "
                                                    "in its report.json)")],
        device: Annotated[str, typer.Option("--device", "-d", help="device profile name or YAML path")] = "host-cpu",
        baseline: Annotated[Optional[Path], typer.Option(help="fp32 artifact to compare an int8 ARTIFACT with")] = None,
        runs: Annotated[int, typer.Option(help="profiled runs")] = 50,
        warmup: Annotated[int, typer.Option(help="warm-up runs (not profiled)")] = 10,
        threads: Annotated[Optional[int], typer.Option(help="intra-op threads (default: the device's)")] = None,
        top: Annotated[Optional[int], typer.Option(help="show only the N slowest layers")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of the table")] = False,
    ) -> None:
        """Profile an artifact on a device: per-layer time, FLOPs, bytes, roofline bound, achieved fraction, flags."""
        import json

        from edgekit import api
        from edgekit.bench.profile_report import render_table

        profiles = api.profile(target, device, baseline, runs, warmup, threads)
        if as_json:
            echo(json.dumps(profiles if len(profiles) > 1 or target.is_dir() else profiles[0], indent=2))
            return
        for p in profiles:
            echo(render_table(p, top) if "error" not in p else f"{p['artifact']}: FAILED {p['error']}")
            echo("")
