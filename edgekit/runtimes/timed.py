"""Latency of ONNX files in runtime sessions of this process, timed side by side (edgekit.timing.interleave).

For choosing among candidates and showing a pass's effect quickly; the bench stage measures on devices."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def latency_summary(samples_ms: list[float]) -> dict:
    """{p50, p90, p99, iqr, runs} of latency samples (ms)."""
    p25, p50, p75, p90, p99 = np.percentile(np.asarray(samples_ms, dtype=np.float64), [25, 50, 75, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "iqr": float(p75 - p25), "runs": len(samples_ms)}


def time_onnx_files(paths: dict[str, Path], x: np.ndarray, threads: int | None, *, min_time_s: float = 2.0,
                    block: int = 10, warmup: int = 5, min_rounds: int = 5, max_rounds: int | None = 200,
                    min_samples: int = 0, runtime: str = "onnxruntime", options: dict | None = None) -> dict[str, dict]:
    """`latency_summary` of each file on batch `x` in `runtime` (loaded with `options`, e.g. a device profile's
    runtime settings): blocks of `block` runs per file, files in turn, the order reversed every other round, after
    `warmup` runs each, for at least `min_rounds` rounds, `min_samples` runs and `min_time_s` seconds (at most
    `max_rounds` rounds)."""
    import inspect

    from edgekit.runtimes import get_runtime
    from edgekit.timing import interleave

    rt = get_runtime(runtime)
    kw = dict(options or {})
    if "spin" in inspect.signature(rt.load).parameters:
        # several sessions: no spinning, or the threads of the session that just ran keep spinning through the next
        # one's runs (measured in ONNX Runtime: identical files timed 20% apart, ratios from 0.9x to 1.4x)
        kw["spin"] = len(paths) == 1
    sessions = {k: rt.load(p, threads=threads, **kw) for k, p in paths.items()}
    samples = interleave({k: (lambda s=s: s.run_batch(x)) for k, s in sessions.items()}, block=block, warmup=warmup,
                         min_rounds=min_rounds, max_rounds=max_rounds, min_samples=min_samples, min_time_s=min_time_s)
    return {k: latency_summary(v) for k, v in samples.items()}
