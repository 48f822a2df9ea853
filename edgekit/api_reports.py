"""The Python API for judging runs: gates, comparisons and stored baselines (re-exported by edgekit.api)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.console import LogTarget, logger, output
from edgekit.errors import EdgekitError
from edgekit.recipe import GatesConfig


def gate(report_path: Path, baseline_path: Path | str | None = None, gates: GatesConfig | dict | None = None,
         log: LogTarget = True, if_missing: str = "fail", markdown: Path | None = None, junit: Path | None = None,
         step_summary: bool = False):
    """Evaluate gates; returns (results, passed). `gates`: a GatesConfig, or a dict of values that override the
    report's own recipe gates, or None for those gates.

    `baseline_path` is a report.json, a run folder, or the name of a baseline saved with `baseline_save`. A
    latency-regression gate times baseline and candidate artifacts interleaved now (`gates.latency_comparison`).
    `if_missing="warn"`: a baseline that does not exist yet (a first CI run) adds a warning row and the gates that
    need no baseline still apply; "fail" raises GateInputError (exit 2). A run (or baseline) that did not complete
    fails; an artifact file that differs from its report is an error (exit 2).
    `markdown`/`junit` write those summaries; `step_summary` appends the Markdown to $GITHUB_STEP_SUMMARY."""
    import os

    from edgekit.atomic import atomic_write_text
    from edgekit.export.artifact import verify_artifacts
    from edgekit.report.baselines import baseline_exists, resolve_baseline
    from edgekit.report.ci_outputs import gates_junit, gates_markdown
    from edgekit.report.gates import evaluate_gates, gates_passed, status_gates
    from edgekit.report.io import load_report, report_dir
    from edgekit.report.schema import GateResult

    if if_missing not in ("fail", "warn"):
        raise EdgekitError(f"if_missing must be 'fail' or 'warn', not {if_missing!r}")
    report = load_report(report_path)
    verify_artifacts(report, report_dir(report_path))
    if not isinstance(gates, GatesConfig):
        own = GatesConfig.model_validate(report.recipe.get("gates", {})).model_dump()
        gates = GatesConfig.model_validate({**own, **{k: v for k, v in (gates or {}).items() if v is not None}})
    with output(log):
        baseline, baseline_dir, missing = None, None, []
        if baseline_path is not None and if_missing == "warn" and not baseline_exists(baseline_path):
            detail = (f"baseline '{baseline_path}' not found: baseline gates skipped (save one with "
                      f"`edgekit baseline save`)")
            logger("gate").warning(f"warning: {detail}")
            missing = [GateResult(name="baseline_present", target="run", value=None, threshold=1, passed=False,
                                  severity="warning", detail=detail)]
            baseline_path = None
        if baseline_path is not None:
            found = resolve_baseline(baseline_path)
            baseline, baseline_dir = load_report(found), report_dir(found)
            verify_artifacts(baseline, baseline_dir)
        interleaved = None
        if baseline is not None and gates.max_latency_regression is not None \
                and gates.latency_comparison == "interleaved":
            from edgekit.bench.interleaved import interleave_targets

            interleaved = interleave_targets(report, report_dir(report_path), baseline, baseline_dir, gates.artifacts)
        results = missing + status_gates(report, baseline) + evaluate_gates(
            report, gates, baseline, run_dir=report_dir(report_path), baseline_dir=baseline_dir,
            interleaved=interleaved)
    md = gates_markdown(results, f"edgekit gates: {report.recipe_name}")
    if markdown:
        atomic_write_text(markdown, md)
    if junit:
        atomic_write_text(junit, gates_junit(results))
    if step_summary and os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
            f.write(md)
    return results, gates_passed(results)


def compare(run_a: Path, run_b: Path, html: Path | None = None, timing: str = "interleaved",
            log: LogTarget = True) -> list[dict]:
    """Row-by-row differences (artifact@device) between two runs (run folders or report.json files).

    `timing="interleaved"` also times A's and B's artifact files now, alternating in one process on the device (as
    the gate's latency-regression check does), for a p50 ratio B/A with its 95% confidence interval where both
    files exist (`rows[].interleaved`, or why not in `rows[].interleaved_note`); "recorded" only divides the
    latencies the runs recorded. `html` also writes a self-contained page."""
    from edgekit.atomic import atomic_write_text
    from edgekit.report.compare import compare_html, compare_rows, load_compared
    from edgekit.report.io import report_dir

    if timing not in ("interleaved", "recorded"):
        raise EdgekitError(f"timing must be 'interleaved' or 'recorded', not {timing!r}")
    a, b = load_compared(run_a), load_compared(run_b)
    dir_a, dir_b = report_dir(run_a), report_dir(run_b)
    interleaved = None
    if timing == "interleaved":
        from edgekit.bench.interleaved import interleave_targets

        with output(log):
            interleaved = interleave_targets(b, dir_b, a, dir_a)
    rows = compare_rows(a, b, interleaved)
    if html:
        atomic_write_text(html, compare_html(a, b, dir_a, dir_b, rows))
    return rows


def baseline_save(run_dir: Path, name: str = "main") -> Path:
    """Store a run's report and evidence as a named baseline (in $EDGEKIT_BASELINES or .edgekit/baselines)."""
    from edgekit.report.baselines import save_baseline

    return save_baseline(Path(run_dir), name)


def baselines() -> list[tuple[str, Any]]:
    """The stored baselines: (name, Report)."""
    from edgekit.report.baselines import list_baselines
    from edgekit.report.io import load_report

    return [(p.name, load_report(p)) for p in list_baselines()]


def baseline(name: str):
    """The Report of one stored baseline."""
    from edgekit.report.baselines import resolve_baseline
    from edgekit.report.io import load_report

    return load_report(resolve_baseline(name))
