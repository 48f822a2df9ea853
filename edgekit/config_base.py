"""The base of every config model: strict (unknown keys are errors) and round-trippable to YAML."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A pydantic model that rejects unknown keys and re-validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class Tolerance(Strict):
    """Agreement an artifact must keep with its reference. A `None` bound is not checked."""

    max_abs: float | None = None
    max_rel: float | None = Field(default=None, gt=0,
                                  description="largest |reference - output| over the largest |reference|")
    min_cosine: float | None = None
    min_top1: float | None = None

    def for_task(self, task: str) -> Tolerance:
        """The bounds that mean something for this kind of output. Top-1 agreement is the argmax of class scores:
        classifiers only. A regression output is judged by absolute and relative error (its per-sample cosine is
        only a sign for one output); without either bound, a relative error of `REGRESSION_MAX_REL` applies."""
        if task == "classification":
            return self
        if task == "regression":
            rel = self.max_rel if self.max_rel is not None or self.max_abs is not None else REGRESSION_MAX_REL
            return self.model_copy(update={"min_top1": None, "min_cosine": None, "max_rel": rel})
        return self if self.min_top1 is None else self.model_copy(update={"min_top1": None})


REGRESSION_MAX_REL = 0.05


