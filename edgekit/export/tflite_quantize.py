"""ai-edge-quantizer on an fp32 LiteRT flatbuffer: fp16 weights, dynamic int8, or full int8 calibrated by edgekit.

One code path for both ways of asking: a TFLite export target with a quantized precision, and the `quantize.tflite`
pass on an fp32 .tflite. Every quantized file is checked after writing: a file that claims int8 (or fp16) but carries
no such weight tensors is an ExportError, not a silently fp32 artifact.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.environ import patched_environ
from edgekit.errors import ExportError
from edgekit.export.int8 import finetuned_model
from edgekit.export.tflite_convert import QUIET_ENV, convert_fp32, inspect_tflite
from edgekit.extras import installed_version
from edgekit.quant.options import Calibration
from edgekit.runtimes.base import fixed_batch

if TYPE_CHECKING:
    from edgekit.export.config import TfliteQuantOptions

# precision -> (ai-edge-quantizer recipe, dtype its weights must carry)
RECIPES = {"fp16": ("weight_only_fp16", "float16"), "dynamic_int8": ("dynamic_wi8_afp32", "int8"),
           "int8": ("static_wi8_ai8", "int8")}


@dataclass
class Quantized:
    """A quantized flatbuffer, what was done (the artifact's details) and anything worth a note."""

    data: bytes
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def quantize_tflite(opts: TfliteQuantOptions, calib: np.ndarray, batch: int, *, fp32: bytes | None = None,
                    model: Any = None, log: Callable[[str], None] | None = None) -> Quantized:
    """The `opts.precision` flatbuffer (a TFLite export target or `quantize.tflite` config) at static batch `batch`, from the
    fp32 flatbuffer `fp32`, or converted from the torch `model` when no `fp32` is given. int8 with `opts.finetune`
    fine-tunes `model` first and converts it anew; without a torch model that step is skipped, with a note."""
    details: dict = {}
    notes: list[str] = []
    calib = opts.calibration.subset(calib)
    if opts.precision == "int8" and opts.finetune is not None:
        if model is None:
            notes.append("finetune: skipped, no torch model (label-free fine-tuning changes the torch weights before "
                         "conversion; give the module the file came from, e.g. apply_pass(..., reference=module))")
        else:
            model, details["finetune"] = finetuned_model(model, calib, opts.finetune, log)
            fp32 = None
    if fp32 is None:
        fp32 = convert_fp32(model, fixed_batch(calib, batch))
    info: dict = {}
    data = quantize(fp32, opts.precision, opts.io_dtype, calib, batch, opts.calibration, info)
    details.update({"quantizer": f"ai-edge-quantizer {installed_version('ai-edge-quantizer', '?')}",
                    "recipe": RECIPES[opts.precision][0], "io_dtype": opts.io_dtype})
    if opts.precision == "dynamic_int8":
        details["float_ops"] = ["DEPTHWISE_CONV_2D"]
    if opts.precision == "int8":
        details.update({"calibration_samples": int(len(calib)), **info,
                        "weights": "per-channel symmetric int8", "activations": "per-tensor asymmetric int8"})
        if opts.calibration.method == "percentile":
            details["percentile"] = opts.calibration.percentile
    return Quantized(data, details, notes)


def checked(path: Path, precision: str) -> dict:
    """What the written file at `path` holds (`inspect_tflite`), refused when its weights lack `precision`."""
    info = inspect_tflite(path)
    check_precision(info, precision, Path(path))
    return info


def dtype_details(info: dict) -> dict:
    """The details every .tflite artifact records about its tensors and delegation."""
    return {"tensor_dtypes": info["tensor_dtypes"], "weight_dtypes": info["weight_dtypes"],
            "delegation": info["delegation"]}


def aeq_recipe(precision: str, io_dtype: str, float_scopes: tuple[str, ...] = ()):
    from ai_edge_quantizer import qtyping, recipe, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    rm = recipe_manager.RecipeManager()
    if precision == "fp16":
        rm.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                  algorithm_key=AlgorithmName.FLOAT_CASTING)
        return rm.get_quantization_recipe()
    if precision == "dynamic_int8":
        rm.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        # XNNPACK has no dynamic-range depthwise kernel: an int8 depthwise conv would split the delegated graph
        # (and run on the slower builtin kernel); its weights are small, so it stays float
        rm.add_quantization_config(".*", qtyping.TFLOperationName.DEPTHWISE_CONV_2D, qtyping.OpQuantizationConfig(),
                                   AlgorithmName.NO_QUANTIZE)
        return rm.get_quantization_recipe()
    rm.load_quantization_recipe(recipe.static_wi8_ai8())
    if io_dtype == "float32":  # keep float model inputs/outputs: QUANTIZE/DEQUANTIZE at the edges
        for op in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
            rm.add_quantization_config(".*", op, qtyping.OpQuantizationConfig(), AlgorithmName.NO_QUANTIZE)
    for rx in float_scopes:  # selective quantization: these ops stay float (DEQUANTIZE/QUANTIZE around them)
        rm.add_quantization_config(rx, qtyping.TFLOperationName.ALL_SUPPORTED, qtyping.OpQuantizationConfig(),
                                   AlgorithmName.NO_QUANTIZE)
    return rm.get_quantization_recipe()


def quantize(fp32: bytes, precision: str, io_dtype: str, calib: np.ndarray, batch: int,
             calibration: Calibration | None = None, info: dict | None = None) -> bytes:
    """Apply an ai-edge-quantizer recipe to the fp32 flatbuffer; int8 calibrates on `calib` at the static batch,
    with activation ranges from edgekit's calibrator `calibration.method` (see `tflite_calibrate`), and leaves the ops
    of the torch modules named in `calibration.keep_float` in float; `info` receives what was done."""
    from edgekit.export.tflite_calibrate import override_ranges, tensor_ranges
    from edgekit.export.tflite_scopes import match_modules, module_scope_regex
    from edgekit.runtimes.litert import quiet_stderr

    calibration = calibration or Calibration()
    keep_float = calibration.keep_float
    if keep_float:
        try:
            matched = match_modules(fp32, list(keep_float))
        except ValueError as e:
            raise ExportError(str(e)) from None
        if info is not None:
            info["float_modules"] = matched
    try:
        with patched_environ(QUIET_ENV), quiet_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from ai_edge_quantizer import quantizer

            qt = quantizer.Quantizer(fp32)
            qt.load_quantization_recipe(aeq_recipe(precision, io_dtype,
                                                tuple(module_scope_regex(m) for m in keep_float)))
            result = None
            if qt.need_calibration:
                sig, name = signature(fp32)
                n = max(batch, (len(calib) + batch - 1) // batch * batch)
                xs = fixed_batch(calib, n)
                if xs.dtype.kind in "iu":  # the converter turns int64 token inputs into int32
                    xs = xs.astype(np.int32)
                feeds = [xs[i: i + batch] for i in range(0, n, batch)]
                result = qt.calibrate({sig: [{name: f} for f in feeds]})
                ranges = tensor_ranges(fp32, feeds, result, calibration.method, **calibration.calibrator_kw())
                result, replaced = override_ranges(result, ranges)
                if info is not None:
                    info.update({"calibration": calibration.method, "calibrated_tensors": replaced,
                                 "quantizer_ranges_kept": len(result) - replaced})
            out = qt.quantize(result, enable_progress_report=False).quantized_model
    except ExportError:
        raise
    except Exception as e:  # the quantizer raises ValueError/RuntimeError with long messages
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"ai-edge-quantizer {RECIPES[precision][0]} failed: {first}") from e
    if not out:
        raise ExportError(f"ai-edge-quantizer {RECIPES[precision][0]} produced no model")
    return bytes(out)


def signature(data: bytes) -> tuple[str, str]:
    from edgekit.runtimes.litert import interpreter_module

    sigs = interpreter_module().Interpreter(model_content=data).get_signature_list()
    sig = next(iter(sigs))
    return sig, sigs[sig]["inputs"][0]


def check_precision(info: dict, precision: str, path: Path) -> None:
    """Refuse a file whose weights do not carry the precision it claims (e.g. a silently fp32 'int8' file)."""
    if precision == "fp32":
        return
    want = RECIPES[precision][1]
    if not info["weight_dtypes"].get(want):
        raise ExportError(f"{path.name}: claimed {precision} but the file has no {want} weight tensors "
                          f"(weight dtypes {info['weight_dtypes']}, ops {sorted(info['ops'])}): nothing was quantized")
    if precision == "int8":
        acts = info["tensor_dtypes"].get("int8", 0) - info["weight_dtypes"].get("int8", 0)
        if acts <= 0:
            raise ExportError(f"{path.name}: claimed full-integer int8 but no activation tensor is int8")
