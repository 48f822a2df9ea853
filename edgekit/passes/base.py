"""The pass contract: a pass declares the handle type it takes and returns, and implements `transform`.

Two base classes own everything passes share:
- `TorchPass` (TorchModel -> TorchModel): copies the module, measures it before and after (params, MACs, size,
  accuracy), times the pass and writes the record; `transform(module, ctx)` changes the copy.
- `FilePass` (a model file -> a model file of the same or another format): names the output after the config's
  `artifact`, writes it atomically, checks it with its format's reader, describes and records it;
  `transform(source, out, ctx)` writes the file at `out`.
A pass is run by the pipeline, or alone with `edgekit.apply_pass`.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from edgekit.console import logger
from edgekit.handles import ModelFile, ModelHandle, TorchModel
from edgekit.report.schema import PassRecord

In = TypeVar("In", bound=ModelHandle)
Out = TypeVar("Out", bound=ModelHandle)


@dataclass
class PassContext:
    """What a pass may use: the data splits, the run folder, the reference model and bench settings.
    Built by the pipeline (`pipeline.context`) or by `edgekit.apply_pass`, never by hand."""

    splits: Any
    run_dir: Path
    seed: int = 0
    train: Any = None
    bench: Any = None
    reference: Any = None  # the torch module before any pass, when there is one
    model: Any = None  # the torch module the fp32 file was exported from (after torch passes), if any
    reference_logits: dict[str, Any] = field(default_factory=dict)  # split name -> fp32 reference outputs
    log: Callable[[str], None] = logger("passes").info
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a transform found, beyond its model: merged into the pass record."""

    decision: str | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    skip_measure: bool = False  # the transform measured before/after itself


@dataclass
class Transformed(Outcome):
    """A torch pass's result: the new module."""

    module: Any = None


@dataclass
class Written(Outcome):
    """A file pass's result: the precision label and details of the file it wrote."""

    precision: str = "fp32"
    details: dict[str, Any] = field(default_factory=dict)
    source_size: bool = True  # record before/after size_bytes


class Pass(ABC, Generic[In, Out]):
    """One compression step from a `takes` handle to a `returns` handle."""

    name: ClassVar[str]
    takes: ClassVar[type[ModelHandle]]
    returns: ClassVar[type[ModelHandle]]

    def __init__(self, config: Any):
        self.config = config

    @property
    def stage(self) -> str:
        """'torch' for passes on a module, else the format of the file they take (e.g. 'onnx')."""
        return "torch" if issubclass(self.takes, TorchModel) else self.takes.format  # type: ignore[attr-defined]

    @abstractmethod
    def apply(self, model: In, ctx: PassContext) -> tuple[Out, PassRecord]: ...

    def record(self, **kw: Any) -> PassRecord:
        return PassRecord(name=self.name, stage=self.stage, config=self.config.model_dump(mode="json"), **kw)

    def _record(self, out: Outcome, seconds: float, before: dict, after: dict, **kw: Any) -> PassRecord:
        return self.record(duration_s=seconds, before={**before, **out.before}, after={**after, **out.after},
                           decision=out.decision, notes=list(out.notes), candidates=list(out.candidates), **kw)

    def _check_takes(self, model: ModelHandle) -> None:
        from edgekit.errors import PassError

        if not isinstance(model, self.takes):
            raise PassError(f"pass {self.name} works on {self.takes.__name__} models, not on a {type(model).__name__}"
                            + ("; export the model first, or give the file" if issubclass(self.takes, ModelFile) else ""))


class TorchPass(Pass[TorchModel, TorchModel]):
    takes = TorchModel
    returns = TorchModel

    def apply(self, model: TorchModel, ctx: PassContext) -> tuple[TorchModel, PassRecord]:
        from edgekit.passes.accounting import measure
        from edgekit.timing import Stopwatch

        self._check_takes(model)
        with Stopwatch() as watch:
            module = copy.deepcopy(model.module).eval()
            before = {} if self.measures_itself else measure(module, ctx.splits)
            out = self.transform(module, ctx)
            out.module.eval()
            after = {} if self.measures_itself else measure(out.module, ctx.splits)
        return model.derived(self.name, module=out.module), self._record(out, watch.seconds, before, after)

    measures_itself: ClassVar[bool] = False  # the transform reports before/after itself (e.g. a different start)

    @abstractmethod
    def transform(self, module: Any, ctx: PassContext) -> Transformed:
        """Change `module` (a private copy, in eval mode) and return the result."""


class FilePass(Pass[ModelFile, ModelFile]):
    takes: ClassVar[type[ModelFile]]
    returns: ClassVar[type[ModelFile]]

    def apply(self, model: ModelFile, ctx: PassContext) -> tuple[ModelFile, PassRecord]:
        from edgekit.atomic import atomic_path
        from edgekit.export import get_exporter
        from edgekit.export.artifact import artifact_target, describe
        from edgekit.timing import Stopwatch

        self._check_takes(model)
        name = self.config.artifact
        fmt = self.returns.format
        with Stopwatch() as watch:
            out_path = artifact_target(ctx.run_dir, name, self.returns.suffix)
            with atomic_path(out_path) as tmp:
                out = self.transform(model, tmp, ctx)
            facts = get_exporter(fmt).facts(out_path)  # the format's reader refuses a bad file
            art = describe(name, fmt, out.precision, out_path, ctx.run_dir, source=model.name, details=out.details,
                           **facts)
        sizes = ({"size_bytes": model.artifact.size_bytes}, {"size_bytes": art.size_bytes}) if out.source_size else ({}, {})
        rec = self._record(out, watch.seconds, *sizes, produced=art.name)
        return self.returns(path=out_path, artifact=art, input=model.input, lineage=(*model.lineage, self.name)), rec

    @abstractmethod
    def transform(self, source: ModelFile, out: Path, ctx: PassContext) -> Written:
        """Write the new file at `out` (a temporary name, moved into place after) from `source`."""
