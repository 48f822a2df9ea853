"""Data configs: one class per source, told apart by `source`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from edgekit.config_base import Strict


class Augment(Strict):
    """On-the-fly training augmentation for image data."""

    shift: int = Field(0, ge=0, description="max random translation in pixels")
    flip: bool = False
    noise: float = Field(0.0, ge=0.0, description="std of added Gaussian noise (after normalization)")


class _DataBase(Strict):
    val_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    calibration_size: int = Field(128, ge=1, description="samples drawn from the train split for calibration")
    normalize: Literal["standard", "minmax", "none"] = "standard"
    augment: Augment = Field(default_factory=Augment)
    limit: int | None = Field(None, ge=10, description="use at most this many samples (seeded subsample)")

    @model_validator(mode="after")
    def _fractions(self):
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% for training")
        return self


class DigitsData(_DataBase):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images); no download."""

    source: Literal["digits"]


class FashionMnistData(_DataBase):
    """Fashion-MNIST from the standard IDX files; the official test set is the test split."""

    source: Literal["fashion-mnist"]
    path: Path | None = Field(None, description="folder with the four *-ubyte(.gz) files")


class NpzData(_DataBase):
    """Arrays in an .npz file: `x`/`y`, or pre-split `x_train`/`y_train`/`x_test`/`y_test`."""

    source: Literal["npz"]
    path: Path
    x_key: str = "x"
    y_key: str = "y"


class ImageFolderData(_DataBase):
    """`root/<class name>/<image>`; images are resized to `image_size`."""

    source: Literal["image-folder"]
    path: Path
    image_size: tuple[int, int] = (32, 32)
    grayscale: bool = False


class CsvData(_DataBase):
    """Tabular CSV with a header row; every column but the label is a float feature."""

    source: Literal["csv"]
    path: Path
    label_column: str = "label"


DataConfig = Annotated[
    Union[DigitsData, FashionMnistData, NpzData, ImageFolderData, CsvData],
    Field(discriminator="source"),
]
