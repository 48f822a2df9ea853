"""Text from a tampered report reaches the terminal inert: no rich markup, no escape sequences."""

import io

from edgekit.names import printable
from edgekit.report.gates import format_table
from edgekit.report.schema import GateResult, Report, Result
from edgekit.report.terminal import print_summary

HOSTILE = "[link=file:///etc]x[/link]\x1b[2J\x1b]8;;http://x\x07\r[red]"


def test_printable_escapes_control_characters():
    assert printable("a\x1b[31mb\nc") == "a\\x1b[31mb\\nc"
    assert printable("x" * 50, limit=10).startswith("x" * 10 + "...")


def test_summary_and_gate_table_show_hostile_names_inert():
    rep = Report(edgekit_version="0", recipe_name="r", created="now", recipe={}, recipe_sha256="0", seed=0,
                 environment={})
    rep.results = [Result(artifact=HOSTILE, device=HOSTILE, runtime="onnxruntime", status="failed", error=HOSTILE)]
    rep.gates = [GateResult(name=HOSTILE, target=HOSTILE, value=1.0, threshold=2.0, passed=False, detail=HOSTILE)]
    out = io.StringIO()
    print_summary(rep, None, out)
    for text in (out.getvalue(), format_table(rep.gates)):
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text
        assert "[link=file:///etc]" in text  # shown as typed, not turned into a hyperlink
