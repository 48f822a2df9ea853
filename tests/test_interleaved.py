"""Interleaved latency comparison: baseline and candidate artifacts timed alternately in one process."""

import numpy as np
import pytest

from edgekit import api
from edgekit.bench.interleaved import PER_ROUND, Side, bench_interleaved
from edgekit.recipe import GatesConfig
from edgekit.report.baselines import save_baseline
from edgekit.significance import bootstrap_latency_ratio, interleaved_latency_ratio
from tests.helpers import tiny_recipe

QUIET = {"log": lambda m: None}


def busy_rounds(seed, rounds=60, k=10, scale=1.0):
    """Latency samples where the machine was 2x slower in a random third of the rounds, for both sides alike."""
    rng = np.random.default_rng(seed)
    machine = np.where(rng.random(rounds) < 1 / 3, 2.0, 1.0)
    base = np.repeat(machine, k) * (1.0 + rng.gamma(2.0, 0.03, rounds * k))
    cand = scale * np.repeat(machine, k) * (1.0 + rng.gamma(2.0, 0.03, rounds * k))
    return base, cand


def test_rounds_resampled_together_cancel_a_busy_machine():
    base, cand = busy_rounds(0)
    st = interleaved_latency_ratio(base, cand, per_round=10, percentile=90)
    assert st["ci_low"] < 1.0 < st["ci_high"] and st["ci_high"] - st["ci_low"] < 0.3
    unpaired = bootstrap_latency_ratio(base, cand, percentile=90)
    assert unpaired["ci_high"] - unpaired["ci_low"] > st["ci_high"] - st["ci_low"]  # pairing is what narrows it
    base, slow = busy_rounds(1, scale=1.5)
    st = interleaved_latency_ratio(base, slow, per_round=10, percentile=90)
    assert st["ci_low"] > 1.3 and st["ratio"] == pytest.approx(1.5, rel=0.1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("interleaved")
    base = api.run(tiny_recipe(passes=[]), d / "base", **QUIET).run_dir
    same = api.run(tiny_recipe(passes=[]), d / "same", **QUIET).run_dir
    big = tiny_recipe(passes=[], model={"arch": "cnn", "channels": [64, 128, 256]},
                      train={"epochs": 1, "batch_size": 64, "progress": False})
    slow = api.run(big, d / "slow", **QUIET).run_dir
    return d, base, same, slow


def test_the_agent_times_both_files_in_alternating_rounds(runs):
    from edgekit.devices import load_profile
    from edgekit.export.artifact import artifact_path
    from edgekit.report.io import load_report
    from tests.helpers import digits_splits

    d, base, _, slow = runs
    a = artifact_path(base, load_report(base).artifacts[0])
    b = artifact_path(slow, load_report(slow).artifacts[0])
    cfg = tiny_recipe().bench.model_copy(update={"iterations": 50})
    out = bench_interleaved(Side(a, "onnxruntime", 1), Side(b, "onnxruntime", 1), digits_splits().x_test,
                            load_profile("host-cpu"), cfg)
    assert out.rounds >= 30 and len(out.base_ms) == len(out.cand_ms) == out.rounds * PER_ROUND
    assert (out.base_ms > 0).all() and (out.cand_ms > 0).all()


def test_gate_times_baseline_and_candidate_interleaved(runs, tmp_path, monkeypatch):
    d, base, same, slow = runs
    gates = GatesConfig(max_latency_regression=1.5)
    res, ok = api.gate(same, base, gates, **QUIET)
    lat = [g for g in res if g.name == "max_latency_regression"]
    assert ok and lat and all("interleaved" in g.detail for g in lat), [g.detail for g in res]
    # a model with ~50x the MACs is slower beyond any noise
    res, ok = api.gate(slow, base, gates, **QUIET)
    g = next(g for g in res if g.name == "max_latency_regression")
    assert not ok and g.ci[0] > 1.5 and "significantly slower" in g.detail
    # a saved baseline carries its artifact files, so it can be re-timed after the run folder is gone
    monkeypatch.setenv("EDGEKIT_BASELINES", str(tmp_path / "store"))
    stored = save_baseline(base, "main")
    assert any(p.suffix == ".onnx" for p in (stored / "artifacts").iterdir())
    res, _ = api.gate(same, "main", gates, **QUIET)
    assert all("interleaved" in g.detail for g in res if g.name == "max_latency_regression")
    # without the baseline's files the gate says so and compares the recorded runs
    for f in (stored / "artifacts").iterdir():
        f.unlink()
    res, _ = api.gate(same, "main", gates, **QUIET)
    g = next(g for g in res if g.name == "max_latency_regression")
    assert "recorded runs compared (artifact file not found" in g.detail
    res, _ = api.gate(same, base, gates.model_copy(update={"latency_comparison": "recorded"}), **QUIET)
    assert not any("interleaved" in g.detail for g in res if g.name == "max_latency_regression")
