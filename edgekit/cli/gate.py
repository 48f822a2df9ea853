from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("gate")
    def gate(
        report: Annotated[Path, typer.Argument(help="report.json (or its run folder)")],
        baseline: Annotated[Optional[Path], typer.Option(help="baseline report.json to compare with")] = None,
        max_accuracy_drop: Annotated[Optional[float], typer.Option(help="override: fraction, 0.01 = 1 point")] = None,
        max_latency_p90_ms: Annotated[Optional[float], typer.Option(help="override")] = None,
        max_size_mb: Annotated[Optional[float], typer.Option(help="override")] = None,
        max_latency_regression: Annotated[Optional[float], typer.Option(help="override: p90 ratio vs baseline")] = None,
    ) -> None:
        """Check the recipe's gates on a report. Exit 0 pass, 1 a gate failed, 2 bad input."""
        from edgekit import api
        from edgekit.recipe import GatesConfig
        from edgekit.report.gates import format_table
        from edgekit.report.io import load_report

        rep = load_report(report)
        cfg = GatesConfig.model_validate(rep.recipe.get("gates", {}))
        for k, v in {"max_accuracy_drop": max_accuracy_drop, "max_latency_p90_ms": max_latency_p90_ms,
                     "max_size_mb": max_size_mb, "max_latency_regression": max_latency_regression}.items():
            if v is not None:
                setattr(cfg, k, v)
        results, passed = api.gate(report, baseline, cfg)
        typer.echo(format_table(results))
        typer.echo("PASS" if passed else "FAIL")
        if not passed:
            raise typer.Exit(1)
