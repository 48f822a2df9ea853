"""Data configs: one class per source, told apart by `source`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edgekit.config_base import Strict


class Augment(Strict):
    """On-the-fly training augmentation for image data."""

    shift: int = Field(default=0, ge=0, description="max random translation in pixels")
    flip: bool = False
    noise: float = Field(default=0.0, ge=0.0, description="std of added Gaussian noise (after normalization)")


class SourceConfig(Strict):
    """What every data source's config shares: how its samples are split, normalized and augmented."""

    val_fraction: float = Field(default=0.15, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    calibration_size: int = Field(default=128, ge=1, description="samples drawn from the train split for calibration")
    normalize: Literal["standard", "minmax", "none"] = "standard"
    augment: Augment = Field(default_factory=Augment)
    limit: int | None = Field(default=None, ge=10, description="use at most this many samples (seeded subsample)")

    def unlabelled(self) -> bool:
        """Whether the data has no labels (fidelity metrics only, nothing to train on)."""
        return False

    @model_validator(mode="after")
    def _fractions(self):
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% for training")
        return self


class DigitsData(SourceConfig):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images); no download."""

    source: Literal["digits"]


class FashionMnistData(SourceConfig):
    """Fashion-MNIST from the standard IDX files; the official test set is the test split."""

    source: Literal["fashion-mnist"]
    path: Path | None = Field(default=None, description="folder with the four *-ubyte(.gz) files")


Layout = Literal["auto", "features", "images", "sequence", "tokens"]
LAYOUT_HELP = ("auto: (N, F) features, (N, H, W) or (N, C, H, W) images; sequence: (N, T) or (N, T, F) floats; "
               "tokens: (N, T) integer ids (kept int64, not normalized)")


class NpzData(SourceConfig):
    """Arrays in an .npz file: `x`/`y`, or pre-split `x_train`/`y_train`/`x_test`/`y_test`."""

    source: Literal["npz"]
    path: Path
    x_key: str = "x"
    y_key: str = "y"
    layout: Layout = Field(default="auto", description=LAYOUT_HELP)
    labels: bool | None = Field(default=None, description="None: use y when the file has it; false: unlabelled (fidelity "
                                                          "metrics only)")
    vocab_size: int | None = Field(default=None, ge=2, description="tokens: the vocabulary (default: largest id + 1)")

    def unlabelled(self) -> bool:
        return self.labels is False


class ImageFolderData(SourceConfig):
    """`root/<class name>/<image>`; images are resized to `image_size`."""

    source: Literal["image-folder"]
    path: Path
    image_size: tuple[int, int] = (32, 32)
    grayscale: bool = False


class CsvData(SourceConfig):
    """CSV with a header row; every column but the label is a feature (or a time step / token of a sequence)."""

    source: Literal["csv"]
    path: Path
    label_column: str | None = Field(default="label", description="null: unlabelled")
    layout: Literal["features", "sequence", "tokens"] = Field(
        default="features", description="sequence: each row is a univariate sequence (N, T, 1); tokens: integer ids (N, T)")
    vocab_size: int | None = Field(default=None, ge=2)

    def unlabelled(self) -> bool:
        return self.label_column is None




class WaveformsData(SourceConfig):
    """Synthetic time series, no download: classify the shape of a noisy periodic signal with random frequency,
    phase and amplitude (and a random offset). x is (N, seq_len, channels) float32."""

    source: Literal["waveforms"]
    samples: int = Field(default=2000, ge=20)
    seq_len: int = Field(default=64, ge=8)
    channels: int = Field(default=1, ge=1, description="channels > 1: each carries the class shape, with its own phase")
    shapes: list[Literal["sine", "square", "sawtooth", "triangle", "chirp", "pulse"]] = Field(
        default_factory=lambda: ["sine", "square", "sawtooth", "triangle"], min_length=2)
    cycles: tuple[float, float] = Field(default=(1.5, 5.0), description="periods per sequence (random in this range)")
    noise: float = Field(default=0.3, ge=0, description="std of added Gaussian noise, relative to the unit amplitude")


class TokensData(SourceConfig):
    """Synthetic token sequences, no download. x is (N, seq_len) int64 ids in [0, vocab_size).

    majority: `classes` marker tokens are sprinkled among filler tokens; the label is the marker seen most often.
    contains: binary; 1 when marker A is immediately followed by marker B somewhere (both markers appear in every
    sequence, so only their order tells: needs position-aware attention or recurrence).
    random: uniform ids, unlabelled (for fidelity metrics of a model you bring)."""

    source: Literal["tokens"]
    samples: int = Field(default=2000, ge=20)
    seq_len: int = Field(default=32, ge=4)
    vocab_size: int = Field(default=32, ge=4)
    task: Literal["majority", "contains", "random"] = "majority"
    classes: int = Field(default=4, ge=2, description="majority: number of marker tokens (= classes)")
    normalize: Literal["none"] = "none"

    def unlabelled(self) -> bool:
        return self.task == "random"

    @model_validator(mode="after")
    def _room(self):
        if self.task == "majority" and self.classes >= self.vocab_size:
            raise ValueError(f"majority needs vocab_size > classes ({self.vocab_size} <= {self.classes})")
        return self

