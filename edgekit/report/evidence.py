"""Raw evidence kept beside report.json: per-sample predictions, labels and latency samples, hash-checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import GateInputError


def save_samples(path: Path, predictions, labels, latency_ms=None, canary_ms=None) -> tuple[Path, str]:
    """Write an npz atomically; return its path and sha256 (recorded in the report)."""
    from edgekit.atomic import atomic_path
    from edgekit.export.artifact import file_sha256

    path = Path(path)
    arrays = {"predictions": np.asarray(predictions, dtype=np.int32), "labels": np.asarray(labels, dtype=np.int32)}
    if latency_ms is not None:
        arrays["latency_ms"] = np.asarray(latency_ms, dtype=np.float32)
    if canary_ms is not None and len(canary_ms):
        arrays["canary_ms"] = np.asarray(canary_ms, dtype=np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return path, file_sha256(path)


def load_samples(run_dir: Path, rel: str | None, sha256: str | None) -> dict | None:
    """Load evidence if it is present; a file whose hash differs from the report's is an error, not data."""
    from edgekit.array_files import check_array_file
    from edgekit.export.artifact import file_sha256
    from edgekit.names import contained

    if not rel:
        return None
    path = contained(Path(run_dir), rel, what="evidence file", where=str(Path(run_dir) / "report.json"))
    if not path.is_file():
        return None
    if sha256 and file_sha256(path) != sha256:
        raise GateInputError(f"{path}: evidence file does not match the hash in report.json (edited or corrupt)")
    check_array_file(path, GateInputError)
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
