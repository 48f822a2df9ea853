"""The `search:` section of a search recipe: what to optimize, under which limits, how, and how long."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edgekit.config_base import Strict
from edgekit.names import Name

METRIC_HELP = ("a report metric of the chosen result: accuracy, latency_p50_ms, latency_p90_ms, latency_p99_ms, "
               "size_mb, peak_rss_mb, macs, params, or any bench metric (cosine, top1_agreement, macro_f1, ...)")


class Objective(Strict):
    metric: str = Field(description=METRIC_HELP)
    direction: Literal["maximize", "minimize"]


class Constraint(Strict):
    metric: str = Field(description=METRIC_HELP)
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.max is None) == (self.min is None):
            raise ValueError("a constraint takes exactly one of max / min")
        return self


class PruneRule(Strict):
    """Stop a trial early when training is hopeless: validation accuracy below `min_val_accuracy` after
    `after_epochs` epochs (works for multi-objective searches, where Optuna's pruners do not)."""

    after_epochs: int = Field(default=1, ge=1)
    min_val_accuracy: float = Field(ge=0, le=1)


class SearchConfig(Strict):
    objectives: list[Objective] = Field(min_length=1)
    constraints: list[Constraint] = Field(default_factory=list)
    budgets_from: str | None = Field(default=None, description="also constrain by this device profile's budgets "
                                                              "(max_latency_ms on p90, max_size_mb, max_memory_mb)")
    strategy: Literal["auto", "grid", "random", "tpe", "nsga2"] = Field(
        default="auto", description="auto: tpe for one objective, nsga2 for several")
    trials: int = Field(default=10, ge=1, description="total trials of the study, over all workers")
    seed: int = 0
    artifact: str | None = Field(default=None, description="result row the metrics come from (default: the last artifact)")
    device: str | None = Field(default=None, description="device of that row (default: the first bench device)")
    prune: PruneRule | None = None
    study: Name | None = Field(default=None, description="study name (default: the recipe name)")

    @model_validator(mode="after")
    def _fits(self):
        names = [o.metric for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives repeat a metric: {names}")
        return self
