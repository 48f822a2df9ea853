"""`edgekit compare`: recorded differences, and the p50 ratio of both runs' files timed interleaved now."""

import json
import re
import shutil
import subprocess
import sys

import pytest

from edgekit import api
from tests.helpers import tiny_recipe

QUIET = {"log": lambda m: None}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """One tiny run (fp32 and int8 ONNX) and a copy of its folder: the same files, recorded at the same time."""
    d = tmp_path_factory.mktemp("compare")
    a = api.run(tiny_recipe(), d / "a", **QUIET).run_dir
    b = d / "b"
    shutil.copytree(a, b)
    return a, b


def test_both_runs_files_are_timed_interleaved_with_an_interval(two_runs, tmp_path):
    a, b = two_runs
    rows = api.compare(a, b, html=tmp_path / "c.html", **QUIET)
    assert {r["target"] for r in rows} == {"onnx-fp32@host-cpu", "onnx-int8@host-cpu"}
    for r in rows:  # no timing value is asserted: a 20 us model on a shared 2-core host can time 1.4x apart
        st = r["interleaved"]
        assert st["rounds"] >= 30 and 0 < st["ci_low"] <= st["ratio"] <= st["ci_high"], st
        assert r["accuracy_delta"] == 0 and r["p50_ratio"] == 1
    page = (tmp_path / "c.html").read_text()
    body = page[page.index("<tbody>", page.index("p50 B/A interleaved")):]
    body = body[: body.index("</tbody>")]
    assert "<pre" not in page and len(re.findall(r"<tr", body)) == len(rows)
    assert re.search(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", body)


def test_recorded_timing_times_nothing(two_runs, tmp_path):
    a, b = two_runs
    said = []
    rows = api.compare(a, b, timing="recorded", log=said.append)
    assert not said and all("interleaved" not in r and "interleaved_note" not in r for r in rows)
    p = subprocess.run([sys.executable, "-m", "edgekit", "compare", a, b / "report.json", "--timing", "recorded",
                        "--json", tmp_path / "c.json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "onnx-int8@host-cpu" in p.stdout and "interleaved" not in p.stderr, p.stderr
    rows = json.loads((tmp_path / "c.json").read_text())
    assert len(rows) == 2 and all(r["p50_ratio"] == 1 for r in rows)


def test_missing_files_fall_back_to_recorded_with_the_reason(two_runs, tmp_path):
    a, b = two_runs
    c = tmp_path / "c"
    shutil.copytree(b, c)
    for f in c.rglob("*.onnx"):
        f.unlink()
    rows = api.compare(a, c, **QUIET)
    assert all("interleaved" not in r and r["interleaved_note"] for r in rows)
    from edgekit.report.compare import format_compare

    assert "not timed interleaved" in format_compare(rows)
