"""Benchmark settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgekit.config_base import Strict

MetricName = Literal["accuracy", "top_k_accuracy", "macro_f1", "mse", "mae", "cosine", "max_abs", "mean_abs",
                     "top1_agreement", "top_k_agreement", "nn_agreement"]


class BenchConfig(Strict):
    devices: list[str] = Field(default_factory=lambda: ["host-cpu"], description="device profile names or paths")
    batch_size: int = Field(default=1, ge=1)
    warmup: int = Field(default=10, ge=0)
    iterations: int = Field(default=100, ge=1, description="at least this many timed runs")
    min_time_s: float = Field(default=1.0, ge=0, description="and at least this long")
    max_time_s: float = Field(default=60.0, gt=0, description="stop timing after this long even if iterations are short")
    threads: int | None = Field(default=None, ge=1, description="intra-op threads (default: the device profile's)")
    accuracy: bool = Field(default=True, description="also run the whole test split for accuracy")
    timeout_s: float = Field(default=600.0, gt=0, description="kill a bench that runs longer than this")
    metrics: list[MetricName] | None = Field(
        default=None,
        description="quality metrics on the test split; default: accuracy, top_k_accuracy, macro_f1 with labels, plus "
                    "cosine, max_abs, top1_agreement vs the fp32 reference (without labels also top_k_agreement and "
                    "nn_agreement)")
    top_k: int = Field(default=5, ge=1, description="k of top_k_accuracy, top_k_agreement and nn_agreement")
