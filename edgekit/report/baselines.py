"""Stored baselines: a report.json and its evidence, copied under a name for later gates."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgekit.errors import GateInputError

DEFAULT_STORE = Path(".edgekit/baselines")


def store_dir() -> Path:
    return Path(os.environ.get("EDGEKIT_BASELINES", DEFAULT_STORE))


def save_baseline(run_dir: Path, name: str = "main", store: Path | None = None) -> Path:
    """Copy report.json, samples/ and the artifact files of a run into the store, replacing an older baseline of
    that name. The artifacts let a later gate time baseline and candidate side by side on the same machine."""
    from edgekit.report.io import load_report, report_dir

    src = report_dir(run_dir)
    report = load_report(src)  # refuse to store something that is not a report
    dst = (store or store_dir()) / name
    tmp = dst.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy2(src / "report.json", tmp / "report.json")
    if (src / "samples").is_dir():
        shutil.copytree(src / "samples", tmp / "samples")
    for art in report.artifacts:
        rel = Path(art.path)
        if art.status != "ok" or rel.is_absolute() or ".." in rel.parts or not (src / rel).is_file():
            continue
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        for f in [src / rel, *sorted((src / rel).parent.glob(rel.name + ".*"))]:  # + ONNX external data
            shutil.copy2(f, tmp / rel.parent / f.name)
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)
    return dst


def baseline_exists(ref: Path | str, store: Path | None = None) -> bool:
    """Whether `ref` names a report/run folder or a saved baseline (a first CI run has none yet)."""
    p = Path(ref)
    return p.is_file() or p.is_dir() or ((store or store_dir()) / str(ref) / "report.json").is_file()


def resolve_baseline(ref: Path | str, store: Path | None = None) -> Path:
    """A path to a report/run folder, or the name of a stored baseline; returns the report path or folder."""
    p = Path(ref)
    if p.is_file() or p.is_dir():
        return p
    named = (store or store_dir()) / str(ref)
    if (named / "report.json").is_file():
        return named
    raise GateInputError(f"baseline '{ref}' not found (not a report path, nor a baseline saved in {store or store_dir()})")


def list_baselines(store: Path | None = None) -> list[Path]:
    d = store or store_dir()
    return sorted(p for p in d.iterdir() if (p / "report.json").is_file()) if d.is_dir() else []
