"""What every torch pass records before and after it runs: parameters, MACs, state-dict size, test accuracy."""

from __future__ import annotations

from typing import Any, cast

import numpy as np


def is_graph_module(model) -> bool:
    import torch

    return isinstance(model, torch.fx.GraphModule)


def state_dict_bytes(model) -> bytes:
    """The model's tensors serialized as safetensors (what a checkpoint of it weighs)."""
    from safetensors.torch import save

    return save({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()})


def graph_stats(gm, input_shape) -> dict:
    """Params and MACs of a torch.export GraphModule (PT2E-quantized models have no nn.Conv2d to hook):
    runs one sample through an interpreter and counts the conv/linear calls with their real weights."""
    import torch

    aten = torch.ops.aten
    convs = {aten.conv1d.default, aten.conv2d.default, aten.conv3d.default, aten.convolution.default}
    linears = {aten.linear.default}
    totals = {"macs": 0, "params": 0}

    class Counter(torch.fx.Interpreter):
        def call_function(self, target, args, kwargs):
            out = super().call_function(target, args, kwargs)
            if target in convs or target in linears:
                w = cast(torch.Tensor, args[1])
                bias = args[2] if len(args) > 2 and isinstance(args[2], torch.Tensor) else None
                per_out = w[0].numel() if target in convs else w.shape[1]
                totals["macs"] += (out.numel() // out.shape[0]) * per_out
                totals["params"] += w.numel() + (bias.numel() if bias is not None else 0)
            return out

    with torch.no_grad():
        Counter(gm).run(torch.zeros(1, *input_shape))
    return {"params": int(totals["params"]), "macs": int(totals["macs"])}


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float | None:
    from edgekit.train.trainer import predict

    if len(y) == 0 or (y < 0).all():  # no split, or unlabelled data (labels -1)
        return None
    return float((predict(model, x).argmax(1) == y).mean())


def measure(model, splits) -> dict[str, Any]:
    """Params, MACs, size (bytes of a safetensors state dict) and accuracy on the test split."""
    from edgekit.models.stats import model_stats

    out: dict[str, Any]
    if is_graph_module(model):
        try:
            out = graph_stats(model, splits.input_shape)
        except Exception:  # a graph the interpreter cannot replay: report what needs no forward pass
            out = {"params": int(sum(p.numel() for p in model.parameters()))}
    else:
        out = model_stats(model, splits.input_shape)
    out["size_bytes"] = len(state_dict_bytes(model))
    out["test_accuracy"] = accuracy(model, splits.x_test, splits.y_test)
    return out


def summary(before: dict, after: dict) -> str:
    """One log line: how the pass moved MACs, size and accuracy."""
    parts = []
    if before.get("macs") and after.get("macs") is not None:
        parts.append(f"MACs {before['macs']:,} -> {after['macs']:,} ({before['macs'] / max(after['macs'], 1):.2f}x fewer)")
    if before.get("size_bytes") and after.get("size_bytes"):
        parts.append(f"size {before['size_bytes'] / 1024:.1f} -> {after['size_bytes'] / 1024:.1f} KiB")
    if before.get("test_accuracy") is not None and after.get("test_accuracy") is not None:
        parts.append(f"test acc {before['test_accuracy']:.4f} -> {after['test_accuracy']:.4f}")
    lat_b, lat_a = before.get("onnx_latency_ms") or {}, after.get("onnx_latency_ms") or {}
    if "p50" in lat_b and "p50" in lat_a:
        parts.append(f"ONNX Runtime p50 {lat_b['p50']:.4f} -> {lat_a['p50']:.4f} ms ({lat_b['p50'] / lat_a['p50']:.2f}x)")
    return ", ".join(parts)
