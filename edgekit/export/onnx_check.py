"""Validate .onnx files before anything runs them, with errors that name the file and the reason."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import ArtifactError


def check_onnx_file(path: Path):
    """Load and check an ONNX model; return the ModelProto."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: ONNX file not found")
    if path.stat().st_size == 0:
        raise ArtifactError(f"{path}: ONNX file is empty")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises DecodeError; onnx raises its own for external data
        raise ArtifactError(f"{path}: not a valid ONNX model (cannot parse protobuf: {e})") from e
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise ArtifactError(f"{path}: ONNX model fails validation: {first}") from e
    if not model.graph.node:
        raise ArtifactError(f"{path}: ONNX model has an empty graph (truncated file?)")
    return model


def tensor_specs(values) -> list[dict]:
    """Input/output specs from an ONNX graph's value infos."""
    import onnx

    specs = []
    for v in values:
        t = v.type.tensor_type
        shape = [d.dim_param or d.dim_value for d in t.shape.dim]
        specs.append({"name": v.name, "shape": shape, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name})
    return specs


def op_counts(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return dict(sorted(counts.items()))
