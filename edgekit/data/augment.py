"""Training-time augmentation of image batches: random shift, horizontal flip, Gaussian noise."""

from __future__ import annotations

import numpy as np


def augment_batch(xb: np.ndarray, aug, rng: np.random.Generator) -> np.ndarray:
    if aug is None or xb.ndim != 4 or (aug.shift == 0 and not aug.flip and aug.noise == 0):
        return xb
    out = xb.copy()
    if aug.shift:
        s = aug.shift
        padded = np.pad(out, ((0, 0), (0, 0), (s, s), (s, s)), mode="constant")
        h, w = out.shape[2:]
        dy = rng.integers(0, 2 * s + 1, len(out))
        dx = rng.integers(0, 2 * s + 1, len(out))
        for i in range(len(out)):
            out[i] = padded[i, :, dy[i]: dy[i] + h, dx[i]: dx[i] + w]
    if aug.flip:
        flip = rng.random(len(out)) < 0.5
        out[flip] = out[flip, :, :, ::-1]
    if aug.noise:
        out = out + rng.normal(0.0, aug.noise, out.shape).astype(np.float32)
    return np.ascontiguousarray(out, dtype=np.float32)
