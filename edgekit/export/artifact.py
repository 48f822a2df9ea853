"""Describe a written model file as a report Artifact (size, hash, I/O spec), and open one from a run folder.

A run folder is evidence, not trusted input: an artifact path read from report.json must lie inside the folder, and
its file (with any ONNX external-data companion) must still hash to what the report recorded before it is used."""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgekit.errors import ArtifactError
from edgekit.names import UnsafeInputError, contained, safe_target
from edgekit.report.schema import Artifact, Report, TensorSpec


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def companions(path: Path) -> list[Path]:
    """Files written beside a model that belong to it (ONNX external data: `NAME.onnx.data`)."""
    path = Path(path)
    return sorted(p for p in path.parent.glob(path.name + ".*") if p.is_file() and not p.name.endswith(".tmp"))


def describe(name: str, fmt: str, precision: str, path: Path, run_dir: Path, *, inputs=(), outputs=(),
             source: str | None = None, ops: dict | None = None, details: dict | None = None) -> Artifact:
    path = Path(path)
    try:
        rel = str(path.resolve().relative_to(Path(run_dir).resolve()))
    except ValueError:
        raise ArtifactError(f"artifact {name}: {path} is not inside the run folder {run_dir}") from None
    details = dict(details or {})
    extra = {p.name: file_sha256(p) for p in companions(path)}
    if extra:
        details["companions_sha256"] = extra
    return Artifact(
        name=name, format=fmt, precision=precision, path=rel, size_bytes=path.stat().st_size,
        sha256=file_sha256(path), source=source,
        inputs=[TensorSpec(**s) for s in inputs], outputs=[TensorSpec(**s) for s in outputs],
        ops=ops or {}, details=details,
    )


def artifact_target(run_dir: Path, name: str, suffix: str) -> Path:
    """Where artifact `name` is written: `artifacts/NAME.SUFFIX` inside the run folder, never through a symlink."""
    return safe_target(run_dir, f"artifacts/{name}{suffix}", what=f"artifact {name}")


def artifact_path(run_dir: Path, artifact: Artifact) -> Path:
    """The artifact's file, resolved inside `run_dir` (an absolute or escaping path in the report is refused)."""
    try:
        return contained(run_dir, artifact.path, what=f"artifact {artifact.name}", where=str(Path(run_dir) / "report.json"))
    except UnsafeInputError as e:
        raise ArtifactError(str(e)) from None


def mismatch(run_dir: Path, artifact: Artifact) -> str | None:
    """Why the artifact's files in `run_dir` are not the ones the report recorded, or None when they are."""
    path = artifact_path(run_dir, artifact)
    if not path.is_file():
        return f"{artifact.path} is missing"
    if not artifact.sha256:
        return "report.json records no sha256 for it"
    if file_sha256(path) != artifact.sha256:
        return f"{artifact.path} does not match the sha256 in report.json (replaced or corrupt)"
    recorded = artifact.details.get("companions_sha256") or {}
    for name, sha in recorded.items():
        part = contained(path.parent, str(name), what=f"artifact {artifact.name} data file")
        if not part.is_file() or file_sha256(part) != sha:
            return f"its data file {name} is missing or does not match the sha256 in report.json"
    return None


def verified_path(run_dir: Path, artifact: Artifact) -> Path:
    """`artifact_path`, after checking the file's sha256 against the report; ArtifactError names both otherwise."""
    why = mismatch(run_dir, artifact)
    if why:
        raise ArtifactError(f"artifact {artifact.name} in run folder {run_dir}: {why}")
    return artifact_path(run_dir, artifact)


def verify_artifacts(report: Report, run_dir: Path, require: bool = False) -> None:
    """Check every finished artifact of a report against its run folder before any is used. A missing file is an
    error only with `require`; a file that is present but differs always is."""
    for art in report.artifacts:
        if art.status != "ok" or not art.path:
            continue
        if require or artifact_path(run_dir, art).exists():
            verified_path(run_dir, art)
