"""Difference between two runs, row by row (artifact@device): accuracy, latency, size."""

from __future__ import annotations

from pathlib import Path

from edgekit.report.schema import Report
from edgekit.report.summary import Cell, Table, is_number, num, pct, size, text


def compare_rows(a: Report, b: Report) -> list[dict]:
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
        out.append(row)
    return out


def format_compare(rows: list[dict]) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    from edgekit.names import printable

    lines = [("target", "in", "acc A", "acc B", "delta", "p50 A ms", "p50 B ms", "B/A", "KiB A", "KiB B")]
    for r in rows:
        lines.append((printable(r["target"]), r["in"], f(r["accuracy_a"], ".4f"), f(r["accuracy_b"], ".4f"),
                      f(r.get("accuracy_delta"), "+.4f"), f(r["p50_a"], ".4f"), f(r["p50_b"], ".4f"),
                      f(r.get("p50_ratio"), ".3f"), f((r["size_a"] or 0) / 1024 if r["size_a"] else None, ".1f"),
                      f((r["size_b"] or 0) / 1024 if r["size_b"] else None, ".1f")))
    widths = [max(len(x[i]) for x in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip() for x in lines)


def compare_table(rows: list[dict]) -> Table:
    t = Table([Cell("target"), Cell("in"), Cell("accuracy A", True), Cell("accuracy B", True), Cell("Δ accuracy", True),
               Cell("p50 A ms", True), Cell("p50 B ms", True), Cell("p50 B/A", True), Cell("size A", True),
               Cell("size B", True)],
              caption="p50 B/A divides latencies recorded in two separate runs, possibly hours and machines apart: "
                      "differences of tens of percent can be noise. `edgekit gate B --baseline A` times both files "
                      "interleaved and gives the ratio with its confidence interval.")
    for r in rows:
        d = r.get("accuracy_delta")
        t.add([Cell(text(r["target"])), Cell(text(r["in"])), Cell(pct(r["accuracy_a"]), True),
               Cell(pct(r["accuracy_b"]), True), Cell(num(d * 100, "+.2f", "pp") if is_number(d) else "-", True),
               Cell(num(r["p50_a"], ".4f"), True), Cell(num(r["p50_b"], ".4f"), True),
               Cell(num(r.get("p50_ratio"), ".3f", "×"), True), Cell(size(r["size_a"]), True),
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
    return render_template("compare.html.j2", runs=runs, rows=compare_table(rows),
                           plot=embedded(plot, "latency ECDF, A dashed, B solid") if plot else None)


def _overlay_ecdf(a, b, dir_a, dir_b) -> bytes | None:
    import numpy as np

    from edgekit.names import contained
    from edgekit.report.evidence import load_samples
    from edgekit.report.plots import _plt, _png

    plt = _plt()
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
    return _png(fig)
