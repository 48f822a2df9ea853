"""Activation ranges for full-int8 TFLite, computed by edgekit's streaming calibrators on the fp32 flatbuffer.

ai-edge-quantizer's own calibration keeps an exponential moving average of each batch's min/max (smoothing 0.95),
so at batch 1 the ranges follow the last ~20 calibration samples and clip whatever the earlier ones reached: on
EfficientNet-Lite0 and 250 photos, top-1 agreement with fp32 was 0.880 with its ranges and 0.928 with the global
min/max (`benchmarks/int8_mobile_cnn.py --tflite`). Here every tensor the quantizer asks a range for is read out of the
fp32 interpreter (all intermediates preserved) and streamed into a bounded-memory calibrator (`minmax`,
`percentile`, `mse`, `entropy`); the results replace the quantizer's min/max.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import numpy as np


def tensor_ranges(fp32: bytes, batches: Iterable[np.ndarray], names: Iterable[str], method: str = "minmax",
                  **kw: Any) -> dict[str, tuple[float, float]]:
    """Range of each named tensor of the fp32 flatbuffer over `batches` (each at the file's static input shape)."""
    from edgekit.quant.calibrate import make_calibrator
    from edgekit.runtimes.litert import interpreter_module, quiet_stderr

    with quiet_stderr():
        interp = interpreter_module().Interpreter(model_content=fp32, experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
    index = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    cals = {n: make_calibrator(method, **kw) for n in names if n in index}
    inp = interp.get_input_details()[0]
    for xb in batches:
        interp.set_tensor(inp["index"], np.asarray(xb, dtype=inp["dtype"]))
        interp.invoke()
        for n, c in cals.items():
            t = interp.get_tensor(index[n])
            if t.dtype.kind == "f":
                c.update(t)
    out = {}
    for n, c in cals.items():
        try:
            out[n] = c.compute_range()
        except (ValueError, RuntimeError):  # a tensor that never held a float value (e.g. an int shape tensor)
            continue
    return out


def override_ranges(result: Mapping[str, MutableMapping[str, Any]], ranges: Mapping[str, tuple[float, float]]
                    ) -> tuple[dict[str, Any], int]:
    """The quantizer's calibration result with min/max replaced by `ranges` (which always include 0, as int8 zero
    points need); returns it and how many tensors were replaced. Per-channel entries are left as they are."""
    out: dict[str, Any] = {}
    n = 0
    for name, qsv in result.items():
        if name in ranges and "min" in qsv and np.asarray(qsv["min"]).size == 1:
            lo, hi = ranges[name]
            mn, mx = np.asarray(qsv["min"]), np.asarray(qsv["max"])
            out[name] = {**qsv, "min": np.full_like(mn, min(lo, 0.0)), "max": np.full_like(mx, max(hi, 0.0))}
            n += 1
        else:
            out[name] = qsv
    return out, n
