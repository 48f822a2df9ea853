"""Optional packages: what an extension imports and the `edgekit[...]` extra that installs it, checked without
importing anything (a missing extra is named before any work, not as a ModuleNotFoundError after the training)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass


def importable(name: str) -> bool:
    """Whether `import name` would find a module; nothing is imported (a dotted name imports its parents)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, a finder refusing, or a module without a spec
        return False


def installed_version(dist: str, missing: str | None = None) -> str | None:
    """The installed version of distribution `dist` (e.g. "onnxruntime"), or `missing` when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return missing


@dataclass(frozen=True)
class Needs:
    """The import names an extension needs and the extra providing them; "a|b" means either one will do."""

    extra: str
    modules: tuple[str, ...]

    def missing(self) -> list[str]:
        return [m for m in self.modules if not any(importable(alt) for alt in m.split("|"))]

    @property
    def install(self) -> str:
        return f"pip install 'edgekit[{self.extra}]'"


def missing_extras(needs: Iterable[tuple[str, Needs | None]]) -> list[str]:
    """One line per extra that has modules missing, naming what needs them:
    "tflite export needs: pip install 'edgekit[tflite]' (missing: litert_torch)"."""
    by_extra: dict[str, tuple[list[str], list[str]]] = {}
    for what, n in needs:
        miss = n.missing() if n is not None else []
        if miss:
            whats, mods = by_extra.setdefault(n.extra, ([], []))
            whats.extend([what] if what not in whats else [])
            mods.extend(m for m in miss if m not in mods)
    return [f"{', '.join(whats)} need{'s' if len(whats) == 1 else ''}: {Needs(extra, ()).install} "
            f"(missing: {', '.join(m.replace('|', ' or ') for m in mods)})" for extra, (whats, mods) in by_extra.items()]


def require(what: str, *needs: Needs | None) -> None:
    """Raise MissingExtra naming the extra to install when any of `needs` is not importable."""
    from edgekit.errors import MissingExtra

    lines = missing_extras((what, n) for n in needs)
    if lines:
        raise MissingExtra("; ".join(lines))
