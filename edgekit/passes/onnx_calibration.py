"""Feed calibration samples to ONNX Runtime's quantizer: floats as float32, token ids as int64."""

from __future__ import annotations

import numpy as np


def make_reader(input_name: str, x: np.ndarray, batch: int = 16):
    from onnxruntime.quantization import CalibrationDataReader

    from edgekit.runtimes.base import as_model_input

    x = as_model_input(x)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(range(0, len(x), batch))

        def get_next(self):
            i = next(self._it, None)
            return None if i is None else {input_name: np.ascontiguousarray(x[i: i + batch])}

        def rewind(self):
            self._it = iter(range(0, len(x), batch))

    return Reader()
