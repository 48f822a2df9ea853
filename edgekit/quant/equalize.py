"""Cross-layer equalization (CLE) and high-bias absorption (Nagel et al., ICCV 2019).

For ``conv1 -> [act] -> conv2`` with a positively homogeneous activation, scaling output channel
``i`` of ``conv1`` (weights and bias) by ``1/s_i`` and input channel ``i`` of ``conv2`` by ``s_i``
leaves the function unchanged; ``s_i = sqrt(r1_i / r2_i)`` makes both per-channel weight ranges
``sqrt(r1_i * r2_i)``.  Zero padding (``ZeroPad2d``), ``Identity`` and ``Dropout`` (eval) between the
two convs also commute with the scaling.

ReLU6 is *not* homogeneous: ``relu6(x / s) * s = clamp(x, 0, 6 s)``.  Three policies:

* ``"skip"`` -- never equalize through ReLU6 (exact).
* ``"calibrated"`` (default when ``act_max`` is given) -- keep ReLU6 and equalize only channels whose
  calibrated pre-activation maximum ``m_i`` stays below 6, with ``s_i >= m_i / 6`` so the scaled channel
  still never reaches the clip; saturating channels keep ``s_i = 1``.  Exact on every input whose
  activations stay inside the calibrated ranges.
* ``"relu"`` -- replace the ReLU6 by ReLU (what AIMET does); changes the fp32 function wherever
  activations exceeded 6, so measure the fp32 drift before using it.

High-bias absorption moves a per-channel constant ``c_i <= min(pre-activation_i)`` (calibrated) out of
``conv1``'s bias into ``conv2``'s bias; only into convs without padding (1x1 or ``padding=0`` with no
pad module in between), and through ReLU6 only for channels whose maximum stays below 6.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

Relu6Policy = Literal["skip", "calibrated", "relu"]


@dataclass
class Pair:
    """``conv1 -> between... -> conv2``; ``between`` are module names (activations, pads, identities)."""

    conv1: str
    conv2: str
    between: list[str] = field(default_factory=list)
    act: str | None = None  # the (single) ReLU/ReLU6 among ``between``


def _passthrough_types():
    import torch.nn as nn

    return (nn.ReLU, nn.ReLU6, nn.Identity, nn.ZeroPad2d, nn.Dropout, nn.ConstantPad2d)


def find_pairs(model: nn.Module) -> list[Pair]:
    """Conv pairs connected through single-user chains of activations / zero pads / identities (via torch.fx)."""
    import torch.fx as fx
    import torch.nn as nn

    mods = dict(model.named_modules())
    gm = fx.symbolic_trace(model)
    pairs = []
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(mods.get(node.target), nn.Conv2d):
            continue
        between: list[str] = []
        cur = node
        while len(cur.users) == 1:
            nxt = next(iter(cur.users))
            if nxt.op != "call_module":
                break
            m = mods.get(nxt.target)
            if isinstance(m, nn.Conv2d):
                acts = [b for b in between if isinstance(mods[b], (nn.ReLU, nn.ReLU6))]
                if len(acts) <= 1:
                    pairs.append(Pair(str(node.target), str(nxt.target), between, acts[0] if acts else None))
                break
            if not isinstance(m, _passthrough_types()) or (isinstance(m, nn.ConstantPad2d) and m.value != 0):
                break
            between.append(str(nxt.target))
            cur = nxt
    return pairs


def _in_channel_view(w: torch.Tensor, groups: int) -> torch.Tensor:
    """View conv weight ``[out, in/g, ...]`` as ``[g, out/g, in/g, rest]``."""
    o, ig = w.shape[:2]
    return w.reshape(groups, o // groups, ig, -1)


def out_ranges(conv: nn.Module) -> torch.Tensor:
    """Per-output-channel max |w|."""
    return conv.weight.detach().abs().flatten(1).amax(1)


def in_ranges(conv: nn.Module) -> torch.Tensor:
    """Per-input-channel max |w| (handles grouped / depthwise convs)."""
    v = _in_channel_view(conv.weight.detach().abs(), conv.groups)  # g, o/g, i/g, k
    return v.amax(dim=(1, 3)).reshape(-1)  # g * i/g = in channels


def range_spread(model: nn.Module, pairs: Iterable[Pair]) -> float:
    """Mean over pairs of log10(q95 / q5) of conv1's per-channel weight ranges: 0 means perfectly equalized.

    Quantiles rather than max/min so that dead (all-zero) channels do not dominate.
    """
    import torch

    vals = []
    for p in pairs:
        r = out_ranges(model.get_submodule(p.conv1)).double()
        r = r[r > 1e-12]
        if r.numel() > 1:
            vals.append(torch.log10(torch.quantile(r, 0.95) / torch.quantile(r, 0.05)).item())
    return float(sum(vals) / max(len(vals), 1))


def ratio_spread(model: nn.Module, pairs: Iterable[Pair]) -> float:
    """Mean over pairs of max_i |log10(r1_i / r2_i)| (conv1 out-channel vs conv2 in-channel range); CLE drives it to 0."""
    import torch

    vals = []
    for p in pairs:
        r1, r2 = out_ranges(model.get_submodule(p.conv1)), in_ranges(model.get_submodule(p.conv2))
        ok = (r1 > 1e-12) & (r2 > 1e-12)
        if ok.any():
            vals.append(torch.log10(r1[ok] / r2[ok]).abs().max().item())
    return float(sum(vals) / max(len(vals), 1))


def _scale_pair(m1: nn.Module, m2: nn.Module, s: torch.Tensor) -> None:
    shape = [-1] + [1] * (m1.weight.dim() - 1)
    m1.weight.data.div_(s.reshape(shape))
    if m1.bias is not None:
        m1.bias.data.div_(s)
    v = _in_channel_view(m2.weight.data, m2.groups)
    v.mul_(s.reshape(m2.groups, 1, -1, 1))
    m2.weight.data.copy_(v.reshape(m2.weight.shape))


def channel_extrema(model: nn.Module, names: Iterable[str], batches: Iterable[torch.Tensor]) -> dict[str, tuple]:
    """Per-channel (min, max) over N,H,W of each named module's *input* (e.g. activations' pre-activation)."""
    import torch

    out: dict[str, list] = {}
    hooks = []

    def hook(_m, a, n):
        x = a[0].detach().transpose(0, 1).flatten(1)
        lo, hi = x.amin(1), x.amax(1)
        if n in out:
            out[n] = [torch.minimum(out[n][0], lo), torch.maximum(out[n][1], hi)]
        else:
            out[n] = [lo, hi]

    for n in names:
        hooks.append(model.get_submodule(n).register_forward_pre_hook(lambda m, a, n=n: hook(m, a, n)))
    try:
        with torch.no_grad():
            for b in batches:
                model(b)
    finally:
        for h in hooks:
            h.remove()
    return {n: (v[0], v[1]) for n, v in out.items()}


def equalize(
    model: nn.Module,
    iterations: int = 20,
    relu6: Relu6Policy = "calibrated",
    act_max: dict[str, torch.Tensor] | None = None,
    margin: float = 1.0,
    inplace: bool = False,
    pairs: list[Pair] | None = None,
) -> nn.Module:
    """Cross-layer equalize a BN-folded model.

    ``act_max[name]`` is the calibrated per-channel maximum of the *input* of activation module ``name``
    (see :func:`channel_extrema`); required for ``relu6="calibrated"``.  ``margin`` (< 1 tightens) keeps
    scaled channels at most ``6 * margin``.
    """
    import torch
    import torch.nn as nn

    m = model if inplace else copy.deepcopy(model)
    pairs = find_pairs(m) if pairs is None else pairs
    todo = []
    for p in pairs:
        act = m.get_submodule(p.act) if p.act else None
        if isinstance(act, nn.ReLU6):
            if relu6 == "skip":
                continue
            if relu6 == "calibrated" and (act_max is None or p.act not in act_max):
                raise ValueError("relu6='calibrated' needs act_max for every ReLU6 between equalized convs")
            if relu6 == "relu":
                parent, _, child = p.act.rpartition(".")
                setattr(m.get_submodule(parent) if parent else m, child, nn.ReLU())
        todo.append(p)
    with torch.no_grad():
        for _ in range(iterations):
            for p in todo:
                c1, c2 = m.get_submodule(p.conv1), m.get_submodule(p.conv2)
                r1, r2 = out_ranges(c1), in_ranges(c2)
                s = torch.ones_like(r1)
                ok = (r1 > 1e-8) & (r2 > 1e-8)
                s[ok] = torch.sqrt(r1[ok] / r2[ok])
                act = m.get_submodule(p.act) if p.act else None
                if isinstance(act, nn.ReLU6) and relu6 == "calibrated":
                    mx = act_max[p.act].to(s)  # current per-channel max of the pre-activation
                    sat = mx >= 6.0 * margin
                    s = torch.where(sat, torch.ones_like(s), torch.maximum(s, mx / (6.0 * margin)))
                    act_max[p.act] = mx / s  # the channel is now scaled by 1/s
                _scale_pair(c1, c2, s)
    return m


def absorb_high_bias(
    model: nn.Module,
    act_min: dict[str, torch.Tensor],
    act_max: dict[str, torch.Tensor] | None = None,
    inplace: bool = False,
    pairs: list[Pair] | None = None,
) -> nn.Module:
    """Move ``c_i = max(0, act_min_i)`` from conv1's bias into conv2's bias (exact on calibrated ranges).

    ``act_min``/``act_max`` are per-channel extrema of the activation modules' inputs, keyed by module name.
    Pairs without an activation are skipped (nothing guarantees positivity), as are conv2s with padding.
    """
    import torch
    import torch.nn as nn

    m = model if inplace else copy.deepcopy(model)
    pairs = find_pairs(m) if pairs is None else pairs
    with torch.no_grad():
        for p in pairs:
            if p.act is None or p.act not in act_min:
                continue
            c1, c2 = m.get_submodule(p.conv1), m.get_submodule(p.conv2)
            pads = [b for b in p.between if isinstance(m.get_submodule(b), (nn.ZeroPad2d, nn.ConstantPad2d))]
            if c1.bias is None or pads or any(int(x) != 0 for x in c2.padding if not isinstance(x, str)) or (
                isinstance(c2.padding, str) and c2.padding != "valid"
            ):
                continue
            c = act_min[p.act].to(c1.bias).clamp_min(0)
            if isinstance(m.get_submodule(p.act), nn.ReLU6):
                if act_max is None or p.act not in act_max:
                    continue
                c = torch.where(act_max[p.act].to(c) < 6.0, c, torch.zeros_like(c))
            if not bool((c > 0).any()):
                continue
            c1.bias.sub_(c)
            v = _in_channel_view(c2.weight, c2.groups)  # g, o/g, i/g, k
            contrib = (v.sum(3) * c.reshape(c2.groups, 1, -1)).sum(2).reshape(-1)
            if c2.bias is None:
                c2.bias = nn.Parameter(torch.zeros(c2.out_channels, dtype=c2.weight.dtype))
            c2.bias.add_(contrib)
            act_min[p.act] = act_min[p.act] - c
            if act_max is not None and p.act in act_max:
                act_max[p.act] = act_max[p.act] - c
    return m
