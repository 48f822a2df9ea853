"""Quality metrics of an artifact's outputs: with labels (accuracy, top-k, macro-F1, MSE/MAE) and without them,
as fidelity to the fp32 reference outputs (cosine, max-abs, top-1/top-k agreement, nearest-neighbour agreement).

Every metric is a float where higher or lower is better as its name says; gates (`min_metric`, `max_metric`) take
any of them by name."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LABEL_METRICS = ("accuracy", "top_k_accuracy", "macro_f1", "mse", "mae")
FIDELITY_METRICS = ("cosine", "max_abs", "mean_abs", "top1_agreement", "top_k_agreement", "nn_agreement")
METRICS = LABEL_METRICS + FIDELITY_METRICS
LOWER_IS_BETTER = ("mse", "mae", "max_abs", "mean_abs")
NN_MAX_SAMPLES = 2000  # nearest neighbours are O(N^2): rank at most this many samples


def as_rows(a: np.ndarray) -> np.ndarray:
    """Outputs as float64 rows, one per sample (every other axis flattened)."""
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1)


def accuracy(out: np.ndarray, y: np.ndarray) -> float:
    return float((as_rows(out).argmax(1) == np.asarray(y)).mean())


def top_k_accuracy(out: np.ndarray, y: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is among the k highest outputs."""
    o = as_rows(out)
    k = min(k, o.shape[1])
    top = np.argsort(-o, axis=1, kind="stable")[:, :k]
    return float((top == np.asarray(y)[:, None]).any(1).mean())


def macro_f1(pred: np.ndarray, y: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over the classes that occur in the labels or the predictions."""
    pred, y = np.asarray(pred), np.asarray(y)
    scores = []
    for c in np.union1d(pred, y):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def cosine(ref: np.ndarray, out: np.ndarray) -> float:
    """Mean per-sample cosine similarity (two all-zero vectors count as 1)."""
    r, o = as_rows(ref), as_rows(out)
    denom = np.linalg.norm(r, axis=1) * np.linalg.norm(o, axis=1)
    cos = np.where(denom > 0, (r * o).sum(1) / np.maximum(denom, 1e-30), 1.0)
    return float(cos.mean()) if cos.size else 1.0


def top_k_agreement(ref: np.ndarray, out: np.ndarray, k: int) -> float:
    """Mean overlap |top-k(ref) ∩ top-k(out)| / k of the k highest outputs per sample (k=1: top-1 agreement)."""
    r, o = as_rows(ref), as_rows(out)
    k = min(k, r.shape[1])
    tr = np.argsort(-r, axis=1, kind="stable")[:, :k]
    to = np.argsort(-o, axis=1, kind="stable")[:, :k]
    return float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(tr, to)]))


def nearest_neighbours(emb: np.ndarray, k: int) -> np.ndarray:
    """Indices of each sample's k nearest other samples by cosine similarity (ties by index)."""
    e = as_rows(emb)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-30)
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def nn_agreement(ref: np.ndarray, out: np.ndarray, k: int) -> float:
    """Embedding fidelity: mean overlap of each sample's k nearest neighbours under the reference and the artifact
    (k=1: the fraction of samples whose nearest neighbour is unchanged)."""
    r, o = as_rows(ref)[:NN_MAX_SAMPLES], as_rows(out)[:NN_MAX_SAMPLES]
    k = min(k, len(r) - 1)
    if k < 1:
        return 1.0
    a, b = nearest_neighbours(r, k), nearest_neighbours(o, k)
    return float(np.mean([len(np.intersect1d(x, z)) / k for x, z in zip(a, b)]))


def default_metrics(labelled: bool, has_reference: bool) -> list[str]:
    names = ["accuracy", "top_k_accuracy", "macro_f1"] if labelled else []
    if has_reference:
        names += ["cosine", "max_abs", "top1_agreement"] + ([] if labelled else ["top_k_agreement", "nn_agreement"])
    return names


def compute_metrics(names: Sequence[str] | None, *, outputs: np.ndarray | None = None, predictions: np.ndarray | None = None,
                    labels: np.ndarray | None = None, reference: np.ndarray | None = None,
                    top_k: int = 5) -> dict[str, float]:
    """The requested metrics that the evidence allows: label metrics need labels, fidelity metrics the reference
    outputs; with predictions only (a device that returns no outputs) accuracy, macro-F1 and top-1 agreement."""
    y = labels if labels is not None and len(labels) and np.min(labels) >= 0 else None
    if names is None:
        names = default_metrics(y is not None, reference is not None)
    if outputs is not None:
        predictions = as_rows(outputs).argmax(1)
    out: dict[str, float] = {}
    for name in names:
        value = None
        if name in LABEL_METRICS and y is not None:
            value = _label_metric(name, y, predictions, outputs, top_k)
        elif name in FIDELITY_METRICS and reference is not None:
            value = _fidelity_metric(name, reference, predictions, outputs, top_k)
        if value is not None:
            out[name] = value
    return out


def _label_metric(name: str, y: np.ndarray, predictions: np.ndarray | None, outputs: np.ndarray | None,
                  top_k: int) -> float | None:
    if name == "accuracy" and predictions is not None:
        return float((np.asarray(predictions) == y).mean())
    if name == "macro_f1" and predictions is not None:
        return macro_f1(predictions, y)
    if outputs is None:
        return None
    n_out = as_rows(outputs).shape[1]
    if name == "top_k_accuracy" and n_out > 1:
        return top_k_accuracy(outputs, y, top_k)
    if name in ("mse", "mae") and n_out == 1:  # a regression output against numeric targets
        err = as_rows(outputs)[:, 0] - np.asarray(y, dtype=np.float64)
        return float(np.mean(err ** 2) if name == "mse" else np.mean(np.abs(err)))
    return None


def _fidelity_metric(name: str, reference: np.ndarray, predictions: np.ndarray | None, outputs: np.ndarray | None,
                     top_k: int) -> float | None:
    if name == "top1_agreement" and predictions is not None:
        return float((np.asarray(predictions) == as_rows(reference).argmax(1)).mean())
    if outputs is None:
        return None
    n_out = as_rows(outputs).shape[1]
    if name == "cosine":
        return cosine(reference, outputs)
    if name in ("max_abs", "mean_abs"):
        diff = np.abs(as_rows(reference) - as_rows(outputs))
        return float(diff.max() if name == "max_abs" else diff.mean()) if diff.size else 0.0
    if name == "top_k_agreement" and n_out > 1:
        return top_k_agreement(reference, outputs, top_k)
    if name == "nn_agreement":
        return nn_agreement(reference, outputs, top_k)
    return None
