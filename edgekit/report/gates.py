"""Gates: thresholds checked against a report (and optionally a baseline report)."""

from __future__ import annotations

from edgekit.report.schema import GateResult, Report, Result


def _targets(report: Report, only: list[str] | None) -> list[Result]:
    return [r for r in report.results if r.status == "ok" and (not only or r.artifact in only)]


def evaluate_gates(report: Report, gates, baseline: Report | None = None) -> list[GateResult]:
    """One GateResult per (gate, artifact@device). Accuracy drops are against the fp32 reference of the same run,
    or against the same artifact@device in `baseline` when one is given."""
    out: list[GateResult] = []
    ref_acc = report.reference.get("accuracy")
    base_rows = {(r.artifact, r.device): r for r in baseline.results if r.status == "ok"} if baseline else {}
    for r in _targets(report, gates.artifacts):
        target = f"{r.artifact}@{r.device}"
        base = base_rows.get((r.artifact, r.device))
        if gates.max_accuracy_drop is not None and r.accuracy is not None:
            if baseline is not None:
                ref, what = (base.accuracy if base else None), "baseline"
            else:
                ref, what = ref_acc, "fp32 reference"
            if ref is not None:
                drop = ref - r.accuracy
                out.append(GateResult(name="max_accuracy_drop", target=target, value=drop,
                                      threshold=gates.max_accuracy_drop, passed=drop <= gates.max_accuracy_drop + 1e-12,
                                      detail=f"{r.accuracy:.4f} vs {what} {ref:.4f}"))
            else:
                out.append(GateResult(name="max_accuracy_drop", target=target, value=None,
                                      threshold=gates.max_accuracy_drop, passed=False,
                                      detail=f"no {what} accuracy to compare with"))
        if gates.min_accuracy is not None and r.accuracy is not None:
            out.append(GateResult(name="min_accuracy", target=target, value=r.accuracy, threshold=gates.min_accuracy,
                                  passed=r.accuracy >= gates.min_accuracy))
        if gates.max_latency_p90_ms is not None and r.latency_ms is not None:
            out.append(GateResult(name="max_latency_p90_ms", target=target, value=r.latency_ms.p90,
                                  threshold=gates.max_latency_p90_ms, passed=r.latency_ms.p90 <= gates.max_latency_p90_ms,
                                  detail=f"batch {r.batch_size}, {r.threads} threads"))
        if gates.max_size_mb is not None and r.size_bytes is not None:
            mb = r.size_bytes / 1e6
            out.append(GateResult(name="max_size_mb", target=target, value=mb, threshold=gates.max_size_mb,
                                  passed=mb <= gates.max_size_mb))
        if gates.max_latency_regression is not None and baseline is not None:
            if base is not None and base.latency_ms and r.latency_ms:
                ratio = r.latency_ms.p90 / base.latency_ms.p90
                out.append(GateResult(name="max_latency_regression", target=target, value=ratio,
                                      threshold=gates.max_latency_regression, passed=ratio <= gates.max_latency_regression,
                                      detail=f"p90 {r.latency_ms.p90:.3f} ms vs baseline {base.latency_ms.p90:.3f} ms"))
    if not out and _has_any(gates):
        out.append(GateResult(name="results_present", target="run", value=float(len(report.results)), threshold=1,
                              passed=False, detail="no successful benchmark results to gate"))
    return out


def _has_any(gates) -> bool:
    return any(v is not None for k, v in gates.model_dump().items() if k != "artifacts")


def format_table(gates: list[GateResult]) -> str:
    if not gates:
        return "no gates configured"
    rows = [("gate", "target", "value", "threshold", "result", "detail")]
    for g in gates:
        rows.append((g.name, g.target, "-" if g.value is None else f"{g.value:.4g}", f"{g.threshold:.4g}",
                     "PASS" if g.passed else "FAIL", g.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
