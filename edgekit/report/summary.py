"""What report.html and report.md show, as plain strings: the verdict, the artifact summary, the gate matrix, the
environment (each pass's tables are in report.pass_tables). Nothing here is markup; each renderer escapes every
string it is given.

A report.json may come from elsewhere (a CI artifact, a colleague's run folder), so every value is formatted
tolerantly: a string where a number belongs is shown as that string, never trusted and never an exception."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from edgekit.report.cells import Cell, Table, Verdict, col, first_line, gate_value, is_number, num, pct, quantity, size, text
from edgekit.report.gates import verdict
from edgekit.report.schema import GateResult, Report, Result

# verdict

def run_verdict(report: Report) -> Verdict:
    """The banner: every gate passed, FAILED with the root cause (the first error), or INCOMPLETE."""
    causes = [*report.errors, *(f"pass {p.name}: {p.error}" for p in report.passes if p.error),
              *(f"{r.artifact}@{r.device}: {r.error}" for r in report.results if r.error and r.status != "ok")]
    hard = [g for g in report.gates if g.severity not in ("warning", "skipped")]
    failed = [g for g in hard if not g.passed]
    warned = [g for g in report.gates if g.severity == "warning" and not g.passed]
    tally = f"{len(hard) - len(failed)}/{len(hard)} gates passed" if hard else "no gates configured"
    details = [f"{len(report.errors)} error(s): see Errors"] if report.errors else []
    if causes and first_line(causes[0]) != causes[0].strip():
        details.insert(0, causes[0])
    details += [f"warning: {g.name} on {g.target}: {g.detail}" for g in warned]
    if report.status == "failed":
        return Verdict("fail", "FAILED: " + first_line(causes[0] if causes else "status failed, no error recorded"),
                       [tally, *details])
    if report.status not in ("completed", "completed_with_errors"):
        why = f"INCOMPLETE: status {report.status}"
        return Verdict("incomplete", why, [*(["last error: " + first_line(causes[0])] if causes else []),
                                           "the run stopped before it finished; edgekit run --resume RUN_DIR "
                                           "finishes it", *details])
    if failed:
        g = failed[0]
        if causes:
            return Verdict("fail", "FAILED: " + first_line(causes[0]), [tally, *details])
        return Verdict("fail", f"FAILED: gate {g.name} on {g.target}: {gate_value(g.name, g.value)} vs threshold "
                               f"{gate_value(g.name, g.threshold)}", [tally, *([g.detail] if g.detail else []), *details])
    if causes:
        return Verdict("warn", f"{tally}, with errors: " + first_line(causes[0]), details)
    return Verdict("pass" if hard else "none", tally if hard else "Completed; no gates configured", details)


# summary of artifacts

def _ancestors(report: Report, name: str) -> list[str]:
    out, seen = [], {name}
    a = report.artifact(name)
    while a is not None and a.source and a.source not in seen:
        out.append(a.source)
        seen.add(a.source)
        a = report.artifact(a.source)
    return out


def fp32_reference(report: Report, r: Result) -> Result | None:
    """The fp32 row a result is sped up against: its nearest fp32 ancestor on the same device; for a file that is
    not fp32 and has none, an fp32 artifact of the same format there."""
    rows = {(x.artifact, x.device): x for x in report.results if x.status == "ok" and x.latency_ms}
    art = report.artifact(r.artifact)
    if art is None:
        return None
    for name in _ancestors(report, r.artifact):
        a = report.artifact(name)
        if a is not None and a.precision == "fp32" and (name, r.device) in rows:
            return rows[(name, r.device)]
    if art.precision == "fp32":
        return None
    same = [a for a in report.artifacts if a.precision == "fp32" and a.format == art.format]
    return next((rows[(a.name, r.device)] for a in same if (a.name, r.device) in rows), None)


def speedup_cell(report: Report, r: Result | None, run_dir: Path | None) -> Cell:
    """fp32 p50 / this p50, with a 95% block-bootstrap interval from the recorded latency samples when both
    files' evidence is intact; a warning when slower than fp32."""
    if r is not None and r.emulated:
        return Cell("emulated", True, title="timed under emulation: no speed-up is claimed")
    ref = fp32_reference(report, r) if r else None
    art = report.artifact(r.artifact) if r else None
    if ref is None and art is not None and art.precision == "fp32" and r.status == "ok":
        return Cell("reference", True, title="the fp32 file others are compared with")
    if ref is None or not r.latency_ms or not is_number(r.latency_ms.p50) or r.latency_ms.p50 <= 0:
        return Cell("-", True)
    ratio = ref.latency_ms.p50 / r.latency_ms.p50
    slow = ratio < 1
    return Cell(f"{ratio:.2f}×" + _speedup_interval(r, ref, run_dir), True, "warn" if slow else "",
                f"slower than {ref.artifact}" if slow else f"vs {ref.artifact}")


def _speedup_interval(r: Result, ref: Result, run_dir: Path | None) -> str:
    if run_dir is None or not (r.samples and r.samples_sha256 and ref.samples and ref.samples_sha256):
        return ""
    return _interval(Path(run_dir).resolve(), r.samples, r.samples_sha256, ref.samples, ref.samples_sha256)


@functools.lru_cache(maxsize=256)
def _interval(run_dir: Path, samples: str, sha: str, ref_samples: str, ref_sha: str) -> str:
    """Cached by the files' hashes: report.md and report.html show the same interval, computed once. Only files
    inside the run folder whose sha256 matches the report are read."""
    from edgekit.names import contained
    from edgekit.report.evidence import load_samples
    from edgekit.significance import bootstrap_latency_ratio

    try:
        contained(run_dir, samples, "samples")
        contained(run_dir, ref_samples, "samples")
        ev, ev_ref = load_samples(run_dir, samples, sha), load_samples(run_dir, ref_samples, ref_sha)
    except Exception:  # evidence is optional; a damaged, missing or outside file only costs the interval
        return ""
    if not ev or not ev_ref or "latency_ms" not in ev or "latency_ms" not in ev_ref:
        return ""
    b = bootstrap_latency_ratio(ev["latency_ms"], ev_ref["latency_ms"], resamples=500)
    return f" [{b['ci_low']:.2f}, {b['ci_high']:.2f}]"


def reference_note(report: Report) -> str:
    ref = report.reference
    if not ref or ref.get("accuracy") is None:
        return ""
    return f"Reference ({text(ref.get('source'))}): test accuracy {pct(ref.get('accuracy'))}. "


def summary_table(report: Report, run_dir: Path | None = None) -> Table:
    t = Table([col("artifact"), col("format"), col("precision"), col("device"), col("size", True),
               col("accuracy", True), col("cosine", True), col("top-1 agree", True), col("p50 ms", True),
               col("p90 ms", True), col("speed-up vs fp32 [95% CI]", True), col("status")],
              caption=reference_note(report) + "Accuracy on the test split; cosine and top-1 agreement against the "
                      "fp32 reference's outputs; latency per batch. The speed-up interval is a block bootstrap of the "
                      "recorded samples; the two files were timed one after the other, so slow drift of the machine "
                      "is not in it.")
    by_art: dict[str, list[Result]] = {}
    for r in report.results:
        by_art.setdefault(r.artifact, []).append(r)
    for a in report.artifacts:
        p = a.parity
        for r in by_art.pop(a.name, None) or [None]:
            lat = r.latency_ms if r else None
            status = r.status if r else (a.status if a.status != "ok" else "not measured")
            err = (r.error if r else None) or a.error
            cls = "" if status in ("ok", "not measured") else "fail"
            t.add([Cell(a.name), Cell(a.format), Cell(a.precision), Cell(r.device if r else "-"),
                   Cell(size(r.size_bytes if r and r.size_bytes is not None else a.size_bytes), True),
                   Cell(pct(r.accuracy) if r else "-", True), Cell(num(p.cosine, ".5f") if p else "-", True),
                   Cell(pct(p.top1_agreement, 1) if p else "-", True),
                   Cell(num(lat.p50, ".3f") if lat else "-", True), Cell(num(lat.p90, ".3f") if lat else "-", True),
                   speedup_cell(report, r, run_dir),
                   Cell(status, cls=cls, title=err or "")], cls)
    for rows in by_art.values():  # results whose artifact the report does not list
        for r in rows:
            lat = r.latency_ms
            t.add([Cell(r.artifact), Cell("-"), Cell("-"), Cell(r.device), Cell(size(r.size_bytes), True),
                   Cell(pct(r.accuracy), True), Cell("-", True), Cell("-", True),
                   Cell(num(lat.p50, ".3f") if lat else "-", True), Cell(num(lat.p90, ".3f") if lat else "-", True),
                   Cell("-", True), Cell(r.status, title=r.error or "")], "" if r.status == "ok" else "fail")
    return t


def results_table(report: Report) -> Table:
    t = Table([col("artifact"), col("device"), col("runtime"), col("status"), col("accuracy", True),
               col("p50 ms", True), col("p90 ms", True), col("p99 ms", True), col("std ms", True),
               col("samples/s", True), col("threads", True), col("size", True), col("peak RSS MB", True),
               col("error")])
    for r in report.results:
        lat = r.latency_ms
        rt = f"{r.runtime} ({r.runtime_precision})" if r.runtime_precision else r.runtime
        dev = f"{r.device} (emulated {r.machine or ''})".replace(" )", ")") if r.emulated else r.device
        t.add([Cell(r.artifact), Cell(dev), Cell(rt), Cell(r.status), Cell(pct(r.accuracy), True),
               *(Cell(num(getattr(lat, k), ".3f") if lat else "-", True) for k in ("p50", "p90", "p99", "std")),
               Cell(num(r.throughput, ".0f"), True), Cell(text(r.threads), True), Cell(size(r.size_bytes), True),
               Cell(num(r.peak_rss_mb, ".0f"), True), Cell(r.error or "")], "" if r.status == "ok" else "fail")
    return t


def metrics_table(report: Report) -> Table:
    names = sorted({str(k) for r in report.results for k in (r.metrics or {})})
    t = Table([col("artifact"), col("device"), *(col(n, True) for n in names)],
              caption="On the test split; fidelity metrics compare with the fp32 reference's outputs.")
    for r in report.results:
        if r.metrics:
            m = {str(k): v for k, v in r.metrics.items()}
            t.add([Cell(r.artifact), Cell(r.device), *(Cell(num(m.get(n)), True) for n in names)])
    return t


def artifacts_table(report: Report) -> Table:
    t = Table([col("artifact"), col("format"), col("precision"), col("status"), col("size", True),
               col("max abs", True), col("cosine", True), col("top-1 agree", True), col("source"),
               col("error")], caption="Parity with the reference, on held-out inputs.")
    for a in report.artifacts:
        p = a.parity
        t.add([Cell(a.name), Cell(a.format), Cell(a.precision), Cell(a.status), Cell(size(a.size_bytes), True),
               Cell(num(p.max_abs, ".2e") if p else "-", True), Cell(num(p.cosine, ".6f") if p else "-", True),
               Cell(pct(p.top1_agreement, 1) if p else "-", True), Cell(a.source or "-"), Cell(a.error or "")],
              "" if a.status == "ok" else "fail")
    return t


def cross_parity_table(report: Report) -> Table:
    t = Table([col("a"), col("b"), col("relation"), col("samples", True), col("max abs", True),
               col("cosine", True), col("top-1 agree", True), col("error")],
              caption="Each artifact in its own runtime, on the same held-out inputs.")
    for c in report.cross_parity:
        g = c.get
        t.add([Cell(text(g("a"))), Cell(text(g("b"))), Cell(text(g("relation"))), Cell(num(g("samples")), True),
               Cell(num(g("max_abs"), ".2e"), True), Cell(num(g("cosine"), ".6f"), True),
               Cell(pct(g("top1_agreement"), 1) if g("top1_agreement") is not None else "-", True),
               Cell(text(g("error", "")))])
    return t


# gates

def gate_matrix(report: Report) -> Table | None:
    """Targets (artifact@device) by gates; each cell the verdict and value, its title the threshold and detail."""
    if not report.gates:
        return None
    names = list(dict.fromkeys(g.name for g in report.gates))
    targets = list(dict.fromkeys(g.target for g in report.gates))
    cells = {(g.target, g.name): g for g in report.gates}
    t = Table([col("target"), *(col(n.replace("_", " ")) for n in names)],
              caption="Hover a cell for its threshold, interval and detail; all of them are in the table below.")
    for target in targets:
        row = [Cell(target)]
        for n in names:
            g = cells.get((target, n))
            if g is None:
                row.append(Cell(""))
                continue
            v = verdict(g)
            ci = f"; CI [{gate_value(n, g.ci[0])}, {gate_value(n, g.ci[1])}]" if g.ci and len(g.ci) == 2 else ""
            row.append(Cell(f"{v} {gate_value(n, g.value)}", cls={"PASS": "pass", "FAIL": "fail"}.get(v, "warn"),
                            title=f"threshold {gate_value(n, g.threshold)}{ci}; {g.detail}"))
        t.add(row)
    return t


def gates_table(gates: list[GateResult]) -> Table:
    t = Table([col("gate"), col("target"), col("value", True), col("threshold", True), col("interval", True),
               col("result"), col("detail")])
    for g in gates:
        v = verdict(g)
        ci = f"[{gate_value(g.name, g.ci[0])}, {gate_value(g.name, g.ci[1])}]" if g.ci and len(g.ci) == 2 else "-"
        if ci != "-" and is_number(g.confidence):
            ci += f" @ {g.confidence:.0%}"
        t.add([Cell(g.name), Cell(g.target), Cell(gate_value(g.name, g.value), True),
               Cell(gate_value(g.name, g.threshold), True), Cell(ci, True),
               Cell(v, cls={"PASS": "pass", "FAIL": "fail"}.get(v, "warn")), Cell(g.detail)])
    return t


# run, environment

def flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as dotted keys; lists of scalars joined."""
    if isinstance(d, dict):
        out = []
        for k, v in d.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(d, list) and any(isinstance(x, dict | list) for x in d):
        out = []
        for i, v in enumerate(d):
            out += flatten(v, f"{prefix}[{i}]")
        return out
    return [(prefix, text(d))]


def key_value_table(pairs: list[tuple[str, str]]) -> Table:
    t = Table([col("key"), col("value")])
    for k, v in pairs:
        t.add([Cell(k), Cell(v)])
    return t


def run_facts(report: Report) -> list[tuple[str, str]]:
    d, m, ref = report.data, report.model, report.reference
    facts = [("recipe", report.recipe_name), ("status", report.status), ("created", report.created),
             ("edgekit", report.edgekit_version), ("recipe sha256", report.recipe_sha256[:16] or "-"),
             ("seed", text(report.seed))]
    if d:
        facts += [("data", f"{text(d.get('source'))}: {text(d.get('train'))} train / {text(d.get('val'))} val / "
                           f"{text(d.get('test'))} test, input {text(d.get('input_shape'))}"),
                  ("data fingerprint", text(d.get("fingerprint")))]
    if m:
        facts.append(("model", text(m.get("arch")) + (f", {quantity('params', m['params'])} parameters"
                                                      if "params" in m else "")
                      + (f", {quantity('macs', m['macs'])} MACs per sample" if m.get("macs") else "")))
    if ref:
        facts.append(("reference", f"{text(ref.get('source'))}: test accuracy {pct(ref.get('accuracy'))}"))
    return facts
