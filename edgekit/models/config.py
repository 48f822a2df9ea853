"""Model configs: zoo architectures and the models users bring, told apart by `arch`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator

from edgekit.config_base import Strict

Init = Literal["default", "xavier", "he"]


class MlpConfig(Strict):
    arch: Literal["mlp"]
    hidden: list[int] = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    batch_norm: bool = False
    init: Init = "he"


class CnnConfig(Strict):
    """Small conv net: conv-bn-relu blocks, each stage after the first downsamples by 2."""

    arch: Literal["cnn"]
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64])
    kernel_size: int = Field(3, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    batch_norm: bool = True
    init: Init = "he"


class ResnetConfig(Strict):
    """ResNet with basic blocks; `widths` per stage, `blocks` per stage."""

    arch: Literal["resnet"]
    widths: list[int] = Field(default_factory=lambda: [16, 32, 64])
    blocks: list[int] = Field(default_factory=lambda: [1, 1, 1])
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    init: Init = "he"

    @field_validator("blocks")
    @classmethod
    def _positive(cls, v):
        if any(b < 1 for b in v):
            raise ValueError("every stage needs at least one block")
        return v


class MobilenetV2Config(Strict):
    """MobileNetV2 (inverted residuals, ReLU6, depthwise convs) scaled for small inputs by `width_mult`."""

    arch: Literal["mobilenet_v2"]
    width_mult: float = Field(1.0, gt=0.0)
    # (expansion t, channels c, repeats n, first stride s) per stage, as in the paper's table 2.
    stages: list[tuple[int, int, int, int]] = Field(
        default_factory=lambda: [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 1)]
    )
    stem_channels: int = 32
    last_channels: int = 256
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    init: Init = "he"


class FactoryModel(Strict):
    """A user model: `module:callable` returning an nn.Module, plus optional weights."""

    arch: Literal["factory"]
    factory: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    weights: Path | None = None


class TorchScriptModel(Strict):
    arch: Literal["torchscript"]
    path: Path


class OnnxModel(Strict):
    """An existing .onnx model: export is skipped, ONNX-level passes and benches run on it."""

    arch: Literal["onnx"]
    path: Path


ZOO_ARCHS = ("mlp", "cnn", "resnet", "mobilenet_v2")

ModelConfig = Annotated[
    Union[MlpConfig, CnnConfig, ResnetConfig, MobilenetV2Config, FactoryModel, TorchScriptModel, OnnxModel],
    Field(discriminator="arch"),
]
