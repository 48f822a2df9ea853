"""The Pass interface: a config class, a stage (which model form it works on), and `apply`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edgekit.console import logger
from edgekit.report.schema import PassRecord


@dataclass
class PassContext:
    """What a pass may use: the data splits, the run folder, the reference model and bench settings."""

    splits: Any
    run_dir: Path
    seed: int = 0
    train: Any = None
    bench: Any = None
    reference: Any = None  # the torch model before any pass (or the user's ONNX file)
    model: Any = None  # the torch model the fp32 ONNX artifact was exported from (after torch passes), if any
    reference_logits: dict[str, Any] = field(default_factory=dict)  # split name -> fp32 reference logits
    log: Callable[[str], None] = logger("passes").info
    cache: dict[str, Any] = field(default_factory=dict)


class Pass(ABC):
    """One compression step. `stage` is 'torch' (nn.Module in and out) or 'onnx' (fp32 ONNX Artifact in,
    new Artifact out). The pipeline runs torch passes in recipe order before export, and each onnx pass on the
    fp32 ONNX export after it."""

    name: ClassVar[str]
    stage: ClassVar[str]

    def __init__(self, config):
        self.config = config

    @abstractmethod
    def apply(self, model, ctx: PassContext) -> tuple[Any, PassRecord]:
        ...

    def record(self, **kw) -> PassRecord:
        return PassRecord(name=self.name, stage=self.stage, config=self.config.model_dump(mode="json"), **kw)
