from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer


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
        from edgekit.recipe import GatesConfig
        from edgekit.report.atomic import atomic_write_text
        from edgekit.report.ci_outputs import gates_junit, gates_markdown
        from edgekit.report.gates import format_table
        from edgekit.report.io import load_report

        rep = load_report(report)
        cfg = GatesConfig.model_validate(rep.recipe.get("gates", {}))
        overrides = {"max_accuracy_drop": max_accuracy_drop, "max_latency_p90_ms": max_latency_p90_ms,
                     "max_size_mb": max_size_mb, "max_latency_regression": max_latency_regression,
                     "max_class_accuracy_drop": max_class_accuracy_drop, "confidence": confidence,
                     "latency_comparison": latency_comparison}
        cfg = GatesConfig.model_validate({**cfg.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})
        results, passed = api.gate(report, baseline, cfg, log=lambda m: typer.echo(m, err=True), if_missing=if_missing.value)
        typer.echo(format_table(results))
        typer.echo("PASS" if passed else "FAIL")
        md = gates_markdown(results, f"edgekit gates: {rep.recipe_name}")
        if markdown:
            atomic_write_text(markdown, md)
        if junit:
            atomic_write_text(junit, gates_junit(results))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a") as f:
                f.write(md)
        if not passed:
            raise typer.Exit(1)

    baseline_app = typer.Typer(help="Stored baselines for `edgekit gate --baseline NAME`.", no_args_is_help=True)
    app.add_typer(baseline_app, name="baseline")

    @baseline_app.command("save")
    def save(run_dir: Annotated[Path, typer.Argument(help="run folder or report.json")],
             name: Annotated[str, typer.Option(help="baseline name")] = "main") -> None:
        """Store a run's report and evidence as a named baseline (in $EDGEKIT_BASELINES or .edgekit/baselines)."""
        from edgekit.report.baselines import save_baseline

        typer.echo(f"saved baseline '{name}' in {save_baseline(run_dir, name)}")

    @baseline_app.command("show")
    def show(name: Annotated[Optional[str], typer.Argument(help="baseline name (default: list them)")] = None) -> None:
        """List stored baselines, or summarize one."""
        from edgekit.report.baselines import list_baselines, resolve_baseline
        from edgekit.report.io import load_report
        from edgekit.report.markdown import results_table

        if name is None:
            for p in list_baselines():
                r = load_report(p)
                typer.echo(f"{p.name:<16} {r.recipe_name:<20} {r.created}  {len(r.results)} results")
            return
        r = load_report(resolve_baseline(name))
        typer.echo(f"{name}: {r.recipe_name}, created {r.created}, recipe sha256 {r.recipe_sha256[:12]}")
        typer.echo(results_table(r))
