"""A run in progress: the recipe, its folder, its report, and the model handle the stages pass along."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.console import logger
from edgekit.errors import EdgekitError
from edgekit.handles import InputSpec, ModelHandle, TorchModel
from edgekit.recipe import Recipe
from edgekit.report.schema import Artifact, Report

PARITY_THREADS = 2
PARITY_FAILED = "parity_failed"  # the file is sound but outside its tolerance: benchmarked and gated, marked failing
MEASURABLE = ("ok", PARITY_FAILED)
REFERENCE_OUTPUTS = "samples/reference_outputs.npy"
log = logger("pipeline")


@dataclass
class Run:
    recipe: Recipe
    run_dir: Path
    report: Report
    log: Callable[[str], None] = log.info
    splits: Any = None
    model: ModelHandle | None = None  # a TorchModel, or the OnnxFile of a user's .onnx
    reference_model: Any = None  # the torch module before any pass, when the model is one
    reference_logits: dict[str, Any] = field(default_factory=dict)
    previous: Report | None = None  # the report of an interrupted run being resumed
    reused: set[str] = field(default_factory=set)  # artifact names taken over from `previous`
    on_epoch: Callable[[int, float], None] | None = None  # training progress hook (search pruning)
    mlflow_run_id: str | None = None  # set when the run was logged to MLflow
    stage: str = ""  # the stage running now, named when the run fails or is interrupted
    pass_cache: dict[Any, Any] = field(default_factory=dict)  # shared by the run's passes (e.g. int8 calibration ranges)

    def save(self, stage: str | None = None) -> None:
        from edgekit.report.io import save_report

        if stage and stage not in self.report.stages_done:
            self.report.stages_done.append(stage)
        save_report(self.report, self.run_dir)

    def fail(self, where: str, err: Exception) -> None:
        msg = f"{where}: {err}"
        self.report.errors.append(msg)
        (log.error if self.log == log.info else self.log)(f"  FAILED {msg}")

    @property
    def torch_module(self) -> Any:
        """The torch module the run carries now, or None when its model is a file."""
        return self.model.module if isinstance(self.model, TorchModel) else None

    def input_spec(self) -> InputSpec:
        return InputSpec(tuple(self.splits.input_shape), str(self.splits.x_test.dtype))

    def handle(self, art: Artifact) -> ModelHandle:
        """The typed handle of one of the run's artifacts (its format's registry entry names the class)."""
        from edgekit.export import EXPORTERS
        from edgekit.export.artifact import artifact_path

        cls = EXPORTERS[art.format].handle
        return cls(path=artifact_path(self.run_dir, art), artifact=art, input=self.input_spec(), lineage=(art.name,))

    def reference_name(self) -> str:
        return "torch fp32" if isinstance(self.model, TorchModel) else "onnx fp32 (user model)"


def reusable(run: Run, name: str) -> Artifact | None:
    """The previous run's artifact `name`, if it finished and its file, inside the run folder, still has the
    sha256 the report recorded; otherwise it is made again."""
    from edgekit.export.artifact import mismatch

    prev = run.previous.artifact(name) if run.previous else None
    if prev is None or prev.status != "ok" or not prev.path:
        return None
    try:
        why = mismatch(run.run_dir, prev)
    except EdgekitError as e:
        why = str(e)
    if why:
        run.log(f"  {name} is not reused: {why}")
        return None
    run.reused.add(name)
    return prev
