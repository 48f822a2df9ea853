"""quantize.auto's configuration: the schemes of its ladder (each a set of static INT8 settings), their rough
build costs, and the target, budget and tie rules (the pass is edgekit.passes.quant_auto)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgekit.config_base import Strict, Tolerance
from edgekit.names import Name
from edgekit.passes.ort_quantize import lift_ort_calibration
from edgekit.quant.finetune import FinetuneOptions
from edgekit.quant.options import DEFAULT_PERCENTILE, Calibration


class Scheme(Strict):
    """One candidate: the quantize.static settings it uses (weights int8)."""

    format: Literal["qdq", "qoperator"] = "qdq"
    activation_type: Literal["uint8", "int8"] = "uint8"
    per_channel: bool = True
    calibration: Literal["minmax", "entropy", "percentile", "mse"] = "minmax"
    percentile: float = Field(default=99.999, gt=90, le=100)
    bias_correction: bool = False
    adaround: bool = Field(default=False, description="AdaRound the 8 layers adding the most error (QDQ per-channel)")
    equalize: bool = Field(default=False, description="cross-layer equalization of the torch model first (needs a torch "
                                                      "model; see the `equalize` pass)")

    @model_validator(mode="after")
    def _options_fit_the_format(self):
        needs_qdq = [k for k in ("bias_correction", "adaround") if getattr(self, k)]
        needs_qdq += ["calibration: mse"] * (self.calibration == "mse")
        if self.format == "qoperator" and needs_qdq:
            raise ValueError(f"{', '.join(needs_qdq)}: only with format: qdq (they rewrite or override the QDQ graph)")
        if self.adaround and not self.per_channel:
            raise ValueError("adaround needs per_channel: true (it rounds on per-channel weight grids)")
        return self

    def label(self) -> str:
        act = "U8S8" if self.activation_type == "uint8" else "S8S8"
        parts = [self.format.upper(), act, "per-channel" if self.per_channel else "per-tensor", self.calibration
                 + (f" {self.percentile:g}" if self.calibration == "percentile" else "")]
        parts += ["CLE"] * self.equalize + ["AdaRound"] * self.adaround + ["bias-corrected"] * self.bias_correction
        return " ".join(parts)


def relative_cost(s: Scheme) -> float:
    """Rough cost of building a scheme, in units of a plain min/max candidate (measured orders of magnitude on
    EfficientNet-Lite0: streaming calibrators ~2-3x, bias correction ~1.5x, AdaRound ~10x)."""
    cost = 1.0
    cost += {"minmax": 0.0, "percentile": 1.5, "entropy": 2.0, "mse": 2.0}[s.calibration]
    cost += 1.0 * s.equalize + 0.5 * s.bias_correction + 8.0 * s.adaround
    return cost


def default_schemes() -> list[Scheme]:
    return [Scheme(per_channel=False), Scheme(per_channel=False, equalize=True), Scheme(),
            Scheme(activation_type="int8"), Scheme(format="qoperator"), Scheme(calibration="percentile"),
            Scheme(calibration="mse"), Scheme(bias_correction=True), Scheme(adaround=True, bias_correction=True)]


class AutoQuantConfig(Strict):
    """Measured choice of a static INT8 scheme for the fp32 ONNX model on this host."""

    name: Literal["quantize.auto"]
    artifact: Name = "onnx-int8"
    target: Tolerance = Field(default_factory=lambda: Tolerance(min_cosine=0.99, min_top1_agreement=0.95),
                              description="fidelity to fp32 on the validation split a candidate must keep")
    max_accuracy_drop: float | None = Field(default=None, ge=0, le=1, description="and, with labels, at most this drop "
                                                                                  "of validation accuracy from fp32")
    schemes: list[Scheme] = Field(default_factory=default_schemes, min_length=1, description="tried in order")
    max_float_layers: int = Field(default=3, ge=0, description="when no scheme meets the target: keep up to this many of "
                                                               "the most faithful scheme's most sensitive layers in float")
    finetune: FinetuneOptions | None = Field(default_factory=FinetuneOptions, description="when no scheme meets the "
                                             "target and the torch model is at hand; null: never")
    finetune_when: Literal["miss", "always"] = Field(
        default="miss", description="miss: fine-tune only when no scheme meets the target; always: also when one does (the "
                                    "fine-tuned model has the same graph, so the same speed: it wins on fidelity, which a "
                                    "small validation split may not show)")
    reduce_range: bool = False
    saturation_safe: Literal["auto", True, False] = "auto"
    calibration: Calibration = Field(default_factory=Calibration, description="calibration samples and ONNX node "
                                     "names always kept in float (the method is each scheme's)")
    speed_margin: float = Field(default=0.05, ge=0, description="latencies closer than this fraction are a tie, which the "
                                                                "more faithful candidate wins")
    faithful_tie_p: float | None = Field(
        default=0.05, gt=0, lt=1,
        description="when no candidate meets the target: those that paired tests on the validation split (McNemar on top-1 "
                    "agreement and on accuracy where labelled, a paired test on per-sample cosine) cannot tell worse than "
                    "the most faithful at this level count as equally faithful, and the fastest of them is kept; null: keep "
                    "the most faithful, however much slower")
    time_s: float = Field(default=3.0, gt=0, description="seconds of side-by-side timing of fp32 and all candidates")
    timing_runtime: str = Field(
        default="auto",
        description="the runtime the candidates are timed in, so the choice is made where the file will run: auto is the "
                    "runtime the recipe's first local, non-emulated bench device uses for .onnx (e.g. openvino, with its "
                    "precision, on host-cpu-openvino), else onnxruntime; or a runtime name")
    time_budget_s: float | None = Field(
        default=600.0, gt=0,
        description="wall-clock budget of the whole pass: schemes run cheapest first, a scheme whose estimated cost no "
                    "longer fits is skipped (and listed), fine-tuning stops its epochs at the budget; null: no limit")
    tolerance: Tolerance = Field(default_factory=Tolerance, description="parity of the chosen artifact on the test "
                                 "split; default: the target (one notion of faithful enough), applied as the task "
                                 "allows (top-1 only for classifiers)")

    @field_validator("timing_runtime")
    @classmethod
    def _runs_onnx(cls, v: str) -> str:
        from edgekit.runtimes import RUNTIMES

        onnx = sorted(n for n, e in RUNTIMES.items() if "onnx" in e.formats)
        if v != "auto" and v not in onnx:
            raise ValueError(f"'{v}' is not a runtime that runs .onnx files (auto, {', '.join(onnx)})")
        return v

    @model_validator(mode="before")
    @classmethod
    def _tolerance_is_the_target(cls, data):
        if isinstance(data, dict) and data.get("tolerance") is None:
            target = data.get("target")
            default = Tolerance(min_cosine=0.99, min_top1_agreement=0.95)
            data = {**data, "tolerance": target if target is not None else default}
        return data

    @model_validator(mode="before")
    @classmethod
    def _flat_calibration_keys(cls, data):
        return lift_ort_calibration(data, {"calibration_size": "samples", "exclude_nodes": "keep_float"})

    @model_validator(mode="after")
    def _method_is_the_schemes(self):
        if self.calibration.method != "minmax" or self.calibration.percentile != DEFAULT_PERCENTILE:
            raise ValueError("calibration: the method and percentile of quantize.auto are each scheme's "
                             "(schemes[].calibration, schemes[].percentile)")
        return self

    @model_validator(mode="after")
    def _finetune_when_needs_finetune(self):
        if self.finetune_when == "always" and self.finetune is None:
            raise ValueError("finetune_when: always needs finetune options (got finetune: null)")
        return self
