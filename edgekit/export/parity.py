"""Compare an artifact's outputs with a reference's on the same real inputs."""

from __future__ import annotations

import numpy as np

from edgekit.config_base import Tolerance
from edgekit.errors import ExportParityError
from edgekit.report.schema import Parity


def _flat(reference: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    out = np.asarray(output, dtype=np.float64).reshape(len(output), -1)
    if ref.shape != out.shape:
        raise ExportParityError(
            "output", {}, {}, [f"output shape {tuple(output.shape)} differs from reference {tuple(reference.shape)}"]
        )
    return ref, out


def per_sample(reference: np.ndarray, output: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample cosine similarity and top-1 agreement (all True for single-output models), for paired tests."""
    ref, out = _flat(reference, output)
    denom = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cos = np.where(denom > 0, (ref * out).sum(axis=1) / np.maximum(denom, 1e-30), 1.0)
    agree = ref.argmax(1) == out.argmax(1) if ref.shape[1] > 1 else np.ones(len(ref), dtype=bool)
    return {"cosine": cos, "agree": agree}


def compare(reference: np.ndarray, output: np.ndarray) -> dict:
    """max-abs and mean-abs error, mean per-sample cosine similarity, and top-1 agreement."""
    ref, out = _flat(reference, output)
    diff = np.abs(ref - out)
    each = per_sample(ref, out)
    return {
        "samples": int(len(ref)),
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "mean_abs": float(diff.mean()) if diff.size else 0.0,
        "rel_error": float(diff.max() / max(float(np.abs(ref).max()), 1e-12)) if diff.size else 0.0,
        "cosine": float(each["cosine"].mean()) if len(ref) else 1.0,
        "top1_agreement": float(each["agree"].mean()) if len(ref) and ref.shape[1] > 1 else 1.0,
    }


def failures(numbers: dict, tolerance: Tolerance) -> list[str]:
    """Each tolerance bound the numbers break, with both values."""
    out = []
    if tolerance.max_abs is not None and numbers["max_abs"] > tolerance.max_abs:
        out.append(f"max_abs {numbers['max_abs']:.3g} > {tolerance.max_abs:.3g}")
    if tolerance.max_rel_error is not None and numbers.get("rel_error", 0.0) > tolerance.max_rel_error:
        out.append(f"rel_error {numbers['rel_error']:.3g} > {tolerance.max_rel_error:.3g}")
    if tolerance.min_cosine is not None and numbers["cosine"] < tolerance.min_cosine:
        out.append(f"cosine {numbers['cosine']:.6f} < {tolerance.min_cosine}")
    if tolerance.min_top1_agreement is not None and numbers["top1_agreement"] < tolerance.min_top1_agreement:
        out.append(f"top1_agreement {numbers['top1_agreement']:.4f} < {tolerance.min_top1_agreement}")
    return out


def check(artifact: str, numbers: dict, tolerance: Tolerance, reference: str, raise_on_fail: bool = True) -> Parity:
    """Build the parity record; beyond tolerance raise ExportParityError with the numbers."""
    failed = failures(numbers, tolerance)
    parity = Parity(reference=reference, tolerance=tolerance.model_dump(), passed=not failed, **numbers)
    if failed and raise_on_fail:
        raise ExportParityError(artifact, numbers, tolerance.model_dump(), failed)
    return parity
