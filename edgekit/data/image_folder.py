"""Images laid out as root/<class name>/<file>; classes are the sorted sub-folder names."""

from __future__ import annotations

import numpy as np

from edgekit.data.splits import Splits, make_splits
from edgekit.errors import DataError

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def load(cfg, seed: int) -> Splits:
    from PIL import Image, UnidentifiedImageError
    from PIL.Image import DecompressionBombError

    root = cfg.path
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"{root}: need one sub-folder per class (at least 2), found {classes}")
    xs, ys = [], []
    mode = "L" if cfg.grayscale else "RGB"
    h, w = cfg.image_size
    for label, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.suffix.lower() not in SUFFIXES:
                continue
            try:
                with Image.open(f) as im:
                    arr = np.asarray(im.convert(mode).resize((w, h)), dtype=np.float32) / 255.0
            except (UnidentifiedImageError, DecompressionBombError, OSError) as e:
                raise DataError(f"{f}: cannot read image: {e}") from e
            xs.append(arr[None] if cfg.grayscale else arr.transpose(2, 0, 1))
            ys.append(label)
    if not xs:
        raise DataError(f"{root}: no images found (suffixes {sorted(SUFFIXES)})")
    return make_splits(np.stack(xs), np.array(ys), cfg, seed, class_names=classes, source=f"image-folder:{root.name}",
                       preprocess=f"image converted to {mode}, resized to {w}x{h} (width x height), pixels (0-255) "
                                  "divided by 255, channels first")
