"""PyTorch -> fp32 LiteRT flatbuffer with litert-torch at a static batch, and what a written .tflite holds.

A conversion failure names the op and the torch module that has no LiteRT lowering when it can.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgekit.environ import patched_environ
from edgekit.errors import ExportError

_CACHE: dict[tuple, bytes] = {}  # last fp32 conversion, so several precisions of one model convert once


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


def explain_failure(e: BaseException, model, logs: Sequence[str] = ()) -> str:
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
