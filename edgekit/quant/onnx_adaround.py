"""AdaRound on a QDQ ONNX model: learned rounding of the int8 weights of its Conv/Gemm layers, in place.

Each layer is rebuilt as a torch Conv2d/Linear from the fp32 graph's weights and attributes; its inputs are streamed
from the fp32 model (target) and from the QDQ model as it stands (with the layers already rounded), and
edgekit.quant.adaround learns the rounding on exactly the QDQ model's weight grid (its per-channel scales, after
any saturation-safe rewrite). Works on any ONNX model (no torch model needed); layers with asymmetric pads or
per-tensor weights are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit.quant.onnx_rewrite import QdqGraph, QLayer, qdq_layers, stream_tensors


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _module(node, w: np.ndarray, b: np.ndarray | None):
    """A torch layer computing `node` (Conv with symmetric pads, or Gemm with transB) with float weights."""
    import torch
    import torch.nn as nn

    if node.op_type == "Gemm":
        if _attr(node, "alpha", 1.0) != 1.0 or _attr(node, "beta", 1.0) != 1.0:
            return None
        mod = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    else:
        if w.ndim != 4:
            return None
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        if pads[:2] != pads[2:] or _attr(node, "auto_pad", "NOTSET") != "NOTSET":
            return None
        group = _attr(node, "group", 1)
        mod = nn.Conv2d(w.shape[1] * group, w.shape[0], tuple(w.shape[2:]), stride=tuple(_attr(node, "strides", [1, 1])),
                        padding=tuple(pads[:2]), dilation=tuple(_attr(node, "dilations", [1, 1])), groups=group,
                        bias=b is not None)
    with torch.no_grad():
        mod.weight.copy_(torch.from_numpy(w))
        if b is not None:
            mod.bias.copy_(torch.from_numpy(b))
    return mod


def _activation(fp_graph, output: str) -> Callable | None:
    """The Relu / Clip (constant bounds) that alone consumes `output` in the fp32 graph, as a torch function."""
    import torch
    from onnx import numpy_helper

    users = [n for n in fp_graph.node if output in n.input]
    if len(users) != 1:
        return None
    n = users[0]
    if n.op_type == "Relu":
        return torch.relu
    if n.op_type == "Clip":
        consts = {i.name: float(numpy_helper.to_array(i)) for i in fp_graph.initializer if i.name in n.input[1:]}
        lo, hi = (consts.get(n.input[k]) if len(n.input) > k else None for k in (1, 2))
        return lambda t: torch.clamp(t, lo, hi)
    return None


def adaround_onnx(qdq: Path, fp32: Path, x: np.ndarray, out: Path, nodes: list[str] | None = None, cfg=None,
                  progress: Callable[[int, int, str, float, float], None] | None = None) -> dict:
    """AdaRound the listed QDQ nodes (default: every per-channel Conv/Gemm) on inputs `x`; write `out`.
    Returns {"layers": n, "mse_nearest": [...], "mse_adaround": [...]} (output MSE per layer on `x`)."""
    import shutil

    import torch

    from edgekit.quant.adaround import AdaRoundConfig, adaround_layer

    cfg = cfg or AdaRoundConfig()
    f = QdqGraph(fp32)
    fp_nodes = {n.name: n for n in f.model.graph.node}
    todo: list[QLayer] = [q for q in qdq_layers(QdqGraph(qdq).model.graph) if nodes is None or q.node in nodes]
    shutil.copyfile(qdq, out)
    stats: dict = {"layers": 0, "nodes": [], "mse_nearest": [], "mse_adaround": []}
    for i, layer in enumerate(todo):
        g = QdqGraph(out)
        fnode = fp_nodes.get(layer.node)
        if fnode is None or layer.weight not in f.init:
            continue
        w = f.get(layer.weight).astype(np.float32)
        s = g.get(f"{layer.weight}_scale").astype(np.float32).reshape(-1)
        if s.size != w.shape[0]:
            continue  # per-tensor weights: not this module's grid
        b = f.get(layer.bias).astype(np.float32) if layer.bias and layer.bias in f.init else None
        mod = _module(fnode, w, b)
        if mod is None:
            continue
        x_fp = torch.from_numpy(np.concatenate([o[fnode.input[0]] for o in stream_tensors(fp32, [fnode.input[0]], x)]))
        x_q = torch.from_numpy(np.concatenate([o[layer.input] for o in stream_tensors(out, [layer.input], x)]))
        scale = torch.from_numpy(s).reshape([-1] + [1] * (w.ndim - 1))
        w_q, e0, e1 = adaround_layer(mod, x_fp, x_q, _activation(f.model.graph, fnode.output[0]), cfg, scale)
        q = torch.clamp(torch.round(w_q / scale), -cfg.qmax, cfg.qmax).numpy().astype(np.int8)
        g.put(f"{layer.weight}_quantized", q.reshape(g.get(f"{layer.weight}_quantized").shape))
        g.save(out)
        stats["layers"] += 1
        stats["nodes"].append(layer.node)
        stats["mse_nearest"].append(e0)
        stats["mse_adaround"].append(e1)
        if progress:
            progress(i + 1, len(todo), layer.node, e0, e1)
    return stats
