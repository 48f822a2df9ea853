"""AdaRound: learned per-weight rounding on calibration data (Nagel et al., ICML 2020).

Per layer, the integer weight is ``floor(w / s) + h(V)`` with the rectified sigmoid
``h(V) = clamp(sigmoid(V) * (zeta - gamma) + gamma, 0, 1)``; ``V`` minimises

    || f(W x) - f(W_q(V) x_q) ||^2  +  lam * sum(1 - |2 h(V) - 1|^beta)

where ``x`` is the layer input in the fp32 model, ``x_q`` the input in the (partially) quantized model,
``f`` an optional following activation (e.g. ReLU6), and ``beta`` is annealed from 20 to 2 after a
warm-up with the regulariser off.  At the end ``h`` is hardened to {0, 1}.  The scale ``s`` is ORT's
per-channel symmetric int8 scale (:func:`edgekit.quant.bias_correction.weight_scale`), so the rounded
weights are exactly on the grid ``quantize_static`` will use.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgekit.quant.bias_correction import ScaleFn, quant_layers, weight_scale

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

ZETA, GAMMA = 1.1, -0.1


@dataclass
class AdaRoundConfig:
    iters: int = 500
    lr: float = 1e-2
    lam: float = 0.01  # weight of the mean rounding regulariser vs the normalised reconstruction loss
    warmup: float = 0.2  # fraction of iterations without the rounding regulariser
    beta: tuple[float, float] = (20.0, 2.0)
    batch: int = 8  # samples per optimisation step
    crop: int = 32  # random spatial crop (conv inputs larger than this) per step; 0 = full maps
    qmax: int = 127
    seed: int = 0


def _h(v: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)


def _layer_fn(mod: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    import torch.nn as nn
    import torch.nn.functional as F

    if isinstance(mod, nn.Linear):
        return lambda x, w: F.linear(x, w, mod.bias)
    return lambda x, w: mod._conv_forward(x, w, mod.bias)


def adaround_layer(
    mod: nn.Module,
    x_fp: torch.Tensor,
    x_q: torch.Tensor,
    act: Callable[[torch.Tensor], torch.Tensor] | None = None,
    cfg: AdaRoundConfig | None = None,
    scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float, float]:
    """Learn the rounding of ``mod.weight`` (left unchanged); returns ``(w_q, mse_nearest, mse_adaround)``.

    ``x_fp``/``x_q`` are stacked layer inputs from the fp32 and quantized models (same samples).
    """
    import torch

    cfg = cfg or AdaRoundConfig()
    act = act or (lambda t: t)
    fn = _layer_fn(mod)
    w = mod.weight.detach()
    s = weight_scale(w, True, cfg.qmax) if scale is None else scale
    w_floor = torch.floor(w / s)
    rest = (w / s - w_floor).clamp(1e-4, 1 - 1e-4)
    v = (-torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1)).clone().requires_grad_(True)
    crop = cfg.crop if (x_q.dim() == 4 and cfg.crop and min(x_q.shape[2:]) > cfg.crop) else 0
    stride = mod.stride[0] if hasattr(mod, "stride") else 1
    target = None
    if not crop:
        with torch.no_grad():
            target = act(fn(x_fp, w))
    opt = torch.optim.Adam([v], lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    n = x_q.shape[0]
    warm = int(cfg.warmup * cfg.iters)

    def wq(hard: bool) -> torch.Tensor:
        h = (_h(v) >= 0.5).float() if hard else _h(v)
        return torch.clamp(w_floor + h, -cfg.qmax, cfg.qmax) * s

    def mse(wt: torch.Tensor) -> float:
        with torch.no_grad():
            return float(sum(float(((act(fn(x_q[i:i + 8], wt)) - act(fn(x_fp[i:i + 8], w))) ** 2).sum())
                             for i in range(0, n, 8)) / (n * max(1, act(fn(x_q[:1], w)).numel())))

    nearest = torch.clamp(torch.round(w / s), -cfg.qmax, cfg.qmax) * s
    norm: float | None = None
    for it in range(cfg.iters):
        idx = torch.randint(0, n, (min(cfg.batch, n),), generator=g)
        if crop:  # same window (stride-aligned) in both inputs; the target is recomputed on the fp crop
            i0 = int(torch.randint(0, (x_q.shape[2] - crop) // stride + 1, (1,), generator=g)) * stride
            j0 = int(torch.randint(0, (x_q.shape[3] - crop) // stride + 1, (1,), generator=g)) * stride
            xq_b = x_q[idx, :, i0:i0 + crop, j0:j0 + crop]
            with torch.no_grad():
                tgt = act(fn(x_fp[idx, :, i0:i0 + crop, j0:j0 + crop], w))
        else:
            xq_b, tgt = x_q[idx], target[idx]
        out = act(fn(xq_b, wq(False)))
        rec = ((out - tgt) ** 2).mean()
        if norm is None:  # normalise by the nearest-rounding error so lam is scale-free
            with torch.no_grad():
                norm = max(float(((act(fn(xq_b, nearest)) - tgt) ** 2).mean()), 1e-20)
        loss = rec / norm
        if it >= warm:
            t = (it - warm) / max(cfg.iters - warm, 1)
            beta = cfg.beta[1] + 0.5 * (cfg.beta[0] - cfg.beta[1]) * (1 + math.cos(math.pi * t))
            hv = _h(v)
            loss = loss + cfg.lam * (1 - (2 * hv - 1).abs().pow(beta)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    w_ada = wq(True).detach()
    e_near, e_ada = mse(nearest), mse(w_ada)
    if e_ada > e_near:  # never worse than nearest rounding on the calibration data
        return nearest, e_near, e_near
    return w_ada, e_near, e_ada


def _capture_inputs(model: nn.Module, name: str, x: torch.Tensor, chunk: int = 16,
                    ctx: Callable[[], object] | None = None) -> torch.Tensor:
    import contextlib

    import torch

    got: list[torch.Tensor] = []

    class _Stop(Exception):
        pass

    def hook(_m, a):
        got.append(a[0].detach())
        raise _Stop

    h = model.get_submodule(name).register_forward_pre_hook(hook)
    try:
        with torch.no_grad(), (ctx() if ctx else contextlib.nullcontext()):
            for i in range(0, len(x), chunk):
                try:
                    model(x[i:i + chunk])
                except _Stop:
                    pass
    finally:
        h.remove()
    return torch.cat(got)


def adaround(
    fp_model: nn.Module,
    x: torch.Tensor,
    layers: Sequence[str] | None = None,
    acts: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    cfg: AdaRoundConfig | None = None,
    q_context: Callable[[nn.Module], object] | None = None,
    progress: Callable[[int, int, str, float, float], None] | None = None,
    scale_fn: ScaleFn | None = None,
    q_model: nn.Module | None = None,
) -> nn.Module:
    """Return a copy of ``fp_model`` whose listed layers' weights are AdaRounded (on ORT's int8 grid).

    Layers are processed in order; each sees inputs from the model with all earlier layers already rounded
    (and activation quantization simulated by ``q_context(model)`` if given).  ``scale_fn(module)`` picks the
    per-channel weight scale (default ORT's ``max|w| / 127``).  ``q_model`` is the starting point (e.g. all
    weights nearest-rounded, so that layers not listed are already quantized); default a copy of ``fp_model``.
    ``acts[name]`` is the activation applied to that layer's output in the loss;
    ``progress(i, n, name, mse_nearest, mse_ada)`` is called after each layer.
    """
    import torch

    q = copy.deepcopy(fp_model if q_model is None else q_model)
    layers = list(quant_layers(q) if layers is None else layers)
    acts = acts or {}
    for i, name in enumerate(layers):
        x_fp = _capture_inputs(fp_model, name, x)
        x_q = _capture_inputs(q, name, x, ctx=(lambda: q_context(q)) if q_context else None)
        mod = q.get_submodule(name)
        w_q, e0, e1 = adaround_layer(mod, x_fp, x_q, acts.get(name), cfg, scale_fn(mod) if scale_fn else None)
        with torch.no_grad():
            mod.weight.copy_(w_q)
        if progress:
            progress(i + 1, len(layers), name, e0, e1)
    return q
