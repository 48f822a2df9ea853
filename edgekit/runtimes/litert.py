"""LiteRT (TFLite) interpreter: XNNPACK by default, int8 I/O (de)quantized inside, static batch from the file."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgekit.errors import ArtifactError, RuntimeUnavailable
from edgekit.extras import Needs
from edgekit.runtimes.base import Runtime, Session, check_before_load


def interpreter_module():
    """`ai_edge_litert.interpreter`, else the legacy `tflite_runtime.interpreter`."""
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        try:
            from tflite_runtime import interpreter  # type: ignore[no-redef]
        except ImportError as e:
            raise RuntimeUnavailable("no TFLite runtime installed: pip install ai-edge-litert") from e
    return interpreter


@contextlib.contextmanager
def quiet_stderr(keep: list[str] | None = None):
    """Silence native stderr (absl/TFLite INFO lines); the captured lines are appended to `keep` when given."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stderr without a descriptor: nothing to redirect
        fd = 2
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(fd)
    except OSError:  # no stderr at all: nothing to silence
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            if keep is not None:
                sink.seek(0)
                keep.extend(line for line in sink.read().decode(errors="replace").splitlines() if line.strip())


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    size = path.stat().st_size
    if size == 0:
        raise ArtifactError(f"{path}: TFLite file is empty")
    with open(path, "rb") as f:
        head = f.read(8)
    if size < 8 or head[4:8] != b"TFL3":
        raise ArtifactError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier at byte 4; wrong file or truncated)")


def _io_meta(d: dict) -> tuple[np.dtype, float, int]:
    scale, zero = d.get("quantization", (0.0, 0))
    return np.dtype(d["dtype"]), float(scale), int(zero)


class LiteRtSession(Session):
    def __init__(self, interp, path: Path):
        self.interp, self.path = interp, path
        self._in, self._out = interp.get_input_details()[0], interp.get_output_details()[0]
        self.in_dtype, self.in_scale, self.in_zero = _io_meta(self._in)
        self.out_dtype, self.out_scale, self.out_zero = _io_meta(self._out)
        dim0 = int(self._in["shape"][0]) if len(self._in["shape"]) else 0
        self.static_batch = dim0 if dim0 > 0 else None

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        if self.in_dtype.kind in "iu" and (x.dtype.kind in "iu" or not self.in_scale):
            x = x.astype(self.in_dtype)  # token ids (int64 ids arrive as the file's int32), not quantized values
        elif self.in_dtype.kind in "iu":
            info = np.iinfo(self.in_dtype)
            q = np.round(x / (self.in_scale or 1.0) + self.in_zero)
            x = np.clip(q, info.min, info.max).astype(self.in_dtype)
        else:
            x = x.astype(self.in_dtype, copy=False)
        self.interp.set_tensor(self._in["index"], np.ascontiguousarray(x))
        self.interp.invoke()
        y = self.interp.get_tensor(self._out["index"])
        if self.out_dtype.kind in "iu":
            return ((y.astype(np.float32) - self.out_zero) * self.out_scale).astype(np.float32)
        return np.asarray(y, dtype=np.float32)

    def ops(self) -> dict[str, int]:
        return op_counts(self.interp)

    def delegation(self) -> dict:
        return delegation(self.interp)


def _ops(interp) -> list[dict]:
    try:
        return list(interp._get_ops_details())
    except AttributeError:  # older interpreters have no op listing
        return []


def op_counts(interp) -> dict[str, int]:
    """Builtin op counts of the model (the delegate's DELEGATE nodes left out)."""
    counts: dict[str, int] = {}
    for op in _ops(interp):
        if op["op_name"] != "DELEGATE":
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items()))


def delegation(interp) -> dict:
    """How many ops the default delegate (XNNPACK) took: each DELEGATE node stands for the ops between its
    inputs and outputs, found by walking producers back from its outputs."""
    ops = _ops(interp)
    nodes = [o for o in ops if o["op_name"] != "DELEGATE"]
    producer = {int(t): o["index"] for o in nodes for t in o["outputs"]}
    by_index = {o["index"]: o for o in nodes}
    delegated: set[int] = set()
    partitions = 0
    for d in (o for o in ops if o["op_name"] == "DELEGATE"):
        partitions += 1
        boundary = {int(t) for t in d["inputs"]}
        todo = [int(t) for t in d["outputs"]]
        while todo:
            t = todo.pop()
            p = producer.get(t)
            if t in boundary or p is None or p in delegated:
                continue
            delegated.add(p)
            todo.extend(int(i) for i in by_index[p]["inputs"] if int(i) >= 0)
    rest: dict[str, int] = {}
    for o in nodes:
        if o["index"] not in delegated:
            rest[o["op_name"]] = rest.get(o["op_name"], 0) + 1
    return {"delegate": "XNNPACK" if partitions else None, "partitions": partitions, "ops": len(nodes),
            "delegated": len(delegated), "not_delegated": len(nodes) - len(delegated),
            "not_delegated_ops": dict(sorted(rest.items()))}


class LiteRtRuntime(Runtime):
    name = "litert"
    needs = Needs("tflite", ("ai_edge_litert|tflite_runtime",))

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        legacy = not interpreter_module().__name__.startswith("ai_edge_litert")
        try:
            return f"tflite-runtime {version('tflite-runtime')}" if legacy else version("ai-edge-litert")
        except PackageNotFoundError:
            return "unknown"

    def load(self, path: Path, threads: int | None = None, providers: list[str] | None = None) -> LiteRtSession:
        interpreter = interpreter_module()
        path = Path(path)
        _check_file(path)
        check_before_load(path)
        logs: list[str] = []
        try:
            with quiet_stderr(logs):
                interp = interpreter.Interpreter(model_path=str(path), num_threads=threads or None)
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            errors = [ln for ln in logs if "error" in ln.lower()][:3]
            raise ArtifactError(f"{path}: LiteRT cannot load this model: {why}"
                                + (f" ({'; '.join(errors)})" if errors else "")) from e
        return LiteRtSession(interp, path)
