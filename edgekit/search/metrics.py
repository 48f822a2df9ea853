"""Read a trial's objective and constraint metrics off its report.json."""

from __future__ import annotations

from edgekit.errors import EdgekitError
from edgekit.report.schema import Report, Result

LATENCY = {"latency_p50_ms": "p50", "latency_p90_ms": "p90", "latency_p99_ms": "p99", "latency_mean_ms": "mean"}


def chosen_result(report: Report, artifact: str | None, device: str | None) -> Result:
    """The result row a search optimizes: `artifact`@`device`, by default the last artifact (the end of the
    compression chain) on the first bench device."""
    ok = [r for r in report.results if r.status == "ok"]
    if not ok:
        errors = "; ".join(report.errors[-3:]) or "no benchmark results"
        raise EdgekitError(f"the trial produced no successful result ({errors})")
    name = artifact or next((a.name for a in reversed(report.artifacts) if a.status == "ok"), ok[-1].artifact)
    dev = device or ok[0].device
    for r in ok:
        if r.artifact == name and r.device == dev:
            return r
    have = ", ".join(f"{r.artifact}@{r.device}" for r in ok)
    raise EdgekitError(f"no successful result for {name}@{dev} (have: {have})")


def trial_metrics(report: Report, row: Result) -> dict[str, float]:
    """Every metric a search can name, for one result row of a report."""
    out: dict[str, float] = {}
    if row.accuracy is not None:
        out["accuracy"] = row.accuracy
    if row.latency_ms is not None:
        for name, key in LATENCY.items():
            out[name] = getattr(row.latency_ms, key)
    if row.size_bytes is not None:
        out["size_mb"] = row.size_bytes / 1e6
    if row.peak_rss_mb is not None:
        out["peak_rss_mb"] = row.peak_rss_mb
    model = dict(report.model)
    for p in report.passes:  # the compressed model's size, after the last torch pass that changed it
        if p.status == "ok" and p.after.get("macs") is not None:
            model.update({k: p.after[k] for k in ("macs", "params") if k in p.after})
    for k in ("macs", "params"):
        if model.get(k) is not None:
            out[k] = float(model[k])
    out.update({k: float(v) for k, v in (row.metrics or {}).items() if v is not None})
    return out


def metric(values: dict[str, float], name: str) -> float:
    if name not in values:
        raise EdgekitError(f"metric '{name}' was not measured for this trial (measured: {sorted(values)})")
    return values[name]
