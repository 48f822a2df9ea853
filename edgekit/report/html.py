"""report.html: one self-contained page (inline CSS, plots embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from edgekit.report.gates import verdict
from edgekit.report.schema import Report

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.fail{color:#b00;font-weight:bold}
.pass{color:#070}.warn{color:#a60}img{max-width:100%;border:1px solid #eee;margin:.5em 0}code{background:#f5f5f5}"""


def _table(header, rows) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _f(v, fmt=".4f") -> str:
    return "-" if v is None else format(v, fmt)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def render_html(report: Report, plots: dict[str, bytes]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>edgekit: {e(report.recipe_name)}</title>"
             f"<style>{CSS}</style></head><body>", f"<h1>edgekit report: {e(report.recipe_name)}</h1>",
             f"<p>Created {e(report.created)} by edgekit {e(report.edgekit_version)}; status <b>{e(report.status)}</b>; "
             f"recipe sha256 <code>{e(report.recipe_sha256[:16])}</code>; seed {report.seed}; data fingerprint "
             f"<code>{e(str(report.data.get('fingerprint', '-')))}</code>.</p>"]
    if report.reference:
        parts.append(f"<p>Reference ({e(str(report.reference.get('source')))}): test accuracy "
                     f"{_f(report.reference.get('accuracy'))}.</p>")
    if report.gates:
        rows = [[e(g.name), e(g.target), _f(g.value, ".4g"), _f(g.threshold, ".4g"),
                 f"[{g.ci[0]:.4g}, {g.ci[1]:.4g}]" if g.ci else "-",
                 f"<span class='{ {'PASS': 'pass', 'FAIL': 'fail'}.get(verdict(g), 'warn') }'>{verdict(g)}</span>",
                 e(g.detail)] for g in report.gates]
        parts += ["<h2>Gates</h2>", _table(["gate", "target", "value", "threshold", "CI", "result", "detail"], rows)]
    rows = []
    for r in report.results:
        lat = r.latency_ms
        rows.append([e(r.artifact), e(r.device), e(r.runtime), e(r.status), _f(r.accuracy),
                     _f(lat.p50 if lat else None, ".3f"), _f(lat.p90 if lat else None, ".3f"),
                     _f(lat.p99 if lat else None, ".3f"), _f(lat.std if lat else None, ".3f"), str(r.threads),
                     _f((r.size_bytes or 0) / 1024, ".1f"), _f(r.peak_rss_mb, ".0f"), e(r.error or "")])
    parts += ["<h2>Results</h2>", _table(["artifact", "device", "runtime", "status", "accuracy", "p50 ms", "p90 ms",
                                          "p99 ms", "std ms", "threads", "KiB", "peak RSS MB", "error"], rows)]
    for name, title in (("tradeoff", "Accuracy vs latency and size"), ("latency_ecdf", "Latency distributions"),
                        ("waterfall", "Compression waterfall")):
        if name in plots:
            parts += [f"<h2>{title}</h2>", _img(plots[name], title)]
    rows = [[e(a.name), e(a.format), e(a.precision), e(a.status), _f(a.size_bytes / 1024, ".1f"),
             _f(a.parity.max_abs if a.parity else None, ".2e"), _f(a.parity.cosine if a.parity else None, ".6f"),
             _f(a.parity.top1_agreement if a.parity else None), e(a.source or "-")] for a in report.artifacts]
    parts += ["<h2>Artifacts and parity with the reference</h2>",
              _table(["artifact", "format", "precision", "status", "KiB", "max abs", "cosine", "top-1", "source"], rows)]
    cross = getattr(report, "cross_parity", None) or []
    if cross:
        rows = [[e(str(c.get("a"))), e(str(c.get("b"))), e(str(c.get("relation", ""))), _f(c.get("max_abs"), ".2e"),
                 _f(c.get("cosine"), ".6f"), _f(c.get("top1_agreement")), e(str(c.get("error", "")))] for c in cross]
        parts += ["<h2>Cross-runtime parity</h2>", _table(["a", "b", "relation", "max abs", "cosine", "top-1", "error"],
                                                         rows)]
    for p in report.passes:
        parts.append(f"<h3>Pass {e(p.name)} ({e(p.status)})</h3>")
        if p.decision:
            parts.append(f"<p>{e(p.decision)}</p>")
        parts += [f"<p>{e(n)}</p>" for n in p.notes]
        if p.error:
            parts.append(f"<p class='fail'>{e(p.error)}</p>")
    if report.errors:
        parts += ["<h2>Errors</h2><ul>"] + [f"<li class='fail'>{e(x)}</li>" for x in report.errors] + ["</ul>"]
    env = report.environment
    if env:
        cpu = env.get("cpu", {})
        pk = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())
        parts.append(f"<h2>Environment</h2><p>CPU {e(str(cpu.get('model')))} ({e(', '.join(cpu.get('isa', [])))}); "
                     f"{env.get('usable_cores')} usable cores; python {e(str(env.get('python')))}; {e(pk)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_reports(report: Report, run_dir: Path) -> None:
    """report.md (with plots as PNG files beside it) and a self-contained report.html."""
    from edgekit.report.atomic import atomic_path, atomic_write_text
    from edgekit.report.markdown import render_markdown

    run_dir = Path(run_dir)
    try:
        from edgekit.report.plots import all_plots

        plots = all_plots(report, run_dir)
    except ImportError:  # matplotlib is an optional extra: reports stay complete, just without plots
        plots = {}
    for name, png in plots.items():
        with atomic_path(run_dir / "plots" / f"{name}.png") as tmp:
            tmp.write_bytes(png)
    md = render_markdown(report)
    if plots:
        md += "\n## Plots\n\n" + "\n".join(f"![{n}](plots/{n}.png)" for n in plots) + "\n"
    atomic_write_text(run_dir / "report.md", md)
    atomic_write_text(run_dir / "report.html", render_html(report, plots))
