"""report.html: one self-contained page (inline CSS, plots embedded as base64 PNG), rendered from
edgekit/report/templates through jinja2 with autoescaping on, so no string from a report.json reaches the page
as markup."""

from __future__ import annotations

import base64
import functools
from pathlib import Path

from edgekit.report.schema import Report

PLOT_TITLES = {"tradeoff": "Accuracy vs latency and size", "latency_ecdf": "Latency distributions",
               "waterfall": "Compression waterfall", "pareto": "Pareto front"}


@functools.cache
def templates():
    """The template environment: autoescape always on, a missing variable is an error rather than blank."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("edgekit.report", "templates"), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def render_template(name: str, **context) -> str:
    return templates().get_template(name).render(**context)


def embedded(png: bytes, title: str) -> dict:
    return {"title": title, "b64": base64.b64encode(png).decode("ascii")}


def render_html(report: Report, plots: dict[str, bytes], run_dir: Path | None = None) -> str:
    """The page; with `run_dir`, speed-ups carry intervals from the recorded latency samples."""
    import yaml

    from edgekit.report import summary as s
    from edgekit.report.pass_tables import pass_views

    passes = pass_views(report)
    gate_matrix = s.gate_matrix(report)
    toc = [("summary", "Summary"), *([("passes", "Passes")] if passes else []), ("gates", "Gates"),
           *([("plots", "Plots")] if plots else []), ("measurements", "Measurements"), ("run", "Run"),
           *([("environment", "Environment")] if report.environment else []),
           ("errors", f"Errors ({len(report.errors)})"), *([("recipe", "Recipe")] if report.recipe else [])]
    return render_template(
        "report.html.j2", report=report, v=s.run_verdict(report), toc=toc, summary=s.summary_table(report, run_dir),
        passes=passes, gate_matrix=gate_matrix, gates=s.gates_table(report.gates),
        plots=[embedded(png, PLOT_TITLES.get(name, name)) for name, png in plots.items()],
        results=s.results_table(report), metrics=s.metrics_table(report) if any(r.metrics for r in report.results)
        else None, artifacts=s.artifacts_table(report),
        cross_parity=s.cross_parity_table(report) if report.cross_parity else None,
        facts=s.key_value_table(s.run_facts(report)),
        environment=s.key_value_table(s.flatten(report.environment)) if report.environment else None,
        recipe=yaml.safe_dump(report.recipe, sort_keys=False, allow_unicode=True) if report.recipe else "")


def write_reports(report: Report, run_dir: Path) -> None:
    """report.md (with plots as PNG files beside it) and a self-contained report.html."""
    from edgekit.atomic import atomic_path, atomic_write_text
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
    md = render_markdown(report, run_dir)
    if plots:
        md += "\n## Plots\n\n" + "\n".join(f"![{n}](plots/{n}.png)" for n in plots) + "\n"
    atomic_write_text(run_dir / "report.md", md)
    atomic_write_text(run_dir / "report.html", render_html(report, plots, run_dir))
