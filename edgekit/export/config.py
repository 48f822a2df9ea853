"""Export target configs, told apart by `format`. Each exporter module registers its own config here."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from edgekit.config_base import Strict, Tolerance
from edgekit.extras import Needs
from edgekit.names import Name
from edgekit.quant.finetune import FinetuneOptions
from edgekit.quant.options import Calibration, lift_calibration


class _ExportBase(Strict):
    needs: ClassVar[Needs | None] = None  # optional packages the exporter imports, and their extra
    name: Name | None = Field(default=None, description="artifact name (default FORMAT-PRECISION)")
    parity_samples: int = Field(default=256, ge=1, description="held-out test samples compared with PyTorch")


class OnnxExport(_ExportBase):
    format: Literal["onnx"]
    opset: int = Field(default=18, ge=13, le=23)
    exporter: Literal["dynamo", "legacy"] = "dynamo"
    dynamic_batch: bool = True
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(max_abs=1e-3, min_cosine=0.9999, min_top1_agreement=0.99))


class TorchExport(_ExportBase):
    """A torch.export ExportedProgram (.pt2): the PyTorch reference as a benchmarkable file."""

    format: Literal["torch"]
    dynamic_batch: bool = True
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(max_abs=1e-4, min_cosine=0.99999, min_top1_agreement=1.0))


def precision_tolerance(data, table: dict[str, dict]):
    """The raw target with its tolerance defaulted from `table` by its precision (when none is given)."""
    if isinstance(data, dict) and data.get("tolerance") is None:
        data = {**data, "tolerance": table.get(data.get("precision", "fp32"), table["fp32"])}
    return data


TFLITE_TOLERANCE = {
    "fp32": {"max_abs": 1e-3, "min_cosine": 0.9999, "min_top1_agreement": 0.99},
    "fp16": {"min_cosine": 0.999, "min_top1_agreement": 0.98},
    "dynamic_int8": {"min_cosine": 0.98, "min_top1_agreement": 0.9},
    "int8": {"min_cosine": 0.98, "min_top1_agreement": 0.9},
}


class Int8Options(Strict):
    """What int8 targets share (TFLite, ExecuTorch, `quantize.tflite`): calibration and label-free fine-tuning,
    allowed only on int8, the one precision with calibrated activations."""

    if TYPE_CHECKING:
        precision: str  # each config declares its own precisions

    calibration: Calibration = Field(default_factory=Calibration,
                                     description="int8: activation ranges, calibration samples, modules kept float")
    finetune: FinetuneOptions | None = Field(
        default=None, description="int8: label-free fine-tuning of the weights under simulated int8 before quantization "
                          "(per-channel symmetric weights, calibrated 8-bit activations, on the calibration images; "
                          "no labels; minutes on a CPU for a mobile CNN)")

    @model_validator(mode="before")
    @classmethod
    def _flat_calibration_keys(cls, data):
        return lift_calibration(data)

    @model_validator(mode="after")
    def _int8_only_options(self):
        fields = type(self).model_fields
        set_ = sorted(k for k in ("calibration", "finetune")
                      if getattr(self, k) != fields[k].get_default(call_default_factory=True))
        if set_ and self.precision != "int8":  # by value: a dumped recipe spells defaults out
            raise ValueError(f"{', '.join(set_)}: only with precision int8 (got {self.precision}), "
                             "the only precision with calibrated activations")
        return self


class TfliteQuantOptions(Int8Options):
    """ai-edge-quantizer on an fp32 .tflite: the options of a TFLite export target and of `quantize.tflite`."""

    io_dtype: Literal["float32", "int8"] = Field(default="float32", description="int8 only: int8 model inputs/outputs")

    @model_validator(mode="after")
    def _io_needs_int8(self):
        if self.io_dtype == "int8" and self.precision != "int8":
            raise ValueError(f"io_dtype int8 needs precision int8 (got {self.precision})")
        return self


class TfliteExport(TfliteQuantOptions, _ExportBase):
    """PyTorch -> LiteRT (.tflite) with litert-torch; quantized precisions use ai-edge-quantizer recipes on the fp32
    file (the building blocks of the `quantize.tflite` pass)."""

    needs: ClassVar[Needs] = Needs("tflite", ("litert_torch", "ai_edge_quantizer"))

    format: Literal["tflite"]
    precision: Literal["fp32", "fp16", "dynamic_int8", "int8"] = Field(
        default="fp32", description="fp16: fp16 weights; dynamic_int8: int8 weights, float activations; "
                            "int8: full integer, per-channel weights, calibrated")
    batch_size: int | None = Field(default=None, ge=1, description="the file's static batch (default: the bench batch size)")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(**TFLITE_TOLERANCE["fp32"]),
                                 description="default depends on precision")

    @model_validator(mode="before")
    @classmethod
    def _default_tolerance(cls, data):
        return precision_tolerance(data, TFLITE_TOLERANCE)


EXECUTORCH_TOLERANCE = {
    "fp32": {"max_abs": 1e-3, "min_cosine": 0.9999, "min_top1_agreement": 0.99},
    "int8": {"min_cosine": 0.98, "min_top1_agreement": 0.9},
}


class ExecutorchCalibration(Calibration):
    """Calibration of ExecuTorch int8, which also offers the XNNPACK quantizer's own observer (`histogram`)."""

    method: Literal["minmax", "percentile", "mse", "entropy", "histogram"] = Field(  # type: ignore[assignment]
        default="minmax", description="edgekit's streaming calibrators, or histogram: the XNNPACK quantizer's own "
                              "HistogramObserver")


class ExecutorchExport(Int8Options, _ExportBase):
    """PyTorch -> ExecuTorch (.pte): torch.export, lowered to the XNNPACK backend; int8 is PT2E with the XNNPACK
    quantizer (per-channel symmetric weights, per-tensor int8 activations), calibrated on the calibration split."""

    needs: ClassVar[Needs] = Needs("executorch", ("executorch", "torchao"))
    format: Literal["executorch"]
    precision: Literal["fp32", "int8"] = "fp32"
    backend: Literal["xnnpack"] = Field(default="xnnpack", description="the delegate the program is lowered to")
    batch_size: int | None = Field(default=None, ge=1, description="the file's static batch (default: the bench batch size)")
    calibration: ExecutorchCalibration = Field(  # type: ignore[assignment]
        default_factory=ExecutorchCalibration,
        description="int8: activation ranges, calibration samples, modules kept float")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(**EXECUTORCH_TOLERANCE["fp32"]),
                                 description="default depends on precision")

    @model_validator(mode="before")
    @classmethod
    def _default_tolerance(cls, data):
        return precision_tolerance(data, EXECUTORCH_TOLERANCE)
