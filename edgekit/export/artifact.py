"""Describe a written model file as a report Artifact (size, hash, I/O spec)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgekit.report.schema import Artifact, TensorSpec


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(name: str, fmt: str, precision: str, path: Path, run_dir: Path, *, inputs=(), outputs=(),
             source: str | None = None, ops: dict | None = None, details: dict | None = None) -> Artifact:
    path = Path(path)
    try:
        rel = str(path.resolve().relative_to(Path(run_dir).resolve()))
    except ValueError:
        rel = str(path.resolve())
    return Artifact(
        name=name, format=fmt, precision=precision, path=rel, size_bytes=path.stat().st_size,
        sha256=file_sha256(path), source=source,
        inputs=[TensorSpec(**s) for s in inputs], outputs=[TensorSpec(**s) for s in outputs],
        ops=ops or {}, details=details or {},
    )


def artifact_path(run_dir: Path, artifact: Artifact) -> Path:
    p = Path(artifact.path)
    return p if p.is_absolute() else Path(run_dir) / p
