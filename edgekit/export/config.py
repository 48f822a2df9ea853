"""Export target configs, told apart by `format`. Each exporter module registers its own config here."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from edgekit.config_base import Strict, Tolerance
from edgekit.extras import Needs
from edgekit.names import Name
from edgekit.quant.finetune import FinetuneOptions


class _ExportBase(Strict):
    needs: ClassVar[Needs | None] = None  # optional packages the exporter imports, and their extra
    name: Name | None = Field(None, description="artifact name (default FORMAT-PRECISION)")
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


def precision_tolerance(data, table: dict[str, dict]):
    """The raw target with its tolerance defaulted from `table` by its precision (when none is given)."""
    if isinstance(data, dict) and data.get("tolerance") is None:
        data = {**data, "tolerance": table.get(data.get("precision", "fp32"), table["fp32"])}
    return data


TFLITE_TOLERANCE = {
    "fp32": {"max_abs": 1e-3, "min_cosine": 0.9999, "min_top1": 0.99},
    "fp16": {"min_cosine": 0.999, "min_top1": 0.98},
    "dynamic_int8": {"min_cosine": 0.98, "min_top1": 0.9},
    "int8": {"min_cosine": 0.98, "min_top1": 0.9},
}


class TfliteExport(_ExportBase):
    """PyTorch -> LiteRT (.tflite) with litert-torch; quantized precisions use ai-edge-quantizer recipes."""

    needs: ClassVar[Needs] = Needs("tflite", ("litert_torch", "ai_edge_quantizer"))

    format: Literal["tflite"]
    precision: Literal["fp32", "fp16", "dynamic_int8", "int8"] = Field(
        "fp32", description="fp16: fp16 weights; dynamic_int8: int8 weights, float activations; "
                            "int8: full integer, per-channel weights, calibrated")
    io_dtype: Literal["float32", "int8"] = Field("float32", description="int8 only: int8 model inputs/outputs")
    batch_size: int | None = Field(None, ge=1, description="the file's static batch (default: the bench batch size)")
    calibration_size: int | None = Field(None, ge=1, description="int8: calibration samples (default: all)")
    calibration: Literal["minmax", "percentile", "mse", "entropy"] = Field(
        "minmax", description="int8: activation ranges over all calibration samples (edgekit's streaming "
                              "calibrators on the fp32 file's tensors)")
    percentile: float = Field(99.99, gt=50, le=100, description="int8 with calibration: percentile")
    keep_float: list[str] = Field(default_factory=list, description="int8: torch module names (e.g. _conv_stem) "
                                                                   "whose ops stay float (selective quantization)")
    finetune: FinetuneOptions | None = Field(
        None, description="int8: label-free fine-tuning of the weights under simulated int8 before conversion "
                          "(per-channel symmetric weights, calibrated 8-bit activations, on the calibration "
                          "images; no labels; minutes on a CPU for a mobile CNN)")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(**TFLITE_TOLERANCE["fp32"]),
                                 description="default depends on precision")

    @model_validator(mode="before")
    @classmethod
    def _default_tolerance(cls, data):
        return precision_tolerance(data, TFLITE_TOLERANCE)

    @model_validator(mode="after")
    def _io_needs_int8(self):
        if self.io_dtype == "int8" and self.precision != "int8":
            raise ValueError(f"io_dtype int8 needs precision int8 (got {self.precision})")
        return int8_only_options(self, ("calibration", "percentile", "calibration_size", "finetune", "keep_float"))


EXECUTORCH_TOLERANCE = {
    "fp32": {"max_abs": 1e-3, "min_cosine": 0.9999, "min_top1": 0.99},
    "int8": {"min_cosine": 0.98, "min_top1": 0.9},
}


class ExecutorchExport(_ExportBase):
    """PyTorch -> ExecuTorch (.pte): torch.export, lowered to the XNNPACK backend; int8 is PT2E with the XNNPACK
    quantizer (per-channel symmetric weights, per-tensor int8 activations), calibrated on the calibration split."""

    needs: ClassVar[Needs] = Needs("executorch", ("executorch", "torchao"))
    format: Literal["executorch"]
    precision: Literal["fp32", "int8"] = "fp32"
    backend: Literal["xnnpack"] = Field("xnnpack", description="the delegate the program is lowered to")
    batch_size: int | None = Field(None, ge=1, description="the file's static batch (default: the bench batch size)")
    calibration_size: int | None = Field(None, ge=1, description="int8: calibration samples (default: all)")
    calibration: Literal["minmax", "percentile", "mse", "entropy", "histogram"] = Field(
        "minmax", description="int8: activation ranges over all calibration samples (edgekit's streaming "
                              "calibrators; histogram: the XNNPACK quantizer's own HistogramObserver)")
    percentile: float = Field(99.99, gt=50, le=100, description="int8 with calibration: percentile")
    finetune: FinetuneOptions | None = Field(
        None, description="int8: label-free fine-tuning of the weights under simulated int8 before quantization "
                          "(the same grid as the XNNPACK quantizer's per-channel symmetric weights)")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(**EXECUTORCH_TOLERANCE["fp32"]),
                                 description="default depends on precision")

    @model_validator(mode="before")
    @classmethod
    def _default_tolerance(cls, data):
        return precision_tolerance(data, EXECUTORCH_TOLERANCE)

    @model_validator(mode="after")
    def _int8_only_options(self):
        return int8_only_options(self, ("calibration", "percentile", "calibration_size", "finetune"))


def int8_only_options(cfg, keys: tuple[str, ...]):
    """Calibration and fine-tuning options are errors on a precision without calibrated activations; compared by
    value, not by "was it set", since a recipe dumped back to YAML spells every default out."""
    defaults = {k: type(cfg).model_fields[k].get_default(call_default_factory=True) for k in keys}
    calib = sorted(k for k, v in defaults.items() if getattr(cfg, k) != v)
    if calib and cfg.precision != "int8":
        raise ValueError(f"{', '.join(calib)}: only with precision int8 (got {cfg.precision}), "
                         "the only precision with calibrated activations")
    if cfg.percentile != defaults["percentile"] and cfg.calibration != "percentile":
        raise ValueError(f"percentile is used only with calibration: percentile (got {cfg.calibration})")
    return cfg


