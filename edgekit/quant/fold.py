"""Fold BatchNorm into the preceding convolution / linear layer.

``fold_batchnorm`` finds ``conv -> bn`` pairs with :mod:`torch.fx` (falling back to
consecutive children of ``nn.Sequential`` containers when the model cannot be traced),
rewrites the conv's weight and bias in place on a deep copy and replaces the BN module by
``nn.Identity``.  The model keeps its own class and ``forward``; only parameters change.
The fold is exact up to float rounding (eval-mode BN is an affine map per channel).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch.nn as nn


def _bn_types():
    import torch.nn as nn

    return (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _foldable_types():
    import torch.nn as nn

    return (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def find_conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """Qualified names ``(conv, bn)`` where the BN consumes only that conv's output (and nothing else does)."""
    import torch.nn as nn

    mods = dict(model.named_modules())
    try:
        import torch.fx as fx

        gm = fx.symbolic_trace(model)
    except Exception:  # untraceable model: only nn.Sequential neighbours
        pairs = []
        for name, m in model.named_modules():
            if isinstance(m, nn.Sequential):
                kids = list(m.named_children())
                for (a, ma), (b, mb) in zip(kids, kids[1:]):
                    if isinstance(ma, _foldable_types()) and isinstance(mb, _bn_types()):
                        pre = f"{name}." if name else ""
                        pairs.append((pre + a, pre + b))
        return pairs
    pairs = []
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(mods.get(node.target), _bn_types()):
            continue
        src = node.args[0] if node.args else None
        if getattr(src, "op", None) != "call_module" or not isinstance(mods.get(src.target), _foldable_types()):
            continue
        if len(src.users) != 1:  # conv output also used unnormalised elsewhere
            continue
        pairs.append((str(src.target), str(node.target)))
    # a module called twice would be folded twice: keep names that occur once
    convs = [c for c, _ in pairs]
    return [(c, b) for c, b in pairs if convs.count(c) == 1]


def fold_bn_into(conv: nn.Module, bn: nn.Module) -> None:
    """Fold eval-mode ``bn`` into ``conv`` in place (adds a bias if the conv had none)."""
    import torch

    with torch.no_grad():
        w = conv.weight
        std = torch.sqrt(bn.running_var + bn.eps)
        gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
        scale = gamma / std
        b = conv.bias if conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
        shape = [-1] + [1] * (w.dim() - 1)
        if isinstance(conv, torch.nn.modules.conv._ConvTransposeNd):
            raise TypeError("transposed convolutions are not supported")
        conv.weight.copy_(w * scale.reshape(shape))
        new_b = (b - bn.running_mean) * scale + beta
        if conv.bias is None:
            conv.bias = torch.nn.Parameter(new_b.to(w.dtype))
        else:
            conv.bias.copy_(new_b)


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def fold_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return ``model`` (a copy unless ``inplace``) with every foldable BN folded and replaced by Identity."""
    import torch.nn as nn

    m = model if inplace else copy.deepcopy(model)
    m.eval()
    for conv_name, bn_name in find_conv_bn_pairs(m):
        fold_bn_into(m.get_submodule(conv_name), m.get_submodule(bn_name))
        _set_module(m, bn_name, nn.Identity())
    return m
