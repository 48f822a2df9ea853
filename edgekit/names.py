"""Names and paths that come from untrusted files: one validated name type, and paths kept inside their folder.

Every name that becomes part of a path (export and pass artifacts, baselines, search studies, devices) is a `Name`.
Every path read from a report, a profile or a run folder goes through `contained()` before it is opened, and every
write goes through `safe_target()` so it never follows a symlink out of its folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from edgekit.errors import EdgekitError

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_NAME_RE = re.compile(NAME_PATTERN)


class UnsafeInputError(EdgekitError):
    """A name or path from an untrusted file would escape its folder, or is not a plain name."""


def name_problem(value: object) -> str | None:
    """Why `value` is not a valid name, or None if it is."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not _NAME_RE.fullmatch(value) or value in (".", "..") or ".." in value:
        shown = value if len(value) <= 80 else value[:77] + "..."
        return (f"{shown!r} is not a valid name: 1-64 characters of letters, digits, '.', '_' and '-', starting with "
                f"a letter or digit, without '..'")
    return None


def check_name(value: object, what: str = "name", where: str | None = None) -> str:
    """Return `value` if it is a valid name; else raise UnsafeInputError naming `what` (and the file `where`)."""
    why = name_problem(value)
    if why:
        raise UnsafeInputError(f"{where + ': ' if where else ''}{what}: {why}")
    return value  # type: ignore[return-value]


def _validate(value: str) -> str:
    why = name_problem(value)
    if why:
        raise ValueError(why)
    return value


Name = Annotated[str, AfterValidator(_validate)]
"""A pydantic field type for a name that becomes a file or folder name."""


def printable(value: object, limit: int = 2000) -> str:
    """Text from an untrusted file made safe for a terminal: one line, control characters (ANSI escapes, OSC links,
    carriage returns) shown escaped instead of acted on, cut at `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def contained(base: Path, rel: str | os.PathLike, what: str = "path", where: str | None = None) -> Path:
    """`base/rel`, resolved, guaranteed to lie inside `base` (no absolute paths, no '..', no symlink out).

    Raises UnsafeInputError naming `what` and the file `where` the path was read from."""
    prefix = f"{where + ': ' if where else ''}{what}"
    text = os.fspath(rel)
    if not text or "\x00" in text or Path(text).is_absolute() or text.startswith("~"):
        raise UnsafeInputError(f"{prefix}: {text!r} must be a relative path inside {base}")
    root = Path(base).resolve()
    full = (root / text).resolve()
    if full != root and root not in full.parents:
        raise UnsafeInputError(f"{prefix}: {text!r} leads outside {base}")
    return full


def safe_target(base: Path, rel: str | os.PathLike, what: str = "output") -> Path:
    """A path to write inside `base`: contained, and neither it nor a folder between it and `base` is a symlink."""
    root = Path(base).resolve()
    full = contained(root, rel, what)
    p = full
    while p != root:
        if p.is_symlink():
            raise UnsafeInputError(f"{what}: refusing to write through the symlink {p}")
        p = p.parent
    return full


def is_within(base: Path, path: Path) -> bool:
    """Whether `path` (resolved) lies inside `base` (resolved)."""
    root, full = Path(base).resolve(), Path(path).resolve()
    return full == root or root in full.parents
