"""Stored baselines: a report.json and its evidence, copied under a name for later gates.

A baseline name is a `Name`: it can only ever be one folder directly inside the store. A save is built in a
temporary folder inside the store and renamed into place, so nothing outside the store is ever removed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edgekit.errors import GateInputError
from edgekit.names import check_name, contained, name_problem, safe_target

DEFAULT_STORE = Path(".edgekit/baselines")


def store_dir() -> Path:
    return Path(os.environ.get("EDGEKIT_BASELINES", DEFAULT_STORE))


def _evidence_files(report) -> list[tuple[str, str | None]]:
    """(relative path, sha256) of the per-sample evidence a report refers to."""
    ref = report.reference
    files = [(ref.get("samples"), ref.get("samples_sha256")), (ref.get("outputs"), ref.get("outputs_sha256"))]
    files += [(r.samples, r.samples_sha256) for r in report.results]
    return [(rel, sha) for rel, sha in files if rel]


def save_baseline(run_dir: Path, name: str = "main", store: Path | None = None) -> Path:
    """Copy report.json, its evidence files and its artifact files into the store, replacing an older baseline of
    that name. Each file is checked against the sha256 the report recorded first. The artifacts let a later gate
    time baseline and candidate side by side on the same machine."""
    from edgekit.export.artifact import artifact_path, companions, file_sha256, verify_artifacts
    from edgekit.report.io import load_report, report_dir

    check_name(name, "baseline name")
    src = report_dir(run_dir)
    report = load_report(src)  # refuse to store something that is not a report
    verify_artifacts(report, src)
    where = str(src / "report.json")
    root = store or store_dir()
    root.mkdir(parents=True, exist_ok=True)
    dst = safe_target(root, name, what="baseline")
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        shutil.copyfile(src / "report.json", tmp / "report.json")
        for rel, sha in _evidence_files(report):
            path = contained(src, rel, what="evidence file", where=where)
            if not path.is_file():
                continue
            if sha and file_sha256(path) != sha:
                raise GateInputError(f"{where}: evidence file {rel} does not match its recorded sha256 (edited or "
                                     f"corrupt)")
            _copy(path, tmp, path.relative_to(src.resolve()))
        for art in report.artifacts:
            if art.status != "ok" or not art.path:
                continue
            path = artifact_path(src, art)
            if path.is_file():
                for f in [path, *companions(path)]:
                    _copy(f, tmp, f.relative_to(src.resolve()))
        old = None
        if dst.exists():
            old = Path(tempfile.mkdtemp(prefix=".old-", dir=root))
            os.replace(dst, old / "baseline")
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dst


def _copy(src: Path, dst_root: Path, rel: Path) -> None:
    target = dst_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)


def baseline_exists(ref: Path | str, store: Path | None = None) -> bool:
    """Whether `ref` names a report/run folder or a saved baseline (a first CI run has none yet)."""
    try:
        resolve_baseline(ref, store)
    except GateInputError:
        return False
    return True


def resolve_baseline(ref: Path | str, store: Path | None = None) -> Path:
    """A path to a report/run folder, or the name of a stored baseline; returns the report path or folder."""
    p = Path(ref)
    if p.is_file() or p.is_dir():
        return p
    root = store or store_dir()
    if name_problem(str(ref)) is None:
        named = contained(root, str(ref), what="baseline")
        if (named / "report.json").is_file():
            return named
    raise GateInputError(f"baseline '{ref}' not found (not a report path, nor a baseline saved in {root})")


def list_baselines(store: Path | None = None) -> list[Path]:
    d = store or store_dir()
    return sorted(p for p in d.iterdir() if not p.name.startswith(".") and not p.is_symlink()
                  and (p / "report.json").is_file()) if d.is_dir() else []
