"""Latency statistics from raw samples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgekit.report.schema import LatencyStats


def latency_stats(samples_ms: Sequence[float] | np.ndarray) -> LatencyStats:
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    p25, p50, p75, p90, p99 = np.percentile(a, [25, 50, 75, 90, 99])
    return LatencyStats(
        p50=float(p50), p90=float(p90), p99=float(p99), mean=float(a.mean()),
        std=float(a.std(ddof=1)) if a.size > 1 else 0.0, min=float(a.min()), max=float(a.max()),
        iqr=float(p75 - p25), samples=int(a.size),
    )
