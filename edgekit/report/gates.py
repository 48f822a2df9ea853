"""Gates: thresholds checked against a report, with paired statistics when per-sample evidence is kept.

A drop or regression fails only when it is beyond the threshold with the configured confidence, so a gate does
not flake on a noisy runner; point thresholds (absolute latency, size, device budgets) are checked as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.report.schema import GateResult, Report, Result
from edgekit.significance import (
    bootstrap_accuracy_drop,
    bootstrap_latency_ratio,
    interleaved_latency_ratio,
    mcnemar_exact,
)

COMPARED_PACKAGES = ("torch", "onnxruntime", "onnxruntime-gpu", "ai-edge-litert", "numpy")


def _targets(report: Report, only: list[str] | None) -> list[Result]:
    return [r for r in report.results if r.status == "ok" and (not only or r.artifact in only)]


def _evidence(run_dir, rel, sha):
    from edgekit.report.evidence import load_samples

    return load_samples(Path(run_dir), rel, sha) if run_dir is not None else None


def evaluate_gates(report: Report, gates, baseline: Report | None = None, run_dir: Path | None = None,
                   baseline_dir: Path | None = None, interleaved: dict | None = None) -> list[GateResult]:
    """One GateResult per (gate, artifact@device). Accuracy is compared with the fp32 reference of the same run,
    or with the same artifact@device in `baseline` when one is given. `interleaved` maps (artifact, device) to
    an interleaved timing of baseline and candidate (bench/interleaved.py), or to why there is none; the
    latency-regression gate uses it in preference to the two recorded runs."""
    out: list[GateResult] = []
    base_rows = {(r.artifact, r.device): r for r in baseline.results if r.status == "ok"} if baseline else {}
    ref_ev = _evidence(run_dir, report.reference.get("samples"), report.reference.get("samples_sha256"))
    if baseline is not None:
        out += environment_warnings(report, baseline)
    references = fp32_references(report) if not gates.artifacts else set()
    arts = {a.name: a for a in report.artifacts}
    for r in _targets(report, gates.artifacts):
        target = f"{r.artifact}@{r.device}"
        budgeted = r.artifact not in references
        base = base_rows.get((r.artifact, r.device))
        cand_ev = _evidence(run_dir, r.samples, r.samples_sha256)
        if baseline is not None:
            comp_acc = base.accuracy if base else None
            comp_ev = _evidence(baseline_dir, base.samples, base.samples_sha256) if base else None
            what = "baseline"
        else:
            comp_acc, comp_ev, what = report.reference.get("accuracy"), ref_ev, "fp32 reference"
        if gates.max_accuracy_drop is not None and r.accuracy is not None:
            out.append(_accuracy_gate(target, r.accuracy, comp_acc, cand_ev, comp_ev, what, gates))
        if gates.max_class_accuracy_drop is not None and cand_ev is not None and comp_ev is not None:
            g = _class_gate(target, cand_ev, comp_ev, what, gates)
            if g is not None:
                out.append(g)
        if gates.min_accuracy is not None and r.accuracy is not None:
            out.append(GateResult(name="min_accuracy", target=target, value=r.accuracy, threshold=gates.min_accuracy,
                                  passed=r.accuracy >= gates.min_accuracy))
        if r.emulated:
            out += emulated_latency_skips(gates, target, baseline is not None, budgeted)
        elif gates.max_latency_p90_ms is not None and r.latency_ms is not None and budgeted:
            out.append(GateResult(name="max_latency_p90_ms", target=target, value=r.latency_ms.p90,
                                  threshold=gates.max_latency_p90_ms, passed=r.latency_ms.p90 <= gates.max_latency_p90_ms,
                                  detail=f"batch {r.batch_size}, {r.threads} threads"))
        if gates.max_size_mb is not None and r.size_bytes is not None and budgeted:
            mb = r.size_bytes / 1e6
            out.append(GateResult(name="max_size_mb", target=target, value=mb, threshold=gates.max_size_mb,
                                  passed=mb <= gates.max_size_mb))
        if gates.max_latency_regression is not None and baseline is not None and not r.emulated:
            inter = (interleaved or {}).get((r.artifact, r.device))
            if inter is not None and not isinstance(inter, str):
                out.append(_interleaved_gate(target, r, base, inter, gates))
            else:
                g = _latency_gate(target, r, base, cand_ev, _evidence(baseline_dir, base.samples, base.samples_sha256)
                                  if base else None, gates)
                if inter:
                    g.detail = f"{g.detail}; recorded runs compared ({inter})"
                out.append(g)
        for name, thr in (gates.min_metric or {}).items():
            out.append(metric_gate(target, r, name, thr, lower_bound=True, confidence=gates.confidence))
        for name, thr in (gates.max_metric or {}).items():
            out.append(metric_gate(target, r, name, thr, lower_bound=False, confidence=gates.confidence))
        if gates.device_budgets and budgeted:
            out += budget_gates(r, target)
        art = arts.get(r.artifact)
        if art is not None and art.parity is not None and not art.parity.passed:
            out.append(GateResult(name="parity", target=target, value=art.parity.cosine,
                                  threshold=art.parity.tolerance.get("min_cosine") or 0.0, passed=False,
                                  detail=art.error or "outside its parity tolerance against the fp32 reference"))
    if not any(g.severity == "error" for g in out) and _has_any(gates):
        out.append(GateResult(name="results_present", target="run", value=float(len(report.results)), threshold=1,
                              passed=False, detail="no successful benchmark results to gate"))
    return out


def fp32_references(report: Report) -> set[str]:
    """fp32 artifacts kept as the reference of compressed ones: absolute budgets (latency, size, device budgets)
    are not applied to them unless `gates.artifacts` names them; a run with only fp32 artifacts gates them all."""
    arts = [a for a in report.artifacts if a.status == "ok"]
    if not any(a.precision != "fp32" for a in arts):
        return set()
    return {a.name for a in arts if a.precision == "fp32"}


def _accuracy_gate(target, acc, comp_acc, cand_ev, comp_ev, what, gates) -> GateResult:
    thr = gates.max_accuracy_drop
    if comp_acc is None:
        return GateResult(name="max_accuracy_drop", target=target, value=None, threshold=thr, passed=False,
                          detail=f"no {what} accuracy to compare with")
    paired = (cand_ev is not None and comp_ev is not None
              and np.array_equal(cand_ev["labels"], comp_ev["labels"]))
    if not paired:
        drop = comp_acc - acc
        return GateResult(name="max_accuracy_drop", target=target, value=drop, threshold=thr, passed=drop <= thr + 1e-12,
                          detail=f"{acc:.4f} vs {what} {comp_acc:.4f} (point estimate: no paired per-sample evidence)")
    c = cand_ev["predictions"] == cand_ev["labels"]
    b = comp_ev["predictions"] == comp_ev["labels"]
    boot = bootstrap_accuracy_drop(b, c, confidence=2 * gates.confidence - 1)
    mc = mcnemar_exact(b, c)
    failed = boot["ci_low"] > thr
    verdict = (f"{gates.confidence:.0%} sure the drop exceeds {thr:g}" if failed else
               f"not {gates.confidence:.0%} sure the drop exceeds {thr:g}")
    return GateResult(
        name="max_accuracy_drop", target=target, value=boot["drop"], threshold=thr, passed=not failed,
        confidence=gates.confidence, ci=[boot["ci_low"], boot["ci_high"]], p_value=mc["p_value"],
        detail=(f"{acc:.4f} vs {what} {comp_acc:.4f}; drop CI [{boot['ci_low']:.4f}, {boot['ci_high']:.4f}]; "
                f"McNemar p={mc['p_value']:.3g} ({mc['only_baseline_right']} vs {mc['only_candidate_right']} "
                f"disagreements); {verdict}"))


def _class_gate(target, cand_ev, comp_ev, what, gates) -> GateResult | None:
    if not np.array_equal(cand_ev["labels"], comp_ev["labels"]):
        return None
    labels = cand_ev["labels"]
    c = cand_ev["predictions"] == labels
    b = comp_ev["predictions"] == labels
    drops = []
    for k in np.unique(labels):
        m = labels == k
        boot = bootstrap_accuracy_drop(b[m], c[m], confidence=2 * gates.confidence - 1)
        drops.append((boot["drop"], boot["ci_low"], boot["ci_high"], int(k)))
    drops.sort(reverse=True)
    worst = drops[0]
    failed = any(low > gates.max_class_accuracy_drop for _, low, _, _ in drops)
    lost = ", ".join(f"class {k}: {d:+.3f}" for d, _, _, k in drops[:3] if d > 0) or "none"
    return GateResult(name="max_class_accuracy_drop", target=target, value=worst[0],
                      threshold=gates.max_class_accuracy_drop, passed=not failed, confidence=gates.confidence,
                      ci=[worst[1], worst[2]], detail=f"classes that lost most vs {what}: {lost}")


def _latency_gate(target, r, base, cand_ev, base_ev, gates) -> GateResult:
    thr, pct = gates.max_latency_regression, gates.latency_percentile
    key = "p50" if pct == 50 else "p90"
    if base is None or base.latency_ms is None or r.latency_ms is None:
        return GateResult(name="max_latency_regression", target=target, value=None, threshold=thr, passed=False,
                          detail="no baseline latency for this artifact@device")
    if cand_ev is None or base_ev is None or "latency_ms" not in cand_ev or "latency_ms" not in base_ev:
        ratio = getattr(r.latency_ms, key) / getattr(base.latency_ms, key)
        return GateResult(name="max_latency_regression", target=target, value=ratio, threshold=thr,
                          passed=ratio <= thr, detail=f"{key} ratio (point estimate: no raw latency samples)")
    canaries = (base_ev.get("canary_ms"), cand_ev.get("canary_ms")) if gates.normalize_latency else (None, None)
    boot = bootstrap_latency_ratio(base_ev["latency_ms"], cand_ev["latency_ms"], percentile=pct,
                                   confidence=2 * gates.confidence - 1, base_canary=canaries[0],
                                   cand_canary=canaries[1])
    failed = boot["ci_low"] > thr
    sig = "significant" if boot["ci_low"] > 1 else "not significant"
    if boot["normalized"]:
        sig += (f"; raw ratio {boot['raw_ratio']:.3f} divided by the machine-speed canary ratio "
                f"{boot['machine_ratio']:.3f}")
    return GateResult(
        name="max_latency_regression", target=target, value=boot["ratio"], threshold=thr, passed=not failed,
        confidence=gates.confidence, ci=[boot["ci_low"], boot["ci_high"]],
        detail=(f"{key} {getattr(r.latency_ms, key):.4f} ms vs baseline {getattr(base.latency_ms, key):.4f} ms; "
                f"ratio CI [{boot['ci_low']:.3f}, {boot['ci_high']:.3f}] ({sig})"))


def _interleaved_gate(target, r, base, inter, gates) -> GateResult:
    thr, pct = gates.max_latency_regression, gates.latency_percentile
    key = "p50" if pct == 50 else "p90"
    st = interleaved_latency_ratio(inter.base_ms, inter.cand_ms, inter.per_round, percentile=pct,
                                   confidence=2 * gates.confidence - 1)
    failed = st["ci_low"] > thr
    sig = ("significantly slower" if st["ci_low"] > 1 else "significantly faster" if st["ci_high"] < 1
           else "no significant change")
    recorded = ""
    if base is not None and base.latency_ms is not None and r.latency_ms is not None:
        recorded = f"; the recorded runs' ratio was {getattr(r.latency_ms, key) / getattr(base.latency_ms, key):.3f}"
    return GateResult(
        name="max_latency_regression", target=target, value=st["ratio"], threshold=thr, passed=not failed,
        confidence=gates.confidence, ci=[st["ci_low"], st["ci_high"]],
        detail=(f"{key} {st['cand']:.4f} ms vs baseline {st['base']:.4f} ms, timed interleaved now on {inter.device} "
                f"({st['rounds']} rounds x {inter.per_round} runs each); ratio CI [{st['ci_low']:.3f}, "
                f"{st['ci_high']:.3f}] ({sig}){recorded}"))


PROPORTIONS = {"accuracy", "top1_agreement", "top_k_agreement", "top_k_accuracy", "nn_agreement"}


def metric_gate(target: str, r: Result, name: str, threshold: float, lower_bound: bool,
                confidence: float = 0.95) -> GateResult:
    """`min_metric.NAME` / `max_metric.NAME` on a bench metric; a metric the bench could not measure fails. A
    proportion gets its Wilson interval, and the detail warns when the test split is too small to tell the value
    from the threshold (the verdict stays the point estimate's)."""
    gate = f"{'min' if lower_bound else 'max'}_metric.{name}"
    value = (r.metrics or {}).get(name)
    if value is None:
        return GateResult(name=gate, target=target, value=None, threshold=threshold, passed=False,
                          detail=f"{name} was not measured (it needs labels or reference outputs; measured: "
                                 f"{sorted(r.metrics or {})})")
    passed = value >= threshold if lower_bound else value <= threshold
    n = r.test_samples or 0
    if name not in PROPORTIONS or n == 0:
        return GateResult(name=gate, target=target, value=value, threshold=threshold, passed=passed,
                          detail=f"{n} test samples")
    from edgekit.significance import proportion_interval

    lo, hi = proportion_interval(value, n, confidence)
    detail = f"{value:.4f} [{lo:.4f}, {hi:.4f}] on {n} test samples ({confidence:.0%} Wilson)"
    if lo < threshold < hi:
        detail += (f"; WARNING: too few samples to resolve {threshold:g} (one sample is {100 / n:.2g} points): "
                   f"the verdict is the point estimate's")
    return GateResult(name=gate, target=target, value=value, threshold=threshold, passed=passed, detail=detail,
                      confidence=confidence, ci=[lo, hi])


def budget_gates(r: Result, target: str) -> list[GateResult]:
    """The device profile's budgets (max latency/size/memory), when the profile is known here."""
    from edgekit.devices import load_profile
    from edgekit.errors import EdgekitError

    try:
        b = load_profile(r.device, name_only=True).budgets
    except EdgekitError:
        return []
    out = []
    if b.max_latency_ms is not None and r.emulated:
        out.append(_skipped("device_budget_latency_ms", target, b.max_latency_ms))
    elif b.max_latency_ms is not None and r.latency_ms is not None:
        out.append(GateResult(name="device_budget_latency_ms", target=target, value=r.latency_ms.p90,
                              threshold=b.max_latency_ms, passed=r.latency_ms.p90 <= b.max_latency_ms, detail="p90"))
    if b.max_size_mb is not None and r.size_bytes is not None:
        out.append(GateResult(name="device_budget_size_mb", target=target, value=r.size_bytes / 1e6,
                              threshold=b.max_size_mb, passed=r.size_bytes / 1e6 <= b.max_size_mb))
    if b.max_memory_mb is not None and r.peak_rss_mb is not None:
        out.append(GateResult(name="device_budget_memory_mb", target=target, value=r.peak_rss_mb,
                              threshold=b.max_memory_mb, passed=r.peak_rss_mb <= b.max_memory_mb, detail="peak RSS"))
    return out


EMULATED = "skipped: measured on an emulated device, whose timings mean nothing (its outputs still count)"


def _skipped(name: str, target: str, threshold: float) -> GateResult:
    return GateResult(name=name, target=target, value=None, threshold=threshold, passed=True, severity="skipped",
                      detail=EMULATED)


def emulated_latency_skips(gates, target: str, has_baseline: bool, budgeted: bool) -> list[GateResult]:
    """The latency gates a row from an emulated device would have had, each shown as skipped."""
    out = []
    if gates.max_latency_p90_ms is not None and budgeted:
        out.append(_skipped("max_latency_p90_ms", target, gates.max_latency_p90_ms))
    if gates.max_latency_regression is not None and has_baseline:
        out.append(_skipped("max_latency_regression", target, gates.max_latency_regression))
    return out


def environment_warnings(report: Report, baseline: Report) -> list[GateResult]:
    """Latency is only comparable on the same CPU, threads and library versions: warn when they differ."""
    a, b = report.environment, baseline.environment
    diffs = []
    if a.get("cpu", {}).get("model") != b.get("cpu", {}).get("model"):
        diffs.append(f"CPU {b.get('cpu', {}).get('model')} -> {a.get('cpu', {}).get('model')}")
    if a.get("usable_cores") != b.get("usable_cores"):
        diffs.append(f"cores {b.get('usable_cores')} -> {a.get('usable_cores')}")
    for pkg in COMPARED_PACKAGES:
        va, vb = a.get("packages", {}).get(pkg), b.get("packages", {}).get(pkg)
        if va != vb:
            diffs.append(f"{pkg} {vb} -> {va}")
    threads_a = {(r.artifact, r.device): r.threads for r in report.results}
    for r in baseline.results:
        t = threads_a.get((r.artifact, r.device))
        if t is not None and t != r.threads:
            diffs.append(f"{r.artifact}@{r.device} threads {r.threads} -> {t}")
    if not diffs:
        return []
    return [GateResult(name="environment_match", target="run", value=float(len(diffs)), threshold=0, passed=False,
                       severity="warning", detail="latency not comparable: " + "; ".join(diffs))]


def status_gates(report: Report, baseline: Report | None = None) -> list[GateResult]:
    """A gate on a run that did not complete fails, naming what stopped it: a report still `running` (killed, or
    written by a run in progress), `failed`, `interrupted`, or `completed_with_errors` (a target failed). A baseline
    that did not finish cannot be compared with; one completed with errors is only a warning."""
    out = []
    for rep, which in ((report, "run"), (baseline, "baseline")):
        if rep is None or rep.status == "completed":
            continue
        errors = "; ".join(rep.errors[:3]) + (f"; and {len(rep.errors) - 3} more" if len(rep.errors) > 3 else "")
        why = {"running": "did not finish (killed, or still running)"}.get(rep.status, rep.status.replace("_", " "))
        warn = which == "baseline" and rep.status == "completed_with_errors"
        out.append(GateResult(name="run_status", target=which, value=None, threshold=0, passed=False,
                              severity="warning" if warn else "error",
                              detail=f"the {which} {why}" + (f": {errors}" if errors else "")))
    return out


def gates_passed(gates: list[GateResult]) -> bool:
    return all(g.passed for g in gates if g.severity == "error")


def _has_any(gates) -> bool:
    keys = ("max_accuracy_drop", "max_latency_p90_ms", "max_size_mb", "max_latency_regression", "min_accuracy",
            "max_class_accuracy_drop", "min_metric", "max_metric")
    return any(getattr(gates, k) is not None for k in keys)


def verdict(g: GateResult) -> str:
    if g.severity == "skipped":
        return "SKIP"
    if g.severity == "warning":
        return "WARN" if not g.passed else "ok"
    return "PASS" if g.passed else "FAIL"


def format_table(gates: list[GateResult]) -> str:
    if not gates:
        return "no gates configured"
    from edgekit.names import printable

    rows = [("gate", "target", "value", "threshold", "result", "detail")]
    for g in gates:
        rows.append((printable(g.name), printable(g.target), "-" if g.value is None else f"{g.value:.4g}",
                     f"{g.threshold:.4g}", verdict(g), printable(g.detail)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)] + [0]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
