"""`quantize.tflite`: ai-edge-quantizer on the fp32 .tflite (full int8 calibrated by edgekit, dynamic int8 or fp16),
as `quantize.static` is ORT's quantizer on the fp32 .onnx. The same code as a TFLite export target with a quantized
precision (`edgekit.export.tflite_quantize`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from edgekit.config_base import Tolerance
from edgekit.export.config import TFLITE_TOLERANCE, TfliteQuantOptions, precision_tolerance
from edgekit.extras import Needs
from edgekit.handles import TfliteFile
from edgekit.names import Name
from edgekit.passes.base import FilePass, PassContext, Written


class TfliteQuantConfig(TfliteQuantOptions):
    """Quantize the fp32 .tflite export (add `- format: tflite` to export). int8 calibrates on the calibration split
    at the file's static batch; `finetune` fine-tunes the torch model it came from and converts it anew."""

    needs: ClassVar[Needs] = Needs("tflite", ("ai_edge_quantizer", "ai_edge_litert"))

    name: Literal["quantize.tflite"]
    artifact: Name = Field(default="tflite-int8", description="default tflite-PRECISION")
    precision: Literal["int8", "dynamic_int8", "fp16"] = Field(
        default="int8", description="int8: full integer, per-channel weights, calibrated; dynamic_int8: int8 weights, float "
                            "activations; fp16: fp16 weights")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(**TFLITE_TOLERANCE["int8"]),
                                 description="default depends on precision")

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_precision(cls, data):
        if isinstance(data, dict):
            data = {"precision": "int8", **data}
            data.setdefault("artifact", f"tflite-{data['precision']}")
        return precision_tolerance(data, TFLITE_TOLERANCE)


class TfliteQuantize(FilePass):
    name = "quantize.tflite"
    takes = TfliteFile
    returns = TfliteFile

    def transform(self, source: TfliteFile, out: Path, ctx: PassContext) -> Written:
        from edgekit.export.tflite_quantize import checked, dtype_details, quantize_tflite

        c = self.config
        batch = int(source.artifact.inputs[0].shape[0]) if source.artifact.inputs else 1
        calib = ctx.splits.x_calib if len(ctx.splits.x_calib) else ctx.splits.x_test
        q = quantize_tflite(c, calib, batch, fp32=source.path.read_bytes(), model=ctx.model, log=ctx.log)
        out.write_bytes(q.data)
        details = {"static_batch": batch, **q.details, **dtype_details(checked(out, c.precision))}
        return Written(precision=c.precision, details=details, notes=q.notes,
                       decision=f"{c.precision} from {source.name} with ai-edge-quantizer {details['recipe']}")
