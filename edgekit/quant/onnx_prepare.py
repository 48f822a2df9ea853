"""Make an fp32 ONNX file fit for quantization, and say why an int8 file came out slower or bigger than fp32.

Files from other exporters (paddle2onnx, tf2onnx) often keep weights in `Constant` nodes and BatchNormalization
unfolded. ONNX Runtime's quantizer leaves such weights in float and quantizes around the BN, so the int8 file can
come out bigger and slower than fp32. `prepare()` folds those away (Constant nodes to initializers, then ORT's
`quant_pre_process`: symbolic shape inference, constant folding, Conv+BN fusion, ONNX shape inference) and checks
that the prepared file computes what the original did. `why_slower()` reads the graph ONNX Runtime really runs
for an int8 file and names what stayed float.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# Conv weights and bias, BN parameters: any float Constant this large is a weight the quantizer should see
_WEIGHT_MIN_ELEMENTS = 2
_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}


@dataclass
class Preparation:
    """What `prepare` did to a file (recorded in the pass's report)."""

    ran: bool
    constants_folded: int = 0
    batchnorm_before: int = 0
    batchnorm_after: int = 0
    nodes_before: int = 0
    nodes_after: int = 0
    max_abs_diff: float | None = None
    error: str | None = None
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if not self.ran:
            return f"pre-processing skipped: {self.error}"
        bn = self.batchnorm_before - self.batchnorm_after
        parts = [f"{self.nodes_before} -> {self.nodes_after} nodes"]
        if self.constants_folded:
            parts.append(f"{self.constants_folded} Constant weights made initializers")
        if bn:
            parts.append(f"{bn} BatchNormalization folded")
        return "pre-processed (" + ", ".join(parts) + ")"


def constants_to_initializers(model) -> int:
    """Move the top graph's float Constant tensors into initializers (the quantizer only quantizes initializers)."""
    from onnx import numpy_helper

    graph = model.graph
    keep, moved = [], 0
    for node in graph.node:
        attr = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and "value" in attr and len(node.output) == 1:
            arr = numpy_helper.to_array(attr["value"].t)
            if arr.dtype.kind == "f" and arr.size >= _WEIGHT_MIN_ELEMENTS:
                graph.initializer.append(numpy_helper.from_array(arr, node.output[0]))
                moved += 1
                continue
        keep.append(node)
    if moved:
        del graph.node[:]
        graph.node.extend(keep)
    return moved


def _count(model, op_type: str) -> int:
    return sum(n.op_type == op_type for n in model.graph.node)


def _outputs(path: Path, x: np.ndarray) -> np.ndarray:
    from edgekit.runtimes.onnxruntime import OnnxRuntime

    return np.asarray(OnnxRuntime().load(path, threads=1).run(x), dtype=np.float64)


def prepare(src: Path, dst: Path, sample: np.ndarray | None = None, max_abs: float = 1e-3) -> Preparation:
    """Write a quantization-ready copy of `src` to `dst`. On any failure `dst` is not written and the returned
    record says why; `sample` (a few real inputs) checks the prepared file against the original."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgekit.model_files import load_onnx

    src, dst = Path(src).resolve(), Path(dst).resolve()
    rec = Preparation(ran=False)
    try:
        model = load_onnx(src)
        rec.batchnorm_before, rec.nodes_before = _count(model, "BatchNormalization"), len(model.graph.node)
        with tempfile.TemporaryDirectory(prefix="edgekit-prep-") as tmp:
            staged = Path(tmp) / "staged.onnx"
            rec.constants_folded = constants_to_initializers(model)
            if rec.constants_folded:
                rec.steps.append("constants_to_initializers")
            onnx.save(model, str(staged))
            out = Path(tmp) / "pre.onnx"
            # ORT's symbolic shape inference drops a temporary file into the working directory when it gives up
            with contextlib.chdir(tmp):
                quant_pre_process(str(staged), str(out), skip_symbolic_shape=False)
            rec.steps.append("quant_pre_process")
            prepared = load_onnx(out)
            rec.batchnorm_after = _count(prepared, "BatchNormalization")
            rec.nodes_after = len(prepared.graph.node)
            if sample is not None and len(sample):
                diff = float(np.max(np.abs(_outputs(src, sample) - _outputs(out, sample))))
                rec.max_abs_diff = diff
                if not diff <= max_abs:
                    raise ValueError(f"the pre-processed model differs from the original by {diff:.3g} (> {max_abs})")
            dst.parent.mkdir(parents=True, exist_ok=True)
            out.replace(dst)
        rec.ran = True
    except Exception as e:  # ORT's tools raise anything; the caller quantizes the original and reports why
        rec.error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return rec


def optimized_graph(path: Path):
    """The graph ONNX Runtime's CPU provider actually runs for `path` (after its fusions), as a ModelProto."""
    import onnxruntime as ort

    from edgekit.model_files import check_model_file, load_onnx

    check_model_file(Path(path))
    with tempfile.TemporaryDirectory(prefix="edgekit-opt-") as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        opts.log_severity_level = 3
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return load_onnx(Path(tmp) / "opt.onnx")


def float_islands(model) -> dict[str, int]:
    """Op types that compute in float between a DequantizeLinear and a QuantizeLinear in a (fused) int8 graph."""
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    islands: dict[str, int] = {}
    for n in model.graph.node:
        integer_kernel = n.op_type.startswith("QLinear") or (n.domain == "com.microsoft" and n.op_type.startswith("Q"))
        if n.op_type in _QUANT_OPS or integer_kernel:
            continue
        fed = any(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in n.input)
        feeds = any(c.op_type == "QuantizeLinear" for o in n.output for c in consumers.get(o, []))
        if fed and feeds:
            islands[n.op_type] = islands.get(n.op_type, 0) + 1
    return dict(sorted(islands.items(), key=lambda kv: -kv[1]))


def unfolded_weights(model) -> dict[str, int]:
    """Weights the quantizer cannot see: float Constant nodes and unfolded BatchNormalization."""
    from onnx import numpy_helper

    consts = 0
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value" and numpy_helper.to_array(a.t).dtype.kind == "f" \
                        and numpy_helper.to_array(a.t).size >= _WEIGHT_MIN_ELEMENTS:
                    consts += 1
    found = {"Constant": consts, "BatchNormalization": _count(model, "BatchNormalization")}
    return {k: v for k, v in found.items() if v}


def why_slower(fp32_path: Path, int8_path: Path) -> str:
    """One line naming the likely cause when an int8 file is slower or bigger than its fp32 source."""
    from edgekit.model_files import onnx_header

    causes = []
    unfolded = unfolded_weights(onnx_header(fp32_path))
    if unfolded:
        causes.append("unfolded weights in the fp32 file (" + ", ".join(f"{v} {k}" for k, v in unfolded.items())
                      + "): the quantizer leaves them float")
    try:
        runs = optimized_graph(int8_path)
    except Exception as e:  # diagnosis must never fail the pass
        return "; ".join(causes) or f"could not read the optimized int8 graph ({type(e).__name__})"
    islands = float_islands(runs)
    if islands:
        pairs = sum(n.op_type == "QuantizeLinear" for n in runs.graph.node)
        top = ", ".join(f"{v} {k}" for k, v in list(islands.items())[:4])
        causes.append(f"float islands: {top} run in float between Dequantize/Quantize pairs "
                      f"({pairs} QuantizeLinear left after ONNX Runtime's fusions)")
    return "; ".join(causes) or "no float islands or unfolded weights found: the int8 kernels themselves are slower here"
