"""How edgekit starts Python child processes (bench agents, environment checks, search workers).

`python -m X` and `python -c CODE` put the current folder first on sys.path, so a `numpy.py` or an `edgekit/`
folder in whatever repository or run folder the user stands in would be imported by the child instead of the
real package. Children run with `-P` (Python 3.11+: no unsafe path prepended), and PYTHONPATH names the folder
this edgekit was imported from, so the child imports the same edgekit as its parent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])


def python_argv(*args: str) -> list[str]:
    """`[python, -P, *args]` for this interpreter."""
    return [sys.executable, "-P", *args]


def child_env(base: dict | None = None) -> dict:
    """The environment for a child from `python_argv`: `base` (default os.environ) with this edgekit's folder
    first on PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != PACKAGE_PARENT]
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, *rest])
    return env
