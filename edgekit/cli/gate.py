from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import echo, summary


class IfMissing(StrEnum):
    fail = "fail"
    warn = "warn"


def register(app: typer.Typer) -> None:
    @app.command("gate")
    def gate(
        report: Annotated[Path, typer.Argument(help="report.json (or its run folder)")],
        baseline: Annotated[Optional[str], typer.Option(help="baseline report/run folder, or a saved baseline name")] = None,
        max_accuracy_drop: Annotated[Optional[float], typer.Option(help="override: fraction, 0.01 = 1 point")] = None,
        max_latency_p90_ms: Annotated[Optional[float], typer.Option(help="override")] = None,
        max_size_mb: Annotated[Optional[float], typer.Option(help="override")] = None,
        max_latency_regression: Annotated[Optional[float], typer.Option(help="override: ratio vs baseline")] = None,
        max_class_accuracy_drop: Annotated[Optional[float], typer.Option(help="override")] = None,
        confidence: Annotated[Optional[float], typer.Option(help="override: one-sided confidence, e.g. 0.95")] = None,
        latency_comparison: Annotated[Optional[str], typer.Option(
            help="override: 'interleaved' (time baseline and candidate files now, alternating) or 'recorded'")] = None,
        markdown: Annotated[Optional[Path], typer.Option(help="write a Markdown summary here")] = None,
        junit: Annotated[Optional[Path], typer.Option(help="write JUnit XML here")] = None,
        if_missing: Annotated[IfMissing, typer.Option(
            help="when the --baseline does not exist: fail (exit 2), or warn and gate without it (a first CI run)")]
            = IfMissing.fail,
    ) -> None:
        """Check gates on a report. Exit 0 pass, 1 a gate failed, 2 bad input.

        Appends the Markdown summary to $GITHUB_STEP_SUMMARY when that is set."""
        from edgekit import api
        from edgekit.report.io import load_report

        overrides = {"max_accuracy_drop": max_accuracy_drop, "max_latency_p90_ms": max_latency_p90_ms,
                     "max_size_mb": max_size_mb, "max_latency_regression": max_latency_regression,
                     "max_class_accuracy_drop": max_class_accuracy_drop, "confidence": confidence,
                     "latency_comparison": latency_comparison}
        results, passed = api.gate(report, baseline, overrides, if_missing=if_missing.value, markdown=markdown,
                                   junit=junit, step_summary=True)
        summary(load_report(report).model_copy(update={"gates": results, "errors": []}))
        if not passed:
            raise typer.Exit(1)

    baseline_app = typer.Typer(help="Stored baselines for `edgekit gate --baseline NAME`.", no_args_is_help=True)
    app.add_typer(baseline_app, name="baseline")

    @baseline_app.command("save")
    def save(run_dir: Annotated[Path, typer.Argument(help="run folder or report.json")],
             name: Annotated[str, typer.Option(help="baseline name")] = "main") -> None:
        """Store a run's report and evidence as a named baseline (in $EDGEKIT_BASELINES or .edgekit/baselines)."""
        from edgekit import api

        echo(f"saved baseline '{name}' in {api.baseline_save(run_dir, name)}")

    @baseline_app.command("show")
    def show(name: Annotated[Optional[str], typer.Argument(help="baseline name (default: list them)")] = None) -> None:
        """List stored baselines, or summarize one."""
        from edgekit import api

        if name is None:
            for n, r in api.baselines():
                echo(f"{n:<16} {r.recipe_name:<20} {r.created}  {len(r.results)} results")
            return
        r = api.baseline(name)
        echo(f"{name}: {r.recipe_name}, created {r.created}, recipe sha256 {r.recipe_sha256[:12]}")
        summary(r)
