"""The base of every config model: strict (unknown keys are errors) and round-trippable to YAML."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A pydantic model that rejects unknown keys and re-validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class Tolerance(Strict):
    """Agreement an artifact must keep with its reference. A `None` bound is not checked. Each bound is named after
    the parity metric it bounds (report.json `parity`: max_abs, rel_error, cosine, top1_agreement); the older
    spellings `max_rel` and `min_top1` are still accepted."""

    max_abs: float | None = Field(default=None, description="largest |reference - output|")
    max_rel_error: float | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("max_rel_error", "max_rel"),
        description="largest |reference - output| over the largest |reference| (also spelled max_rel)")
    min_cosine: float | None = Field(default=None, description="mean per-sample cosine similarity")
    min_top1_agreement: float | None = Field(
        default=None, validation_alias=AliasChoices("min_top1_agreement", "min_top1"),
        description="share of samples whose top-1 class matches the reference's (also spelled min_top1)")

    def for_task(self, task: str) -> Tolerance:
        """The bounds that mean something for this kind of output. Top-1 agreement is the argmax of class scores:
        classifiers only. A regression output is judged by absolute and relative error (its per-sample cosine is
        only a sign for one output); without either bound, a relative error of `REGRESSION_MAX_REL` applies."""
        if task == "classification":
            return self
        if task == "regression":
            rel = self.max_rel_error if self.max_rel_error is not None or self.max_abs is not None else REGRESSION_MAX_REL
            return self.model_copy(update={"min_top1_agreement": None, "min_cosine": None, "max_rel_error": rel})
        return self if self.min_top1_agreement is None else self.model_copy(update={"min_top1_agreement": None})


REGRESSION_MAX_REL = 0.05


