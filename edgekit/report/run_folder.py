"""A run folder on disk: one run per folder, replaced only on request, and never written through a symlink.

edgekit writes no symlinks, so one found in a run folder was planted: a resumed run removes it (the link, never its
target) and makes the file again; commands that only add to a finished run refuse the folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgekit.atomic import make_dir
from edgekit.errors import RunFolderError

ENTRIES = ("report.json", "recipe.yaml", "model.safetensors", "artifacts", "samples", "plots", "report.html",
           "report.md")


def is_run_folder(path: Path) -> bool:
    return (Path(path) / "report.json").exists() or (Path(path) / "recipe.yaml").exists()


def prepare_new(out: Path, force: bool = False) -> Path:
    """Make `out` ready for a new run: absent or empty, or (with `force`) an edgekit run folder whose edgekit
    files are removed first. Anything else is refused, so two runs never mix in one folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            what = "a run folder" if is_run_folder(out) else "a folder that is not empty"
            hint = f"`edgekit run --resume {out}` to finish it, " if is_run_folder(out) else ""
            raise RunFolderError(f"--out {out} is {what}: use {hint}--force to replace it, or another --out")
        if not is_run_folder(out):
            raise RunFolderError(f"--force replaces only an edgekit run folder, and {out} holds no report.json or "
                                 f"recipe.yaml: choose another --out")
        clear(out)
    return make_dir(out)


def clear(run_dir: Path) -> None:
    """Remove what edgekit writes in a run folder, and nothing else. Symlinks are unlinked, never followed."""
    run_dir = Path(run_dir)
    for p in [run_dir / n for n in ENTRIES] + sorted(run_dir.glob(".*.tmp")):
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)


def symlinks(run_dir: Path) -> list[Path]:
    """Every symlink inside the run folder (not descending into linked folders)."""
    found = []
    for top, dirs, files in os.walk(run_dir, followlinks=False):
        found += [Path(top) / n for n in dirs + files if (Path(top) / n).is_symlink()]
    return sorted(found)


def remove_symlinks(run_dir: Path, log=print) -> None:
    """Before a resume writes in a folder: unlink planted symlinks so nothing is written through one."""
    for link in symlinks(run_dir):
        log(f"  removed the symlink {link.relative_to(run_dir)} (edgekit never writes one); its file is made again")
        link.unlink()


def refuse_symlinks(run_dir: Path) -> None:
    """Before a command adds to a finished run: a planted symlink makes the folder untrusted."""
    found = symlinks(run_dir)
    if found:
        raise RunFolderError(f"run folder {run_dir}: {found[0].relative_to(run_dir)} is a symlink; edgekit never writes "
                             f"one, so the folder was altered (finish it with `edgekit run --resume {run_dir}`)")
