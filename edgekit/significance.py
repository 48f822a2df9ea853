"""Paired statistics for comparing two runs: McNemar's exact test, a paired test of means and bootstrap confidence
intervals."""

from __future__ import annotations

import math

import numpy as np


def mcnemar_exact(base_correct: np.ndarray, cand_correct: np.ndarray) -> dict:
    """Exact two-sided McNemar test on the samples where exactly one of the two models is right."""
    b = np.asarray(base_correct, dtype=bool)
    c = np.asarray(cand_correct, dtype=bool)
    only_base = int((b & ~c).sum())
    only_cand = int((~b & c).sum())
    n = only_base + only_cand
    if n == 0:
        p = 1.0
    else:
        k = min(only_base, only_cand)
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
        p = min(1.0, 2.0 * tail)
    return {"only_baseline_right": only_base, "only_candidate_right": only_cand, "p_value": p}


def proportion_interval(value: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval of a proportion (accuracy, agreement) measured as `value` over `n` samples."""
    from scipy.stats import binomtest

    k = int(round(value * n))
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def paired_mean_test(base: np.ndarray, cand: np.ndarray) -> dict:
    """Two-sided test that mean(cand - base) is 0 over paired samples (per-sample cosine of two models on the same
    inputs, say): the paired t statistic with a normal tail, which for the tens to hundreds of samples of a
    validation split is within a few percent of Student's t."""
    d = np.asarray(cand, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    mean = float(d.mean()) if len(d) else 0.0
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    if sd == 0.0:
        p = 1.0 if mean == 0.0 or len(d) < 2 else 0.0
    else:
        p = math.erfc(abs(mean) / (sd / math.sqrt(len(d))) / math.sqrt(2.0))
    return {"mean_difference": mean, "p_value": float(p), "samples": int(len(d))}


def bootstrap_accuracy_drop(base_correct: np.ndarray, cand_correct: np.ndarray, confidence: float = 0.95,
                            resamples: int = 4000, seed: int = 0) -> dict:
    """Paired bootstrap of drop = acc(base) - acc(cand): point estimate and a two-sided interval."""
    b = np.asarray(base_correct, dtype=np.float64)
    c = np.asarray(cand_correct, dtype=np.float64)
    n = len(b)
    diff = b - c
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    drops = diff[idx].mean(axis=1)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(drops, [alpha / 2, 1 - alpha / 2])
    return {"drop": float(diff.mean()), "ci_low": float(lo), "ci_high": float(hi), "confidence": confidence,
            "samples": n}


def _block_resample(x: np.ndarray, rng: np.random.Generator, block: int) -> np.ndarray:
    """Moving-block bootstrap: consecutive latency samples are correlated, so resample runs of them."""
    n = len(x)
    starts = rng.integers(0, max(1, n - block + 1), size=math.ceil(n / block))
    return np.concatenate([x[s: s + block] for s in starts])[:n]


def bootstrap_latency_ratio(base_ms: np.ndarray, cand_ms: np.ndarray, percentile: float = 50.0,
                            confidence: float = 0.95, resamples: int = 2000, seed: int = 0,
                            base_canary: np.ndarray | None = None, cand_canary: np.ndarray | None = None) -> dict:
    """Ratio candidate/baseline of a latency percentile with a block-bootstrap confidence interval.

    With canary samples from both runs (a fixed workload timed between model runs), the ratio is divided by the
    canaries' median ratio, so a machine that was busier during one run does not read as a model regression."""
    b = np.asarray(base_ms, dtype=np.float64)
    c = np.asarray(cand_ms, dtype=np.float64)
    norm = base_canary is not None and cand_canary is not None and len(base_canary) and len(cand_canary)
    rng = np.random.default_rng(seed)

    def block(x):
        return max(1, int(round(len(x) ** (1 / 3))))

    ratios = np.empty(resamples)
    for i in range(resamples):
        r = np.percentile(_block_resample(c, rng, block(c)), percentile) / np.percentile(
            _block_resample(b, rng, block(b)), percentile)
        if norm:
            r /= np.median(_block_resample(np.asarray(cand_canary, np.float64), rng, block(cand_canary))) / np.median(
                _block_resample(np.asarray(base_canary, np.float64), rng, block(base_canary)))
        ratios[i] = r
    alpha = 1.0 - confidence
    lo, hi = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    raw = float(np.percentile(c, percentile) / np.percentile(b, percentile))
    machine = float(np.median(cand_canary) / np.median(base_canary)) if norm else 1.0
    return {"ratio": raw / machine, "raw_ratio": raw, "machine_ratio": machine, "normalized": bool(norm),
            "ci_low": float(lo), "ci_high": float(hi), "percentile": percentile, "confidence": confidence}


def interleaved_latency_ratio(base_ms: np.ndarray, cand_ms: np.ndarray, per_round: int, percentile: float = 50.0,
                              confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict:
    """Ratio candidate/baseline of a latency percentile from interleaved timing (bench/agent_paired.py).

    Sample i of either side was timed in round i // per_round; rounds are resampled together for both sides, so
    a slow spell of the machine, which hit both sides in the same rounds, moves numerator and denominator alike
    and the interval reflects only the model difference."""
    k = int(per_round)
    rounds = min(len(base_ms), len(cand_ms)) // k
    b = np.asarray(base_ms, np.float64)[: rounds * k].reshape(rounds, k)
    c = np.asarray(cand_ms, np.float64)[: rounds * k].reshape(rounds, k)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, rounds, size=(resamples, rounds))
    ratios = np.array([np.percentile(c[i], percentile) / np.percentile(b[i], percentile) for i in idx])
    alpha = 1.0 - confidence
    lo, hi = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return {"ratio": float(np.percentile(c, percentile) / np.percentile(b, percentile)), "ci_low": float(lo),
            "ci_high": float(hi), "percentile": percentile, "confidence": confidence, "rounds": rounds,
            "base": float(np.percentile(b, percentile)), "cand": float(np.percentile(c, percentile))}
