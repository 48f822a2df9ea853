"""The real `edgekit` command, end to end on a tiny recipe."""

import json
import subprocess
import sys

import pytest
import yaml
from helpers import write_recipe

from edgekit.report.schema import SCHEMA


def edgekit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    recipe = write_recipe(d / "tiny.yaml", export=[{"format": "onnx", "exporter": "legacy"}, {"format": "torch"}])
    p = edgekit("run", recipe, "--out", d / "run")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "onnx-int8" in p.stdout and "PASS" in p.stdout
    return d / "run"


def test_run_writes_report_with_schema(run_dir):
    rep = json.loads((run_dir / "report.json").read_text())
    assert rep["schema"] == SCHEMA and rep["status"] == "completed"
    names = {a["name"]: a for a in rep["artifacts"]}
    assert set(names) == {"onnx-fp32", "torch-fp32", "onnx-int8"}
    for a in names.values():
        assert a["size_bytes"] > 0 and a["path"] and (run_dir / a["path"]).is_file()
        assert set(a["parity"]) >= {"max_abs", "cosine", "top1_agreement"}
    assert names["onnx-fp32"]["parity"]["cosine"] > 0.9999
    rows = {r["artifact"]: r for r in rep["results"]}
    assert set(rows) == set(names)
    for r in rows.values():
        assert r["status"] == "ok" and 0 <= r["accuracy"] <= 1 and r["threads"] >= 1 and r["peak_rss_mb"] > 0
        assert set(r["latency_ms"]) >= {"p50", "p90", "p99", "mean", "std"} and r["throughput"] > 0
    assert rep["environment"]["cpu"]["model"] and rep["gates"] and all("passed" in g for g in rep["gates"])
    assert (run_dir / "report.md").read_text().startswith("# edgekit report")
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "recipe.yaml").is_file()
    assert rep["passes"][0]["decision"]
    assert not list(run_dir.rglob("*.tmp"))  # atomic writes leave nothing behind


def test_gate_exit_codes(run_dir, tmp_path):
    ok = edgekit("gate", run_dir / "report.json")
    assert ok.returncode == 0 and "PASS" in ok.stdout, ok.stdout + ok.stderr
    fail = edgekit("gate", run_dir, "--max-latency-p90-ms", "0.000001")
    assert fail.returncode == 1 and "FAIL" in fail.stdout
    base = edgekit("gate", run_dir, "--baseline", run_dir / "report.json", "--max-latency-regression", "1.5")
    assert base.returncode == 0, base.stdout
    (tmp_path / "junk.json").write_text("{not json")
    bad = edgekit("gate", tmp_path / "junk.json")
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr and "Traceback" not in bad.stderr


def test_gate_against_a_degraded_baseline(run_dir, tmp_path):
    rep = json.loads((run_dir / "report.json").read_text())
    for r in rep["results"]:
        r["accuracy"] = min(1.0, r["accuracy"] + 0.2)  # a baseline 20 points better
        r["latency_ms"]["p50"] /= 3
        r["samples"] = None  # no raw evidence: the gate falls back to point estimates
    (tmp_path / "base.json").write_text(json.dumps(rep))
    p = edgekit("gate", run_dir, "--baseline", tmp_path / "base.json", "--max-latency-regression", "1.5",
                "--max-accuracy-drop", "0.05")
    assert p.returncode == 1 and "max_accuracy_drop" in p.stdout and "max_latency_regression" in p.stdout


def test_bench_command_on_a_run_folder(run_dir):
    p = edgekit("bench", run_dir, "--device", "host-cpu-1t", "--iterations", "10", "--min-time", "0.05")
    assert p.returncode == 0, p.stderr[-2000:]
    rep = json.loads((run_dir / "report.json").read_text())
    one = [r for r in rep["results"] if r["device"] == "host-cpu-1t"]
    assert len(one) == 3 and all(r["threads"] == 1 for r in one)


def test_malformed_recipe_error_names_key_and_line(tmp_path):
    r = tmp_path / "bad.yaml"
    r.write_text("name: bad\nmodel: {arch: cnn}\ndata:\n  source: digits\n  val_fraction: 0.1\n  shuffle: true\n")
    p = edgekit("run", r)
    assert p.returncode == 2
    assert "bad.yaml:6" in p.stderr and "data.shuffle" in p.stderr and "Traceback" not in p.stderr


def test_a_failed_target_keeps_the_others(tmp_path):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        passes=[{"name": "quantize.static", "format": "qdq", "activation_type": "uint8", "per_channel": True,
                 "tolerance": {"max_abs": 0.0, "min_cosine": 1.0}}],
        export=[{"format": "onnx", "exporter": "legacy"}], gates={})
    p = edgekit("run", recipe, "--out", tmp_path / "run")
    assert p.returncode == 1 and "parity" in p.stderr
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    arts = {a["name"]: a for a in rep["artifacts"]}
    # the file outside its tolerance is still benchmarked and gated, marked failing parity, not dropped
    assert arts["onnx-int8"]["status"] == "parity_failed" and "max_abs" in arts["onnx-int8"]["error"]
    assert sorted(r["artifact"] for r in rep["results"]) == ["onnx-fp32", "onnx-int8"]
    assert all(r["status"] == "ok" for r in rep["results"])
    parity = [g for g in rep["gates"] if g["name"] == "parity"]
    assert [g["target"] for g in parity] == ["onnx-int8@host-cpu"] and not parity[0]["passed"]
    assert rep["status"] == "completed_with_errors"


def test_train_and_export_commands(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", passes=[])
    t = edgekit("train", recipe, "--out", tmp_path / "t")
    assert t.returncode == 0, t.stderr[-2000:]
    ckpt = tmp_path / "t" / "model.safetensors"
    e = edgekit("export", recipe, "--checkpoint", ckpt, "--format", "onnx", "--out", tmp_path / "e")
    assert e.returncode == 0, e.stderr[-2000:]
    rep = json.loads((tmp_path / "e" / "report.json").read_text())
    assert rep["model"]["checkpoint"].endswith("model.safetensors") and rep["training"] is None
    t_acc = json.loads((tmp_path / "t" / "report.json").read_text())["training"]["test_accuracy"]
    assert rep["reference"]["accuracy"] == pytest.approx(t_acc)  # the same weights


def test_validate_and_devices(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml")
    assert edgekit("validate", recipe).returncode == 0
    shown = yaml.safe_load(edgekit("validate", recipe, "--show").stdout)
    assert shown["bench"]["warmup"] == 2
    out = edgekit("devices", "list").stdout
    assert "host-cpu" in out and "host-cpu-1t" in out


def test_html_report_is_self_contained_with_plots(run_dir):
    import base64
    import re

    page = (run_dir / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "</html>" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 2  # accuracy/latency trade-off and latency ECDF at least
    for img in images:
        assert base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(http|//|file:)', page)  # nothing fetched from elsewhere
    md = (run_dir / "report.md").read_text()
    assert "![tradeoff](plots/tradeoff.png)" in md and (run_dir / "plots" / "tradeoff.png").is_file()


def test_compare_two_runs(run_dir, tmp_path):
    p = edgekit("compare", run_dir, run_dir / "report.json", "--html", tmp_path / "c.html")
    assert p.returncode == 0 and "onnx-int8@host-cpu" in p.stdout and "+0.0000" in p.stdout
    assert "data:image/png;base64" in (tmp_path / "c.html").read_text()


def test_pareto_indices():
    from edgekit.report.plots import pareto_indices

    pts = [(1.0, 0.9), (2.0, 0.95), (3.0, 0.94), (0.5, 0.5), (2.0, 0.8)]
    assert pareto_indices(pts) == [3, 0, 1]
