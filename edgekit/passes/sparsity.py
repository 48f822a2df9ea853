"""Shared by the weight-sparsity passes (unstructured, N:M): which layers, masks, and what sparsity buys."""

from __future__ import annotations

import gzip

from edgekit.errors import PassError

DENSE_NOTE = ("zeros are kept in dense tensors: a dense runtime (ONNX Runtime CPU, TFLite) runs the same MACs and "
              "gets no speedup; the compressed (gzip) size drops, and sparse kernels or accelerators can exploit it")


def weight_layers(model, protect: list[str], include_head: bool) -> dict:
    """Conv/Linear modules by name, minus the protected ones (and the classifier unless `include_head`)."""
    from torch import nn

    from edgekit.models.zoo import head_name

    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))}
    missing = [n for n in protect if n not in layers]
    if missing:
        raise PassError(f"protect names no conv/linear module {missing}; they are {list(layers)}")
    skip = set(protect) | ({head_name(model)} if not include_head else set())
    return {n: m for n, m in layers.items() if n not in skip}


def fold_masks(layers: dict) -> None:
    """Make pruning permanent: the masked weight becomes the plain `weight` parameter again."""
    from torch.nn.utils import prune

    for m in layers.values():
        if prune.is_pruned(m):
            prune.remove(m, "weight")


def layer_sparsity(layers: dict) -> dict[str, float]:
    return {n: round(float((m.weight == 0).float().mean()), 4) for n, m in layers.items()}


def overall_sparsity(layers: dict) -> float:
    zeros = sum(int((m.weight == 0).sum()) for m in layers.values())
    total = sum(m.weight.numel() for m in layers.values())
    return zeros / max(total, 1)


def gzip_bytes(model) -> int:
    """gzip-compressed size of the safetensors state dict: what sparsity saves on disk and over the air."""
    from edgekit.passes.accounting import state_dict_bytes

    return len(gzip.compress(state_dict_bytes(model), compresslevel=6))


def sparsify(module, layers: dict, apply_masks, ctx, epochs: int, lr: float | None) -> tuple[dict, dict]:
    """Put masks on `layers` (`apply_masks()`), hold them through `epochs` of fine-tuning, fold them into the
    weights: the gzip size before, and after it with the sparsity reached overall and per layer."""
    from edgekit.passes.finetune import finetune

    before = {"gzip_bytes": gzip_bytes(module)}
    apply_masks()
    if epochs:
        finetune(module, ctx, epochs, lr)
    fold_masks(layers)
    module.eval()
    return before, {"gzip_bytes": gzip_bytes(module), "sparsity": overall_sparsity(layers),
                    "layer_sparsity": layer_sparsity(layers)}
