"""A model's input contract (name, dtype, dynamic axes), carried on the module as `edgekit_input`.

Exporters read it to name the input and keep axes dynamic; stats and example inputs read its dtype. A model
without one takes a float32 tensor named `input` with a dynamic batch axis.
"""

from __future__ import annotations

import numpy as np

from edgekit.errors import ModelLoadError
from edgekit.models.config import InputSpec

ATTR = "edgekit_input"
MAX_DIM = 65536
NUMPY_DTYPES = {"float32": np.float32, "int64": np.int64, "int32": np.int32}


def attach_input_spec(model, spec: InputSpec):
    """Set the model's input spec (a plain attribute: it survives deepcopy, not state_dict round trips)."""
    object.__setattr__(model, ATTR, spec)
    return model


def input_spec(model, example: np.ndarray | None = None) -> InputSpec:
    """The model's declared spec, else the default (float32 or the example's integer dtype, dynamic batch)."""
    spec = getattr(model, ATTR, None)
    if spec is not None:
        return spec
    dtype = "int64" if example is not None and np.asarray(example).dtype.kind in "iu" else "float32"
    return InputSpec(name="input", dtype=dtype, dynamic_axes={0: "batch"})


def dynamic_axes(spec: InputSpec, rank: int, dynamic_batch: bool = True) -> dict[int, tuple[str, int, int]]:
    """Axis -> (name, min, max); the batch axis is dynamic when `dynamic_batch`, whatever the spec says."""
    axes = {i: (n, lo or 1, hi or MAX_DIM) for i, (n, lo, hi) in spec.axes().items() if i < rank}
    if dynamic_batch:
        axes.setdefault(0, ("batch", 1, MAX_DIM))
    else:
        axes.pop(0, None)
    return axes


def torch_dynamic_shapes(spec: InputSpec, example, dynamic_batch: bool = True):
    """`dynamic_shapes` for torch.export / the dynamo ONNX exporter, or None when every axis is static.

    torch.export specializes sizes 0 and 1, so a dynamic axis whose example size is 1 is left static."""
    import torch

    axes = dynamic_axes(spec, example.ndim, dynamic_batch)
    dims = {}
    for i, (name, lo, hi) in axes.items():
        size = int(example.shape[i])
        if size < 2:
            continue
        if not lo <= size <= hi:
            raise ModelLoadError(f"input '{spec.name}' axis {i} ({name}) has size {size}, outside its range [{lo}, {hi}]")
        dims[i] = torch.export.Dim(name, min=max(lo, 1), max=hi)
    return (dims,) if dims else None


def example_input(spec: InputSpec, batch: int = 2, sizes: dict[str, int] | None = None, high: int = 2,
                  seed: int = 0) -> np.ndarray:
    """Inputs generated from a spec: named axes take `sizes[name]` (batch defaults to `batch`); integer dtypes draw
    ids in [0, high), floats are standard normal."""
    if not spec.shape:
        raise ModelLoadError(f"input '{spec.name}': no shape declared to generate example inputs from")
    sizes = {"batch": batch, **(sizes or {})}
    shape = []
    for d in spec.shape:
        if isinstance(d, str):
            if d not in sizes:
                raise ModelLoadError(f"input '{spec.name}': give a size for its dynamic axis '{d}'")
            shape.append(sizes[d])
        else:
            shape.append(int(d))
    rng = np.random.default_rng(seed)
    dtype = NUMPY_DTYPES[spec.dtype or "float32"]
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0, max(high, 1), size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def check_data_against_spec(spec: InputSpec, input_shape: tuple[int, ...], data_dtype: str | None, where: str) -> None:
    """The data's per-sample shape and dtype must fit the declared input (static axes equal, same rank)."""
    if spec.shape is not None:
        want = spec.shape[1:]
        if len(want) != len(input_shape):
            raise ModelLoadError(f"{where}: input '{spec.name}' is declared {spec.shape} but the data's samples have "
                                 f"shape {list(input_shape)}")
        for i, (w, got) in enumerate(zip(want, input_shape), start=1):
            if isinstance(w, int) and i not in spec.dynamic_axes and w != got:
                raise ModelLoadError(f"{where}: input '{spec.name}' axis {i} is declared {w} but the data has {got}")
    if spec.dtype and data_dtype:
        kind = np.dtype(NUMPY_DTYPES[spec.dtype]).kind
        if (kind in "iu") != (np.dtype(data_dtype).kind in "iu"):
            raise ModelLoadError(f"{where}: input '{spec.name}' is declared {spec.dtype} but the data is {data_dtype}")
