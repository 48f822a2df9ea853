"""Fashion-MNIST read from the standard IDX files (gzip or raw)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from edgekit.data.splits import Splits, make_splits
from edgekit.errors import DataError
from edgekit.limits import limit, over_limit

DEFAULT_DIRS = (Path("/usr/share/datasets/fashion-mnist"), Path.home() / ".cache/edgekit/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
HOW_TO_GET = (
    "install Debian's package `dataset-fashion-mnist` (apt-get install dataset-fashion-mnist), or put the four "
    "IDX files (train-images-idx3-ubyte.gz, ...) in a folder and set data.path"
)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST container format: magic, dims, then big-endian data)."""
    opener = gzip.open if path.suffix == ".gz" else open
    cap = limit("EDGEKIT_MAX_DATA_BYTES")
    try:
        with opener(path, "rb") as f:
            raw = f.read(cap + 1)  # a gzip bomb stops here
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file: {e}") from e
    if len(raw) > cap:
        raise DataError(f"{path}: {over_limit(len(raw), 'EDGEKIT_MAX_DATA_BYTES', 'the IDX data')}")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(dtypes[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DataError(f"{path}: truncated IDX file ({len(raw) - offset} data bytes, header says {expected})")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(dims)


def find_dir(path: Path | None) -> Path:
    candidates = [path] if path is not None else list(DEFAULT_DIRS)
    for d in candidates:
        if d is not None and all(_file(d, stem) for stem in FILES.values()):
            return d
    where = str(path) if path is not None else " or ".join(str(d) for d in DEFAULT_DIRS)
    raise DataError(f"Fashion-MNIST not found in {where}: {HOW_TO_GET}")


def _file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load(cfg, seed: int) -> Splits:
    folder = find_dir(cfg.path)
    arrays = {k: read_idx(_file(folder, stem)) for k, stem in FILES.items()}
    x_train = arrays["x_train"].astype(np.float32)[:, None] / 255.0
    x_test = arrays["x_test"].astype(np.float32)[:, None] / 255.0
    return make_splits(
        x_train, arrays["y_train"], cfg, seed, class_names=CLASSES,
        test=(x_test, arrays["y_test"]), source="fashion-mnist",
        preprocess="28x28 grey pixels (0-255) divided by 255",
    )
