"""Data sources, chosen by the recipe's `data.source`."""

from __future__ import annotations

import importlib

from edgekit.data.splits import Splits

SOURCES = {
    "digits": "edgekit.data.digits",
    "fashion-mnist": "edgekit.data.fashion_mnist",
    "npz": "edgekit.data.npz",
    "image-folder": "edgekit.data.image_folder",
    "csv": "edgekit.data.csv",
    "waveforms": "edgekit.data.synthetic",
    "tokens": "edgekit.data.synthetic",
}


def load_data(cfg, seed: int = 0) -> Splits:
    """Load and split the data a recipe names."""
    return importlib.import_module(SOURCES[cfg.source]).load(cfg, seed)


__all__ = ["SOURCES", "Splits", "load_data"]
