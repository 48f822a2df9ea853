"""Gate results for CI systems: a Markdown summary (PR comment, $GITHUB_STEP_SUMMARY) and JUnit XML."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from edgekit.report.gates import gates_passed
from edgekit.report.schema import GateResult


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def gates_markdown(gates: list[GateResult], title: str = "edgekit gates") -> str:
    """A heading with the verdict and one table row per gate, every cell escaped (names come from report.json)."""
    from edgekit.report.markdown import md_escape, render_table
    from edgekit.report.summary import gates_table

    return (f"### {md_escape(title)}: {'✅ pass' if gates_passed(gates) else '❌ fail'}\n\n"
            + render_table(gates_table(gates)) + "\n")


def gates_junit(gates: list[GateResult], suite: str = "edgekit.gates") -> str:
    """One <testcase> per gate; failed error-severity gates are <failure>s, warnings are <system-out>,
    skipped gates <skipped>."""
    failures = sum(1 for g in gates if not g.passed and g.severity == "error")
    skipped = sum(1 for g in gates if g.severity == "skipped")
    ts = ET.Element("testsuite", name=suite, tests=str(len(gates)), failures=str(failures), errors="0",
                    skipped=str(skipped))
    for g in gates:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{g.name}", name=g.target)
        msg = f"value {_num(g.value)} threshold {_num(g.threshold)}" + (f"; {g.detail}" if g.detail else "")
        if not g.passed and g.severity == "error":
            ET.SubElement(tc, "failure", message=msg, type=g.name).text = msg
        elif g.severity == "skipped":
            ET.SubElement(tc, "skipped", message=g.detail)
        elif g.severity == "warning" and not g.passed:
            ET.SubElement(tc, "system-out").text = f"WARNING: {msg}"
    suites = ET.Element("testsuites")
    suites.append(ts)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
