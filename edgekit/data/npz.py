"""User arrays in an .npz file."""

from __future__ import annotations

import zipfile

import numpy as np

from edgekit.data.splits import Splits, make_splits
from edgekit.errors import DataError


def load(cfg, seed: int) -> Splits:
    if not cfg.path.is_file():
        raise DataError(f"{cfg.path}: npz file not found")
    try:
        with np.load(cfg.path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise DataError(f"{cfg.path}: not a readable .npz file (object arrays are refused): {e}") from e
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        x, y = arrays["x_train"], arrays["y_train"]
        test = (arrays["x_test"], arrays["y_test"])
    elif {cfg.x_key, cfg.y_key} <= arrays.keys():
        x, y, test = arrays[cfg.x_key], arrays[cfg.y_key], None
    else:
        raise DataError(
            f"{cfg.path}: expected arrays '{cfg.x_key}' and '{cfg.y_key}' (or x_train/y_train/x_test/y_test); "
            f"found {sorted(arrays)}"
        )
    if x.ndim == 3:  # (N, H, W) grayscale images
        x = x[:, None]
    if x.ndim not in (2, 4):
        raise DataError(f"{cfg.path}: x must be (N, F), (N, H, W) or (N, C, H, W); got shape {x.shape}")
    return make_splits(x, y, cfg, seed, test=test, source=f"npz:{cfg.path.name}")
