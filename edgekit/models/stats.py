"""Parameter and MAC counts, measured by tracing one forward pass with hooks."""

from __future__ import annotations

import math


def count_macs(model, input_shape) -> int:
    """Multiply-accumulates of one sample through conv, linear and recurrent layers."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(m, inp, out):
        nonlocal total
        k = math.prod(m.kernel_size) * (m.in_channels // m.groups)
        total += out[0].numel() * k if out.dim() > 0 else 0

    def linear_hook(m, inp, out):
        nonlocal total
        total += (out.numel() // out.shape[0]) * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return int(total)


def model_stats(model, input_shape) -> dict:
    params = sum(p.numel() for p in model.parameters())
    try:
        macs = count_macs(model, input_shape)
    except Exception:  # a user model whose forward does not take one (1, *shape) tensor: leave MACs out
        macs = None
    out = {"params": int(params)}
    if macs is not None:
        out["macs"] = macs
    return out
