"""Temporarily set environment variables (library switches such as offline mode or progress bars)."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def patched_environ(values: dict[str, str]):
    """Set `values` for the duration and restore what was there before (unset stays unset)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
