"""Fast checks of the PTQ transforms in edgekit.quant (tiny models, no downloads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgekit.quant.adaround import AdaRoundConfig, adaround_layer
from edgekit.quant.bias_correction import (
    bias_correct,
    quantize_weight,
    quantize_weights,
    saturation_safe_scale,
    weight_scale,
)
from edgekit.quant.calibrate import (
    EntropyCalibrator,
    MinMaxCalibrator,
    MSECalibrator,
    PercentileCalibrator,
    StreamingHistogram,
    calibrate_modules,
)
from edgekit.quant.equalize import (
    absorb_high_bias,
    channel_extrema,
    equalize,
    find_pairs,
    range_spread,
    ratio_spread,
)
from edgekit.quant.fold import find_conv_bn_pairs, fold_batchnorm


class DWBlock(nn.Module):
    """conv -> BN -> ReLU -> zero pad -> depthwise -> BN -> ReLU6 -> 1x1 project -> BN, plus a skip add."""

    def __init__(self, c: int = 8, mid: int = 24, act=nn.ReLU):
        super().__init__()
        self.expand = nn.Conv2d(c, mid, 1, bias=False)
        self.bn0 = nn.BatchNorm2d(mid)
        self.act0 = act()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.dw = nn.Conv2d(mid, mid, 3, 1, 0, groups=mid, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act1 = act()
        self.project = nn.Conv2d(mid, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = self.act0(self.bn0(self.expand(x)))
        y = self.act1(self.bn1(self.dw(self.pad(y))))
        y = self.bn2(self.project(y))
        return x[..., :-1, :-1] + y


def tiny(act=nn.ReLU, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), act(), DWBlock(8, 24, act),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    # non-trivial BN statistics and wildly different per-channel weight ranges (what CLE is for)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.2, 2.0)
                mod.weight.copy_(torch.exp(torch.randn_like(mod.weight) * 1.5))
                mod.bias.uniform_(-0.2, 0.8)
    return m.eval()


def data(n: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 12, 12, generator=torch.Generator().manual_seed(seed))


def test_bn_folding_is_exact():
    m = tiny()
    pairs = find_conv_bn_pairs(m)
    assert len(pairs) == 4
    f = fold_batchnorm(m)
    assert not any(isinstance(x, nn.BatchNorm2d) for x in f.modules())
    assert any(isinstance(x, nn.BatchNorm2d) for x in m.modules())  # original untouched
    x = data()
    with torch.no_grad():
        assert torch.allclose(m(x), f(x), atol=1e-5)


def test_cle_preserves_function_and_equalizes_relu():
    f = fold_batchnorm(tiny(nn.ReLU))
    pairs = find_pairs(f)
    # "0" -> "3.expand" is not a pair: conv 0's output also feeds the residual add
    assert {(p.conv1, p.conv2) for p in pairs} == {("3.expand", "3.dw"), ("3.dw", "3.project")}
    before, spread_before = ratio_spread(f, pairs), range_spread(f, pairs)
    e = equalize(f, pairs=pairs)
    after, spread_after = ratio_spread(e, pairs), range_spread(e, pairs)
    x = data()
    with torch.no_grad():
        assert torch.allclose(f(x), e(x), atol=1e-4)
    assert before > 0.5 and after < 0.05 * before, (before, after)  # r1_i == r2_i after CLE
    assert spread_after < spread_before, (spread_before, spread_after)


def test_cle_relu6_policies():
    f = fold_batchnorm(tiny(nn.ReLU6))
    x = data(32)
    with pytest.raises(ValueError):
        equalize(f)  # calibrated policy needs activation maxima
    acts = [p.act for p in find_pairs(f) if p.act]
    amax = {k: v[1] for k, v in channel_extrema(f, acts, [x]).items()}
    e = equalize(f, relu6="calibrated", act_max=dict(amax))
    with torch.no_grad():
        assert torch.allclose(f(x), e(x), atol=1e-4)  # exact on the calibrated inputs
    s = equalize(f, relu6="skip")
    with torch.no_grad():
        assert torch.allclose(f(x), s(x), atol=1e-5)
    r = equalize(f, relu6="relu")
    assert not any(isinstance(m, nn.ReLU6) for n, m in r.named_modules() if n in acts)


def test_high_bias_absorption_is_exact_on_calibration_data():
    f = fold_batchnorm(tiny(nn.ReLU))
    with torch.no_grad():
        f.get_submodule("3.dw").bias.add_(3.0)  # make the depthwise output strictly positive
    x = data(32)
    acts = [p.act for p in find_pairs(f) if p.act]
    ext = channel_extrema(f, acts, [x])
    h = absorb_high_bias(f, {k: v[0] for k, v in ext.items()}, {k: v[1] for k, v in ext.items()})
    with torch.no_grad():
        assert torch.allclose(f(x), h(x), atol=1e-4)
        assert (h.get_submodule("3.dw").bias < f.get_submodule("3.dw").bias).any()


def test_weight_quantization_matches_ort_grid():
    w = torch.randn(6, 4, 3, 3)
    s = weight_scale(w)
    q = quantize_weight(w)
    ints = q / s
    assert torch.allclose(ints, ints.round(), atol=1e-4) and ints.round().abs().max() == 127
    assert torch.allclose(q.abs().flatten(1).amax(1), w.abs().flatten(1).amax(1), rtol=1e-6)


def test_saturation_safe_scale_bounds_adjacent_pairs():
    conv = nn.Conv2d(8, 4, 1, bias=False)
    with torch.no_grad():
        conv.weight.normal_()
        conv.weight[0, 0] = 2.0
        conv.weight[0, 1] = -2.0  # an adjacent pair at full range: would saturate vpmaddubsw
    s = saturation_safe_scale(conv)
    q = torch.round(conv.weight / s).reshape(4, -1)
    assert (q.abs().reshape(4, -1, 2).sum(2) <= 128).all()
    assert (s.flatten() >= weight_scale(conv.weight).flatten() - 1e-9).all()
    dw = nn.Conv2d(8, 8, 3, groups=8)
    assert torch.equal(saturation_safe_scale(dw), weight_scale(dw.weight))


def test_bias_correction_reduces_mean_error_on_held_out_data():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, groups=16),
                      nn.ReLU(), nn.Conv2d(16, 8, 1)).eval()
    with torch.no_grad():  # coarse 4-bit-like weights make the rounding bias obvious
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                mod.weight.add_(0.05)
    q = quantize_weights(m, per_channel=True)
    for mod in q.modules():  # re-round to a 3-bit grid to get a large, biased error
        if isinstance(mod, nn.Conv2d):
            mod.weight.data.copy_(quantize_weight(mod.weight, qmax=3))
    cal, held = data(32, 2), data(32, 3)
    bc = bias_correct(m, q, [cal], rounds=3)
    with torch.no_grad():
        ref, yq, yb = m(held), q(held), bc(held)
    err_q = (yq - ref).mean(dim=(0, 2, 3)).abs().mean()
    err_b = (yb - ref).mean(dim=(0, 2, 3)).abs().mean()
    assert err_b < 0.75 * err_q, (err_q, err_b)


def test_adaround_lowers_reconstruction_error():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    # correlated, smooth inputs (with white inputs nearest rounding is already optimal)
    z = torch.randn(32, 2, 4, 4)
    x = nn.functional.interpolate(torch.einsum("nchw,cd->ndhw", z, torch.randn(2, 8)), size=8, mode="bilinear")
    x = x + 0.05 * torch.randn(32, 8, 8, 8)
    w_q, e_near, e_ada = adaround_layer(conv, x, x, None, AdaRoundConfig(iters=300, batch=16, lr=3e-2, qmax=7))
    assert e_ada < 0.9 * e_near, (e_near, e_ada)
    s = weight_scale(conv.weight, qmax=7)
    ints = w_q / s
    assert torch.allclose(ints, ints.round(), atol=1e-4) and ints.round().abs().max() <= 7


def test_streaming_histogram_percentile_matches_numpy():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(0, 1, 5000), rng.normal(3, 4, 5000), rng.exponential(2, 5000) + 5]  # range grows
    h = StreamingHistogram(4096)
    for c in chunks:
        h.update(c)
    allx = np.concatenate(chunks)
    assert h.counts.sum() == allx.size
    w, eps = h.width, 2.0 / allx.size  # within one bin and two ranks of the exact order statistic

    def near(v, q):
        return np.quantile(allx, max(q - eps, 0)) - w <= v <= np.quantile(allx, min(q + eps, 1)) + w

    for q in (0.001, 0.1, 0.5, 0.9, 0.999):
        assert near(h.quantile(q), q), q
    p = PercentileCalibrator(99.9, bins=4096)
    for c in chunks:
        p.update(c)
    lo, hi = p.compute_range()
    assert near(hi, 0.999) and near(lo, 0.001)


def test_minmax_mse_entropy_calibrators():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, 20000), [40.0]])  # one outlier
    mm, mse, ent = MinMaxCalibrator(), MSECalibrator(), EntropyCalibrator(stride=8)
    for c in np.array_split(x, 7):
        for cal in (mm, mse, ent):
            cal.update(c)
    assert mm.compute_range() == (x.min(), x.max())
    lo, hi = mse.compute_range()
    assert 2 < hi < 40 and -40 < lo < -2  # clipped the outlier
    # brute-force reference MSE on the raw data: the chosen range beats min/max
    def err(lo, hi):
        s = (hi - lo) / 255
        zp = np.round(-lo / s)
        return np.mean((x - (np.clip(np.round(x / s) + zp, 0, 255) - zp) * s) ** 2)
    assert err(lo, hi) < err(x.min(), x.max())
    elo, ehi = ent.compute_range()
    assert 1 < ehi < 40 and elo == -ehi
    pos = EntropyCalibrator(stride=8)
    pos.update(np.abs(x))
    assert pos.compute_range()[0] == 0.0


def test_calibrate_modules_progress_and_reference():
    m = fold_batchnorm(tiny(nn.ReLU6))
    xs = [data(8, s) for s in range(3)]
    calls = []
    r = calibrate_modules(m, xs, ["2", "3.act1"], "minmax", progress=lambda d, t, eta: calls.append((d, t, eta)))
    assert [c[0] for c in calls] == [1, 2, 3] and calls[-1][1] == 3 and calls[-1][2] == 0
    with torch.no_grad():
        ys = torch.cat([m[:3](x) for x in xs])
    assert r["2"] == pytest.approx((0.0, float(ys.max())), rel=1e-6)
    rp = calibrate_modules(m, xs, ["2"], "percentile", percentile=99.0, bins=4096)
    assert rp["2"][1] == pytest.approx(float(np.percentile(ys.numpy(), 99.0)), abs=0.01)
