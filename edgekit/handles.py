"""Typed model handles: what flows between passes, exporters and runtimes.

A pass declares the handle type it takes and the one it returns (`Pass.takes`, `Pass.returns`), so a torch model
never reaches a file pass, nor a file a torch pass. A file handle's `artifact` is its report record (name, sha256,
parity); `lineage` names the steps that made it, oldest first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edgekit.report.schema import Artifact


@dataclass(frozen=True)
class InputSpec:
    """One sample's shape (no batch axis) and dtype."""

    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True, kw_only=True)
class ModelHandle:
    input: InputSpec
    lineage: tuple[str, ...] = ()

    kind: ClassVar[str] = "model"

    def derived(self, step: str, **changes: Any):
        """A handle of the same type with `changes`, `step` appended to its lineage."""
        return dataclasses.replace(self, lineage=(*self.lineage, step), **changes)


@dataclass(frozen=True, kw_only=True)
class TorchModel(ModelHandle):
    """A PyTorch module in memory (eval mode), with the input it was built for."""

    module: Any  # torch.nn.Module; torch is imported lazily
    kind: ClassVar[str] = "torch"


@dataclass(frozen=True, kw_only=True)
class ModelFile(ModelHandle):
    """A model file inside a run folder, described by its report record."""

    path: Path
    artifact: Artifact = field(compare=False)
    kind: ClassVar[str] = "file"
    format: ClassVar[str]  # the export format that writes it
    suffix: ClassVar[str]

    @property
    def name(self) -> str:
        return self.artifact.name


@dataclass(frozen=True, kw_only=True)
class OnnxFile(ModelFile):
    format: ClassVar[str] = "onnx"
    suffix: ClassVar[str] = ".onnx"


@dataclass(frozen=True, kw_only=True)
class TfliteFile(ModelFile):
    format: ClassVar[str] = "tflite"
    suffix: ClassVar[str] = ".tflite"


@dataclass(frozen=True, kw_only=True)
class PteFile(ModelFile):
    format: ClassVar[str] = "executorch"
    suffix: ClassVar[str] = ".pte"


@dataclass(frozen=True, kw_only=True)
class TorchProgramFile(ModelFile):
    format: ClassVar[str] = "torch"
    suffix: ClassVar[str] = ".pt2"


@dataclass(frozen=True)
class ExternalFile:
    """A model file the user brings (not yet in a run folder), e.g. recipe `model: {arch: onnx, path: ...}`."""

    path: Path
    format: str
