"""report.md: the human summary of report.json. Every value from the report goes through `md_escape`, so a name
holding `|`, HTML or a backtick cannot break a table or become markup."""

from __future__ import annotations

from pathlib import Path

from edgekit.report import summary as s
from edgekit.report.cells import Table
from edgekit.report.pass_tables import pass_views
from edgekit.report.schema import Report

_MD = str.maketrans({"\\": "&#92;", "|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "`": "&#96;",
                     "[": "\\[", "]": "\\]", "\n": " ", "\r": " ", "\t": " "})


def md_escape(value: object) -> str:
    """One table cell or inline text: pipes and brackets escaped, HTML and backticks as entities, newlines as spaces.
    Backslashes become entities, so every backslash left escapes the character after it."""
    return str(value).translate(_MD)


def render_table(t: Table) -> str:
    lines = ["| " + " | ".join(md_escape(c.text) for c in t.columns) + " |",
             "|" + "|".join("--:" if c.num else ":--" for c in t.columns) + "|"]
    lines += ["| " + " | ".join(md_escape(c.text) for c in row) + " |" for row in t.rows]
    return "\n".join(lines) + (f"\n\n{md_escape(t.caption)}" if t.caption else "")


def results_table(report: Report) -> str:
    return render_table(s.results_table(report))


def render_markdown(report: Report, run_dir: Path | None = None) -> str:
    e = md_escape
    v = s.run_verdict(report)
    out = [f"# edgekit report: {e(report.recipe_name)}", "", f"**{e(v.headline)}**", ""]
    out += [f"- {e(d)}" for d in v.details] + ([""] if v.details else [])
    out += ["## Summary", "", render_table(s.summary_table(report, run_dir)), ""]
    passes = pass_views(report)
    out += ["## Passes", ""] if passes else []
    for p in passes:
        out += [f"### Pass {e(p.title)} ({e(p.status)}, {e(p.duration)})", ""]
        if p.error:
            out += [f"**error:** {e(p.error)}", ""]
        if p.candidates:
            out += [render_table(p.candidates), ""]
        if p.decision:
            out += [f"Why: {e(p.decision)}", ""]
        if p.change:
            out += [render_table(p.change), ""]
        out += [f"- {e(n)}" for n in p.notes] + ([""] if p.notes else [])
    if report.gates:
        out += ["## Gates", "", render_table(s.gates_table(report.gates)), ""]
    out += ["## Measurements", "", render_table(s.results_table(report)), ""]
    if any(r.metrics for r in report.results):
        out += ["## Metrics", "", render_table(s.metrics_table(report)), ""]
    out += ["### Artifacts", "", render_table(s.artifacts_table(report)), ""]
    if report.cross_parity:
        out += ["### Cross-runtime parity", "", render_table(s.cross_parity_table(report)), ""]
    out += ["## Run", "", render_table(s.key_value_table(s.run_facts(report))), ""]
    if report.errors:
        out += ["## Errors", ""] + [f"- {e(x)}" for x in report.errors] + [""]
    if report.environment:
        out += ["## Environment", "", render_table(s.key_value_table(s.flatten(report.environment))), ""]
    return "\n".join(out)
