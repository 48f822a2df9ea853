"""OpenVINO's CPU plugin running ONNX files (fp32 and edgekit's QDQ int8), set for batch-1 latency.

The inference precision is pinned: f32 by default (on AMX CPUs the plugin's own default is bf16, which would make
an "fp32" row a bf16 one), bf16 only when asked for and only where the CPU has it. The session records what the
compiled model actually used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import ArtifactError, RuntimeUnavailable
from edgekit.extras import Needs
from edgekit.runtimes.base import Runtime, Session, import_for

PRECISIONS = ("f32", "bf16")


NEEDS = Needs("openvino", ("openvino",))


def _ov():
    return import_for("openvino", NEEDS)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("Check ", "Exception"))]
    return (lines[0] if lines else text.splitlines()[0] if text else type(e).__name__)[:300]


def _why(e: BaseException) -> str:
    """One line on why OpenVINO refused a file; names the usual cause of "No suitable implementations"."""
    text = str(e)
    if "No suitable implementation" in text or "Unsupported" in text and "precision" in text:
        return ("the CPU plugin has no kernel for one of its ops at that precision (e.g. per-tensor signed int8 "
                "activations in a QDQ file; edgekit's quantize passes write uint8 activations, which it runs): "
                + _first_line(e))
    return _first_line(e)


def cpu_capabilities() -> list[str]:
    """The CPU plugin's OPTIMIZATION_CAPABILITIES (e.g. FP32, INT8, BF16, FP16)."""
    return [str(c) for c in _ov().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


class OpenVinoSession(Session):
    def __init__(self, compiled, path: Path):
        self.compiled, self.path = compiled, path
        self.request = compiled.create_infer_request()
        port = compiled.inputs[0]
        self.input_name = port.get_any_name()
        self.input_dtype = np.dtype(port.get_element_type().to_dtype())
        shape = port.get_partial_shape()
        dim0 = shape[0] if shape.rank.is_static and len(shape) else None
        self.static_batch = dim0.get_length() if dim0 is not None and dim0.is_static else None
        self.inference_precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        if x.dtype != self.input_dtype:
            x = x.astype(self.input_dtype)
        try:
            out = self.request.infer({0: np.ascontiguousarray(x)}, share_inputs=True)
        except RuntimeError as e:
            raise ArtifactError(f"{self.path}: OpenVINO cannot run input {tuple(x.shape)} {x.dtype} on "
                                f"'{self.input_name}' ({self.compiled.inputs[0].get_partial_shape()}): "
                                f"{_first_line(e)}") from e
        return np.asarray(out[self.compiled.outputs[0]], dtype=np.float32)

    def ops(self) -> dict[str, int]:
        """Operation counts of the graph the plugin executes (after its fusions), by OpenVINO layer type."""
        counts: dict[str, int] = {}
        for op in self.compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            kind = info["layerType"].astype(str) if "layerType" in info else op.get_type_name()
            if kind not in ("Input", "Output", "Parameter", "Result", "Const"):
                counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items()))


class OpenVinoRuntime(Runtime):
    name = "openvino"
    needs = NEEDS

    def version(self) -> str:
        return _ov().get_version().split("-")[0]

    def load(self, path: Path, threads: int | None = None, providers: list[str] | None = None,
             precision: str = "f32") -> OpenVinoSession:
        """`precision`: the CPU plugin's inference precision, f32 (default) or bf16 (where the CPU has it)."""
        from edgekit.runtimes.litert import quiet_stderr

        ov = _ov()
        path = Path(path)
        if precision not in PRECISIONS:
            raise RuntimeUnavailable(f"openvino precision '{precision}' is not one of {list(PRECISIONS)}")
        if not path.is_file():
            raise ArtifactError(f"{path}: model file not found")
        core = ov.Core()
        if precision == "bf16" and "BF16" not in cpu_capabilities():
            raise RuntimeUnavailable(f"openvino precision bf16: this CPU has no bf16 support (capabilities: "
                                     f"{cpu_capabilities()})")
        config = {"INFERENCE_PRECISION_HINT": precision, "NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(int(threads))
        try:
            with quiet_stderr():  # the other frontends' parse errors for a file that is not a model
                model = core.read_model(str(path))
        except RuntimeError as e:
            raise ArtifactError(f"{path}: OpenVINO cannot read this model: {_first_line(e)}") from e
        try:
            compiled = core.compile_model(model, "CPU", config)
        except RuntimeError as e:
            raise ArtifactError(f"{path}: OpenVINO's CPU plugin cannot compile this model: {_why(e)}") from e
        return OpenVinoSession(compiled, path)
