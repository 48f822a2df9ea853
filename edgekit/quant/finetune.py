"""Label-free quantization-aware fine-tuning for post-training quantization.

The model is fine-tuned with its int8 quantization simulated the way ONNX Runtime's static QDQ model will compute
it - per-channel int8 weights on the scale the ONNX pass will use (saturation-safe where the CPU needs it),
uint8 activations at every quantized layer's input and at the outputs of layers without a fused ReLU-like
activation, with ranges calibrated once - to match the fp32 model's
logits (KL at a temperature plus logit MSE) on the calibration images alone: no labels. Straight-through
gradients. The float weights it returns are then quantized by the ONNX pass as usual; because the simulation
recomputes the weight grid from the current weights exactly as the pass will, the pass lands on the grid the
fine-tuning adapted to. The best epoch is chosen on a held-out part of the calibration images.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import Field

from edgekit.config_base import Strict
from edgekit.console import logger
from edgekit.timing import Stopwatch, now

_log = logger("quant")


class FinetuneOptions(Strict):
    """Label-free quantization-aware fine-tuning (`finetune_for_int8`): the torch model learns, under simulated
    int8, to match its own fp32 logits on the calibration images."""

    epochs: int = Field(default=8, ge=1)
    lr: float = Field(default=1e-5, gt=0)
    temperature: float = Field(default=1.0, gt=0)
    mse_weight: float = Field(default=1.0, ge=0, description="weight of the logit MSE beside the KL term")
    batch: int = Field(default=10, ge=1)
    holdout: float = Field(default=0.2, ge=0, lt=1, description="share of the calibration images that picks the epoch")


@dataclass
class FinetuneResult:
    model: Any  # the fine-tuned float torch module (BN folded)
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    cosine_plain: float | None = None  # simulated int8 vs fp32 on the held-out calibration images, as rounded
    cosine_before: float = 0.0  # ... at the start of fine-tuning (after the bias-corrected start)
    cosine_after: float = 0.0
    stopped_by_deadline: bool = False
    reused: bool = False  # the same fine-tuning had already run in this process (another format on the same grid)


# Fine-tuning is a deterministic function of the model, the images and the options; formats that share the
# simulated grid (ONNX QDQ U8S8 per-channel and TFLite int8 on a CPU that needs no saturation-safe scale) reuse it.
_REUSE: OrderedDict[str, tuple[dict, FinetuneResult]] = OrderedDict()
_REUSE_SIZE = 2


def _reuse_key(model, x_calib: np.ndarray, options: dict) -> str:
    h = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    a = np.ascontiguousarray(x_calib)
    h.update(f"{a.shape}{a.dtype}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _weight_scale(w, per_channel: bool, saturation_safe: bool, depthwise: bool, qmax: int = 127):
    import torch

    wd = w.detach()
    if not per_channel:
        return (wd.abs().max().clamp_min(1e-12) / qmax).reshape([1] * wd.dim())
    s = wd.abs().flatten(1).amax(1) / qmax
    if saturation_safe and not depthwise and wd.dim() in (2, 4):  # MLAS pairs adjacent K entries (kh, kw, cin)
        k = wd.permute(0, 2, 3, 1).reshape(wd.shape[0], -1) if wd.dim() == 4 else wd.reshape(wd.shape[0], -1)
        if k.shape[1] % 2:
            k = torch.nn.functional.pad(k, (0, 1))
        s = torch.maximum(s, k.abs().reshape(k.shape[0], -1, 2).sum(2).amax(1) / qmax)
    s = torch.where(s > 0, s, torch.ones_like(s))
    return s.reshape([-1] + [1] * (wd.dim() - 1))


class _WeightFQ:
    """Parametrization: weight -> its int8 grid value, straight-through."""

    def __new__(cls, per_channel: bool, saturation_safe: bool, depthwise: bool):
        import torch

        class WeightFQ(torch.nn.Module):
            def forward(self, w):
                s = _weight_scale(w, per_channel, saturation_safe, depthwise)
                q = torch.clamp(torch.round(w.detach() / s), -127, 127) * s
                return w + (q - w.detach())

        return WeightFQ()


def _act_fq(x, lo: float, hi: float, levels: int = 256):
    """uint8 asymmetric fake quantization (ORT's activations); gradient passes inside the range."""
    import torch

    lo, hi = min(lo, 0.0), max(hi, 0.0)
    s = (hi - lo) / (levels - 1)
    if s <= 0:
        return x
    zp = round(-lo / s)
    xc = torch.clamp(x, -zp * s, (levels - 1 - zp) * s)
    q = (torch.clamp(torch.round(x.detach() / s) + zp, 0, levels - 1) - zp) * s
    return xc + (q - xc).detach()


class simulated_int8:  # noqa: N801 - used as a context manager
    """Inside: the model's Conv/Linear weights are fake-quantized and their inputs (and the logits) too."""

    def __init__(self, model, ranges: dict[str, tuple[float, float]], out_range, per_channel: bool,
                 saturation_safe: bool, weights: bool = True, output_ranges: dict | None = None):
        self.m, self.ranges, self.out_range = model, ranges, out_range
        self.pc, self.sat, self.weights, self.hooks = per_channel, saturation_safe, weights, []
        self.output_ranges = output_ranges or {}  # layers whose own output ORT quantizes (no fused activation)

    def __enter__(self):
        import torch.nn.utils.parametrize as P

        for n, (lo, hi) in self.ranges.items():
            mod = self.m.get_submodule(n)
            if self.weights:
                P.register_parametrization(mod, "weight", _WeightFQ(self.pc, self.sat, _depthwise(mod)))
            self.hooks.append(mod.register_forward_pre_hook(
                lambda _m, a, lo=lo, hi=hi: (_act_fq(a[0], lo, hi),) + tuple(a[1:])))
        for n, (lo, hi) in self.output_ranges.items():
            self.hooks.append(self.m.get_submodule(n).register_forward_hook(
                lambda _m, _a, out, lo=lo, hi=hi: _act_fq(out, lo, hi)))
        lo, hi = self.out_range
        self.hooks.append(self.m.register_forward_hook(lambda _m, _a, out: _act_fq(out, lo, hi)))
        return self

    def __exit__(self, *exc):
        import torch.nn.utils.parametrize as P

        for h in self.hooks:
            h.remove()
        self.hooks = []
        if self.weights:
            for n in self.ranges:
                P.remove_parametrizations(self.m.get_submodule(n), "weight", leave_parametrized=False)
        return False


def unfused_layers(model, layers) -> list[str]:
    """Layers whose next leaf module (in definition order, Identity skipped) is not a ReLU/ReLU6/Hardtanh: ORT
    quantizes their own output (e.g. a block's projection before its residual add), where a following
    ReLU-like activation would otherwise be fused and quantized after it."""
    import torch.nn as nn

    acts = (nn.ReLU, nn.ReLU6, nn.Hardtanh)
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children()) and not isinstance(m, nn.Identity)]
    nxt = {n: (leaves[i + 1][1] if i + 1 < len(leaves) else None) for i, (n, _) in enumerate(leaves)}
    return [n for n in layers if not isinstance(nxt.get(n), acts)]


def _depthwise(mod) -> bool:
    return getattr(mod, "groups", 1) > 1 and mod.groups == mod.weight.shape[0]


def _bias_corrected_start(student, layers, batches, ranges, out_range, per_channel: bool, saturation_safe: bool,
                          output_ranges: dict):
    """Empirical bias correction under the simulation (edgekit.quant.bias_correction), written into the float
    student: fine-tuning then starts where post-training correction ends (measured: starting from plain
    rounding, fine-tuning did not even recover what bias correction gives)."""
    import torch

    from edgekit.quant.bias_correction import bias_correct, quantize_weights

    def scale(mod):
        return _weight_scale(mod.weight, per_channel, saturation_safe, _depthwise(mod))

    q = quantize_weights(student, layers, per_channel, scale_fn=scale)
    bc = bias_correct(student, q, batches, layers, rounds=2,
                      q_context=lambda m: simulated_int8(m, ranges, out_range, per_channel, saturation_safe,
                                                         weights=False, output_ranges=output_ranges))
    for n in layers:
        student.get_submodule(n).bias = torch.nn.Parameter(bc.get_submodule(n).bias.detach().clone())


def _held_out(student, sim, x_ho, t_ho, logits) -> float:
    if t_ho is None or not len(x_ho):
        return 0.0
    with sim:
        return _cosine(logits(student, x_ho), t_ho)


def _cosine(a, b) -> float:
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)))


def finetune_for_int8(model, x_calib: np.ndarray, epochs: int = 8, lr: float = 1e-5, temperature: float = 1.0,
                      mse_weight: float = 1.0, batch: int = 10, holdout: float = 0.2, per_channel: bool = True,
                      saturation_safe: bool = False, bias_start: bool = True, seed: int = 0,
                      log: Callable[[str], None] = _log.info, deadline: float | None = None) -> FinetuneResult:
    """Fine-tune a BN-folded copy of `model` under simulated int8 to match `model`'s logits on `x_calib`
    (starting from bias-corrected biases when `bias_start`). With `deadline` (an edgekit.timing.now() value) no epoch
    starts that would end after it. A fine-tuning already run in this process with the same inputs is reused."""
    options = {"epochs": epochs, "lr": lr, "temperature": temperature, "mse_weight": mse_weight, "batch": batch,
               "holdout": holdout, "per_channel": per_channel, "saturation_safe": saturation_safe,
               "bias_start": bias_start, "seed": seed, "deadline": deadline is not None}
    key = _reuse_key(model, x_calib, options)
    if key in _REUSE:
        state, done = _REUSE[key]
        from edgekit.quant.fold import fold_batchnorm

        student = fold_batchnorm(copy.deepcopy(model).eval())
        student.load_state_dict(state)
        log(f"  label-free fine-tuning reused: the same model, images and grid were fine-tuned earlier in this run "
            f"(best epoch {done.best_epoch})")
        return replace(done, model=student, reused=True)
    res = _finetune(model, x_calib, epochs, lr, temperature, mse_weight, batch, holdout, per_channel,
                    saturation_safe, bias_start, seed, log, deadline)
    _REUSE[key] = ({k: v.detach().clone() for k, v in res.model.state_dict().items()}, replace(res, model=None))
    while len(_REUSE) > _REUSE_SIZE:
        _REUSE.popitem(last=False)
    return res


def _finetune(model, x_calib, epochs, lr, temperature, mse_weight, batch, holdout, per_channel, saturation_safe,
              bias_start, seed, log, deadline) -> FinetuneResult:
    import torch
    import torch.nn.functional as F

    from edgekit.quant.bias_correction import quant_layers
    from edgekit.quant.calibrate import calibrate_modules
    from edgekit.quant.fold import fold_batchnorm
    from edgekit.runtimes.base import as_model_input

    torch.manual_seed(seed)
    x = as_model_input(x_calib)
    n_hold = max(1, int(len(x) * holdout)) if holdout > 0 and len(x) > 4 else 0  # 0: train on all, keep the last
    x_tr, x_ho = x[: len(x) - n_hold], x[len(x) - n_hold:]
    teacher = fold_batchnorm(copy.deepcopy(model).eval())
    student = copy.deepcopy(teacher)
    for p in teacher.parameters():
        p.requires_grad_(False)

    def logits(m, a, bs: int = 32):
        with torch.no_grad():
            return np.concatenate([m(torch.from_numpy(a[i: i + bs])).numpy() for i in range(0, len(a), bs)])

    t_tr, t_ho = logits(teacher, x_tr), logits(teacher, x_ho) if n_hold else None
    layers = quant_layers(student)
    batches = [torch.from_numpy(x_tr[i: i + 32]) for i in range(0, len(x_tr), 32)]
    ranges = calibrate_modules(student, batches, layers, "minmax", inputs=True)
    output_ranges = calibrate_modules(student, batches, unfused_layers(student, layers), "minmax")
    out_range = (float(t_tr.min()), float(t_tr.max()))
    sim = simulated_int8(student, ranges, out_range, per_channel, saturation_safe, output_ranges=output_ranges)
    res = FinetuneResult(model=student)
    if bias_start:
        res.cosine_plain = held_out = _held_out(student, sim, x_ho, t_ho, logits)
        _bias_corrected_start(student, layers, batches, ranges, out_range, per_channel, saturation_safe,
                              output_ranges)
        log(f"  bias-corrected start: simulated int8 cosine on held-out calibration images {held_out:.5f} -> "
            f"{_held_out(student, sim, x_ho, t_ho, logits):.5f}")

    def held_out_cosine() -> float:
        return _held_out(student, sim, x_ho, t_ho, logits)

    res.cosine_before = best = held_out_cosine()
    best_state = copy.deepcopy(student.state_dict())
    opt = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr)
    g = np.random.default_rng(seed)
    epoch_s = 0.0
    for ep in range(1, epochs + 1):
        if deadline is not None and ep > 1 and now() + epoch_s > deadline:
            res.stopped_by_deadline = True
            log(f"  label-free fine-tuning stopped after epoch {ep - 1}/{epochs}: the time budget is spent")
            break
        epoch = Stopwatch()
        total = 0.0
        with sim:  # eval mode: dropout / drop-connect would only add noise to matching a deterministic teacher
            for idx in np.array_split(g.permutation(len(x_tr)), max(1, len(x_tr) // batch)):
                s = student(torch.from_numpy(x_tr[idx]))
                t = torch.from_numpy(t_tr[idx])
                loss = F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1),
                                reduction="batchmean") * temperature ** 2
                loss = loss + mse_weight * F.mse_loss(s, t)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
        cos = held_out_cosine()
        res.history.append({"epoch": ep, "loss": total / len(x_tr), "holdout_cosine": cos})
        epoch_s = epoch.seconds
        log(f"  label-free fine-tuning epoch {ep}/{epochs}: loss {total / len(x_tr):.4g}"
            + (f", simulated int8 cosine on held-out calibration images {cos:.5f}" if n_hold else ""))
        if cos > best or not n_hold:
            best, res.best_epoch = cos, ep
            best_state = copy.deepcopy(student.state_dict())
    student.load_state_dict(best_state)
    res.cosine_after = best
    return res
