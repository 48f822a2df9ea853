"""The recipe schema and its loader: YAML in, a validated `Recipe` out, errors naming key and line."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from edgekit.bench.config import BenchConfig, MetricName
from edgekit.config_base import Strict
from edgekit.data import DataConfig
from edgekit.errors import RecipeError
from edgekit.export import ExportConfig
from edgekit.handles import ModelFile, TorchModel
from edgekit.models import ARCHS, ModelConfig
from edgekit.names import Name
from edgekit.passes import PassConfig
from edgekit.train.config import TrainConfig
from edgekit.yaml_config import validate_yaml_file
from edgekit.yaml_lines import load_yaml, read_yaml_text

RECIPE_VERSION = 1
"""The recipe format this edgekit reads and writes (`version:` in a recipe; absent means 1)."""


class GatesConfig(Strict):
    """Thresholds a run must meet. Accuracy values are fractions (0.01 = one percentage point)."""

    max_accuracy_drop: float | None = Field(default=None, ge=0, le=1, description="vs the fp32 reference (or baseline)")
    max_latency_p90_ms: float | None = Field(default=None, gt=0)
    max_size_mb: float | None = Field(default=None, gt=0)
    max_latency_regression: float | None = Field(default=None, gt=1, description="p90 ratio vs --baseline, e.g. 1.2")
    min_accuracy: float | None = Field(default=None, ge=0, le=1)
    max_class_accuracy_drop: float | None = Field(default=None, ge=0, le=1, description="worst single-class drop")
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="a drop/regression fails only when it exceeds the "
                                                                      "threshold with this (one-sided) confidence")
    latency_percentile: Literal[50, 90] = Field(default=50, description="percentile compared by max_latency_regression")
    normalize_latency: bool = Field(default=False, description="divide latency ratios by the runs' canary ratio (a "
                                                               "fixed single-thread workload timed between model runs); "
                                                               "experimental: on a shared 2-core host it did not track "
                                                               "multi-thread slowdowns")
    latency_comparison: Literal["interleaved", "recorded"] = Field(
        default="interleaved", description="how max_latency_regression compares with the baseline: `interleaved` times both "
                                           "artifacts now, alternating, in one process on the device (robust to a machine "
                                           "busier in one run than the other); `recorded` compares the two runs' saved "
                                           "samples. Interleaved falls back to recorded when a file or device is missing")
    device_budgets: bool = Field(default=True, description="also gate on the device profiles' budgets")
    artifacts: list[str] | None = Field(default=None, description="gate only these artifacts (default: all)")
    min_metric: dict[MetricName, float] | None = Field(
        default=None, description="lower bounds on bench metrics, e.g. {cosine: 0.99, top1_agreement: 0.98, macro_f1: 0.9}")
    max_metric: dict[MetricName, float] | None = Field(
        default=None, description="upper bounds on bench metrics, e.g. {max_abs: 0.05, mse: 0.1}")


class Recipe(Strict):
    version: int = Field(default=RECIPE_VERSION, description="the recipe format (absent: 1)")
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
        default="auto", description="what the model's outputs are, which decides the fidelity bounds that apply (top-1 "
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

    @field_validator("version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != RECIPE_VERSION:
            raise ValueError(f"recipe version {v} is not one this edgekit reads: it reads version {RECIPE_VERSION} "
                             f"(set `version: {RECIPE_VERSION}`, or use the edgekit that wrote the recipe)")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        names = [e.name or default_artifact_name(e) for e in self.export]
        names += [p.artifact for p in self.passes if hasattr(p, "artifact")]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"artifact names must be unique; repeated: {dupes}")
        handle = ARCHS[self.model.arch].handle if self.model.arch in ARCHS else TorchModel
        if issubclass(handle, ModelFile) and any(e.format != handle.format for e in self.export):
            raise ValueError(f"a model given as a {handle.suffix} file cannot be exported to other formats; remove "
                             "those export targets")
        unlabelled = getattr(self.data, "unlabelled", None)
        if unlabelled is not None and unlabelled() and self.train is not None and self.train.epochs > 0:
            raise ValueError("the data is unlabelled: remove `train` (fidelity metrics need no labels)")
        _check_pass_order(self.passes)
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_unset=False), sort_keys=False)

    def sha256(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


def _check_pass_order(passes: list) -> None:
    """Torch passes run in recipe order before export, file passes after it on the exported file: a torch pass
    written after a file pass would not run where it is written, so that order is an error at that pass."""
    if len(passes) < 2:
        return
    from edgekit.passes import get_pass

    on_torch = [issubclass(get_pass(p).takes, TorchModel) for p in passes]
    first_file = next((i for i, t in enumerate(on_torch) if not t), None)
    late = next((i for i, t in enumerate(on_torch) if t and first_file is not None and i > first_file), None)
    if late is None:
        return
    err = PydanticCustomError(
        "pass_order", "{late} is a torch pass written after the file pass {first}: torch passes run on the PyTorch "
        "model before export, file passes on the exported file after it; move {late} above {first}",
        {"late": passes[late].name, "first": passes[first_file].name})
    raise ValidationError.from_exception_data("Recipe", [{"type": err, "loc": ("passes", late), "input": passes[late]}])


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
