"""Atomic file writes: write beside the target, then rename, so a killed run never leaves half a file.

The file gets the mode a plain `open()` would give (0o666 less the umask: 0644 by default), not mkstemp's 0600,
so a report served from a shared folder can be read."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from edgekit.errors import OutputError

WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG, errno.EEXIST,
                errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}


@contextlib.contextmanager
def atomic_path(target: Path):
    """Yield a temporary path in the target's folder; on success rename it over the target.

    A full disk, a missing permission or a file where a folder should be becomes one OutputError naming `target`."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise OutputError.from_os(e, target) from e
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, target)
    except OSError as e:
        if e.errno in WRITE_ERRNOS or e.errno is None:  # numpy's short write has no errno
            raise OutputError.from_os(e, target) from e
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def make_dir(path: Path) -> Path:
    """Create an output folder (and its parents); a file in the way or an OS refusal is one OutputError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder (an output folder is needed here)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError.from_os(e, path) from e
    return path


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
