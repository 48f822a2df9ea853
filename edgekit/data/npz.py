"""User arrays in an .npz file: features, images, float sequences or integer token ids; labelled or not."""

from __future__ import annotations

import zipfile

import numpy as np

from edgekit.array_files import check_array_file
from edgekit.data.splits import Splits, check_finite, make_splits
from edgekit.errors import DataError


def load(cfg, seed: int) -> Splits:
    if not cfg.path.is_file():
        raise DataError(f"{cfg.path}: npz file not found")
    check_array_file(cfg.path)
    try:
        with np.load(cfg.path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise DataError(f"{cfg.path}: not a readable .npz file (object arrays are refused): {e}") from e
    split = {"x_train", "x_test"} <= arrays.keys()
    x_key, y_key = ("x_train", "y_train") if split else (cfg.x_key, cfg.y_key)
    has_y = y_key in arrays and (not split or "y_test" in arrays)
    if x_key not in arrays:
        raise DataError(f"{cfg.path}: expected array '{cfg.x_key}' (or x_train/y_train/x_test/y_test); "
                        f"found {sorted(arrays)}")
    if cfg.labels and not has_y:
        raise DataError(f"{cfg.path}: data.labels is true but there is no '{y_key}' array; found {sorted(arrays)}")
    labelled = has_y if cfg.labels is None else cfg.labels
    for key in (x_key, "x_test") if split else (x_key,):
        check_finite(arrays[key], str(cfg.path), f"array '{key}'")
    x = shape_inputs(arrays[x_key], cfg.layout, str(cfg.path))
    y = arrays[y_key] if labelled else None
    test = (shape_inputs(arrays["x_test"], cfg.layout, str(cfg.path)), arrays["y_test"] if labelled else None) \
        if split else None
    return make_splits(x, y, cfg, seed, test=test, source=f"npz:{cfg.path.name}", integer_inputs=cfg.layout == "tokens",
                       vocab_size=cfg.vocab_size)


def shape_inputs(x: np.ndarray, layout: str, where: str) -> np.ndarray:
    """Check and reshape x for its layout: (N, F), (N, C, H, W), (N, T, F) float or (N, T) integer ids."""
    if layout == "tokens":
        if x.ndim != 2 or x.dtype.kind not in "iu":
            raise DataError(f"{where}: tokens need an (N, T) integer array; got shape {x.shape} {x.dtype}")
        return x
    if x.dtype.kind not in "iufb":
        raise DataError(f"{where}: x must be numeric; got {x.dtype}")
    if 0 in x.shape[1:]:
        raise DataError(f"{where}: x has an empty dimension: shape {x.shape}")
    if layout == "sequence":
        if x.ndim == 2:  # (N, T) univariate
            return x[:, :, None]
        if x.ndim != 3:
            raise DataError(f"{where}: sequences need (N, T) or (N, T, F); got shape {x.shape}")
        return x
    if x.ndim == 3:  # (N, H, W) grayscale images
        x = x[:, None]
    if x.ndim not in (2, 4) or (layout == "features" and x.ndim != 2) or (layout == "images" and x.ndim != 4):
        raise DataError(f"{where}: x must be (N, F), (N, H, W) or (N, C, H, W) for layout '{layout}' "
                        f"(set data.layout: sequence or tokens for sequences); got shape {x.shape}")
    return x
