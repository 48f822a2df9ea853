"""ORT-exact weight fake quantization, activation-quantization simulation, and empirical bias correction.

Weights are simulated exactly as ONNX Runtime's ``quantize_static`` quantizes them (QInt8, per-channel
along axis 0, symmetric, range [-127, 127], ``scale = max|w| / 127`` computed in float64, stored as
float32, ``q = round(w / scale)`` with numpy's round-half-to-even).  A model whose float weights are
already on that grid is re-quantized by ORT to the same integers, so weight-side PTQ results computed
here (bias correction, AdaRound) survive ``quantize_static`` unchanged.

Empirical bias correction (Nagel et al. 2019, sec. 4.2): weight rounding error ``dW`` shifts each output
channel's mean by ``dW E[x]``; ``E[x]`` is measured on calibration data and the shift subtracted through the
bias.  (Correcting every layer toward the fp32 *output* means in one sweep over-corrects: each downstream
layer would also compensate upstream shifts that the upstream layers already remove.)
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

ScaleFn = Callable[["nn.Module"], "torch.Tensor"]


def weight_scale(w: torch.Tensor, per_channel: bool = True, qmax: int = 127) -> torch.Tensor:
    """ORT symmetric int8 weight scale, shaped to broadcast against ``w``."""
    import numpy as np
    import torch

    a = w.detach().abs().flatten(1).amax(1) if per_channel else w.detach().abs().amax().reshape(1)
    s = (a.double() * 2 / (2 * qmax)).float()
    tiny = float(np.finfo(np.float32).tiny)
    s = torch.where(s < tiny, torch.ones_like(s), s)
    return s.reshape([-1] + [1] * (w.dim() - 1)) if per_channel else s.reshape([1] * w.dim())


def saturation_safe_scale(mod: nn.Module, qmax: int = 127) -> torch.Tensor:
    """Per-channel int8 scale that keeps x86 AVX2 ``vpmaddubsw`` from saturating (U8S8 without VNNI).

    MLAS' U8S8 GEMM kernel on AVX2/AVX-512 without VNNI multiplies uint8 activations by int8 weights and
    adds adjacent K pairs into a *saturating* int16: ``a0*w0 + a1*w1`` with ``a <= 255`` overflows once
    ``|w0| + |w1| > 128``.  ``reduce_range`` avoids it by using 7-bit weights everywhere; this scale only
    grows for output channels whose largest adjacent-pair sum needs it: ``scale = max(max|w|, max|w0|+|w1|) / 127``,
    so rounded pairs stay <= 128.  K is ordered (kh, kw, cin) as in MLAS' NHWC im2col; depthwise convs
    (their own int32 kernel) keep the plain scale.
    """
    import torch

    w = mod.weight.detach()
    base = weight_scale(w, True, qmax)
    if getattr(mod, "groups", 1) != 1 and mod.groups == w.shape[0]:
        return base
    k = w.permute(0, 2, 3, 1).reshape(w.shape[0], -1) if w.dim() == 4 else w.reshape(w.shape[0], -1)
    if k.shape[1] % 2:
        k = torch.nn.functional.pad(k, (0, 1))
    pair = k.abs().reshape(k.shape[0], -1, 2).sum(2).amax(1)
    s = (pair.double() / qmax).float().reshape(base.shape)
    return torch.maximum(base, s)


def quantize_weight(w: torch.Tensor, per_channel: bool = True, qmax: int = 127,
                    scale: torch.Tensor | None = None) -> torch.Tensor:
    """Fake-quantized ``w`` (float values exactly on ORT's int8 grid, or on ``scale``'s grid)."""
    import torch

    s = weight_scale(w, per_channel, qmax) if scale is None else scale
    return torch.clamp(torch.round(w.detach() / s), -qmax, qmax) * s


def quant_layers(model: nn.Module) -> list[str]:
    """Names of the Conv / Linear layers ORT quantizes, in module order."""
    import torch.nn as nn

    return [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]


def quantize_weights(model: nn.Module, layers: Sequence[str] | None = None, per_channel: bool = True,
                     inplace: bool = False, scale_fn: ScaleFn | None = None) -> nn.Module:
    """Round every listed layer's weight to the int8 grid (nearest); ``scale_fn(module)`` overrides ORT's scale."""
    import torch

    m = model if inplace else copy.deepcopy(model)
    with torch.no_grad():
        for n in quant_layers(m) if layers is None else layers:
            mod = m.get_submodule(n)
            mod.weight.copy_(quantize_weight(mod.weight, per_channel, scale=scale_fn(mod) if scale_fn else None))
    return m


def write_qdq_weights(src: str, dst: str, model: nn.Module, scales: dict[str, torch.Tensor]) -> int:
    """Overwrite int8 weights, weight scales and int32 biases of an ORT QDQ model with ``model``'s on-grid weights.

    ``scales[layer]`` is the per-channel scale the layer's weight is on (e.g. :func:`saturation_safe_scale`).
    Initializers follow ``quantize_static``'s naming (``<param>_quantized``, ``<param>_scale``,
    ``<bias>_quantized_scale``).  Bias scales are rescaled by ``new_w_scale / old_w_scale`` (they are
    ``input_scale * w_scale``).  Returns the number of layers rewritten.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from edgekit.model_files import load_onnx

    g = load_onnx(src)
    init = {i.name: i for i in g.graph.initializer}

    def put(name: str, arr: np.ndarray) -> None:
        init[name].CopyFrom(numpy_helper.from_array(arr, name))

    done = 0
    for layer, sc in scales.items():
        mod = model.get_submodule(layer)
        wn = f"{layer}.weight"
        if f"{wn}_quantized" not in init:
            continue
        s_new = sc.detach().reshape(-1).numpy().astype(np.float32)
        s_old = numpy_helper.to_array(init[f"{wn}_scale"]).astype(np.float32).reshape(-1)
        w = mod.weight.detach().numpy()
        q = np.clip(np.round(w / s_new.reshape([-1] + [1] * (w.ndim - 1))), -127, 127).astype(np.int8)
        put(f"{wn}_quantized", q)
        put(f"{wn}_scale", s_new)
        bn = f"{layer}.bias"
        if mod.bias is not None and f"{bn}_quantized" in init:
            bs = numpy_helper.to_array(init[f"{bn}_quantized_scale"]).astype(np.float64) / s_old * s_new
            b = mod.bias.detach().double().numpy()
            put(f"{bn}_quantized", np.clip(np.round(b / bs), -(2**31), 2**31 - 1).astype(np.int32))
            put(f"{bn}_quantized_scale", bs.astype(np.float32))
        done += 1
    onnx.save(g, dst)
    return done


def fake_quant_act(x: torch.Tensor, lo: float, hi: float, levels: int = 256) -> torch.Tensor:
    """Asymmetric uint8 fake quantization on [lo, hi] (ORT's activation scheme)."""
    import torch

    lo, hi = min(lo, 0.0), max(hi, 0.0)
    s = (hi - lo) / (levels - 1)
    if s <= 0:
        return x
    zp = round(-lo / s)
    return (torch.clamp(torch.round(x / s) + zp, 0, levels - 1) - zp) * s


@contextlib.contextmanager
def simulate_activations(model: nn.Module, ranges: dict[str, tuple[float, float]],
                         input_range: tuple[float, float] | None = None) -> Iterator[None]:
    """Fake-quantize the outputs of the named modules (and optionally the model input) while inside."""
    hooks = []
    try:
        for n, (lo, hi) in ranges.items():
            hooks.append(model.get_submodule(n).register_forward_hook(
                lambda _m, _a, out, lo=lo, hi=hi: fake_quant_act(out, lo, hi)))
        if input_range is not None:
            lo, hi = input_range
            hooks.append(model.register_forward_pre_hook(
                lambda _m, a, lo=lo, hi=hi: (fake_quant_act(a[0], lo, hi),) + tuple(a[1:])))
        yield
    finally:
        for h in hooks:
            h.remove()


def _input_means(model: nn.Module, layers: Sequence[str], batches: Iterable[torch.Tensor],
                 ctx: Callable[[], contextlib.AbstractContextManager] | None = None) -> dict[str, torch.Tensor]:
    """Per-input-channel mean of each layer's input."""
    import torch

    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(n, x):
        x = x.detach()
        x = x.transpose(0, 1).flatten(1) if x.dim() > 2 else x.t()
        sums[n] = sums.get(n, 0) + x.double().sum(1)
        counts[n] = counts.get(n, 0) + x.shape[1]

    hs = [model.get_submodule(n).register_forward_pre_hook(lambda _m, a, n=n: hook(n, a[0])) for n in layers]
    try:
        with torch.no_grad(), (ctx() if ctx else contextlib.nullcontext()):
            for b in batches:
                model(b)
    finally:
        for h in hs:
            h.remove()
    return {n: (sums[n] / counts[n]).float() for n in sums}


def _weight_error_shift(mod: nn.Module, dw: torch.Tensor, mean_in: torch.Tensor) -> torch.Tensor:
    """E[(W_q - W) x] per output channel, from the per-input-channel mean of x (padding borders ignored)."""
    if dw.dim() == 2:
        return dw @ mean_in
    g = getattr(mod, "groups", 1)
    o, ig = dw.shape[:2]
    v = dw.reshape(g, o // g, ig, -1).sum(3)  # g, o/g, i/g
    return (v * mean_in.reshape(g, 1, ig)).sum(2).reshape(-1)


def bias_correct(
    fp_model: nn.Module,
    q_model: nn.Module,
    batches: Sequence[torch.Tensor],
    layers: Sequence[str] | None = None,
    rounds: int = 2,
    q_context: Callable[[nn.Module], contextlib.AbstractContextManager] | None = None,
    inplace: bool = False,
) -> nn.Module:
    """Empirical bias correction: ``b_q = b - (W_q - W) E[x_q]`` for every layer of ``q_model``.

    ``fp_model`` supplies the float weights ``W`` (same layer names); ``E[x_q]`` is the per-channel mean of
    each layer's input measured in the quantized model on ``batches`` -- so each layer removes the output
    shift caused by *its own* weight rounding, given the inputs it actually sees.  Because upstream
    corrections move downstream inputs, the means are re-measured ``rounds`` times (the correction is
    recomputed from the uncorrected bias each round, so nothing is counted twice).  ``q_context(model)`` may
    return a context that simulates activation quantization while measuring.
    """
    import torch

    q = q_model if inplace else copy.deepcopy(q_model)
    layers = list(quant_layers(q) if layers is None else layers)
    base = {}
    for n in layers:
        mod = q.get_submodule(n)
        if mod.bias is None:
            mod.bias = torch.nn.Parameter(torch.zeros(mod.weight.shape[0], dtype=mod.weight.dtype))
        base[n] = mod.bias.detach().clone()
    ctx = (lambda: q_context(q)) if q_context else None
    for _ in range(rounds):
        means = _input_means(q, layers, batches, ctx)
        with torch.no_grad():
            for n in layers:
                mod = q.get_submodule(n)
                dw = mod.weight.detach() - fp_model.get_submodule(n).weight.detach()
                mod.bias.copy_(base[n] - _weight_error_shift(mod, dw, means[n]))
    return q
