"""ONNX Runtime: one InferenceSession per artifact, intra-op threads and execution providers configurable."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import ArtifactError, RuntimeUnavailable
from edgekit.runtimes.base import Runtime, Session, check_before_load


def ort_module():
    """The onnxruntime package (RuntimeUnavailable, naming the pip line, when it is not installed)."""
    try:
        import onnxruntime
    except ImportError as e:
        raise RuntimeUnavailable("onnxruntime is not installed: pip install onnxruntime") from e
    return onnxruntime


_INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
                 "tensor(int32)": np.int32}


class OrtSession(Session):
    def __init__(self, sess, path: Path):
        self.sess, self.path = sess, path
        inp = sess.get_inputs()[0]
        self.input_name = inp.name
        self.input_type = inp.type
        dim0 = inp.shape[0] if inp.shape else None
        self.static_batch = dim0 if isinstance(dim0, int) and dim0 > 0 else None

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        want = _INPUT_DTYPES.get(self.input_type)
        if want is not None and x.dtype != want:
            x = x.astype(want)
        try:
            out = self.sess.run(None, {self.input_name: x})[0]
        except Exception as e:  # ORT raises InvalidArgument/Fail for wrong shapes or types: name both sides
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            want = self.sess.get_inputs()[0].shape
            raise ArtifactError(f"{self.path}: input '{self.input_name}' expects shape {want} ({self.input_type}), "
                                f"got {tuple(x.shape)} {x.dtype}: {first}") from e
        return np.asarray(out, dtype=np.float32)

    def ops(self) -> dict[str, int]:
        from edgekit.model_files import onnx_header
        from edgekit.onnx_graph import op_counts

        return op_counts(onnx_header(self.path))


class OnnxRuntime(Runtime):
    name = "onnxruntime"

    def version(self) -> str:
        return ort_module().__version__

    def load(self, path: Path, threads: int | None = None, providers: list[str] | None = None,
             spin: bool = True) -> OrtSession:
        """`spin=False`: intra-op threads sleep as soon as a run ends (for timing many sessions in one process,
        where one session's spinning threads would steal the cores of the next)."""
        ort = ort_module()
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"{path}: model file not found")
        check_before_load(path)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        wanted = providers or ["CPUExecutionProvider"]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise RuntimeUnavailable(f"onnxruntime has no {missing} here (available: {available})")
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/InvalidProtobuf types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ArtifactError(f"{path}: ONNX Runtime cannot load this model: {first}") from e
        return OrtSession(sess, path)
