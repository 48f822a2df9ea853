"""Validate .onnx files before anything runs them, with errors that name the file and the reason."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import ArtifactError


def check_onnx_file(path: Path):
    """Load (within bounds: edgekit.model_files) and check an ONNX model; return the ModelProto."""
    import onnx

    from edgekit.model_files import load_onnx

    path = Path(path)
    model = load_onnx(path)
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # onnx's checker raises its C++ ValidationError type
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


def initializer_bytes(model) -> dict[str, int]:
    """Bytes of weights per element type (e.g. {'float32': 400, 'int8': 100}): shows what really got quantized."""
    import onnx

    out: dict[str, int] = {}
    for init in model.graph.initializer:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
        n = 1
        for d in init.dims:
            n *= d
        out[dtype.name] = out.get(dtype.name, 0) + n * dtype.itemsize
    return out


def toposort(graph) -> None:
    """Reorder a graph's nodes so every input is produced before it is used (some converters leave them unsorted)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        progressed = False
        for node in list(pending):
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
                pending.remove(node)
                progressed = True
        if not progressed:
            raise ValueError(f"graph has a cycle or dangling inputs at node {pending[0].name}")
    del graph.node[:]
    graph.node.extend(ordered)
