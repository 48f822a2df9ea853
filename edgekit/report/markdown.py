"""report.md: the human summary of report.json."""

from __future__ import annotations

from edgekit.report.gates import verdict
from edgekit.report.schema import Report


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _f(v, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def results_table(report: Report) -> str:
    rows = []
    for r in report.results:
        lat = r.latency_ms
        rows.append([
            r.artifact, r.device, r.runtime, r.status, _f(r.accuracy),
            _f(lat.p50 if lat else None, ".3f"), _f(lat.p90 if lat else None, ".3f"), _f(lat.p99 if lat else None, ".3f"),
            _f(lat.std if lat else None, ".3f"), _f(r.throughput, ".0f"), str(r.threads),
            _f((r.size_bytes or 0) / 1024, ".1f"), _f(r.peak_rss_mb, ".0f"),
        ])
    return _table(["artifact", "device", "runtime", "status", "accuracy", "p50 ms", "p90 ms", "p99 ms", "std ms",
                   "samples/s", "threads", "size KiB", "peak RSS MB"], rows)


def metrics_table(report: Report) -> str:
    names = sorted({k for r in report.results for k in (r.metrics or {})})
    rows = [[r.artifact, r.device] + [_f((r.metrics or {}).get(k), ".4g") for k in names]
            for r in report.results if r.metrics]
    return _table(["artifact", "device", *names], rows)


def cross_parity_table(report: Report) -> str:
    rows = [[r["a"], r["b"], r["relation"], str(r.get("samples", "-")), _f(r.get("max_abs"), ".2e"),
             _f(r.get("cosine"), ".6f"), _f(r.get("top1_agreement")), r.get("error", "")] for r in report.cross_parity]
    return _table(["a", "b", "relation", "samples", "max abs", "cosine", "top-1 agree", "error"], rows)


def render_markdown(report: Report) -> str:
    out = [f"# edgekit report: {report.recipe_name}", "",
           f"Created {report.created} by edgekit {report.edgekit_version}; status **{report.status}**.", ""]
    d = report.data
    if d:
        out += [f"Data: {d.get('source')} ({d.get('train')} train / {d.get('val')} val / {d.get('test')} test, "
                f"input {d.get('input_shape')}, fingerprint `{d.get('fingerprint')}`).", ""]
    m = report.model
    if m:
        out += [f"Model: {m.get('arch')}" + (f", {m['params']:,} parameters" if "params" in m else "")
                + (f", {m['macs']:,} MACs per sample" if m.get("macs") else "") + ".", ""]
    if report.reference:
        out += [f"Reference ({report.reference.get('source')}): test accuracy {_f(report.reference.get('accuracy'))}.", ""]
    out += ["## Results", "", results_table(report), ""]
    if any(r.metrics for r in report.results):
        out += ["## Metrics", "", "On the test split; fidelity metrics compare with the fp32 reference's outputs.", "",
                metrics_table(report), ""]
    art_rows = []
    for a in report.artifacts:
        p = a.parity
        art_rows.append([a.name, a.format, a.precision, a.status, _f(a.size_bytes / 1024, ".1f"),
                         _f(p.max_abs if p else None, ".2e"), _f(p.cosine if p else None, ".6f"),
                         _f(p.top1_agreement if p else None), a.source or "-"])
    out += ["## Artifacts and parity with the reference", "",
            _table(["artifact", "format", "precision", "status", "size KiB", "max abs", "cosine", "top-1 agree",
                    "source"], art_rows), ""]
    if report.cross_parity:
        out += ["## Cross-runtime parity", "", "Each artifact in its own runtime, on the same held-out inputs.", "",
                cross_parity_table(report), ""]
    for pr in report.passes:
        out += [f"### Pass {pr.name} ({pr.status})", ""]
        if pr.decision:
            out += [pr.decision, ""]
        out += [f"- {n}" for n in pr.notes]
        if pr.notes:
            out.append("")
    if report.gates:
        out += ["## Gates", "", _table(["gate", "target", "value", "threshold", "result", "detail"],
                                       [[g.name, g.target, _f(g.value, ".4g"), _f(g.threshold, ".4g"),
                                         verdict(g), g.detail] for g in report.gates]), ""]
    if report.errors:
        out += ["## Errors", ""] + [f"- {e}" for e in report.errors] + [""]
    env = report.environment
    if env:
        cpu = env.get("cpu", {})
        pk = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())
        out += ["## Environment", "", f"- CPU: {cpu.get('model')} ({', '.join(cpu.get('isa', []))})",
                f"- cores: {env.get('usable_cores')} usable of {env.get('logical_cores')}; python {env.get('python')}",
                f"- packages: {pk}", ""]
    return "\n".join(out)
