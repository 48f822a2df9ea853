"""Activation ranges of an ONNX model from edgekit's streaming calibrators (edgekit.quant.calibrate), handed to
ONNX Runtime's quantizer as TensorQuantOverrides (rmin/rmax per tensor).

ORT's own entropy and percentile calibrators keep every activation of every calibration batch in memory before
building histograms (hours and hundreds of GB on real models and data); here each batch's tensors update a
fixed-size histogram per tensor and are dropped, so memory is one batch of activations plus 2048 bins per tensor,
and progress is reported with an ETA.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit.quant.calibrate import ProgressTimer, make_calibrator


def activation_tensors(path: Path) -> list[str]:
    """Float tensors ORT may quantize: the graph inputs and every node output typed float (shape-inferred)."""
    import onnx

    from edgekit.model_files import load_onnx

    m = onnx.shape_inference.infer_shapes(load_onnx(path))
    g = m.graph
    inits = {i.name for i in g.initializer}
    floats = {v.name for v in [*g.input, *g.value_info, *g.output]
              if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    names = [i.name for i in g.input if i.name in floats and i.name not in inits]
    names += [o for n in g.node for o in n.output if o in floats and o not in inits]
    return list(dict.fromkeys(names))


def calibrate_onnx(path: Path, x: np.ndarray, method: str, batch: int = 8,
                   progress: Callable[[int, int | None, float | None], None] | None = None,
                   **kw) -> dict[str, tuple[float, float]]:
    """(rmin, rmax) of every activation tensor of `path` over the inputs `x`, by calibrator `method`
    (minmax, percentile, mse, entropy), streamed `batch` images at a time."""
    from edgekit.quant.onnx_rewrite import stream_tensors

    names = activation_tensors(path)
    cals = {n: make_calibrator(method, **kw) for n in names}
    timer = ProgressTimer(len(x), progress)
    for outs in stream_tensors(path, names, x, batch=batch):
        for n, a in outs.items():
            cals[n].update(a)
        timer.tick(len(next(iter(outs.values()))) if outs else 0)
    return {n: c.compute_range() for n, c in cals.items()}


def range_overrides(ranges: dict[str, tuple[float, float]]) -> dict:
    """ORT `extra_options` entries that make quantize_static use these ranges instead of its own."""
    return {"TensorQuantOverrides": {n: [{"rmin": np.array(lo, np.float32), "rmax": np.array(hi, np.float32)}]
                                     for n, (lo, hi) in ranges.items()}}


def static_batch(path) -> int | None:
    """The fixed batch size of an ONNX model's first input, or None when the batch axis is dynamic."""
    from edgekit.model_files import onnx_header

    dims = onnx_header(path).graph.input[0].type.tensor_type.shape.dim
    return int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None


def make_reader(input_name: str, x: np.ndarray, batch: int = 16, drop_last: bool = False):
    """ORT calibration batches of `batch` samples (floats as float32, token ids as int64); `drop_last` for a
    fixed-batch model, which cannot take a short one."""
    from onnxruntime.quantization import CalibrationDataReader

    from edgekit.runtimes.base import as_model_input

    x = as_model_input(x)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(range(0, len(x), batch))

        def get_next(self):
            i = next(self._it, None)
            if i is None or (drop_last and len(x) - i < batch and i > 0):
                return None
            return {input_name: np.ascontiguousarray(x[i: i + batch])}

        def rewind(self):
            self._it = iter(range(0, len(x), batch))

    return Reader()
