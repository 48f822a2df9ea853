"""Building one static INT8 candidate of an ONNX model with ONNX Runtime's quantizer: pre-processing, calibration
(edgekit's streaming calibrators, cached per source file and settings), quantize_static, saturation-safe weights,
float layers, and its fidelity to fp32 on the validation split. Every input is explicit: no pass context."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.console import progress
from edgekit.errors import PassError
from edgekit.quant.candidate import Candidate

_logger = logging.getLogger(__name__)

QTYPE = {"int8": "QInt8", "uint8": "QUInt8"}
ORT_CALIBRATORS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
FORMATS = {"qdq": "QDQ", "qoperator": "QOperator"}


@dataclass(frozen=True)
class QuantSpec:
    """The settings of one static INT8 quantization."""

    format: str  # qdq or qoperator
    activation_type: str  # uint8 or int8
    per_channel: bool
    weight_type: str = "int8"
    reduce_range: bool = False
    calibration: str = "minmax"  # minmax, entropy, percentile, mse
    calibrator: str = "edgekit"  # who computes non-minmax ranges: edgekit's streaming calibrators or onnxruntime
    percentile: float = 99.999
    exclude_nodes: tuple[str, ...] = ()  # always kept in float
    saturation_safe: bool | str = "auto"  # auto: on CPUs whose U8S8 kernels can saturate


@dataclass(frozen=True)
class Evaluation:
    """What a candidate's fidelity is measured on: the validation inputs (the calibration inputs when there is no
    validation split), the fp32 reference outputs on them, and their labels (None, or -1 for unlabelled)."""

    x: np.ndarray
    reference: np.ndarray
    labels: np.ndarray | None = None

    @classmethod
    def of(cls, splits: Any, reference_logits: dict[str, np.ndarray]) -> Evaluation:
        """From data splits and the fp32 outputs per split; never the test split."""
        if len(splits.x_val):
            return cls(splits.x_val, reference_logits["val"], splits.y_val)
        return cls(splits.x_calib, reference_logits["calib"], None)


@dataclass
class Calibrator:
    """The calibration inputs and a cache of the ranges computed on them (shared by every pass of a run)."""

    x: np.ndarray
    cache: dict = field(default_factory=dict)
    log: Callable[[str], None] = _logger.info


def preprocess(src: Path, dst: Path, log=None) -> tuple[Path, str | None]:
    """Fold Constant weights and BatchNormalization and run ORT's pre-processing into `dst` (edgekit.quant.onnx_prepare):
    (dst, None), or, when it fails, (src, the reason) after a warning: a model it cannot handle is quantized as is."""
    from edgekit.quant.onnx_prepare import prepare

    prep = prepare(src, dst)
    if prep.ran:
        return Path(dst).resolve(), None
    (log or _logger.warning)(f"  WARNING: ONNX Runtime pre-processing of {Path(src).name} failed, quantizing without "
                             f"it: {prep.error}")
    return Path(src), prep.error


def preprocess_note(reason: str | None) -> list[str]:
    """The pass record's note for a pre-processing that failed (nothing when it ran)."""
    return [] if reason is None else [f"WARNING: ONNX Runtime pre-processing failed, quantized without it: {reason}"]


def int8_cost_notes(fp32: Path, int8: Path, fp32_ms: float | None, int8_ms: float | None) -> list[str]:
    """A note naming the likely cause when the int8 file is slower or bigger than its fp32 source."""
    from edgekit.quant.onnx_prepare import why_slower

    what = []
    if fp32_ms is not None and int8_ms is not None and int8_ms > fp32_ms:
        what.append(f"slower ({int8_ms:.3f} vs {fp32_ms:.3f} ms p50)")
    if Path(int8).stat().st_size > Path(fp32).stat().st_size:
        what.append(f"bigger ({Path(int8).stat().st_size / 1024:.0f} vs {Path(fp32).stat().st_size / 1024:.0f} KiB)")
    return [f"WARNING: the int8 file is {' and '.join(what)} than fp32: {why_slower(fp32, int8)}"] if what else []


def input_name(path: Path) -> str:
    """The name of an ONNX model's first input."""
    from edgekit.model_files import onnx_header

    return onnx_header(path).graph.input[0].name


def make_reader_for(path: Path, x: np.ndarray):
    """ORT calibration batches of `x` for the model at `path` (whole batches of its size when it fixes one)."""
    from edgekit.quant.onnx_calibrate import make_reader, static_batch

    fixed = static_batch(path)
    return make_reader(input_name(path), x, batch=fixed, drop_last=True) if fixed else make_reader(input_name(path), x)


def streamed_ranges(src: Path, spec: QuantSpec, calib: Calibrator) -> dict:
    """ORT range overrides from edgekit's streaming calibrator `spec.calibration`, cached in `calib.cache` by the
    source file's sha256 and the calibration settings: the ladder, mixed precision and every other int8 pass of the
    run on the same fp32 file calibrate once."""
    from edgekit.export.artifact import file_sha256
    from edgekit.quant.onnx_calibrate import calibrate_onnx, range_overrides

    x = calib.x
    key = ("ranges", file_sha256(src), spec.calibration, spec.percentile, tuple(x.shape), str(x.dtype))
    if key not in calib.cache:
        kw: dict[str, Any] = {"percentile": spec.percentile} if spec.calibration == "percentile" else {}
        with progress(f"calibration ({spec.calibration}, samples)", len(x), log=calib.log) as bar:
            calib.cache[key] = range_overrides(calibrate_onnx(src, x, spec.calibration,
                                                              progress=lambda done, _t, _e: bar.update(done), **kw))
    return calib.cache[key]


def quantize_file(src: Path, dst: Path, spec: QuantSpec, calib: Calibrator, float_nodes: list[str] | None = None) -> None:
    """ORT's quantize_static of `src` into `dst` with `spec`, `float_nodes` (and `spec.exclude_nodes`) kept float."""
    from onnxruntime import quantization as q

    method = spec.calibration
    if spec.calibration != "minmax" and spec.calibrator == "edgekit" and spec.format == "qdq":
        extra, method = streamed_ranges(src, spec, calib), "minmax"  # ORT's own pass is then a cheap MinMax
    elif spec.calibration == "mse":
        raise PassError("calibration: mse needs format: qdq (ORT's QOperator quantizer misapplies tensor range "
                        "overrides: measured cosine 0.07 with ranges that work in QDQ)")
    else:  # ORT's own calibrator (its QOperator quantizer misapplies range overrides, so those use it too)
        extra = {"CalibPercentile": spec.percentile} if spec.calibration == "percentile" else {}
    floats = [*spec.exclude_nodes, *(float_nodes or [])]
    with contextlib.redirect_stdout(io.StringIO()):  # ORT prints its histogram calibrators' progress
        q.quantize_static(
            str(src), str(dst), make_reader_for(src, calib.x),
            quant_format=getattr(q.QuantFormat, FORMATS[spec.format]),
            per_channel=spec.per_channel, reduce_range=spec.reduce_range,
            activation_type=getattr(q.QuantType, QTYPE[spec.activation_type]),
            weight_type=getattr(q.QuantType, QTYPE[spec.weight_type]),
            nodes_to_exclude=floats or None,
            calibrate_method=getattr(q.CalibrationMethod, ORT_CALIBRATORS[method]), extra_options=extra,
        )
    if floats and spec.format == "qdq":  # else ORT re-quantizes them per-tensor at session load
        from edgekit.quant.onnx_rewrite import keep_float

        keep_float(dst, floats)


def saturation_safe_applies(spec: QuantSpec) -> bool:
    """Whether saturation-safe weights apply to `spec` on this host."""
    from edgekit.quant.onnx_rewrite import cpu_saturates_u8s8

    s = spec
    fits = s.format == "qdq" and s.activation_type == "uint8" and s.weight_type == "int8" and s.per_channel
    if s.saturation_safe is False or not fits or s.reduce_range:
        return False
    return s.saturation_safe is True or cpu_saturates_u8s8()


def fidelity(path: Path, ev: Evaluation) -> tuple[dict[str, float], dict[str, Any]]:
    """Fidelity to fp32 on `ev` (compare's numbers, and validation accuracy where labelled) and the per-sample
    values paired tests between candidates use."""
    from edgekit.export.parity import compare, per_sample
    from edgekit.runtimes.onnxruntime import OnnxRuntime

    out = OnnxRuntime().load(path).run(ev.x)
    numbers = compare(ev.reference, out)
    each = per_sample(ev.reference, out)
    y = ev.labels
    if y is not None and (y >= 0).all():  # unlabelled data has labels -1
        numbers["val_accuracy"] = float((out.argmax(1) == y).mean())
        each["correct"] = out.argmax(1) == y
    return numbers, each


def build_candidate(pre: Path, dst: Path, spec: QuantSpec, calib: Calibrator, ev: Evaluation,
                    float_nodes: list[str] | None = None) -> Candidate:
    """Quantize `pre` into `dst` (saturation-safe weights where that applies) and measure its fidelity on `ev`."""
    from edgekit.quant.onnx_rewrite import saturation_safe

    quantize_file(pre, dst, spec, calib, float_nodes=float_nodes)
    sat = saturation_safe(dst, pre, dst) if saturation_safe_applies(spec) else None
    numbers, each = fidelity(dst, ev)
    return Candidate(format=spec.format, activation_type=spec.activation_type, weight_type=spec.weight_type,
                     per_channel=spec.per_channel, saturation_safe=sat or None, float_nodes=list(float_nodes or []),
                     path=Path(dst), source=Path(pre), fidelity=numbers, per_sample=each,
                     size_bytes=Path(dst).stat().st_size)


def graph_signature(path: Path) -> tuple:
    """What decides an ONNX file's speed on one host: its ops in order (type, domain, attributes) and the shapes
    and types of its tensors, not the values of its weights and scales."""
    import onnx

    from edgekit.model_files import onnx_header

    m = onnx_header(path)
    ops = tuple((n.op_type, n.domain, tuple(sorted((a.name, str(onnx.helper.get_attribute_value(a)))
                                                    for a in n.attribute))) for n in m.graph.node)
    inits = tuple((i.data_type, tuple(i.dims)) for i in m.graph.initializer)
    return ops, inits
