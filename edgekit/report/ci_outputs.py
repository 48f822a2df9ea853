"""Gate results for CI systems: a Markdown summary (PR comment, $GITHUB_STEP_SUMMARY) and JUnit XML."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from edgekit.report.gates import gates_passed, verdict
from edgekit.report.schema import GateResult


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def gates_markdown(gates: list[GateResult], title: str = "edgekit gates") -> str:
    ok = gates_passed(gates)
    lines = [f"### {title}: {'✅ pass' if ok else '❌ fail'}", "",
             "| gate | target | value | threshold | confidence interval | result | detail |",
             "|---|---|---|---|---|---|---|"]
    for g in gates:
        ci = f"[{g.ci[0]:.4g}, {g.ci[1]:.4g}] @ {g.confidence:.0%}" if g.ci else "-"
        lines.append(f"| {g.name} | `{g.target}` | {_num(g.value)} | {_num(g.threshold)} | {ci} | {verdict(g)} | "
                     f"{g.detail.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def gates_junit(gates: list[GateResult], suite: str = "edgekit.gates") -> str:
    """One <testcase> per gate; failed error-severity gates are <failure>s, warnings are <system-out>."""
    failures = sum(1 for g in gates if not g.passed and g.severity == "error")
    ts = ET.Element("testsuite", name=suite, tests=str(len(gates)), failures=str(failures), errors="0", skipped="0")
    for g in gates:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{g.name}", name=g.target)
        msg = f"value {_num(g.value)} threshold {_num(g.threshold)}" + (f"; {g.detail}" if g.detail else "")
        if not g.passed and g.severity == "error":
            ET.SubElement(tc, "failure", message=msg, type=g.name).text = msg
        elif g.severity == "warning" and not g.passed:
            ET.SubElement(tc, "system-out").text = f"WARNING: {msg}"
    suites = ET.Element("testsuites")
    suites.append(ts)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
