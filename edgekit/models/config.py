"""Model configs: zoo architectures and the models users bring, told apart by `arch`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from edgekit.config_base import Strict
from edgekit.extras import Needs

Init = Literal["default", "xavier", "he"]


class MlpConfig(Strict):
    arch: Literal["mlp"]
    hidden: list[int] = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    batch_norm: bool = False
    init: Init = "he"


class CnnConfig(Strict):
    """Small conv net: conv-bn-relu blocks, each stage after the first downsamples by 2."""

    arch: Literal["cnn"]
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64])
    kernel_size: int = Field(default=3, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    batch_norm: bool = True
    init: Init = "he"


class ResnetConfig(Strict):
    """ResNet with basic blocks; `widths` per stage, `blocks` per stage."""

    arch: Literal["resnet"]
    widths: list[int] = Field(default_factory=lambda: [16, 32, 64])
    blocks: list[int] = Field(default_factory=lambda: [1, 1, 1])
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
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
    width_mult: float = Field(default=1.0, gt=0.0)
    # (expansion t, channels c, repeats n, first stride s) per stage, as in the paper's table 2.
    stages: list[tuple[int, int, int, int]] = Field(
        default_factory=lambda: [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 1)]
    )
    stem_channels: int = 32
    last_channels: int = 256
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    init: Init = "he"


class InputSpec(Strict):
    """The model's input tensor: its name, shape (ints, or names for dynamic axes), dtype and dynamic axes.

    `dynamic_axes` maps an axis to its name, or to [name, min, max]; axes named in `shape` are dynamic too.
    Exports keep these axes dynamic (ONNX, .pt2); TFLite files are static at the data's shape.
    """

    name: str = Field(default="input", pattern=r"^[A-Za-z_][\w.]*$")
    shape: list[int | str] | None = Field(default=None, description="including the batch axis, e.g. [batch, seq]")
    dtype: Literal["float32", "int64", "int32"] | None = Field(default=None, description="default: the data's")
    dynamic_axes: dict[int, str | tuple[str, int, int]] = Field(default_factory=dict)

    @field_validator("dynamic_axes")
    @classmethod
    def _axes(cls, v):
        for axis, d in v.items():
            if axis < 0:
                raise ValueError(f"axis {axis}: axes are counted from 0 (the batch axis)")
            if isinstance(d, tuple) and not 1 <= d[1] <= d[2]:
                raise ValueError(f"axis {axis}: need 1 <= min <= max, got {list(d)}")
        return v

    def axes(self) -> dict[int, tuple[str, int | None, int | None]]:
        """Every dynamic axis (from `shape` names and `dynamic_axes`) as axis -> (name, min, max)."""
        out: dict[int, tuple[str, int | None, int | None]] = {}
        for i, d in enumerate(self.shape or []):
            if isinstance(d, str):
                out[i] = (d, None, None)
        for i, d in self.dynamic_axes.items():
            out[i] = (d, None, None) if isinstance(d, str) else d
        return dict(sorted(out.items()))


def _single_input(v):
    if v is not None and len(v) != 1:
        raise ValueError(f"edgekit models take one input tensor; {len(v)} are declared")
    return v


class FactoryModel(Strict):
    """A user model: `module:callable` returning an nn.Module, plus optional weights."""

    arch: Literal["factory"]
    factory: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    weights: Path | None = None
    inputs: list[InputSpec] | None = Field(default=None, description="input name, dtype and dynamic axes for export")

    @field_validator("inputs")
    @classmethod
    def _one_input(cls, v):
        return _single_input(v)


class TorchScriptModel(Strict):
    arch: Literal["torchscript"]
    path: Path


class OnnxModel(Strict):
    """An existing .onnx model: export is skipped, ONNX-level passes and benches run on it."""

    arch: Literal["onnx"]
    path: Path


class _RecurrentBase(Strict):
    """A recurrent classifier over (seq_len, features) float sequences; the head reads the last step or the mean."""

    hidden: int = Field(default=64, ge=1)
    layers: int = Field(default=1, ge=1)
    bidirectional: bool = False
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="between recurrent layers and before the head")
    pool: Literal["last", "mean"] = "last"
    dynamic_seq: bool = Field(default=True, description="export with a dynamic sequence axis (ONNX, .pt2)")
    init: Init = "default"


class LstmConfig(_RecurrentBase):
    arch: Literal["lstm"]


class GruConfig(_RecurrentBase):
    arch: Literal["gru"]


class _EncoderBase(Strict):
    d_model: int = Field(default=128, ge=8)
    heads: int = Field(default=4, ge=1)
    layers: int = Field(default=2, ge=1)
    ff_dim: int | None = Field(default=None, ge=1, description="feed-forward width (default 4 * d_model)")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    pool: Literal["cls", "mean"] = "mean"
    init: Init = "default"

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        return self


class TransformerConfig(_EncoderBase):
    """Encoder classifier over int64 token ids (N, seq_len): embedding, positions, pre-norm self-attention blocks."""

    arch: Literal["transformer"]
    vocab_size: int | None = Field(default=None, ge=2, description="default: the data's (largest token id + 1)")
    positional: Literal["learned", "sinusoidal"] = "learned"
    max_len: int | None = Field(default=None, ge=1, description="longest sequence (default: the data's seq_len)")
    dynamic_seq: bool = Field(default=True, description="export with a dynamic sequence axis (ONNX, .pt2), up to max_len")


class VitConfig(_EncoderBase):
    """A tiny vision transformer: patch-embedding conv, learned positions, pre-norm blocks, cls token or mean pool."""

    arch: Literal["vit"]
    d_model: int = Field(default=64, ge=8)
    patch_size: int = Field(default=4, ge=1)
    pool: Literal["cls", "mean"] = "cls"


class HfModel(Strict):
    """A local Hugging Face folder (config.json + model.safetensors [+ tokenizer files]), loaded offline."""

    needs: ClassVar[Needs] = Needs("hf", ("transformers",))

    arch: Literal["hf"]
    path: Path
    task: Literal["sequence-classification", "feature-extraction"] = Field(
        default="sequence-classification",
        description="sequence-classification: logits (AutoModelForSequenceClassification); feature-extraction: pooled "
                    "embeddings (AutoModel)")
    pooling: Literal["mean", "cls"] = Field(default="mean", description="feature-extraction: how tokens become one vector")
    inputs: list[InputSpec] | None = Field(
        default=None, description="default [{name: input_ids, shape: [batch, seq], dtype: int64}]")
    allow_missing_weights: bool = Field(default=False, description="accept tensors the folder lacks (randomly initialized, "
                                                                   "e.g. a new classification head)")

    @field_validator("inputs")
    @classmethod
    def _one_input(cls, v):
        return _single_input(v)

