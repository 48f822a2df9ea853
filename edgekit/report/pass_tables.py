"""A pass's section of the report: its before/after table and its candidate table (the chosen one marked)."""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.report.cells import Cell, Table, col, flag, is_number, num, pct, quantity, size, text
from edgekit.report.schema import PassRecord, Report

CANDIDATE_COLUMNS = [  # (key, header, formatter, numeric)
    ("format", "format", text, False),
    ("activation_type", "activation type", text, False),
    ("weight_type", "weight type", text, False),
    ("per_channel", "per-channel", flag, False),
    ("saturation_safe", "saturation-safe", flag, False),
    ("float_nodes", "float layers", lambda v: str(len(v)) if isinstance(v, list) else text(v), True),
    ("cosine", "cosine", lambda v: num(v, ".5f"), True),
    ("top1_agreement", "top-1 agree", lambda v: pct(v, 1), True),
    ("val_accuracy", "val accuracy", pct, True),
    ("size_bytes", "size", size, True),
    ("latency_ms_p50", "p50 ms", lambda v: num(v, ".3f"), True),
    ("latency_ms_p90", "p90 ms", lambda v: num(v, ".3f"), True),
    ("speedup_vs_fp32", "vs fp32", lambda v: num(v, ".2f", "×"), True),
    ("meets_target", "meets target", flag, False),
    ("error", "error", text, False),
]


FOLDABLE = {"weight_type", "saturation_safe", "meets_target"}  # constant columns become one line under the table


def candidate_label(row: dict, i: int) -> str:
    for k in ("scheme", "candidate", "label", "node"):
        if row.get(k) not in (None, ""):
            return text(row[k])
    return f"#{i + 1}"


def slower_than_fp32(row: dict, p: PassRecord) -> bool:
    s = row.get("speedup_vs_fp32")
    if is_number(s):
        return s < 1
    fp32, lat = p.before.get("latency_ms_p50_selection"), row.get("latency_ms_p50")
    return is_number(fp32) and is_number(lat) and lat > fp32


def candidate_table(p: PassRecord) -> Table | None:
    """One row per entry of `passes[].candidates`; the chosen one marked, slower-than-fp32 rows flagged."""
    rows = [c for c in p.candidates if isinstance(c, dict)]
    if not rows:
        return None
    cols = [c for c in CANDIDATE_COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    shared = [c for c in cols if c[0] in FOLDABLE and len(rows) > 1 and len({text(r.get(c[0])) for r in rows}) == 1]
    cols = [c for c in cols if c not in shared]
    fp32 = p.before.get("latency_ms_p50_selection")
    notes = [f"{h} {f(rows[0].get(k))} for every candidate" for k, h, f, _ in shared]
    if fp32 is not None:
        notes.append(f"fp32 p50 on this host during selection: {num(fp32, '.3f', 'ms')}")
    t = Table([col("candidate"), *(col(h, n) for _, h, _, n in cols), col("choice")], caption="; ".join(notes))
    for i, r in enumerate(rows):
        slow = slower_than_fp32(r, p)
        chosen = r.get("chosen") is True
        note = "✓ chosen" if chosen else ""
        if slow:
            note = (note + "; " if note else "") + "slower than fp32"
        cls = " ".join(x for x in ("chosen" if chosen else "", "slow" if slow else "", "fail" if r.get("error") else "")
                       if x)
        t.add([Cell(candidate_label(r, i)), *(Cell(f(r.get(k)), n) for k, _, f, n in cols), Cell(note, cls="nowrap")],
              cls)
    return t


QUANTITY_LABELS = {"size_bytes": "size", "latency_ms_p50_selection": "p50 latency (selection timing)",
                   "latency_ms_p90_selection": "p90 latency (selection timing)", "test_accuracy": "test accuracy",
                   "val_accuracy": "validation accuracy"}


def before_after_table(p: PassRecord) -> Table | None:
    keys = [k for k in p.before if k in p.after] + [k for k in p.after if k not in p.before]
    keys = [k for k in keys if is_number(p.before.get(k)) or is_number(p.after.get(k))]
    if not keys:
        return None
    t = Table([col("quantity"), col("before", True), col("after", True), col("after / before", True)])
    for k in keys:
        b, a = p.before.get(k), p.after.get(k)
        ratio = num(a / b, ".3f", "×") if is_number(a) and is_number(b) and b else "-"
        label = QUANTITY_LABELS.get(str(k), str(k).replace("_", " "))
        t.add([Cell(label), Cell(quantity(str(k), b), True), Cell(quantity(str(k), a), True), Cell(ratio, True)])
    return t


@dataclass
class PassView:
    anchor: str
    title: str
    status: str
    duration: str
    produced: str
    decision: str
    notes: list[str]
    error: str
    change: Table | None
    candidates: Table | None


def pass_views(report: Report) -> list[PassView]:
    return [PassView(anchor=f"pass-{i + 1}", title=f"{i + 1}. {p.name}", status=p.status,
                     duration=num(p.duration_s, ".1f", "s"), produced=p.produced or "", decision=p.decision or "",
                     notes=[str(n) for n in p.notes], error=p.error or "", change=before_after_table(p),
                     candidates=candidate_table(p)) for i, p in enumerate(report.passes)]
