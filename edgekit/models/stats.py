"""Parameter and MAC counts, measured by tracing one forward pass with hooks."""

from __future__ import annotations

import math


def count_macs(model, input_shape) -> int:
    """Multiply-accumulates of one sample through conv, linear and recurrent layers (attention's two
    activation matmuls are not counted)."""
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

    def recurrent_hook(m, inp, out):
        nonlocal total
        gates = 4 if isinstance(m, nn.LSTM) else 3
        steps = inp[0].shape[1] if m.batch_first else inp[0].shape[0]
        dirs = 2 if m.bidirectional else 1
        for layer in range(m.num_layers):
            cin = m.input_size if layer == 0 else m.hidden_size * dirs
            total += steps * dirs * gates * m.hidden_size * (cin + m.hidden_size)

    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, (nn.LSTM, nn.GRU)):
            hooks.append(m.register_forward_hook(recurrent_hook))
    from edgekit.models.inputs import input_spec

    dtype = torch.int64 if input_spec(model).dtype in ("int64", "int32") else torch.float32
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return int(total)


def model_stats(model, input_shape, what: str | None = None) -> dict:
    """Params and MACs. With `what` (the model as the recipe names it), a forward pass that fails on one sample of
    the data's shape is a ModelLoadError naming the model and the shape; without it MACs are left out."""
    params = sum(p.numel() for p in model.parameters())
    try:
        macs = count_macs(model, input_shape)
    except Exception as e:  # a user model whose forward does not take one (1, *shape) tensor
        if what is not None:
            from edgekit.errors import ModelLoadError

            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise ModelLoadError(f"{what}: does not accept the data's input: a forward pass on shape "
                                 f"{(1, *input_shape)} failed: {type(e).__name__}: {first}") from e
        macs = None
    out = {"params": int(params)}
    if macs is not None:
        out["macs"] = macs
    return out
