"""The base of every config model: strict (unknown keys are errors) and round-trippable to YAML."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A pydantic model that rejects unknown keys and re-validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class Tolerance(Strict):
    """Agreement an artifact must keep with its reference. A `None` bound is not checked."""

    max_abs: float | None = None
    min_cosine: float | None = None
    min_top1: float | None = None

    def for_task(self, task: str) -> Tolerance:
        """The bounds that mean something for this kind of output: top-1 agreement is the argmax of class scores,
        meaningless for an embedding or a regression output, so only classification checks it."""
        if task == "classification" or self.min_top1 is None:
            return self
        return self.model_copy(update={"min_top1": None})


