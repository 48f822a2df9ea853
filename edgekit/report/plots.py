"""Report plots (matplotlib, Agg): accuracy vs latency/size with the Pareto front, latency ECDFs, and a
compression waterfall. Each function returns PNG bytes, or None when the report has nothing to plot."""

from __future__ import annotations

import io
from pathlib import Path

from edgekit.report.schema import Report


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated in (lower x, higher y)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def tradeoff_plot(report: Report) -> bytes | None:
    rows = [r for r in report.results if r.status == "ok" and r.accuracy is not None and r.latency_ms]
    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, xkey, label in ((axes[0], "lat", "p50 latency (ms)"), (axes[1], "size", "size on disk (KiB)")):
        pts = [((r.latency_ms.p50 if xkey == "lat" else (r.size_bytes or 0) / 1024), r.accuracy) for r in rows]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=40, zorder=3)
        for r, (x, y) in zip(rows, pts):
            ax.annotate(f"{r.artifact}@{r.device}", (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        front = pareto_front(pts)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "r--", lw=1, label="Pareto front", zorder=2)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{report.recipe_name}: accuracy vs latency and size")
    return _png(fig)


def latency_ecdf_plot(report: Report, run_dir: Path) -> bytes | None:
    import numpy as np

    from edgekit.report.evidence import load_samples

    series = []
    for r in report.results:
        if r.status != "ok":
            continue
        ev = load_samples(run_dir, r.samples, r.samples_sha256)
        if ev is not None and "latency_ms" in ev:
            series.append((f"{r.artifact}@{r.device}", np.sort(ev["latency_ms"])))
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, lat in series:
        ax.step(lat, np.arange(1, len(lat) + 1) / len(lat), where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("latency per batch (ms, log scale)")
    ax.set_ylabel("fraction of runs")
    ax.axhline(0.9, color="grey", lw=0.5, ls=":")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("latency distribution (ECDF)")
    return _png(fig)


WATERFALL_METRICS = (("size_bytes", "size (KiB)", 1 / 1024), ("macs", "MACs (M)", 1e-6), ("accuracy", "accuracy", 1.0),
                     ("onnx_latency_ms", "ONNX RT latency (ms)", 1.0))


def waterfall_plot(report: Report) -> bytes | None:
    """Each pass's before -> after for size, MACs, accuracy and latency (where the pass recorded them)."""
    passes = [p for p in report.passes if p.status == "ok"]
    panels = [(k, label, scale) for k, label, scale in WATERFALL_METRICS
              if any(k in p.before and k in p.after for p in passes)]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (key, label, scale) in zip(axes[0], panels):
        steps = [p for p in passes if key in p.before and key in p.after]
        names = ["start"] + [p.name for p in steps]
        values = [steps[0].before[key]] + [p.after[key] for p in steps]
        values = [v * scale if isinstance(v, (int, float)) else 0 for v in values]
        colors = ["grey"] + ["tab:green" if b <= a else "tab:red" for a, b in zip(values, values[1:])]
        if key == "accuracy":
            colors = ["grey"] + ["tab:green" if b >= a else "tab:red" for a, b in zip(values, values[1:])]
        ax.bar(range(len(values)), values, color=colors)
        ax.set_xticks(range(len(values)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("compression waterfall: each pass's effect")
    return _png(fig)


def all_plots(report: Report, run_dir: Path) -> dict[str, bytes]:
    out = {}
    makers = (("tradeoff", lambda: tradeoff_plot(report)), ("latency_ecdf", lambda: latency_ecdf_plot(report, run_dir)),
              ("waterfall", lambda: waterfall_plot(report)))
    for name, fn in makers:
        png = fn()
        if png:
            out[name] = png
    return out
