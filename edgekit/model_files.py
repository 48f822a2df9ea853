"""Model files from untrusted places (user models, run folders, baselines), checked within bounds before loading.

An ONNX file is parsed without its external data first: every external location must be a relative path inside
the model's folder, each declared range must lie inside a file that exists, and the declared sizes must add up to
less than the limit (edgekit.limits). A TFLite file is checked by size, then its tensor shapes and buffer ranges are
read from the flatbuffer without copying it. A safetensors header's declared sizes must match the file.
Every declared tensor shape is checked for negative or absurd dimensions. Nothing is allocated before that.
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from pathlib import Path

from edgekit.errors import ArtifactError, ModelLoadError
from edgekit.limits import human, over_limit, shape_problem
from edgekit.names import contained

MODEL = "EDGEKIT_MAX_MODEL_BYTES"


def _file_size(path: Path, kind: str, error: type = ArtifactError) -> int:
    if not path.is_file():
        raise error(f"{path}: {kind} file not found")
    size = path.stat().st_size
    if size == 0:
        raise error(f"{path}: not a valid {kind} file (it is empty)")
    too_big = over_limit(size, MODEL, f"the {kind} file")
    if too_big:
        raise error(f"{path}: {too_big}")
    return size


def _itemsize(elem_type: int) -> int:
    import onnx

    try:
        return max(onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize, 1)
    except (KeyError, ValueError, TypeError):
        return 1


def _graph_tensors(graph):
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _attribute_tensors(node)


def _attribute_tensors(node):
    for a in node.attribute:
        if a.HasField("t"):
            yield a.t
        yield from a.tensors
        if a.HasField("g"):
            yield from _graph_tensors(a.g)
        for sub in a.graphs:
            yield from _graph_tensors(sub)


def _all_tensors(model):
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _attribute_tensors(node)


def _external_bytes(t, path: Path) -> int:
    """Bytes onnx would read for one externally stored tensor; its range must lie inside a file in the model's folder."""
    info = {e.key: e.value for e in t.external_data}
    what = f"tensor {t.name!r}"
    if not info.get("location"):
        raise ArtifactError(f"{path}: {what} is stored externally but names no location")
    file = contained(path.parent, info["location"], f"external data location of {what}", where=str(path))
    if not file.is_file():
        raise ArtifactError(f"{path}: external data file {info['location']!r} of {what} not found")
    size = file.stat().st_size
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else size - offset
    except ValueError:
        raise ArtifactError(f"{path}: {what} has a non-integer external offset or length") from None
    if offset < 0 or length < 0 or offset + length > size:
        raise ArtifactError(f"{path}: {what} declares bytes {offset}..{offset + length} of {info['location']!r}, "
                            f"which holds {size} bytes (truncated or lying file)")
    return length


def check_onnx_bounds(model, path: Path) -> int:
    """Check the declared shapes and external data of an ONNX model parsed without its external data; return the
    total bytes its external data would load."""
    import onnx

    path = Path(path)
    total = 0
    for t in _all_tensors(model):
        why = shape_problem(t.dims, _itemsize(t.data_type), MODEL)
        if why:
            raise ArtifactError(f"{path}: tensor {t.name!r} {why}")
        if t.data_location == onnx.TensorProto.EXTERNAL:
            total += _external_bytes(t, path)
    too_big = over_limit(total, MODEL, "its external data")
    if too_big:
        raise ArtifactError(f"{path}: {too_big}")
    for v in [*model.graph.input, *model.graph.output]:
        t = v.type.tensor_type
        dims = [d.dim_value for d in t.shape.dim if d.HasField("dim_value")]
        why = shape_problem(dims, _itemsize(t.elem_type), MODEL)
        if why:
            raise ArtifactError(f"{path}: graph input/output {v.name!r} {why}")
    return total


def onnx_header(path: Path):
    """The ModelProto without external data, after the bounds checks (enough for graph, ops and shapes)."""
    import onnx

    path = Path(path)
    _file_size(path, "ONNX")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError, or RuntimeError for a file that is not protobuf at all
        raise ArtifactError(f"{path}: not a valid ONNX model (cannot parse protobuf: {e})") from e
    check_onnx_bounds(model, path)
    return model


def load_onnx(path: Path):
    """The whole ModelProto, external data included, loaded only after `onnx_header`'s checks pass."""
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    path = Path(path)
    model = onnx_header(path)
    if any(uses_external_data(t) for t in _all_tensors(model)):
        try:
            load_external_data_for_model(model, str(path.parent))
        except Exception as e:  # onnx raises ValueError/OSError/its own checker errors for unreadable external data
            raise ArtifactError(f"{path}: cannot load its external data: {e}") from e
    return model


_TFLITE_ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 15: 4, 16: 2, 18: 2}


def check_tflite(path: Path) -> None:
    """Size, the 'TFL3' identifier, and (where the flatbuffer schema is installed) every tensor shape and every
    buffer range, read through a memory map."""
    path = Path(path)
    size = _file_size(path, "TFLite")
    with open(path, "rb") as f:
        head = f.read(8)
        if size < 8 or head[4:8] != b"TFL3":
            raise ArtifactError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier at byte 4; wrong file or "
                                f"truncated)")
        try:
            from ai_edge_litert import schema_py_generated as schema
        except ImportError:  # a device with only a runtime: the host checked the file before sending it
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                problem = _tflite_problem(schema.Model.GetRootAs(buf, 0), size)
            except (struct.error, IndexError, ValueError, TypeError) as e:
                raise ArtifactError(f"{path}: not a valid TFLite flatbuffer: {e}") from e
    if problem:
        raise ArtifactError(f"{path}: {problem}")


def _tflite_problem(model, size: int) -> str | None:
    for s in range(model.SubgraphsLength()):
        g = model.Subgraphs(s)
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            why = shape_problem([t.Shape(j) for j in range(t.ShapeLength())], _TFLITE_ITEMSIZE.get(t.Type(), 1), MODEL)
            if why:
                return f"tensor {(t.Name() or b'?').decode(errors='replace')!r} {why}"
    for b in range(model.BuffersLength()):
        buf = model.Buffers(b)
        if buf.Offset() > 1 and buf.Offset() + buf.Size() > size:
            return f"buffer {b} declares bytes {buf.Offset()}..{buf.Offset() + buf.Size()}, the file holds {size}"
    return None


_SAFETENSORS_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
                         "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8}
_MAX_SAFETENSORS_HEADER = 100 << 20


def check_safetensors(path: Path) -> None:
    """The header's declared dtypes, shapes and byte ranges must be consistent with each other and the file's size."""
    path = Path(path)
    size = _file_size(path, "safetensors", ModelLoadError)
    bad = f"{path}: not a valid safetensors file"
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if n < 2 or 8 + n > size or n > _MAX_SAFETENSORS_HEADER:
            raise ModelLoadError(f"{bad}: its header declares {n} bytes, the file holds {size}")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError) as e:
            raise ModelLoadError(f"{bad}: header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{bad}: header is not a JSON object")
    data = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], [int(d) for d in entry["shape"]], entry["data_offsets"]
            begin, end = int(begin), int(end)
        except (KeyError, TypeError, ValueError):
            raise ModelLoadError(f"{bad}: tensor {name!r} lacks a dtype, shape or data_offsets pair") from None
        if dtype not in _SAFETENSORS_ITEMSIZE:
            raise ModelLoadError(f"{bad}: tensor {name!r} has unknown dtype {str(dtype)[:20]!r}")
        why = shape_problem(shape, _SAFETENSORS_ITEMSIZE[dtype], MODEL)
        if why:
            raise ModelLoadError(f"{path}: tensor {name!r} {why}")
        need = math.prod(shape) * _SAFETENSORS_ITEMSIZE[dtype]
        if not 0 <= begin <= end <= data or end - begin != need:
            raise ModelLoadError(f"{bad}: tensor {name!r} ({dtype} {shape}, {human(need)}) declares bytes "
                                 f"{begin}..{end} of a {data}-byte data section")


def check_model_file(path: Path, error: type = ArtifactError) -> None:
    """The bounds check for a model file of any format edgekit reads (by suffix), before anything loads it;
    `error` is the type raised for other formats (only their size is checked)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        onnx_header(path)
    elif suffix == ".tflite":
        check_tflite(path)
    elif suffix == ".safetensors":
        check_safetensors(path)
    else:
        _file_size(path, suffix.lstrip(".") or "model", error)
