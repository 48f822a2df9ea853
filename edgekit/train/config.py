"""Training settings, shared by training, fine-tuning, distillation and QAT."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgekit.config_base import Strict


class OptimizerConfig(Strict):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD/RMSprop momentum")
    nesterov: bool = False
    weight_decay: float = Field(default=0.0, ge=0)


class ScheduleConfig(Strict):
    name: Literal["none", "step", "exponential", "cosine", "cyclic", "onecycle"] = "none"
    step_size: int = Field(default=10, ge=1, description="epochs between decays (step)")
    gamma: float = Field(default=0.1, gt=0, le=1, description="decay factor (step, exponential)")
    min_lr: float = Field(default=0.0, ge=0, description="floor for cosine; base for cyclic")
    max_lr: float | None = Field(default=None, gt=0, description="peak for cyclic/onecycle (default 10x lr)")


class EarlyStopping(Strict):
    patience: int = Field(default=5, ge=1)
    min_delta: float = Field(default=0.0, ge=0)


class FreezeConfig(Strict):
    """Transfer learning: train only some layers, then optionally unfreeze all at a lower rate."""

    layers: list[str] | Literal["all_but_head"] = Field(default_factory=list, description="name prefixes to freeze")
    unfreeze_after: int | None = Field(default=None, ge=0, description="epoch at which everything is unfrozen")
    finetune_lr_factor: float = Field(default=0.1, gt=0, le=1)


class TrainConfig(Strict):
    epochs: int = Field(default=10, ge=0)
    batch_size: int = Field(default=64, ge=1)
    loss: Literal["cross_entropy", "bce", "mse"] = "cross_entropy"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    grad_clip: float | None = Field(default=None, gt=0, description="max global gradient norm")
    class_weights: Literal["none", "balanced"] | list[float] = "none"
    oversample: bool = Field(default=False, description="sample classes uniformly (imbalanced data)")
    freeze: FreezeConfig = Field(default_factory=FreezeConfig)
    early_stopping: EarlyStopping | None = None
    progress: bool = True
