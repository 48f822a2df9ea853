"""report.html, report.md, the gate Markdown and compare's page: hostile strings in any field stay text, and the
page leads with the verdict."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydantic import BaseModel

from edgekit.report.ci_outputs import gates_markdown
from edgekit.report.compare import compare_html, compare_rows
from edgekit.report.html import render_html, write_reports
from edgekit.report.io import load_report
from edgekit.report.markdown import md_escape, render_markdown
from edgekit.report.schema import GateResult, Report

POISON = "<img src=x onerror=alert(1)>|"
DATA = Path(__file__).parent / "data" / "report" / "tiny_run.json"


def real_report() -> Report:
    """A quickstart-like run's report (tiny recipe, quantize.static choosing among 6 candidates), widened so every
    field of the schema holds something: errors, warnings, failed rows, profiles, a quantize.auto-style pass."""
    rep = Report.model_validate(json.loads(DATA.read_text()))
    rep.errors = ["device host-cpuu: unknown device 'host-cpuu'", "second error"]
    rep.gates.append(GateResult(name="environment_match", target="run", value=1, threshold=0, passed=False,
                                severity="warning", detail="latency not comparable: torch 2.12 -> 2.13"))
    failed = rep.results[0].model_copy(deep=True)
    failed.device, failed.status, failed.error, failed.latency_ms = "phone", "skipped", "device unreachable: x", None
    rep.results.append(failed)
    auto = rep.passes[0].model_copy(deep=True)
    auto.name, auto.produced, auto.error = "quantize.auto", "onnx-int8-auto", "partial failure"
    auto.candidates = [{"scheme": "qdq u8s8 pc", "stage": "ladder", "settings": {"format": "qdq", "equalize": True},
                        "cosine": 0.999, "top1_agreement": 0.99, "size_bytes": 9000, "latency_ms_p50": 0.02,
                        "speedup_vs_fp32": 0.8, "meets_target": True, "misses": [], "chosen": False},
                       {"scheme": "qdq s8s8 pt", "float_nodes": ["conv1", "fc"], "cosine": 0.998,
                        "top1_agreement": 0.98, "speedup_vs_fp32": 1.3, "meets_target": True, "chosen": True},
                       {"scheme": "qoperator", "error": "ValueError: no kernel", "chosen": False}]
    auto.notes = ["WARNING: a note", "another note"]
    rep.passes.append(auto)
    rep.profiles = [{"artifact": "onnx-fp32", "layers": [{"name": "conv1", "ms": 0.1}]}]
    rep.training = {**(rep.training or {}), "note": "trained"}
    return rep


def poison(obj):
    """Every string of a report (model fields, dict values, list items) replaced by POISON; every dict entry also
    appears a second time under a poisoned key (values keep their types, so the report still validates)."""
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            setattr(obj, name, poison(getattr(obj, name)))
        return obj
    if isinstance(obj, str):
        return POISON
    if isinstance(obj, list):
        return [poison(x) for x in obj]
    if isinstance(obj, dict):
        return {**{k: poison(v) for k, v in obj.items()}, **{POISON + str(k): poison(v) for k, v in obj.items()}}
    return obj


class Page(HTMLParser):
    """Every tag with its attributes, and each table's rows as cell counts."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


PLOT = b"\x89PNG\r\n\x1a\nnot really"


def assert_inert_html(page: str) -> Page:
    assert POISON not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;|" in page  # the text is there, as text
    p = Page(page)
    allowed = {"html", "head", "meta", "title", "style", "body", "div", "ul", "li", "h1", "h2", "h3", "p", "nav", "a",
               "table", "caption", "thead", "tbody", "tr", "th", "td", "span", "b", "details", "summary", "pre", "img"}
    for tag, attrs in p.tags:
        assert tag in allowed, tag
        assert not [k for k in attrs if k.startswith("on")], (tag, attrs)
        if tag == "img":
            assert set(attrs) == {"alt", "src"} and attrs["src"].startswith("data:image/png;base64,")
        if tag == "a":
            assert attrs["href"].startswith("#")
    for t in p.tables:
        assert len({len(r) for r in t}) == 1, t  # every row has the header's number of cells
    return p


def md_tables(md: str) -> list[list[str]]:
    blocks, cur = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    return blocks


def assert_inert_markdown(md: str) -> None:
    assert "<img" not in md and "`" not in md
    assert md_escape(POISON) in md
    tables = md_tables(md)
    assert tables
    for t in tables:
        counts = {len(re.split(r"(?<!\\)\|", row.strip())) for row in t}
        assert len(counts) == 1, t


@pytest.fixture
def poisoned() -> Report:
    return poison(real_report())


def test_md_escape():
    assert md_escape("a|b<c>&`d`\n\\|e[x](y)") == "a\\|b&lt;c&gt;&amp;&#96;d&#96; &#92;\\|e\\[x\\](y)"


def test_every_string_field_is_inert_in_html(poisoned):
    page = render_html(poisoned, {"tradeoff": PLOT, POISON: PLOT})
    p = assert_inert_html(page)
    assert sum(1 for tag, _ in p.tags if tag == "img") == 2


def test_every_string_field_is_inert_in_markdown(poisoned):
    assert_inert_markdown(render_markdown(poisoned))
    assert_inert_markdown(gates_markdown(poisoned.gates, POISON))


def test_compare_page_is_inert(poisoned, tmp_path):
    d = tmp_path / POISON
    d.mkdir()
    other = real_report()
    rows = compare_rows(poisoned, other) + compare_rows(other, poisoned)
    page = compare_html(poisoned, poisoned, d, d, rows)
    p = assert_inert_html(page)
    assert max(len(t) for t in p.tables) > 2  # a real table, not a <pre>


def test_tampered_run_folder_rerendered(poisoned, tmp_path):
    """What `edgekit bench RUN` does after measuring: load the folder's report.json and write both reports."""
    run = tmp_path / "run"
    run.mkdir()
    poisoned.schema_ = "edgekit.report/v1"  # a poisoned schema tag is refused, as it should be
    (run / "report.json").write_text(poisoned.to_json())
    write_reports(load_report(run), run)
    assert_inert_html((run / "report.html").read_text())
    assert_inert_markdown((run / "report.md").read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_banner_first_and_one_row_per_candidate():
    rep = real_report()
    page = render_html(rep, {})
    assert page.index('class="banner') < page.index("<table")
    p = Page(page)
    cand = [t for t in p.tables if "choice" in t[0]]
    assert [len(t) - 1 for t in cand] == [len(x.candidates) for x in rep.passes]
    assert [sum("✓ chosen" in r[-1] for r in t) for t in cand] == [1, 1]
    assert page.count('<tr class="chosen') == 2
    assert 'class="slow' in page  # quantize.auto's first candidate is slower than fp32
    for t in p.tables:  # numbers right-aligned, text left: the header says which
        assert t[0]
    assert 'th class="num">p50 ms' in page and "<th>artifact</th>" in page
    assert "KiB" in page and "%" in page


@pytest.mark.parametrize("status, errors, gate_ok, headline", [
    ("completed", [], True, "6/6 gates passed"),
    ("completed", [], False, "FAILED: gate max_latency_p90_ms on onnx-fp32@host-cpu"),
    ("completed_with_errors", ["device host-cpuu: unknown device 'host-cpuu'"], False,
     "FAILED: device host-cpuu: unknown device 'host-cpuu'"),
    ("failed", ["model: factory raised KeyError: 'macs'"], True, "FAILED: model: factory raised KeyError: 'macs'"),
    ("running", [], True, "INCOMPLETE: status running"),
    ("interrupted", [], True, "INCOMPLETE: status interrupted"),
])
def test_verdict_banner(status, errors, gate_ok, headline):
    rep = real_report()
    rep.status, rep.errors = status, errors
    rep.passes = rep.passes[:1]
    rep.results = rep.results[:2]
    rep.gates = [g for g in rep.gates if g.severity == "error"]
    rep.gates[1].passed = gate_ok
    page = render_html(rep, {})
    banner = page[page.index('class="banner'):page.index("</div>")]
    assert headline.replace("'", "&#39;") in banner
    assert page.index('class="banner') < page.index("<table")
    md = render_markdown(rep)
    assert md.splitlines()[2].startswith(f"**{md_escape(headline)}")


def with_evidence(run: Path, rep: Report, outside: Path | None = None) -> Report:
    """Latency samples for the fp32 and int8 rows (int8 about twice as slow), hashed into the report."""
    import numpy as np

    from edgekit.report.evidence import save_samples

    rng = np.random.default_rng(0)
    for r, ms in zip(rep.results[:2], (0.01, 0.02)):
        target = (outside or run / "samples") / f"{r.artifact}.npz"
        target.parent.mkdir(parents=True, exist_ok=True)
        _, sha = save_samples(target, [0] * 10, [0] * 10, ms * (1 + 0.05 * rng.random(300)))
        r.samples, r.samples_sha256 = (str(target) if outside else f"samples/{r.artifact}.npz"), sha
    return rep


def speedup_of(page: str, artifact: str, device: str = "host-cpu") -> str:
    summary = Page(page).tables[0]
    head = summary[0]
    row = next(r for r in summary[1:] if r[0] == artifact and r[head.index("device")] == device)
    return row[head.index("speed-up vs fp32 [95% CI]")]


def test_speedup_interval_from_recorded_samples(tmp_path):
    rep = with_evidence(tmp_path, real_report())
    page = render_html(rep, {}, tmp_path)
    fp32, int8 = speedup_of(page, "onnx-fp32"), speedup_of(page, "onnx-int8")
    assert fp32 == "reference"
    lo, hi = map(float, re.search(r"\[([\d.]+), ([\d.]+)\]", int8).groups())
    assert 0.4 < lo <= hi < 0.6  # twice as slow: about 0.5x, interval around it
    md = render_markdown(rep, tmp_path).splitlines()
    md_row = next(x for x in md if x.startswith("| onnx-int8 | onnx | int8 | host-cpu"))
    assert re.search(r"[\d.]+× \\\[[\d.]+, [\d.]+\\\]", md_row)


def test_evidence_outside_the_run_folder_is_not_read(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rep = with_evidence(run, real_report(), outside=tmp_path / "elsewhere")
    int8 = speedup_of(render_html(rep, {}, run), "onnx-int8")
    assert re.fullmatch(r"[\d.]+×", int8)  # the point estimate from the report, no interval from outside files
    from edgekit.names import UnsafeInputError

    with pytest.raises(UnsafeInputError, match="samples"):
        compare_html(rep, rep, run, run, compare_rows(rep, rep))
