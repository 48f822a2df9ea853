"""NumPy .npy/.npz files from untrusted places (data, run folders): each array's declared shape and dtype, read from
its header, must fit in the bytes stored and the limit EDGEKIT_MAX_DATA_BYTES before numpy allocates it."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from edgekit.errors import DataError
from edgekit.limits import over_limit, shape_problem

DATA = "EDGEKIT_MAX_DATA_BYTES"


def _header_problem(f, stored: int, name: str) -> str | None:
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    why = shape_problem(shape, dtype.itemsize, DATA)
    if why:
        return f"array '{name}' {why}"
    if math.prod(shape) * dtype.itemsize > stored:
        return (f"array '{name}' declares shape {list(shape)} {dtype}, more than the {stored} bytes stored "
                f"(truncated or lying file)")
    return None


def check_array_file(path: Path, error: type = DataError) -> None:
    """Check an .npy file, or every .npy member of an .npz, before np.load reads it; raise `error` naming the file."""
    path = Path(path)
    problem = None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                problem = over_limit(sum(i.file_size for i in zf.infolist()), DATA, "the arrays uncompressed")
                for info in (i for i in zf.infolist() if i.filename.endswith(".npy")):
                    with zf.open(info) as f:
                        problem = problem or _header_problem(f, info.file_size, info.filename[:-4])
        else:
            problem = over_limit(path.stat().st_size, DATA, "the file")
            with open(path, "rb") as f:
                problem = problem or _header_problem(f, path.stat().st_size, path.stem)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise error(f"{path}: not a readable NumPy file: {e}") from e
    if problem:
        raise error(f"{path}: {problem}")
