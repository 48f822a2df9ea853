"""Difference between two runs, row by row (artifact@device): accuracy, latency, size."""

from __future__ import annotations

from pathlib import Path

from edgekit.report.schema import Report


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
            if row["p50_a"] and row["p50_b"]:
                row["p50_ratio"] = row["p50_b"] / row["p50_a"]
        out.append(row)
    return out


def format_compare(rows: list[dict]) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    lines = [("target", "in", "acc A", "acc B", "delta", "p50 A ms", "p50 B ms", "B/A", "KiB A", "KiB B")]
    for r in rows:
        lines.append((r["target"], r["in"], f(r["accuracy_a"], ".4f"), f(r["accuracy_b"], ".4f"),
                      f(r.get("accuracy_delta"), "+.4f"), f(r["p50_a"], ".4f"), f(r["p50_b"], ".4f"),
                      f(r.get("p50_ratio"), ".3f"), f((r["size_a"] or 0) / 1024 if r["size_a"] else None, ".1f"),
                      f((r["size_b"] or 0) / 1024 if r["size_b"] else None, ".1f")))
    widths = [max(len(x[i]) for x in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip() for x in lines)


def compare_html(a: Report, b: Report, dir_a: Path, dir_b: Path, rows: list[dict]) -> str:
    """A self-contained page: the table and both runs' latency ECDFs overlaid."""
    import html

    from edgekit.report.html import CSS, _img

    plot = None
    try:
        plot = _overlay_ecdf(a, b, dir_a, dir_b)
    except ImportError:
        pass
    body = "<pre>" + html.escape(format_compare(rows)) + "</pre>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>edgekit compare</title><style>{CSS}</style>"
            f"</head><body><h1>edgekit compare</h1><p>A: {html.escape(str(dir_a))} ({html.escape(a.created)})<br>"
            f"B: {html.escape(str(dir_b))} ({html.escape(b.created)})</p>{body}"
            + (_img(plot, "latency ECDF, A dashed, B solid") if plot else "") + "</body></html>")


def _overlay_ecdf(a, b, dir_a, dir_b) -> bytes | None:
    import numpy as np

    from edgekit.report.evidence import load_samples
    from edgekit.report.plots import _plt, _png

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for rep, d, style in ((a, dir_a, "--"), (b, dir_b, "-")):
        for r in rep.results:
            ev = load_samples(d, r.samples, r.samples_sha256) if r.status == "ok" else None
            if ev is not None and "latency_ms" in ev:
                lat = np.sort(ev["latency_ms"])
                ax.step(lat, np.arange(1, len(lat) + 1) / len(lat), style, where="post",
                        label=f"{'A' if rep is a else 'B'} {r.artifact}@{r.device}")
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
