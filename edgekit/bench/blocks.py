"""Time several ONNX files side by side in one process: blocks of runs per model, models in turn, the order
reversed every other round, so a slow spell of a shared machine hits every model alike and the ratios between
them can be trusted. Blocks rather than single runs: an ORT session's intra-op threads spin for a while after each
run, and alternating many sessions run by run measured every model several times slower than it runs alone."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def time_in_blocks(paths: dict[str, Path], x: np.ndarray, threads: int | None, min_time_s: float = 2.0,
                   block: int = 10, warmup: int = 5, min_rounds: int = 5, max_rounds: int = 200) -> dict[str, dict]:
    """Latency (ms) of each file on batch `x`: {name: {p50, p90, p99, iqr, runs}} after `warmup` runs each."""
    from edgekit.bench.stats import latency_stats
    from edgekit.runtimes.onnxruntime import OnnxRuntime

    # no spinning: with many sessions in one process, the threads of the session that just ran would keep
    # spinning through the next one's runs (measured: identical files timed 20% apart, ratios from 0.9x to 1.4x)
    sessions = {k: OnnxRuntime().load(p, threads=threads, spin=False) for k, p in paths.items()}
    for s in sessions.values():
        for _ in range(warmup):
            s.run_batch(x)
    samples: dict[str, list[float]] = {k: [] for k in sessions}
    order = list(sessions)
    start, r = time.perf_counter(), 0
    while r < max_rounds and (r < min_rounds or time.perf_counter() - start < min_time_s):
        for k in order if r % 2 == 0 else order[::-1]:
            s = sessions[k]
            for _ in range(block):
                t0 = time.perf_counter_ns()
                s.run_batch(x)
                samples[k].append((time.perf_counter_ns() - t0) / 1e6)
        r += 1
    out = {}
    for k, v in samples.items():
        st = latency_stats(v)
        out[k] = {"p50": st.p50, "p90": st.p90, "p99": st.p99, "iqr": st.iqr, "runs": st.samples}
    return out
