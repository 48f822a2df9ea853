"""A data source: seeded Gaussian blobs, one per class, as an (N, features) float array set."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from edgekit.data.config import SourceConfig
from edgekit.data.splits import Splits, make_splits


class BlobsData(SourceConfig):
    source: Literal["blobs"]
    samples: int = Field(300, ge=30)
    features: int = Field(6, ge=1)
    classes: int = Field(3, ge=2)


def load(cfg: BlobsData, seed: int) -> Splits:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(cfg.classes, cfg.features))
    y = rng.integers(0, cfg.classes, size=cfg.samples)
    x = (centers[y] + rng.normal(0, 1, size=(cfg.samples, cfg.features))).astype(np.float32)
    return make_splits(x, y, cfg, seed, class_names=[f"blob {i}" for i in range(cfg.classes)], source="blobs")
