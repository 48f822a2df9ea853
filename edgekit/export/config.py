"""Export target configs, told apart by `format`. Each exporter module registers its own config here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

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


TFLITE_TOLERANCE = {
    "fp32": {"max_abs": 1e-3, "min_cosine": 0.9999, "min_top1": 0.99},
    "fp16": {"min_cosine": 0.999, "min_top1": 0.98},
    "dynamic_int8": {"min_cosine": 0.98, "min_top1": 0.9},
    "int8": {"min_cosine": 0.98, "min_top1": 0.9},
}


class TfliteExport(_ExportBase):
    """PyTorch -> LiteRT (.tflite) with litert-torch; quantized precisions use ai-edge-quantizer recipes."""

    format: Literal["tflite"]
    precision: Literal["fp32", "fp16", "dynamic_int8", "int8"] = Field(
        "fp32", description="fp16: fp16 weights; dynamic_int8: int8 weights, float activations; "
                            "int8: full integer, per-channel weights, calibrated")
    io_dtype: Literal["float32", "int8"] = Field("float32", description="int8 only: int8 model inputs/outputs")
    batch_size: int | None = Field(None, ge=1, description="the file's static batch (default: the bench batch size)")
    calibration_size: int | None = Field(None, ge=1, description="int8: calibration samples (default: all)")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(**TFLITE_TOLERANCE["fp32"]),
                                 description="default depends on precision")

    @model_validator(mode="before")
    @classmethod
    def _default_tolerance(cls, data):
        if isinstance(data, dict) and data.get("tolerance") is None:
            data = {**data, "tolerance": TFLITE_TOLERANCE.get(data.get("precision", "fp32"), TFLITE_TOLERANCE["fp32"])}
        return data

    @model_validator(mode="after")
    def _io_needs_int8(self):
        if self.io_dtype == "int8" and self.precision != "int8":
            raise ValueError(f"io_dtype int8 needs precision int8 (got {self.precision})")
        return self


EXPORT_CONFIGS: list[type] = [OnnxExport, TorchExport, TfliteExport]
