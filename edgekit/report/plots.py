"""Report plots (matplotlib, Agg): accuracy vs latency/size with the Pareto front, latency ECDFs, and a
compression waterfall. Each `*_figure` returns a matplotlib Figure (or None when the report has nothing to plot);
`all_plots` renders them as PNG bytes."""

from __future__ import annotations

import io
from pathlib import Path

from edgekit.extras import Needs
from edgekit.report.schema import Report, Result

NEEDS = Needs("report", ("matplotlib",))

METRIC_LABELS = {
    "accuracy": "test accuracy", "latency_p50_ms": "p50 latency (ms)", "latency_p90_ms": "p90 latency (ms)",
    "latency_p99_ms": "p99 latency (ms)", "latency_mean_ms": "mean latency (ms)", "size_mb": "size (MB)",
    "peak_rss_mb": "peak RSS (MB)", "macs": "MACs", "params": "parameters", "cosine": "cosine to fp32",
    "top1_agreement": "top-1 agreement with fp32", "macro_f1": "macro F1",
}
PRECISION_MARKERS = {"fp32": "o", "fp16": "^", "int8": "s", "int8-dynamic": "D", "int4": "P", "mixed": "X"}


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name.replace("_", " "))


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def pareto_indices(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated in (lower x, higher y)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def draw_front(ax, xs: list[float], ys: list[float], **kw) -> bool:
    """A Pareto front line, only where it joins two or more points (one point is no front)."""
    if len(xs) < 2:
        return False
    ax.plot(xs, ys, "--", color="tab:red", lw=1.2, zorder=2, label="Pareto front", **kw)
    return True


def _quality(rows: list[Result]) -> tuple[str, dict[int, float]]:
    """Test accuracy where measured, else the first fidelity metric every row has (unlabelled data)."""
    acc = {i: r.accuracy for i, r in enumerate(rows) if r.accuracy is not None}
    if acc:
        return "test accuracy", acc
    for m in ("cosine", "top1_agreement"):
        vals = {i: r.metrics[m] for i, r in enumerate(rows) if r.metrics and r.metrics.get(m) is not None}
        if vals:
            return metric_label(m), vals
    return "", {}


def _latency_band(r: Result, run_dir: Path | None) -> tuple[float, float, bool]:
    """(p10, p90) latency of a result: p10 from its raw samples, or the minimum when the samples are gone."""
    import numpy as np

    from edgekit.report.evidence import load_samples

    ev = load_samples(run_dir, r.samples, r.samples_sha256) if run_dir is not None else None
    if ev is not None and "latency_ms" in ev and len(ev["latency_ms"]):
        p10, p90 = np.percentile(ev["latency_ms"], [10, 90])
        return float(p10), float(p90), True
    return r.latency_ms.min, r.latency_ms.p90, False


def tradeoff_figure(report: Report, run_dir: Path | None = None):
    rows = [r for r in report.results if r.status == "ok" and r.latency_ms and not r.emulated]
    ylabel, quality = _quality(rows)
    rows = [r for i, r in enumerate(rows) if i in quality]
    quality = list(quality.values())
    if not rows:
        return None
    plt = pyplot()
    names = list(dict.fromkeys(r.artifact for r in rows))
    colors = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(names)}
    precisions = {a.name: a.precision for a in report.artifacts}
    devices = {r.device for r in rows}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    bands = [_latency_band(r, run_dir) for r in rows]
    from_samples = all(b[2] for b in bands)
    for ax, panel in zip(axes, ("latency", "size")):
        pts = []
        for r, q, (lo, hi, _) in zip(rows, quality, bands):
            x = r.latency_ms.p50 if panel == "latency" else (r.size_bytes or 0) / 1024
            pts.append((x, q))
            marker = PRECISION_MARKERS.get(precisions.get(r.artifact, ""), "v")
            label = r.artifact + (f"@{r.device}" if len(devices) > 1 else "")
            if panel == "latency":
                ax.errorbar([x], [q], xerr=[[max(x - lo, 0)], [max(hi - x, 0)]], fmt=marker, color=colors[r.artifact],
                            ms=8, capsize=3, zorder=3, label=label)
            else:
                ax.plot([x], [q], marker, color=colors[r.artifact], ms=8, zorder=3, label=label)
        front = pareto_indices(pts)
        draw_front(ax, [pts[i][0] for i in front], [pts[i][1] for i in front])
        ax.set_xlabel("latency per batch, p50 (ms); whiskers " + ("p10-p90" if from_samples else "p10 (min where "
                                                                  "samples are missing) to p90")
                      if panel == "latency" else "size on disk (KiB)")
        ax.set_ylabel(ylabel)
        ax.margins(x=0.15, y=0.2)
        ax.grid(alpha=0.3)
    handles, labels = axes[1].get_legend_handles_labels()  # plain markers (the latency panel's carry whiskers)
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=8,
               title="artifact (marker: precision)", title_fontsize=8)
    fig.suptitle(f"{report.recipe_name}: {ylabel} vs latency and size")
    fig.tight_layout()
    return fig


def latency_ecdf_figure(report: Report, run_dir: Path):
    import numpy as np

    from edgekit.report.evidence import load_samples

    series = []
    for r in report.results:
        if r.status != "ok" or r.emulated:
            continue
        ev = load_samples(run_dir, r.samples, r.samples_sha256)
        if ev is not None and "latency_ms" in ev and len(ev["latency_ms"]):
            series.append((f"{r.artifact}@{r.device}", np.sort(ev["latency_ms"])))
    if not series:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    marks = ((50, "o"), (90, "s"), (99, "^"))
    for i, (name, lat) in enumerate(series):
        color = plt.get_cmap("tab10")(i % 10)
        ax.step(lat, np.arange(1, len(lat) + 1) / len(lat), where="post", color=color, label=name)
        for q, m in marks:
            ax.plot([np.percentile(lat, q)], [q / 100], m, color=color, ms=6, zorder=3)
    for q, m in marks:
        ax.axhline(q / 100, color="grey", lw=0.5, ls=":")
        ax.plot([], [], m, color="grey", label=f"p{q}")
    ax.set_xscale("log")
    ax.set_xlabel("latency per batch (ms, log scale)")
    ax.set_ylabel("fraction of runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("latency distribution (ECDF), p50/p90/p99 marked")
    fig.tight_layout()
    return fig


# (label, scale, higher is better)
WATERFALL_METRICS = {"test_accuracy": ("test accuracy", 1.0, True), "size_bytes": ("size (KiB)", 1 / 1024, False),
                     "macs": ("MACs (M)", 1e-6, False), "latency": ("ONNX Runtime p50 latency (ms)", 1.0, False)}


def _result_of(report: Report, artifact: str | None) -> Result | None:
    return next((r for r in report.results if r.artifact == artifact and r.status == "ok"), None)


def _pass_values(report: Report, p) -> dict[str, tuple[float, float]]:
    """(before, after) per waterfall metric, each pair measured the same way by the pass (or, for a pass that wrote
    an artifact, by the benchmark of its input and output artifacts on one device)."""
    out = {}
    for key in ("test_accuracy", "size_bytes", "macs"):
        b, a = p.before.get(key), p.after.get(key)
        if isinstance(b, (int, float)) and isinstance(a, (int, float)):
            out[key] = (float(b), float(a))
    lb, la = p.before.get("onnx_latency_ms"), p.after.get("onnx_latency_ms")
    if isinstance(lb, dict) and isinstance(la, dict) and "p50" in lb and "p50" in la:
        out["latency"] = (float(lb["p50"]), float(la["p50"]))
    art = report.artifact(p.produced) if p.produced else None
    if art is not None and art.source:
        after = _result_of(report, art.name)
        before = next((r for r in report.results if after and r.artifact == art.source and r.device == after.device
                       and r.status == "ok"), None)
        if after and before:
            if before.accuracy is not None and after.accuracy is not None:
                out.setdefault("test_accuracy", (before.accuracy, after.accuracy))
            if before.latency_ms and after.latency_ms:
                out["latency"] = (before.latency_ms.p50, after.latency_ms.p50)
    if "latency" not in out and "latency_ms_p50_selection" in p.before:
        out["latency"] = (float(p.before["latency_ms_p50_selection"]), float(p.after["latency_ms_p50_selection"]))
    return out


def waterfall_figure(report: Report):
    """Each pass step's accuracy, size, MACs and latency, annotated with the value and its ratio to the value the
    same pass measured before it ran."""
    steps = [(p.name, _pass_values(report, p)) for p in report.passes if p.status == "ok"]
    panels = [k for k in WATERFALL_METRICS if any(k in v for _, v in steps)]
    if not panels:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 4.0), squeeze=False)
    for ax, key in zip(axes[0], panels):
        label, scale, higher_better = WATERFALL_METRICS[key]
        chain = [(name, v[key]) for name, v in steps if key in v]
        names = ["start"] + [n for n, _ in chain]
        values = [chain[0][1][0] * scale] + [a * scale for _, (_, a) in chain]
        ratios = [None] + [a / b if b else None for _, (b, a) in chain]
        better = [None] + [(a >= b) == higher_better for _, (b, a) in chain]
        colors = ["grey"] + ["tab:green" if g else "tab:red" for g in better[1:]]
        bars = ax.bar(range(len(values)), values, color=colors)
        for bar, v, ratio in zip(bars, values, ratios):
            text = f"{v:.3g}" + (f"\n{ratio:.2f}x" if ratio is not None else "")
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(values)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, max(values) * 1.25 if max(values) > 0 else 1)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("compression waterfall: each pass's effect (ratio: after / before, as that pass measured it)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def tradeoff_plot(report: Report, run_dir: Path | None = None) -> bytes | None:
    fig = tradeoff_figure(report, run_dir)
    return png_bytes(fig) if fig is not None else None


def latency_ecdf_plot(report: Report, run_dir: Path) -> bytes | None:
    fig = latency_ecdf_figure(report, run_dir)
    return png_bytes(fig) if fig is not None else None


def waterfall_plot(report: Report) -> bytes | None:
    fig = waterfall_figure(report)
    return png_bytes(fig) if fig is not None else None


def all_figures(report: Report, run_dir: Path) -> dict:
    figs = {"tradeoff": tradeoff_figure(report, run_dir), "latency_ecdf": latency_ecdf_figure(report, run_dir),
            "waterfall": waterfall_figure(report)}
    return {k: f for k, f in figs.items() if f is not None}


def all_plots(report: Report, run_dir: Path) -> dict[str, bytes]:
    return {name: png_bytes(fig) for name, fig in all_figures(report, run_dir).items()}
