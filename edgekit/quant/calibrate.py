"""Streaming range calibrators for activation quantization.

Every calibrator consumes batches one at a time (``update``) and keeps O(bins) state, never the
activations themselves, then returns a float range ``(lo, hi)`` via ``compute_range``:

* :class:`MinMaxCalibrator` -- running min / max.
* :class:`PercentileCalibrator` -- fixed-bin streaming histogram, range = (p_lo, p_hi) percentiles.
* :class:`EntropyCalibrator` -- TensorRT-style KL-divergence threshold search on the histogram.
* :class:`MSECalibrator` -- range minimising the expected uint8/int8 quantization MSE on the histogram.

The histogram grows its range by merging whole bins (bin width multiplied by a power of two and
the origin shifted by whole bins), so re-binning is exact: counts never move across a value.
:func:`calibrate_modules` hooks ``torch.nn`` modules and reports progress with an ETA.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edgekit.timing import Stopwatch

Progress = Callable[[int, int | None, float | None], None]  # (done, total, eta_seconds)


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64).ravel()


class MinMaxCalibrator:
    """Running minimum and maximum (the range always contains 0, as integer quantization needs)."""

    def __init__(self) -> None:
        self.lo, self.hi = math.inf, -math.inf

    def update(self, x: Any) -> None:
        a = _np(x)
        if a.size:
            self.lo, self.hi = min(self.lo, float(a.min())), max(self.hi, float(a.max()))

    def compute_range(self) -> tuple[float, float]:
        if self.lo > self.hi:
            raise ValueError("no data observed")
        return min(self.lo, 0.0), max(self.hi, 0.0)


class StreamingHistogram:
    """Fixed number of equal bins over a range that grows exactly (whole-bin merges) as data arrives."""

    def __init__(self, bins: int = 2048) -> None:
        if bins < 8:
            raise ValueError("bins must be >= 8")
        self.bins = bins
        self.counts = np.zeros(bins, dtype=np.float64)
        self.origin: float | None = None
        self.width = 0.0
        self.min, self.max = math.inf, -math.inf

    @property
    def edges(self) -> np.ndarray:
        return self.origin + self.width * np.arange(self.bins + 1)

    def _grow(self, lo: float, hi: float) -> None:
        m = max(0, math.ceil((self.origin - lo) / self.width))  # bins to add on the left
        origin = self.origin - m * self.width
        k = 1
        while origin + self.bins * k * self.width < hi:
            k *= 2
        # old bin i lands in new bin (i + m) // k; exact because new edges are a subset of old edges
        idx = (np.arange(self.bins) + m) // k
        new = np.zeros(self.bins, dtype=np.float64)
        np.add.at(new, np.minimum(idx, self.bins - 1), self.counts)
        self.counts, self.origin, self.width = new, origin, self.width * k

    def update(self, x: Any) -> None:
        a = _np(x)
        a = a[np.isfinite(a)]
        if not a.size:
            return
        lo, hi = float(a.min()), float(a.max())
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        if self.origin is None:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            span = hi - lo if hi > lo else 1e-8
            self.origin, self.width = lo, span * (1 + 1e-6) / self.bins
        elif lo < self.origin or hi >= self.origin + self.bins * self.width:
            self._grow(lo, hi)
        i = np.clip(((a - self.origin) / self.width).astype(np.int64), 0, self.bins - 1)
        self.counts += np.bincount(i, minlength=self.bins)

    def quantile(self, q: float) -> float:
        """Value below which a fraction ``q`` of the data lies (linear within a bin, like np.percentile)."""
        total = self.counts.sum()
        if total == 0:
            raise ValueError("no data observed")
        if q <= 0:
            return self.min
        if q >= 1:
            return self.max
        cum = np.cumsum(self.counts)
        target = q * total
        i = int(np.searchsorted(cum, target, side="left"))
        before = cum[i - 1] if i else 0.0
        frac = (target - before) / self.counts[i] if self.counts[i] else 0.0
        v = self.origin + (i + frac) * self.width
        return float(min(max(v, self.min), self.max))


class PercentileCalibrator:
    """Range = (lower, upper) percentiles of a streaming histogram; ``percentile=99.99`` clips 0.01 % on each side."""

    def __init__(self, percentile: float = 99.99, bins: int = 2048, symmetric: bool = False) -> None:
        self.percentile, self.symmetric = percentile, symmetric
        self.hist = StreamingHistogram(bins)

    def update(self, x: Any) -> None:
        self.hist.update(x)

    def compute_range(self) -> tuple[float, float]:
        p = self.percentile / 100.0
        lo = self.hist.quantile(1 - p) if self.hist.min < 0 else 0.0
        hi = self.hist.quantile(p)
        if self.symmetric:
            r = max(abs(lo), abs(hi))
            return -r, r
        return min(lo, 0.0), max(hi, 0.0)


def _quant_mse(centers: np.ndarray, counts: np.ndarray, lo: float, hi: float, levels: int) -> float:
    """Expected squared error of uniform ``levels``-level quantization on [lo, hi] for a histogram."""
    scale = (hi - lo) / (levels - 1)
    if scale <= 0:
        return float(np.sum(counts * centers**2))
    zp = np.round(-lo / scale)
    q = (np.clip(np.round(centers / scale) + zp, 0, levels - 1) - zp) * scale
    return float(np.sum(counts * (centers - q) ** 2))


class MSECalibrator:
    """Range minimising the quantization MSE of the observed distribution (grid search over clip ratios)."""

    def __init__(self, bins: int = 2048, levels: int = 256, grid: int = 100, symmetric: bool = False) -> None:
        self.levels, self.grid, self.symmetric = levels, grid, symmetric
        self.hist = StreamingHistogram(bins)

    def update(self, x: Any) -> None:
        self.hist.update(x)

    def compute_range(self) -> tuple[float, float]:
        h = self.hist
        if h.counts.sum() == 0:
            raise ValueError("no data observed")
        centers = h.edges[:-1] + h.width / 2
        lo0, hi0 = min(h.min, 0.0), max(h.max, 0.0)
        if self.symmetric:
            r = max(-lo0, hi0)
            lo0, hi0 = -r, r
        best, best_r = math.inf, (lo0, hi0)
        for a in np.linspace(1.0 / self.grid, 1.0, self.grid):
            lo, hi = lo0 * a, hi0 * a
            err = _quant_mse(centers, h.counts, lo, hi, self.levels)
            if err < best:
                best, best_r = err, (lo, hi)
        return float(best_r[0]), float(best_r[1])


class EntropyCalibrator:
    """TensorRT-style KL calibration: the threshold whose ``levels``-bin quantized histogram is closest in KL.

    Applied to the magnitude of the data (``|x|``), the result is ``(lo, hi)`` with ``lo = -t`` only
    when negative values were observed (``[0, t]`` for post-ReLU tensors).
    """

    def __init__(self, bins: int = 2048, levels: int = 128, stride: int = 1) -> None:
        self.levels, self.stride = levels, stride
        self.hist = StreamingHistogram(bins)
        self._neg = False
        self._absmax_neg = 0.0  # largest magnitude of the negative values seen: the range never goes beyond it

    def update(self, x: Any) -> None:
        a = _np(x)
        self._neg = self._neg or bool(a.size and a.min() < 0)
        if a.size:
            self._absmax_neg = max(self._absmax_neg, float(-a.min()))
        # exact zeros (half of a post-ReLU tensor) are exact on every grid, which includes 0 by construction: left
        # in, their spike dominates the divergence and pulls the threshold far below the data's real spread
        self.hist.update(np.abs(a[a != 0]))

    def compute_range(self) -> tuple[float, float]:
        h = self.hist
        counts = h.counts
        if counts.sum() == 0:
            raise ValueError("no data observed")
        nb = h.bins
        lv = self.levels if self._neg else 2 * self.levels  # non-negative data gets both halves of the 8-bit grid
        best_kl, best_i = math.inf, nb
        for i in range(lv, nb + 1, self.stride):
            p = counts[:i].copy()
            p[i - 1] += counts[i:].sum()
            nz = p > 0
            # quantize the first i bins of the *unclipped* histogram into lv groups, expand back over non-empty bins
            groups = np.array_split(np.arange(i), lv)
            q = np.zeros(i)
            for g in groups:
                sel = g[counts[g] > 0]
                if sel.size:
                    q[sel] = counts[g].sum() / sel.size
            if q[nz].min(initial=1.0) == 0:
                continue
            pn, qn = p[nz] / p.sum(), q[nz] / q.sum()
            kl = float(np.sum(pn * np.log(pn / qn)))
            if kl < best_kl:
                best_kl, best_i = kl, i
        t = min(h.origin + best_i * h.width, h.max)  # the grown histogram's last bins may lie beyond the data
        return (max(-t, -self._absmax_neg) if self._neg else 0.0), t


METHODS: dict[str, Callable[..., Any]] = {
    "minmax": MinMaxCalibrator,
    "percentile": PercentileCalibrator,
    "mse": MSECalibrator,
    "entropy": EntropyCalibrator,
}


def make_calibrator(method: str, **kw: Any) -> Any:
    """Build a calibrator by name (``minmax``, ``percentile``, ``mse``, ``entropy``)."""
    try:
        return METHODS[method](**kw)
    except KeyError:
        raise ValueError(f"unknown calibration method {method!r}; choose from {sorted(METHODS)}") from None


class ProgressTimer:
    """Turns ``tick()`` calls into ``progress(done, total, eta_s)`` callbacks."""

    def __init__(self, total: int | None, progress: Progress | None) -> None:
        self.total, self.progress, self.done, self.clock = total, progress, 0, Stopwatch()

    def tick(self, n: int = 1) -> None:
        self.done += n
        if self.progress is None:
            return
        eta = self.clock.eta_s(self.done, max(self.total, self.done)) if self.total else None
        self.progress(self.done, self.total, eta)


def calibrate_modules(
    model: Any,
    batches: Iterable[Any],
    module_names: Iterable[str],
    method: str = "minmax",
    inputs: bool = False,
    total: int | None = None,
    progress: Progress | None = None,
    **kw: Any,
) -> dict[str, tuple[float, float]]:
    """Run ``model`` over ``batches`` and return the calibrated range of each named module's output (or input).

    ``progress(done, total, eta_s)`` is called after every batch; ``total`` defaults to ``len(batches)``.
    """
    import torch

    names = list(module_names)
    cals = {n: make_calibrator(method, **kw) for n in names}
    hooks = []
    for n in names:
        mod = model.get_submodule(n)
        if inputs:
            hooks.append(mod.register_forward_pre_hook(lambda _m, a, n=n: cals[n].update(a[0])))
        else:
            hooks.append(mod.register_forward_hook(lambda _m, _a, out, n=n: cals[n].update(out)))
    if total is None and hasattr(batches, "__len__"):
        total = len(batches)  # type: ignore[arg-type]
    timer = ProgressTimer(total, progress)
    try:
        with torch.no_grad():
            for b in batches:
                model(b)
                timer.tick()
    finally:
        for h in hooks:
            h.remove()
    return {n: c.compute_range() for n, c in cals.items()}
