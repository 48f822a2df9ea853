"""The recipe schema and its loader: YAML in, a validated `Recipe` out, errors naming key and line."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import Field, model_validator

from edgekit.bench.config import BenchConfig, MetricName
from edgekit.config_base import Strict
from edgekit.data.config import DataConfig
from edgekit.errors import RecipeError
from edgekit.export.config import EXPORT_CONFIGS
from edgekit.models.config import ModelConfig
from edgekit.names import Name
from edgekit.passes import pass_configs
from edgekit.train.config import TrainConfig
from edgekit.yaml_config import validate_yaml_file
from edgekit.yaml_lines import load_yaml, read_yaml_text

PassConfig = Annotated[Union[tuple(pass_configs())], Field(discriminator="name")]
ExportConfig = Annotated[Union[tuple(EXPORT_CONFIGS)], Field(discriminator="format")]


class GatesConfig(Strict):
    """Thresholds a run must meet. Accuracy values are fractions (0.01 = one percentage point)."""

    max_accuracy_drop: float | None = Field(None, ge=0, le=1, description="vs the fp32 reference (or baseline)")
    max_latency_p90_ms: float | None = Field(None, gt=0)
    max_size_mb: float | None = Field(None, gt=0)
    max_latency_regression: float | None = Field(None, gt=1, description="p90 ratio vs --baseline, e.g. 1.2")
    min_accuracy: float | None = Field(None, ge=0, le=1)
    max_class_accuracy_drop: float | None = Field(None, ge=0, le=1, description="worst single-class drop")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="a drop/regression fails only when it exceeds the "
                                                              "threshold with this (one-sided) confidence")
    latency_percentile: Literal[50, 90] = Field(50, description="percentile compared by max_latency_regression")
    normalize_latency: bool = Field(False, description="divide latency ratios by the runs' canary ratio (a fixed "
                                                       "single-thread workload timed between model runs); experimental: "
                                                       "on a shared 2-core host it did not track multi-thread slowdowns")
    latency_comparison: Literal["interleaved", "recorded"] = Field(
        "interleaved", description="how max_latency_regression compares with the baseline: `interleaved` times both "
                                   "artifacts now, alternating, in one process on the device (robust to a machine "
                                   "busier in one run than the other); `recorded` compares the two runs' saved "
                                   "samples. Interleaved falls back to recorded when a file or device is missing")
    device_budgets: bool = Field(True, description="also gate on the device profiles' budgets")
    artifacts: list[str] | None = Field(None, description="gate only these artifacts (default: all)")
    min_metric: dict[MetricName, float] | None = Field(
        None, description="lower bounds on bench metrics, e.g. {cosine: 0.99, top1_agreement: 0.98, macro_f1: 0.9}")
    max_metric: dict[MetricName, float] | None = Field(
        None, description="upper bounds on bench metrics, e.g. {max_abs: 0.05, mse: 0.1}")


class Recipe(Strict):
    name: Name
    seed: int = 0
    model: ModelConfig
    data: DataConfig
    train: TrainConfig | None = None
    passes: list[PassConfig] = Field(default_factory=list)
    export: list[ExportConfig] = Field(default_factory=list)
    bench: BenchConfig | None = Field(default_factory=BenchConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    output_dir: Path = Path("runs")
    task: Literal["auto", "classification", "embedding", "regression"] = Field(
        "auto", description="what the model's outputs are, which decides the fidelity bounds that apply (top-1 "
                            "agreement only for classification); auto: embedding for a feature-extraction model, "
                            "regression for an mse loss, else classification")

    def output_task(self) -> str:
        """classification, embedding or regression (see `task`)."""
        if self.task != "auto":
            return self.task
        if getattr(self.model, "task", None) == "feature-extraction":
            return "embedding"
        if self.train is not None and self.train.loss == "mse":
            return "regression"
        return "classification"

    @model_validator(mode="after")
    def _consistent(self):
        names = [e.name or default_artifact_name(e) for e in self.export]
        names += [p.artifact for p in self.passes if hasattr(p, "artifact")]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"artifact names must be unique; repeated: {dupes}")
        if self.model.arch == "onnx" and any(e.format != "onnx" for e in self.export):
            raise ValueError("an .onnx model cannot be exported to other formats; remove those export targets")
        unlabelled = (getattr(self.data, "task", None) == "random" or getattr(self.data, "labels", None) is False
                      or (self.data.source == "csv" and self.data.label_column is None))
        if unlabelled and self.train is not None and self.train.epochs > 0:
            raise ValueError("the data is unlabelled: remove `train` (fidelity metrics need no labels)")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_unset=False), sort_keys=False)

    def sha256(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


def default_artifact_name(export_cfg) -> str:
    return f"{export_cfg.format}-{getattr(export_cfg, 'precision', 'fp32')}"


def load_recipe(path: Path | str, overrides: list[str] | None = None) -> Recipe:
    """Load a recipe file. `overrides` are 'dotted.key=value' strings (value parsed as YAML)."""
    try:
        return validate_yaml_file(Path(path), Recipe, overrides)
    except RecipeError as e:
        is_search = is_search_recipe(Path(path))
        if is_search:
            raise RecipeError(f"this is a search recipe (it has a `search:` section and spaces): run it with "
                              f"`edgekit search {path}`; first problem: {e.message}", path=e.path, key=e.key,
                              line=e.line) from None
        raise


def is_search_recipe(path: Path) -> bool:
    """Whether the YAML file at `path` is a mapping with a `search:` section (False when it cannot be read)."""
    try:
        data = load_yaml(read_yaml_text(path), str(path))[0]
    except (RecipeError, OSError):
        return False
    return isinstance(data, dict) and "search" in data
