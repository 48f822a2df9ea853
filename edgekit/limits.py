"""Size limits for files from untrusted places, checked before anything is allocated.

Each limit can be raised with an environment variable (bytes or a count; suffixes k, M, G, T are powers of 1024):

- EDGEKIT_MAX_MODEL_BYTES (4G): an ONNX file with its external data, a TFLite file, a safetensors file, and any
  one tensor a model file declares.
- EDGEKIT_MAX_DATA_BYTES (4G): a data file (.npz member, CSV) and any one array it declares.
- EDGEKIT_MAX_JSON_BYTES (64M): report.json, search.json, a Hugging Face config or index.
- EDGEKIT_MAX_YAML_BYTES (1M) and EDGEKIT_MAX_YAML_NODES (100k, aliases counted each time they are used): a recipe,
  a search recipe or a device profile.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from edgekit.errors import EdgekitError

DEFAULTS = {
    "EDGEKIT_MAX_MODEL_BYTES": 4 << 30,
    "EDGEKIT_MAX_DATA_BYTES": 4 << 30,
    "EDGEKIT_MAX_JSON_BYTES": 64 << 20,
    "EDGEKIT_MAX_YAML_BYTES": 1 << 20,
    "EDGEKIT_MAX_YAML_NODES": 100_000,
}
_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def limit(name: str) -> int:
    """The limit `name` (one of DEFAULTS), from the environment when set there."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return DEFAULTS[name]
    scale = _SUFFIX.get(raw[-1].lower(), 1)
    digits = raw[:-1] if scale > 1 else raw
    try:
        value = int(float(digits) * scale)
    except ValueError:
        raise EdgekitError(f"environment variable {name}={raw!r}: expected a number of bytes such as 8G") from None
    if value <= 0:
        raise EdgekitError(f"environment variable {name}={raw!r}: must be positive")
    return value


def human(n: int | float) -> str:
    """A byte count for messages: '16.0 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def shape_problem(dims, itemsize: int, name: str) -> str | None:
    """Why a declared shape is absurd (a negative dimension, or more bytes than the limit `name`), else None."""
    dims = [int(d) for d in dims]
    if any(d < 0 for d in dims):
        return f"declares a negative dimension {dims}"
    nbytes = math.prod(dims) * max(int(itemsize), 1)
    cap = limit(name)
    if nbytes > cap:
        return f"declares {human(nbytes)} ({dims}), over the {human(cap)} limit ({name})"
    return None


def over_limit(nbytes: int, name: str, what: str) -> str | None:
    """A message when `nbytes` exceeds the limit `name`, else None."""
    cap = limit(name)
    if nbytes > cap:
        return f"{what} is {human(nbytes)}, over the {human(cap)} limit (raise {name} to allow it)"
    return None


def read_json(path: Path, error: type = EdgekitError):
    """JSON from an untrusted file: refused over EDGEKIT_MAX_JSON_BYTES before reading; invalid or absurdly nested
    JSON is `error` naming the file."""
    path = Path(path)
    too_big = over_limit(path.stat().st_size, "EDGEKIT_MAX_JSON_BYTES", "the file")
    if too_big:
        raise error(f"{path}: {too_big}")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid JSON: {e}") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply") from None
