"""The one timing primitive (edgekit/timing.py): what the block timer runs, in which order and how often.
Assertions are on counts and order, and on elapsed time only with wide margins."""

import time

import pytest

from edgekit.timing import Stopwatch, interleave, time_call


def _recorder(calls):
    return {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}


def test_blocks_alternate_and_the_order_reverses_every_other_round():
    calls = []
    fns = _recorder(calls)
    del fns["c"]
    out = interleave(fns, block=2, warmup=3, min_rounds=4, max_rounds=4)
    assert calls[:6] == ["a"] * 3 + ["b"] * 3  # warm-up first, each callable in turn
    assert calls[6:] == list("aabb" "bbaa" "aabb" "bbaa")
    assert {k: len(v) for k, v in out.items()} == {"a": 8, "b": 8}
    assert all(v >= 0 for v in out["a"] + out["b"])


def test_three_callables_reverse_too():
    calls = []
    interleave(_recorder(calls), min_rounds=3, max_rounds=3)
    assert calls == list("abc" "cba" "abc")


def test_min_rounds_and_min_samples_are_both_met_with_equal_counts():
    calls = []
    fns = _recorder(calls)
    out = interleave(fns, block=3, min_rounds=2, min_samples=10)
    assert [len(v) for v in out.values()] == [12, 12, 12]  # 4 rounds of 3: the first multiple of 3 reaching 10
    out = interleave(fns, block=3, min_rounds=5, min_samples=1)
    assert [len(v) for v in out.values()] == [15, 15, 15]


def test_min_time_keeps_going_and_max_time_stops_early():
    with Stopwatch() as sw:
        out = interleave({"x": lambda: None}, min_rounds=1, min_time_s=0.2)
    assert sw.seconds >= 0.2 and len(out["x"]) > 1
    with Stopwatch() as sw:
        out = interleave({"s": lambda: time.sleep(0.01)}, min_rounds=10_000, max_time_s=0.1)
    assert 1 <= len(out["s"]) < 10_000 and sw.seconds < 5.0  # stopped at the budget, far before the count


def test_samples_are_milliseconds_and_after_each_runs_once_per_sample():
    seen = []
    out = interleave({"sleep": lambda: time.sleep(0.02), "noop": lambda: None}, block=2, min_rounds=2,
                     after_each=seen.append)
    assert min(out["sleep"]) >= 19.0 and max(out["noop"]) < min(out["sleep"])
    assert sorted(seen) == ["noop"] * 4 + ["sleep"] * 4
    assert time_call(lambda: time.sleep(0.02)) >= 19.0


def test_stopwatch_stops_on_exit_and_estimates_what_is_left():
    with Stopwatch() as sw:
        time.sleep(0.01)
    first = sw.seconds
    time.sleep(0.01)
    assert first >= 0.01 and sw.seconds == first and sw.ms == pytest.approx(first * 1e3)
    running = Stopwatch()
    assert running.eta_s(0, 10) is None and running.eta_s(5, 10) == pytest.approx(running.seconds, abs=0.05)


def test_onnx_files_are_timed_side_by_side(tmp_path):
    import numpy as np
    from device_helpers import resnet_onnx

    from edgekit.runtimes.timed import time_onnx_files

    a = resnet_onnx(tmp_path / "a.onnx", widths=(8,), blocks=(1,), size=8)
    x = np.zeros((1, 3, 8, 8), np.float32)
    out = time_onnx_files({"a": a, "b": a}, x, threads=1, min_time_s=0.0, block=3, warmup=1, min_rounds=4)
    assert out["a"]["runs"] == out["b"]["runs"] == 12
    assert 0 < out["a"]["p50"] <= out["a"]["p90"] <= out["a"]["p99"]
