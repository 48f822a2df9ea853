"""Feed calibration samples to ONNX Runtime's quantizer: floats as float32, token ids as int64."""

from __future__ import annotations

import numpy as np


def static_batch(path) -> int | None:
    """The fixed batch size of an ONNX model's first input, or None when the batch axis is dynamic."""
    from edgekit.model_files import onnx_header

    dims = onnx_header(path).graph.input[0].type.tensor_type.shape.dim
    return int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None


def make_reader(input_name: str, x: np.ndarray, batch: int = 16, drop_last: bool = False):
    """Calibration batches of `batch` samples; `drop_last` for a fixed-batch model, which cannot take a short one."""
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
