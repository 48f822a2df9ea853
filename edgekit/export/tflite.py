"""PyTorch -> LiteRT (.tflite): litert-torch converts at a static batch; ai-edge-quantizer makes fp16/int8 files.

Every quantized file is checked after writing: a file that claims int8 (or fp16) but carries no such weight
tensors is an ExportError, not a silently fp32 artifact.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import numpy as np

from edgekit.atomic import atomic_path
from edgekit.environ import patched_environ
from edgekit.errors import ExportError
from edgekit.export.artifact import describe
from edgekit.extras import installed_version
from edgekit.runtimes.base import fixed_batch

# precision -> (ai-edge-quantizer recipe, dtype its weights must carry)
RECIPES = {"fp16": ("weight_only_fp16", "float16"), "dynamic_int8": ("dynamic_wi8_afp32", "int8"),
           "int8": ("static_wi8_ai8", "int8")}
_CACHE: dict[tuple, bytes] = {}  # last fp32 conversion, so several precisions of one model convert once


class TfliteExporter:
    format = "tflite"
    static_batch = True  # converts at one fixed batch; int8 calibrates on the calibration split

    @staticmethod
    def facts(path: Path) -> dict:
        """Inputs, outputs and op counts of a written .tflite, read through the interpreter (a bad file raises)."""
        info = inspect_tflite(path)
        return {"inputs": info["inputs"], "outputs": info["outputs"], "ops": info["ops"]}

    def export(self, model, example: np.ndarray, cfg, path: Path, run_dir: Path, name: str, *,
               calibration: np.ndarray | None = None, batch_size: int | None = None, log=None):
        batch = batch_size or cfg.batch_size or 1
        x = fixed_batch(example, batch)
        precision = cfg.precision
        details: dict = {"static_batch": batch, "converter": f"litert-torch {installed_version('litert-torch', '?')}"}
        calib = calibration if calibration is not None and len(calibration) else example
        if cfg.calibration_size:
            calib = calib[: cfg.calibration_size]
        if precision == "int8" and cfg.finetune is not None:
            model, details["finetune"] = finetuned_model(model, calib, cfg.finetune, log)
        fp32 = convert_fp32(model, x)
        if precision == "fp32":
            data = fp32
        else:
            info: dict = {}
            data = quantize(fp32, precision, cfg.io_dtype, calib, batch, cfg.calibration, cfg.percentile, info,
                            cfg.keep_float)
            details.update({"quantizer": f"ai-edge-quantizer {installed_version('ai-edge-quantizer', '?')}",
                            "recipe": RECIPES[precision][0], "io_dtype": cfg.io_dtype})
            if precision == "dynamic_int8":
                details["float_ops"] = ["DEPTHWISE_CONV_2D"]
            if precision == "int8":
                details.update({"calibration_samples": int(len(calib)), **info,
                                "weights": "per-channel symmetric int8", "activations": "per-tensor asymmetric int8"})
                if cfg.calibration == "percentile":
                    details["percentile"] = cfg.percentile
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
            info = inspect_tflite(tmp)
            check_precision(info, precision, Path(path))
        details.update({"tensor_dtypes": info["tensor_dtypes"], "weight_dtypes": info["weight_dtypes"],
                        "delegation": info["delegation"]})
        return describe(name, "tflite", precision, path, run_dir, inputs=info["inputs"], outputs=info["outputs"],
                        ops=info["ops"], details=details)


def finetuned_model(model, calib: np.ndarray, f, log) -> tuple:
    """The model after label-free fine-tuning under simulated int8 on the grid of ai-edge-quantizer and the
    XNNPACK quantizer (per-channel symmetric weights at max|w|/127; XNNPACK's int8 kernels do not saturate, so no
    saturation-safe scale)."""
    from edgekit.quant.finetune import finetune_for_int8

    try:
        ft = finetune_for_int8(model, calib, epochs=f.epochs, lr=f.lr, temperature=f.temperature,
                               mse_weight=f.mse_weight, batch=f.batch, holdout=f.holdout, per_channel=True,
                               saturation_safe=False, log=log or (lambda _m: None))
    except Exception as e:  # a model the simulation cannot hook (no conv/linear) or a failing forward pass
        raise ExportError(f"label-free fine-tuning for int8 failed: {type(e).__name__}: {e}") from e
    return ft.model.eval(), {"best_epoch": ft.best_epoch, "reused": ft.reused, "holdout_cosine_rounded": ft.cosine_plain,
                             "holdout_cosine_before": ft.cosine_before, "holdout_cosine_after": ft.cosine_after,
                             "calibration_samples": int(len(calib)), **f.model_dump()}


QUIET_ENV = {"LITERT_TORCH_SHOW_PROGRESS": "n", "TQDM_DISABLE": "1"}  # litert-torch's and tqdm's progress output


def _model_key(model, x: np.ndarray) -> tuple | None:
    """Identity + weights + input shape; None (no caching) when the weights cannot be hashed."""
    h = hashlib.sha1()
    try:
        for k, v in model.state_dict().items():
            h.update(k.encode())
            v = v.detach().cpu()
            h.update((v.float() if v.dtype.is_floating_point else v).contiguous().numpy().tobytes())
    except Exception:  # exotic tensor types: convert every time
        return None
    return (id(model), type(model).__qualname__, x.shape, h.hexdigest())


def convert_fp32(model, x: np.ndarray) -> bytes:
    """litert-torch conversion at x's (static) shape; failures name the op and module when they can."""
    from edgekit.runtimes.litert import quiet_stderr

    model = model.eval()
    key = _model_key(model, x)
    if key is not None and key in _CACHE:
        return _CACHE[key]
    logs: list[str] = []
    try:
        with patched_environ(QUIET_ENV), quiet_stderr(logs), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import litert_torch
            import torch

            data = litert_torch.convert(model, (torch.from_numpy(x),)).model_content()
    except Exception as e:  # torch.export and the MLIR converter raise many types
        raise ExportError(explain_failure(e, model, logs)) from e
    _CACHE.clear()
    if key is not None:
        _CACHE[key] = data
    return data


def explain_failure(e: BaseException, model, logs: list[str] = ()) -> str:
    """The first meaningful lines of a conversion failure: the op, the module path, the user's source line."""
    text = str(e).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    missing = re.search(r"Lowering not found: (\S+)", text)
    node = _failing_node(e)
    where = ""
    if node is not None:
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            path, cls = list(stack.values())[-1]
            where = f" in module '{path or '<root>'}' ({cls.rsplit('.', 1)[-1]})"
    src = [i for i, ln in enumerate(lines) if ln.strip().startswith("File ")]
    head = lines[0] if lines else type(e).__name__
    if len(head) > 300:
        head = head[:300] + "..."
    mlir = [ln.strip() for ln in logs if re.search(r"(^|[\s:])error:", ln)][:2]
    msg = f"TFLite conversion of {type(model).__name__} failed"
    if missing:
        msg += f": op {missing.group(1)} has no LiteRT lowering{where}"
    elif node is not None and node.op == "call_function":
        msg += f" at op {node.target}{where}: {type(e).__name__}: {head}"
    else:
        msg += f"{where}: {type(e).__name__}: {head}"
    if src:
        f = re.match(r'\s*File "([^"]+)", line (\d+)', lines[src[-1]])
        code = lines[src[-1] + 1].strip() if src[-1] + 1 < len(lines) else ""
        if f:
            msg += f"; at {f.group(1)}:{f.group(2)}" + (f": {code}" if code and not code.startswith("Use ") else "")
    if mlir:
        msg += "; converter: " + " | ".join(mlir)
    return msg


def _failing_node(e: BaseException):
    """The torch.fx Node being lowered when the converter raised, found in the traceback's frames."""
    tb = e.__traceback__
    found = None
    while tb is not None:
        for k, v in list(tb.tb_frame.f_locals.items()):
            if k in ("n", "node") and type(v).__name__ == "Node" and hasattr(v, "meta"):
                found = v
        tb = tb.tb_next
    return found


def _recipe(precision: str, io_dtype: str, float_scopes: tuple[str, ...] = ()):
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
             calibration: str = "minmax", percentile: float = 99.99, info: dict | None = None,
             keep_float: list[str] | tuple[str, ...] = ()) -> bytes:
    """Apply an ai-edge-quantizer recipe to the fp32 flatbuffer; int8 calibrates on `calib` at the static batch,
    with activation ranges from edgekit's `calibration` method (see `tflite_calibrate`), and leaves the ops of the
    torch modules named in `keep_float` in float; `info` receives what was done."""
    from edgekit.export.tflite_calibrate import override_ranges, tensor_ranges
    from edgekit.export.tflite_scopes import match_modules, module_scope_regex
    from edgekit.runtimes.litert import quiet_stderr

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
            qt.load_quantization_recipe(_recipe(precision, io_dtype,
                                                tuple(module_scope_regex(m) for m in keep_float)))
            result = None
            if qt.need_calibration:
                sig, name = _signature(fp32)
                n = max(batch, (len(calib) + batch - 1) // batch * batch)
                xs = fixed_batch(calib, n)
                if xs.dtype.kind in "iu":  # the converter turns int64 token inputs into int32
                    xs = xs.astype(np.int32)
                feeds = [xs[i: i + batch] for i in range(0, n, batch)]
                result = qt.calibrate({sig: [{name: f} for f in feeds]})
                kw = {"percentile": percentile} if calibration == "percentile" else {}
                ranges = tensor_ranges(fp32, feeds, result, calibration, **kw)
                result, replaced = override_ranges(result, ranges)
                if info is not None:
                    info.update({"calibration": calibration, "calibrated_tensors": replaced,
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


def _signature(data: bytes) -> tuple[str, str]:
    from edgekit.runtimes.litert import interpreter_module

    sigs = interpreter_module().Interpreter(model_content=data).get_signature_list()
    sig = next(iter(sigs))
    return sig, sigs[sig]["inputs"][0]


def inspect_tflite(path: Path) -> dict:
    """I/O specs, op counts, XNNPACK delegation and tensor dtypes (weights = tensors no op produces)."""
    from edgekit.runtimes.litert import LiteRtRuntime, delegation, op_counts

    sess = LiteRtRuntime().load(path, threads=1)
    it = sess.interp
    ops = list(it._get_ops_details())
    produced = {int(t) for o in ops for t in o["outputs"]}
    inputs = {int(d["index"]) for d in it.get_input_details()}
    used = {int(t) for o in ops if o["op_name"] != "DELEGATE" for t in o["inputs"] if int(t) >= 0}
    dtypes: dict[str, int] = {}
    weights: dict[str, int] = {}
    for d in it.get_tensor_details():
        dt = np.dtype(d["dtype"]).name
        dtypes[dt] = dtypes.get(dt, 0) + 1
        if d["index"] in used and d["index"] not in produced and d["index"] not in inputs and d["shape"].size >= 1:
            weights[dt] = weights.get(dt, 0) + 1

    def spec(d: dict) -> dict:
        return {"name": d["name"], "shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name}

    return {"inputs": [spec(d) for d in it.get_input_details()], "outputs": [spec(d) for d in it.get_output_details()],
            "ops": op_counts(it), "delegation": delegation(it), "tensor_dtypes": dict(sorted(dtypes.items())),
            "weight_dtypes": dict(sorted(weights.items()))}


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
