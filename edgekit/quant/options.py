"""Options every int8 quantizer shares: how activation ranges are calibrated, on how many samples, and what stays
float. One `Calibration` sub-config is used by the ONNX quantize passes, TFLite int8 (export target and
`quantize.tflite`) and ExecuTorch int8, with one default percentile."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from edgekit.config_base import Strict

DEFAULT_PERCENTILE = 99.99  # edgekit's PercentileCalibrator: clips 0.01 % on each side

# flat keys of recipes before the `calibration:` mapping -> its fields (same meaning)
LEGACY_CALIBRATION_KEYS = {"calibration": "method", "percentile": "percentile", "calibration_size": "samples",
                           "keep_float": "keep_float"}


class Calibration(Strict):
    """int8 activation ranges, computed by edgekit's streaming calibrators over every calibration sample. Older
    recipes wrote these keys flat on the target (`calibration: percentile`, `percentile`, `calibration_size`,
    `keep_float`); they still load, with the same meaning."""

    method: Literal["minmax", "percentile", "mse", "entropy"] = Field(
        default="minmax", description="minmax: the full range; percentile: clip the tails; mse: the clip minimizing the "
                              "quantization error; entropy: KL-divergence (TensorRT-style)")
    percentile: float = Field(default=DEFAULT_PERCENTILE, gt=50, le=100,
                              description="method percentile: the share of values kept inside the range")
    samples: int | None = Field(default=None, ge=1,
                                description="calibration samples (default: all of the calibration split)")
    keep_float: list[str] = Field(
        default_factory=list,
        description="left in float (selective quantization): ONNX node names for the ONNX passes; torch module paths "
                    "as in model.named_modules() (e.g. _conv_stem, _blocks.3) for TFLite and ExecuTorch")

    @model_validator(mode="after")
    def _percentile_needs_its_method(self):
        if self.percentile != DEFAULT_PERCENTILE and self.method != "percentile":
            raise ValueError(f"percentile is used only with calibration: percentile (got {self.method})")
        return self

    def subset(self, x: np.ndarray) -> np.ndarray:
        """The calibration samples this config uses out of `x`."""
        return x[: self.samples] if self.samples else x

    def calibrator_kw(self) -> dict[str, Any]:
        """Keyword arguments for `edgekit.quant.calibrate.make_calibrator(self.method, ...)`."""
        return {"percentile": self.percentile} if self.method == "percentile" else {}


def lift_calibration(data: Any, legacy: dict[str, str] = LEGACY_CALIBRATION_KEYS, field: str = "calibration") -> Any:
    """A raw config with the flat calibration keys of older recipes (`calibration: percentile`, `percentile`,
    `calibration_size`, `keep_float`, or those named in `legacy`) moved into its `calibration` mapping, so recipes and
    the recipes stored in older report.json files keep validating with the same meaning."""
    if not isinstance(data, dict):
        return data
    flat = {k: v for k, v in data.items() if k in legacy and not (k == field and isinstance(v, (dict, BaseModel)))}
    if not flat:
        return data
    out = {k: v for k, v in data.items() if k not in flat}
    sub = out.get(field)
    sub = sub.model_dump() if isinstance(sub, BaseModel) else dict(sub or {})
    for k, v in flat.items():
        if legacy[k] in sub and sub[legacy[k]] != v:
            raise ValueError(f"{k}: also given as {field}.{legacy[k]}; keep one")
        sub[legacy[k]] = v
    out[field] = sub
    return out
