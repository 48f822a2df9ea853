"""Export target configs, told apart by `format`. Each exporter module registers its own config here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgekit.config_base import Strict, Tolerance


class _ExportBase(Strict):
    name: str | None = Field(None, description="artifact name (default FORMAT-PRECISION)")
    parity_samples: int = Field(256, ge=1, description="held-out test samples compared with PyTorch")


class OnnxExport(_ExportBase):
    format: Literal["onnx"]
    opset: int = Field(18, ge=13, le=23)
    exporter: Literal["dynamo", "legacy"] = "dynamo"
    dynamic_batch: bool = True
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(max_abs=1e-3, min_cosine=0.9999, min_top1=0.99))


class TorchExport(_ExportBase):
    """A torch.export ExportedProgram (.pt2): the PyTorch reference as a benchmarkable file."""

    format: Literal["torch"]
    dynamic_batch: bool = True
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(max_abs=1e-4, min_cosine=0.99999, min_top1=1.0))


EXPORT_CONFIGS: list[type] = [OnnxExport, TorchExport]
