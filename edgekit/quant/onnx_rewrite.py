"""Weight-side fixes applied to an ONNX Runtime QDQ model after `quantize_static`, on the ONNX graph itself (so
they work for every model, exported or user-supplied).

* `saturation_safe`: on x86 CPUs without VNNI, MLAS' U8S8 kernel adds adjacent products of uint8 activations and
  int8 weights into a saturating int16, which overflows once two adjacent weights sum to more than 128 in
  magnitude (see edgekit.quant.bias_correction.saturation_safe_scale). Per output channel, the weight scale is
  raised just enough to keep every adjacent pair within 128; depthwise convolutions (their own kernel) keep
  ORT's scale. The int32 bias is re-quantized on the new scale.
* `bias_correct_qdq`: the rounding error of each layer's int8 weights, dW, shifts its outputs by dW E[x]; E[x] is the
  per-channel mean of the layer's input measured in the quantized model itself on calibration data, and the
  shift is taken out of the bias (two rounds, since upstream corrections move downstream inputs).

Names follow `quantize_static`: `W_quantized`, `W_scale`, `W_zero_point`, `B_quantized`, `B_quantized_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_saturates_u8s8() -> bool:
    """True on x86 CPUs whose int8 GEMM path has no VNNI (the vpmaddubsw int16 saturation applies)."""
    from edgekit.hardware import cpu_info, is_x86

    if not is_x86():
        return False
    isa = set(cpu_info().get("isa", []))
    return not (isa & set(VNNI_FLAGS))


@dataclass
class QLayer:
    """One quantized Conv/Gemm of a QDQ graph: its weight and bias initializer names and group count."""

    node: str
    op: str
    weight: str  # float name W (W_quantized, W_scale in the QDQ graph)
    bias: str | None  # float name B (B_quantized, B_quantized_scale)
    group: int
    input: str  # the tensor the layer consumes (a DequantizeLinear output in QDQ)


def qdq_layers(graph) -> list[QLayer]:
    """The quantized Conv/Gemm layers of a QDQ graph (those whose weight comes through a DequantizeLinear)."""
    inits = {i.name for i in graph.initializer}
    dq = {n.output[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    out = []
    for n in graph.node:
        if n.op_type not in ("Conv", "Gemm") or len(n.input) < 2 or n.input[1] not in dq:
            continue
        wq = dq[n.input[1]].input[0]
        if not wq.endswith("_quantized") or wq not in inits:
            continue
        if n.op_type == "Gemm" and not any(a.name == "transB" and a.i == 1 for a in n.attribute):
            continue  # (K, N) weights: per-channel runs along axis 1; left as ORT made them
        bias = None
        if len(n.input) > 2 and n.input[2] in dq:
            bq = dq[n.input[2]].input[0]
            if bq.endswith("_quantized") and bq in inits:
                bias = bq[: -len("_quantized")]
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        out.append(QLayer(n.name, n.op_type, wq[: -len("_quantized")], bias, group, n.input[0]))
    return out


class QdqGraph:
    """An ONNX model loaded for editing its initializers by name (get, put, save)."""

    def __init__(self, path: Path):
        from edgekit.model_files import load_onnx

        self.model = load_onnx(path)
        self.init = {i.name: i for i in self.model.graph.initializer}

    def get(self, name: str) -> np.ndarray:
        from onnx import numpy_helper

        return numpy_helper.to_array(self.init[name])

    def put(self, name: str, arr: np.ndarray) -> None:
        from onnx import numpy_helper

        self.init[name].CopyFrom(numpy_helper.from_array(arr, name))

    def save(self, path: Path) -> None:
        import onnx

        onnx.save(self.model, str(path))


def keep_float(qdq: Path, nodes: list[str]) -> list[str]:
    """Make the float Conv/Gemm nodes of a QDQ model stay float in ONNX Runtime; returns the nodes rewritten.

    ORT's level-1 `WeightBiasQuantization` transformer quantizes the float weights of any Conv/Gemm whose input
    comes from a DequantizeLinear with a scalar scale, per-tensor symmetric int8 - so a layer kept out of
    quantization (`nodes_to_exclude`) silently runs with per-tensor int8 weights, worse than the per-channel
    int8 it was meant to escape (EfficientNet-Lite0, first depthwise conv "kept float": cosine 0.992 -> 0.898;
    with the transformer disabled 0.991). The rewrite gives each such node its own DequantizeLinear with the
    same scale and zero point repeated per channel (axis 1), which that transformer leaves alone: the values
    are identical, the layer stays float in any ORT session.
    """
    import onnx
    from onnx import helper, numpy_helper

    g = QdqGraph(qdq)
    graph = g.model.graph
    producers = {o: n for n in graph.node for o in n.output}
    wanted, done = set(nodes), []
    new_nodes = []
    for n in graph.node:
        if n.name not in wanted or n.op_type not in ("Conv", "ConvTranspose", "Gemm") or len(n.input) < 2:
            continue
        dq = producers.get(n.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or n.input[1] not in g.init:
            continue
        scale = g.get(dq.input[1]) if dq.input[1] in g.init else None
        if scale is None or scale.size != 1:
            continue
        w = g.get(n.input[1])
        if n.op_type == "Gemm":
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            channels = w.shape[1] if trans_b else w.shape[0]
        else:
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            channels = w.shape[1] * group if n.op_type == "Conv" else w.shape[0]
        has_zp = len(dq.input) > 2 and bool(dq.input[2])
        if has_zp and dq.input[2] not in g.init:
            continue
        tag = f"{n.name}_float_input"
        inputs = [dq.input[0], f"{tag}_scale"]
        graph.initializer.append(numpy_helper.from_array(np.full(channels, scale.item(), scale.dtype), inputs[1]))
        if has_zp:
            zp = g.get(dq.input[2])
            inputs.append(f"{tag}_zero_point")
            graph.initializer.append(numpy_helper.from_array(np.full(channels, zp.item(), zp.dtype), inputs[2]))
        new_nodes.append((n, helper.make_node("DequantizeLinear", inputs, [f"{tag}_dq"],
                                              name=f"{tag}_DequantizeLinear", axis=1)))
        n.input[0] = f"{tag}_dq"
        done.append(n.name)
    for consumer, dq_node in new_nodes:  # keep topological order: each new DQ right before its consumer
        idx = list(graph.node).index(consumer)
        graph.node.insert(idx, dq_node)
    if done:
        onnx.checker.check_model(g.model)
        g.save(qdq)
    return done


def _pair_scale(w: np.ndarray, qmax: int = 127) -> np.ndarray:
    """Per-output-channel scale keeping adjacent K pairs (ordered kh, kw, cin as MLAS' NHWC im2col) <= qmax+1."""
    k = w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1) if w.ndim == 4 else w.reshape(w.shape[0], -1)
    if k.shape[1] % 2:
        k = np.pad(k, ((0, 0), (0, 1)))
    pair = np.abs(k).reshape(k.shape[0], -1, 2).sum(2).max(1)
    base = np.abs(w).reshape(w.shape[0], -1).max(1)
    return (np.maximum(base, pair).astype(np.float64) / qmax).astype(np.float32)


def _requantize_bias(g: QdqGraph, layer: QLayer, b_float: np.ndarray, scale_ratio: np.ndarray | None = None) -> None:
    bs = g.get(f"{layer.bias}_quantized_scale").astype(np.float64)
    if scale_ratio is not None:
        bs = bs * scale_ratio
        g.put(f"{layer.bias}_quantized_scale", bs.astype(np.float32))
    g.put(f"{layer.bias}_quantized", np.clip(np.round(b_float / bs), -(2**31), 2**31 - 1).astype(np.int32))


def saturation_safe(qdq: Path, fp32: Path, out: Path) -> dict:
    """Rewrite the per-channel int8 weights of every non-depthwise Conv (and Gemm with transB) on saturation-safe
    scales, taking the float weights from the fp32 model `quantize_static` was given. Returns counts."""
    g, f = QdqGraph(qdq), QdqGraph(fp32)
    changed, channels = 0, 0
    for layer in qdq_layers(g.model.graph):
        w = f.get(layer.weight) if layer.weight in f.init else None
        s_old = g.get(f"{layer.weight}_scale").astype(np.float32).reshape(-1)
        if w is None or s_old.size != w.shape[0] or (layer.group > 1 and layer.group == w.shape[0]):
            continue  # per-tensor, depthwise, or a weight we cannot trace back: left as ORT made it
        s_new = _pair_scale(w)
        s_new = np.maximum(s_new, s_old)  # never finer than ORT's own scale
        grown = s_new > s_old * (1 + 1e-6)
        if not grown.any():
            continue
        q = np.clip(np.round(w / s_new.reshape([-1] + [1] * (w.ndim - 1))), -127, 127).astype(np.int8)
        g.put(f"{layer.weight}_quantized", q)
        g.put(f"{layer.weight}_scale", s_new.reshape(g.get(f"{layer.weight}_scale").shape))
        if layer.bias is not None and layer.bias in f.init:
            _requantize_bias(g, layer, f.get(layer.bias).astype(np.float64), (s_new / s_old).astype(np.float64))
        changed += 1
        channels += int(grown.sum())
    g.save(out)
    return {"layers_rescaled": changed, "channels_rescaled": channels}


def stream_tensors(path: Path, names: list[str], x: np.ndarray, batch: int = 8):
    """Yield the named intermediate tensors batch by batch (graph optimizations off, so every tensor exists;
    a fixed-batch model gets whole batches of its size)."""
    import onnx
    import onnxruntime as ort

    from edgekit.model_files import load_onnx

    m = load_onnx(path)
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in have)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    if isinstance(inp.shape[0], int) and inp.shape[0] > 0:
        batch = inp.shape[0]
        x = x[: max(batch, len(x) - len(x) % batch)]
    for i in range(0, len(x), batch):
        yield dict(zip(names, sess.run(names, {inp.name: x[i: i + batch]})))


def _input_means(path: Path, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel (axis 1) mean of the named intermediate tensors, streamed over `x`."""
    sums: dict[str, np.ndarray] = {}
    count: dict[str, int] = {}
    for outs in stream_tensors(path, names, x):
        for n, a in outs.items():
            a = a.astype(np.float64)
            v = a.reshape(a.shape[0], a.shape[1], -1) if a.ndim > 2 else a.reshape(a.shape[0], a.shape[1], 1)
            sums[n] = sums.get(n, 0) + v.sum(axis=(0, 2))
            count[n] = count.get(n, 0) + v.shape[0] * v.shape[2]
    return {n: sums[n] / count[n] for n in names}


def _shift(dw: np.ndarray, mean_in: np.ndarray, group: int) -> np.ndarray:
    """E[dW x] per output channel from the input's per-channel mean (padding borders ignored)."""
    if dw.ndim == 2:
        return dw @ mean_in
    o, ig = dw.shape[:2]
    v = dw.reshape(group, o // group, ig, -1).sum(3)
    return (v * mean_in.reshape(group, 1, ig)).sum(2).reshape(-1)


def bias_correct_qdq(qdq: Path, fp32: Path, x_calib: np.ndarray, out: Path, rounds: int = 2) -> dict:
    """Empirical bias correction of every quantized Conv/Gemm with a bias (see the module docstring)."""
    f = QdqGraph(fp32)
    layers = [la for la in qdq_layers(QdqGraph(qdq).model.graph) if la.bias is not None and la.bias in f.init
              and la.weight in f.init]
    current = qdq
    shifts: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        means = _input_means(current, sorted({la.input for la in layers}), x_calib)
        g = QdqGraph(qdq)  # always correct from the uncorrected biases, so nothing is counted twice
        for la in layers:
            w = f.get(la.weight).astype(np.float64)
            s = g.get(f"{la.weight}_scale").astype(np.float64).reshape([-1] + [1] * (w.ndim - 1))
            zp = g.get(f"{la.weight}_zero_point").astype(np.float64).reshape([-1] + [1] * (w.ndim - 1)) \
                if f"{la.weight}_zero_point" in g.init else 0.0
            dw = (g.get(f"{la.weight}_quantized").astype(np.float64) - zp) * s - w
            mean = means[la.input]
            if la.op == "Gemm":
                dw = dw.reshape(dw.shape[0], -1)
            shifts[la.node] = _shift(dw, mean, la.group)
            _requantize_bias(g, la, f.get(la.bias).astype(np.float64) - shifts[la.node])
        g.save(out)
        current = out
    mags = [float(np.abs(v).mean()) for v in shifts.values()]
    return {"layers_corrected": len(layers), "mean_abs_shift": float(np.mean(mags)) if mags else 0.0}


def _outputs(path: Path, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """The named intermediate tensors for inputs `x`, concatenated."""
    parts: dict[str, list] = {n: [] for n in names}
    for outs in stream_tensors(path, names, x):
        for n, a in outs.items():
            parts[n].append(a.astype(np.float32))
    return {n: np.concatenate(v) for n, v in parts.items()}


def sensitivity_ranking(qdq: Path, fp32: Path, x: np.ndarray) -> list[tuple[str, float]]:
    """Quantized Conv/Gemm nodes ranked by the error each adds: relative error of its output against the fp32
    model's, minus that of its input (so error inherited from upstream layers is not blamed on it)."""
    from edgekit.model_files import onnx_header

    q = onnx_header(qdq).graph
    f = onnx_header(fp32).graph
    f_tensors = {i.name for i in f.input} | {o for n in f.node for o in n.output}
    producers = {o: n for n in q.node for o in n.output}

    def float_name(t: str) -> str | None:
        """The fp32 tensor a QDQ tensor stands for: through DequantizeLinear <- QuantizeLinear to the original
        name; ORT renames a quantized graph output X to X_QuantizeLinear_Input and fuses Conv+Relu (the conv
        then outputs the Relu's tensor)."""
        dq = producers.get(t)
        if dq is not None and dq.op_type == "DequantizeLinear":
            qn = producers.get(dq.input[0])
            t = qn.input[0] if qn is not None and qn.op_type == "QuantizeLinear" else t
        t = t[: -len("_QuantizeLinear_Input")] if t.endswith("_QuantizeLinear_Input") else t
        return t if t in f_tensors else None

    consumers: dict[str, list] = {}
    for n in q.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def as_seen(t: str) -> str:
        """What the next layer reads: ORT folds a Relu/Clip after a conv into the QuantizeLinear's range, so the
        conv's own output is pre-activation; the DequantizeLinear after it carries the activated values."""
        qn = next((c for c in consumers.get(t, []) if c.op_type == "QuantizeLinear"), None)
        dq = next((c for c in consumers.get(qn.output[0], []) if c.op_type == "DequantizeLinear"), None) if qn else None
        return dq.output[0] if dq is not None else t

    pairs = []  # (node, q_in, f_in, q_out, f_out)
    for la in qdq_layers(q):
        out = next(n.output[0] for n in q.node if n.name == la.node)
        f_in, f_out = float_name(la.input), float_name(out)
        if f_in is not None and f_out is not None:
            pairs.append((la.node, la.input, f_in, as_seen(out), f_out))
    if not pairs:
        return []
    qa = _outputs(qdq, sorted({p[1] for p in pairs} | {p[3] for p in pairs}), x)
    fa = _outputs(fp32, sorted({p[2] for p in pairs} | {p[4] for p in pairs}), x)

    def rel(a, b):
        return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))

    scores = [(node, rel(qa[q_out], fa[f_out]) - rel(qa[q_in], fa[f_in])) for node, q_in, f_in, q_out, f_out in pairs]
    return sorted(scores, key=lambda s: -s[1])
