"""Difference between two runs, row by row (artifact@device): accuracy, latency, size, and the p50 ratio B/A
both as recorded and, where both runs' files exist, timed interleaved now with its confidence interval."""

from __future__ import annotations

from pathlib import Path

from edgekit.report.cells import Cell, Table, is_number, num, pct, size, text
from edgekit.report.schema import Report


def load_compared(path: Path) -> Report:
    """A run's report, after checking its artifact files against the sha256 it recorded (evidence files are
    checked as they are read)."""
    from edgekit.export.artifact import verify_artifacts
    from edgekit.report.io import load_report, report_dir

    report = load_report(path)
    verify_artifacts(report, report_dir(path))
    return report


def compare_rows(a: Report, b: Report, interleaved: dict | None = None, confidence: float = 0.95) -> list[dict]:
    """One dict per artifact@device of either run. `interleaved` maps (artifact, device) to an interleaved timing of
    A's and B's files (bench/interleaved.py, A as baseline) or to why there is none; its p50 ratio B/A and
    `confidence` interval go into `interleaved` (or the reason into `interleaved_note`)."""
    from edgekit.significance import interleaved_latency_ratio

    rows_a = {(r.artifact, r.device): r for r in a.results if r.status == "ok"}
    rows_b = {(r.artifact, r.device): r for r in b.results if r.status == "ok"}
    out = []
    for key in sorted(rows_a.keys() | rows_b.keys()):
        ra, rb = rows_a.get(key), rows_b.get(key)
        row = {"target": f"{key[0]}@{key[1]}", "in": "both" if ra and rb else ("A only" if ra else "B only")}
        for tag, r in (("a", ra), ("b", rb)):
            row[f"accuracy_{tag}"] = r.accuracy if r else None
            row[f"p50_{tag}"] = r.latency_ms.p50 if r and r.latency_ms else None
            row[f"p90_{tag}"] = r.latency_ms.p90 if r and r.latency_ms else None
            row[f"size_{tag}"] = r.size_bytes if r else None
        if ra and rb:
            if ra.accuracy is not None and rb.accuracy is not None:
                row["accuracy_delta"] = rb.accuracy - ra.accuracy
            if row["p50_a"] and row["p50_b"] and not (ra.emulated or rb.emulated):  # emulated timings mean nothing
                row["p50_ratio"] = row["p50_b"] / row["p50_a"]
        inter = (interleaved or {}).get(key)
        if isinstance(inter, str):
            row["interleaved_note"] = inter
        elif inter is not None:
            st = interleaved_latency_ratio(inter.base_ms, inter.cand_ms, inter.per_round, percentile=50,
                                           confidence=confidence)
            row["interleaved"] = {**st, "device": inter.device, "per_round": inter.per_round}
        out.append(row)
    return out


def interleaved_text(r: dict) -> str:
    """`1.001 [0.998, 1.004]`, or `-` when the row was not timed interleaved."""
    st = r.get("interleaved")
    return f"{st['ratio']:.3f} [{st['ci_low']:.3f}, {st['ci_high']:.3f}]" if st else "-"


def _verdict(st: dict) -> str:
    return ("B slower" if st["ci_low"] > 1 else "B faster" if st["ci_high"] < 1 else "no significant change")


def compare_notes(rows: list[dict]) -> list[str]:
    """One line per row: what its interleaved ratio means, or why it has none."""
    notes = []
    for r in rows:
        st = r.get("interleaved")
        if st:
            notes.append(f"{r['target']}: {_verdict(st)} (p50 {st['cand']:.4f} ms vs {st['base']:.4f} ms, "
                         f"{st['rounds']} interleaved rounds x {st['per_round']} runs on {st['device']}, "
                         f"{st['confidence']:.0%} CI)")
        elif r.get("interleaved_note"):
            notes.append(f"{r['target']}: not timed interleaved: {r['interleaved_note']}")
    return notes


def format_compare(rows: list[dict]) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    from edgekit.names import printable

    lines = [("target", "in", "acc A", "acc B", "delta", "p50 A ms", "p50 B ms", "B/A rec", "B/A now [95% CI]",
              "KiB A", "KiB B")]
    for r in rows:
        lines.append((printable(r["target"]), r["in"], f(r["accuracy_a"], ".4f"), f(r["accuracy_b"], ".4f"),
                      f(r.get("accuracy_delta"), "+.4f"), f(r["p50_a"], ".4f"), f(r["p50_b"], ".4f"),
                      f(r.get("p50_ratio"), ".3f"), interleaved_text(r),
                      f((r["size_a"] or 0) / 1024 if r["size_a"] else None, ".1f"),
                      f((r["size_b"] or 0) / 1024 if r["size_b"] else None, ".1f")))
    widths = [max(len(x[i]) for x in lines) for i in range(len(lines[0]))]
    table = "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip() for x in lines)
    notes = compare_notes(rows)
    legend = ("B/A rec: the p50 latencies recorded in the two runs divided; B/A now: both files timed interleaved "
              "now, with the ratio's confidence interval (an interval holding 1.000 is noise)")
    return "\n".join([table, "", legend, *map(printable, notes)]) if notes or any(r.get("p50_ratio") for r in rows) \
        else table


def compare_table(rows: list[dict]) -> Table:
    t = Table([Cell("target"), Cell("in"), Cell("accuracy A", True), Cell("accuracy B", True), Cell("Δ accuracy", True),
               Cell("p50 A ms", True), Cell("p50 B ms", True), Cell("p50 B/A recorded", True),
               Cell("p50 B/A interleaved [95% CI]", True), Cell("size A", True), Cell("size B", True)],
              caption="p50 B/A recorded divides latencies recorded in two separate runs, possibly hours and machines "
                      "apart: differences of tens of percent can be noise. p50 B/A interleaved times both files now, "
                      "alternating rounds in one process on the device (as `edgekit gate --baseline` does), with the "
                      "ratio's confidence interval: an interval holding 1 means no measurable difference.")
    for r in rows:
        d, st = r.get("accuracy_delta"), r.get("interleaved")
        cls = "" if not st else "warn" if st["ci_low"] > 1 else "pass" if st["ci_high"] < 1 else ""
        t.add([Cell(text(r["target"])), Cell(text(r["in"])), Cell(pct(r["accuracy_a"]), True),
               Cell(pct(r["accuracy_b"]), True), Cell(num(d * 100, "+.2f", "pp") if is_number(d) else "-", True),
               Cell(num(r["p50_a"], ".4f"), True), Cell(num(r["p50_b"], ".4f"), True),
               Cell(num(r.get("p50_ratio"), ".3f", "×"), True),
               Cell(interleaved_text(r), True, cls, r.get("interleaved_note", "")), Cell(size(r["size_a"]), True),
               Cell(size(r["size_b"]), True)])
    return t


def compare_html(a: Report, b: Report, dir_a: Path, dir_b: Path, rows: list[dict]) -> str:
    """A self-contained page: the table and both runs' latency ECDFs overlaid."""
    from edgekit.report.html import embedded, render_template

    plot = None
    try:
        plot = _overlay_ecdf(a, b, dir_a, dir_b)
    except ImportError:
        pass
    runs = Table([Cell("run"), Cell("folder"), Cell("recipe"), Cell("created"), Cell("status")])
    for tag, rep, d in (("A", a, dir_a), ("B", b, dir_b)):
        runs.add([Cell(tag), Cell(str(d)), Cell(rep.recipe_name), Cell(rep.created), Cell(rep.status)])
    return render_template("compare.html.j2", runs=runs, rows=compare_table(rows), notes=compare_notes(rows),
                           plot=embedded(plot, "latency ECDF, A dashed, B solid") if plot else None)


def _overlay_ecdf(a, b, dir_a, dir_b) -> bytes | None:
    import numpy as np

    from edgekit.names import contained
    from edgekit.report.evidence import load_samples
    from edgekit.report.plots import png_bytes, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for rep, d, style in ((a, dir_a, "--"), (b, dir_b, "-")):
        for r in rep.results:
            if r.status != "ok" or not r.samples:
                continue
            contained(d, r.samples, "results[].samples", str(d / "report.json"))
            ev = load_samples(d, r.samples, r.samples_sha256)
            if ev is not None and "latency_ms" in ev:
                lat = np.sort(ev["latency_ms"])
                ax.step(lat, np.arange(1, len(lat) + 1) / len(lat), style, where="post",
                        label=f"{'A' if rep is a else 'B'} {r.artifact}@{r.device}".replace("$", r"\$"))
                drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of runs")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return png_bytes(fig)
