"""Statistical gates on synthetic evidence with known answers; CI outputs; baselines."""

import json
import subprocess
import sys
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from edgekit.bench.stats import latency_stats
from edgekit.recipe import GatesConfig
from edgekit.report.ci_outputs import gates_junit, gates_markdown
from edgekit.report.evidence import save_samples
from edgekit.report.gates import evaluate_gates, gates_passed
from edgekit.report.io import save_report
from edgekit.report.schema import Report, Result
from edgekit.significance import (
    bootstrap_accuracy_drop,
    bootstrap_latency_ratio,
    mcnemar_exact,
    paired_mean_test,
)

N = 600


def make_run(folder, preds, labels, lat, env=None, threads=2, canary=None):
    folder.mkdir(parents=True, exist_ok=True)
    _, dig = save_samples(folder / "samples" / "a@host-cpu.npz", preds, labels, lat, canary)
    _, ref_dig = save_samples(folder / "samples" / "reference.npz", labels, labels)  # a perfect reference
    row = Result(artifact="a", device="host-cpu", runtime="onnxruntime", threads=threads,
                 accuracy=float((preds == labels).mean()), latency_ms=latency_stats(lat), size_bytes=1000,
                 samples="samples/a@host-cpu.npz", samples_sha256=dig)
    rep = Report(edgekit_version="0", recipe_name="t", created="now", status="completed", results=[row],
                 reference={"accuracy": 1.0, "samples": "samples/reference.npz", "samples_sha256": ref_dig},
                 environment=env or {"cpu": {"model": "X"}, "usable_cores": 2, "packages": {"onnxruntime": "1"}})
    save_report(rep, folder)
    return rep


@pytest.fixture
def labels():
    return np.random.default_rng(0).integers(0, 10, N)


def flip(labels, k, seed):
    preds = labels.copy()
    idx = np.random.default_rng(seed).choice(N, k, replace=False)
    preds[idx] = (preds[idx] + 1) % 10
    return preds


def lat(seed, scale=1.0, n=400):
    return scale * (1.0 + np.random.default_rng(seed).gamma(2.0, 0.05, n))


def test_mcnemar_by_hand():
    base = np.array([1, 1, 1, 1, 1, 0, 1], bool)
    cand = np.array([0, 0, 0, 0, 0, 0, 1], bool)
    r = mcnemar_exact(base, cand)
    assert r["only_baseline_right"] == 5 and r["only_candidate_right"] == 0 and r["p_value"] == pytest.approx(2 / 32)
    assert mcnemar_exact(base, base)["p_value"] == 1.0


def test_paired_mean_test_agrees_with_scipy_and_sees_a_shift_only_pairing_reveals():
    from scipy import stats

    rng = np.random.default_rng(0)
    base = rng.normal(0.99, 0.01, 200)  # per-image cosines: large spread between images ...
    for shift in (0.0, 0.0003, 0.001):
        cand = base + shift + rng.normal(0, 0.002, 200)  # ... small, consistent change per image
        ours = paired_mean_test(base, cand)["p_value"]
        assert ours == pytest.approx(stats.ttest_rel(cand, base).pvalue, abs=0.01)
    # a 0.001 shift, hidden by the spread between images to an unpaired test, is plain to the paired one
    assert stats.ttest_ind(cand, base).pvalue > 0.05 and paired_mean_test(base, cand)["p_value"] < 1e-6
    assert paired_mean_test(base, base)["p_value"] == 1.0
    assert paired_mean_test(base, base - 0.01)["p_value"] == 0.0  # constant shift: no spread, certain


def test_bootstrap_intervals_cover_the_truth():
    b = np.ones(N, bool)
    c = b.copy()
    c[:30] = False  # a 5-point drop
    r = bootstrap_accuracy_drop(b, c)
    assert r["drop"] == pytest.approx(0.05) and r["ci_low"] < 0.05 < r["ci_high"]
    lr = bootstrap_latency_ratio(lat(1), lat(2, scale=2.0))
    assert lr["ci_low"] < 2.0 * 1.05 and lr["ci_high"] > 2.0 * 0.95 and lr["ci_low"] > 1.5


def test_same_model_passes_repeatedly(tmp_path, labels):
    gates = GatesConfig(max_accuracy_drop=0.01, max_latency_regression=1.2)
    for i in range(10):  # ten noisy repeats of the same model never fail
        preds = flip(labels, 40, seed=7)  # same predictions each time, fresh latency noise
        base = make_run(tmp_path / f"b{i}", preds, labels, lat(100 + i))
        cand = make_run(tmp_path / f"c{i}", preds, labels, lat(200 + i))
        res = evaluate_gates(cand, gates, base, run_dir=tmp_path / f"c{i}", baseline_dir=tmp_path / f"b{i}")
        assert gates_passed(res), [g.detail for g in res]


def test_degraded_model_fails_accuracy_and_slowed_model_fails_latency(tmp_path, labels):
    gates = GatesConfig(max_accuracy_drop=0.01, max_latency_regression=1.2)
    base = make_run(tmp_path / "b", flip(labels, 20, 1), labels, lat(1))
    worse = make_run(tmp_path / "w", flip(labels, 90, 2), labels, lat(2))
    res = {g.name: g for g in evaluate_gates(worse, gates, base, run_dir=tmp_path / "w", baseline_dir=tmp_path / "b")}
    acc = res["max_accuracy_drop"]
    assert not acc.passed and acc.ci[0] > 0.01 and acc.p_value < 0.01 and "sure" in acc.detail
    assert res["max_latency_regression"].passed
    slow = make_run(tmp_path / "s", flip(labels, 20, 1), labels, lat(3, scale=1.6))
    res = {g.name: g for g in evaluate_gates(slow, gates, base, run_dir=tmp_path / "s", baseline_dir=tmp_path / "b")}
    assert not res["max_latency_regression"].passed and "significant" in res["max_latency_regression"].detail
    assert res["max_accuracy_drop"].passed


def test_small_drop_within_noise_passes(tmp_path, labels):
    """A 1.2-point drop on 600 samples is not confidently beyond a 1-point threshold."""
    gates = GatesConfig(max_accuracy_drop=0.01)
    rep = make_run(tmp_path / "r", flip(labels, 7, 3), labels, lat(1))
    g = evaluate_gates(rep, gates, run_dir=tmp_path / "r")[0]
    assert g.value == pytest.approx(7 / N) and g.passed and g.ci[1] > 0.01


def test_worst_class_gate(tmp_path, labels):
    preds = labels.copy()
    preds[labels == 3] = 4  # class 3 is wiped out; overall drop ~10 points
    rep = make_run(tmp_path / "r", preds, labels, lat(1))
    g = {x.name: x for x in evaluate_gates(rep, GatesConfig(max_class_accuracy_drop=0.2), run_dir=tmp_path / "r")}
    assert not g["max_class_accuracy_drop"].passed and "class 3" in g["max_class_accuracy_drop"].detail


def test_environment_difference_warns_without_failing(tmp_path, labels):
    preds = flip(labels, 10, 1)
    base = make_run(tmp_path / "b", preds, labels, lat(1), env={"cpu": {"model": "Y"}, "usable_cores": 2}, threads=1)
    cand = make_run(tmp_path / "c", preds, labels, lat(2))
    res = evaluate_gates(cand, GatesConfig(max_accuracy_drop=0.01), base, run_dir=tmp_path / "c",
                         baseline_dir=tmp_path / "b")
    warn = [g for g in res if g.severity == "warning"]
    assert warn and "CPU Y -> X" in warn[0].detail and "threads 1 -> 2" in warn[0].detail
    assert gates_passed(res)


def test_tampered_evidence_is_an_error(tmp_path, labels):
    from edgekit.errors import GateInputError

    rep = make_run(tmp_path / "r", labels, labels, lat(1))
    save_samples(tmp_path / "r" / "samples" / "a@host-cpu.npz", flip(labels, 50, 1), labels, lat(1))
    with pytest.raises(GateInputError, match="does not match the hash"):
        evaluate_gates(rep, GatesConfig(max_accuracy_drop=0.01), run_dir=tmp_path / "r")


def test_markdown_and_junit(tmp_path, labels):
    base = make_run(tmp_path / "b", labels, labels, lat(1))
    worse = make_run(tmp_path / "w", flip(labels, 120, 2), labels, lat(2))
    res = evaluate_gates(worse, GatesConfig(max_accuracy_drop=0.01, max_size_mb=1.0), base, run_dir=tmp_path / "w",
                         baseline_dir=tmp_path / "b")
    md = gates_markdown(res)
    assert "❌ fail" in md and "| max_accuracy_drop |" in md and "@ 95%" in md
    root = ET.fromstring(gates_junit(res).split("\n", 1)[1])
    cases = root.findall(".//testcase")
    assert len(cases) == len(res)
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("classname") for c in failed] == ["edgekit.gates.max_accuracy_drop"]


def test_cli_gate_outputs_and_saved_baseline(tmp_path, labels, monkeypatch):
    base = tmp_path / "b"
    make_run(base, labels, labels, lat(1))
    make_run(tmp_path / "w", flip(labels, 120, 2), labels, lat(2))
    (base / "report.json").write_text((base / "report.json").read_text())
    env = {"EDGEKIT_BASELINES": str(tmp_path / "store"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    import os

    def ek(*args):
        return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True,
                              env={**os.environ, **env})

    assert ek("baseline", "save", base, "--name", "main").returncode == 0
    assert "main" in ek("baseline", "show").stdout
    p = ek("gate", tmp_path / "w", "--baseline", "main", "--max-accuracy-drop", "0.01", "--junit", tmp_path / "j.xml",
           "--markdown", tmp_path / "g.md")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "<failure" in (tmp_path / "j.xml").read_text() and "max_accuracy_drop" in (tmp_path / "g.md").read_text()
    assert "edgekit gates" in (tmp_path / "summary.md").read_text()
    assert ek("gate", tmp_path / "w", "--baseline", "nope").returncode == 2
    json.loads((tmp_path / "store" / "main" / "report.json").read_text())


def test_canary_normalization_separates_a_busy_machine_from_a_slow_model(tmp_path, labels):
    gates = GatesConfig(max_latency_regression=1.2, normalize_latency=True)
    base = make_run(tmp_path / "b", labels, labels, lat(1), canary=lat(11, n=60))
    # the whole machine was 1.5x slower during this run: the model and the canary both slowed down
    busy = make_run(tmp_path / "busy", labels, labels, lat(2, scale=1.5), canary=lat(12, scale=1.5, n=60))
    g = evaluate_gates(busy, gates, base, run_dir=tmp_path / "busy", baseline_dir=tmp_path / "b")[0]
    assert g.passed and "canary" in g.detail and g.value == pytest.approx(1.0, abs=0.1)
    # the model itself got 1.5x slower on an equally fast machine
    slow = make_run(tmp_path / "slow", labels, labels, lat(3, scale=1.5), canary=lat(13, n=60))
    g = evaluate_gates(slow, gates, base, run_dir=tmp_path / "slow", baseline_dir=tmp_path / "b")[0]
    assert not g.passed and g.ci[0] > 1.2
    raw = evaluate_gates(busy, gates.model_copy(update={"normalize_latency": False}), base,
                         run_dir=tmp_path / "busy", baseline_dir=tmp_path / "b")[0]
    assert not raw.passed  # without the canary the busy machine reads as a regression
