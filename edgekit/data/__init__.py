"""Data sources, chosen by the recipe's `data.source`: one entry per source holds its config and its loader."""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.data.config import CsvData, DigitsData, FashionMnistData, ImageFolderData, NpzData, TokensData, WaveformsData
from edgekit.data.splits import Splits
from edgekit.registry import load_object, registry_union


@dataclass(frozen=True)
class DataSource:
    """`config`: the `data:` config class (its `source` field names the entry); `impl`: 'module:function', a
    `load(cfg, seed) -> Splits`."""

    config: type
    impl: str


SOURCES: dict[str, DataSource] = {
    "digits": DataSource(DigitsData, "edgekit.data.digits:load"),
    "fashion-mnist": DataSource(FashionMnistData, "edgekit.data.fashion_mnist:load"),
    "npz": DataSource(NpzData, "edgekit.data.npz:load"),
    "image-folder": DataSource(ImageFolderData, "edgekit.data.image_folder:load"),
    "csv": DataSource(CsvData, "edgekit.data.csv:load"),
    "waveforms": DataSource(WaveformsData, "edgekit.data.synthetic:load_waveforms"),
    "tokens": DataSource(TokensData, "edgekit.data.synthetic:load_tokens"),
}

DataConfig = registry_union(SOURCES, "source")


def load_data(cfg, seed: int = 0) -> Splits:
    """Load and split the data a recipe names."""
    return load_object(SOURCES[cfg.source].impl)(cfg, seed)


__all__ = ["SOURCES", "DataConfig", "DataSource", "Splits", "load_data"]
