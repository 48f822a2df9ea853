"""edgekit's streaming calibrators on ONNX models: ranges match a reference computation over all activations,
and quantize.static hands them to ONNX Runtime (the QDQ scales are ours), for QDQ only."""

import numpy as np
import onnx
import pytest
from helpers import onnx_pass_setup
from onnx import numpy_helper

from edgekit.passes import get_pass
from edgekit.passes.ort_quantize import StaticQuantConfig, preprocess
from edgekit.quant.onnx_calibrate import activation_tensors, calibrate_onnx
from edgekit.quant.onnx_rewrite import stream_tensors
from edgekit.train.trainer import predict


@pytest.fixture(scope="module")
def model(cnn, splits, tmp_path_factory):
    d = tmp_path_factory.mktemp("cal")
    art, ctx = onnx_pass_setup(cnn, splits, d)
    return art, preprocess(d / "artifacts" / "onnx-fp32.onnx", d / "pre.onnx")[0], ctx


def test_streamed_percentile_matches_numpy_over_all_activations(model, splits):
    _, pre, _ = model
    x = splits.x_calib[:64]
    names = activation_tensors(pre)
    assert names[0] == "input" and "logits" in names and len(names) >= 6
    got = calibrate_onnx(pre, x, "percentile", batch=8, percentile=99.0)
    full = {n: [] for n in names}
    for outs in stream_tensors(pre, names, x, batch=64):
        for n, a in outs.items():
            full[n].append(a.ravel())
    for n in names:
        a = np.concatenate(full[n])
        lo, hi = got[n]
        bin_w = float(a.max() - min(a.min(), 0)) / 1024  # the streaming histogram's bins are at most 2x finer
        lo_ok, hi_ok = np.percentile(a, [98.8, 99.2])  # a sparse tensor (pooled features) has gaps between values
        assert lo_ok - bin_w <= hi <= hi_ok + bin_w, (n, hi, lo_ok, hi_ok)
        assert lo <= 0 <= hi


def test_static_uses_the_streamed_ranges_in_qdq(model, splits):
    art, pre, ctx = model
    cfg = StaticQuantConfig(name="quantize.static", artifact="q-mse", format="qdq", activation_type="uint8",
                            per_channel=True, calibration="mse", bias_correction=False, calibration_size=64)
    out, rec = get_pass(cfg).apply(art, ctx)
    ranges = calibrate_onnx(pre, splits.x_calib[:64], "mse")
    g = onnx.load(str(out.path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    checked = 0
    for node in g.node:
        if node.op_type == "QuantizeLinear" and node.input[0] in ranges and node.input[1] in init:
            lo, hi = ranges[node.input[0]]
            assert float(init[node.input[1]]) == pytest.approx((hi - lo) / 255, rel=1e-5), node.input[0]
            checked += 1
    assert checked >= 3
    assert rec.candidates[0]["cosine"] > 0.99


def test_two_int8_passes_on_one_fp32_file_calibrate_once(model):
    """Calibration ranges are cached by the source file's sha256 and the calibration settings, in the context every
    pass of a run shares: a second pass with other weight settings reuses them."""
    art, _, ctx = model
    ranges = lambda: [k for k in ctx.cache if k[0] == "ranges" and k[2] == "percentile"]  # noqa: E731
    cfg = StaticQuantConfig(name="quantize.static", artifact="q-pct-pc", format="qdq", activation_type="uint8",
                            per_channel=True, calibration="percentile", bias_correction=False, calibration_size=32)
    get_pass(cfg).apply(art, ctx)
    before = ranges()
    get_pass(cfg.model_copy(update={"artifact": "q-pct-pt", "per_channel": False})).apply(art, ctx)
    assert len(before) == 1 and ranges() == before
    other = StaticQuantConfig(name="quantize.static", artifact="q-pct-99", format="qdq", activation_type="uint8",
                              bias_correction=False, calibration={"method": "percentile", "percentile": 99.0,
                                                                  "samples": 32})
    get_pass(other).apply(art, ctx)
    assert len(ranges()) == 2  # other settings: calibrated anew


@pytest.mark.parametrize("bad", [{"calibration": "mse", "calibrator": "onnxruntime"},
                                 {"calibration": "mse", "format": "qoperator"},
                                 {"adaround": {}, "format": "qoperator"}, {"adaround": {}, "per_channel": False}])
def test_options_the_format_cannot_honour_are_clear_errors(bad):
    with pytest.raises(ValueError, match="mse|adaround"):
        StaticQuantConfig(name="quantize.static", **bad)


@pytest.mark.parametrize("bad", [{"format": "qoperator", "bias_correction": True},
                                 {"format": "qoperator", "calibration": "mse"}, {"adaround": True, "per_channel": False}])
def test_auto_schemes_that_cannot_work_are_refused_in_the_recipe(bad, tmp_path):
    import yaml
    from helpers import tiny_recipe_dict

    from edgekit.errors import RecipeError
    from edgekit.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe_dict(passes=[{"name": "quantize.auto", "schemes": [bad]}])))
    with pytest.raises(RecipeError, match="schemes"):
        load_recipe(path)


def test_onnx_adaround_rounds_on_the_qdq_grid_and_lowers_held_out_error(model, splits, cnn):
    from edgekit.export.parity import compare
    from edgekit.passes.ort_quantize import StaticQuantize
    from edgekit.quant.adaround import AdaRoundConfig
    from edgekit.quant.onnx_adaround import adaround_onnx
    from edgekit.runtimes import get_runtime

    _, pre, ctx = model
    q = StaticQuantize(StaticQuantConfig(name="quantize.static", format="qdq", activation_type="uint8",
                                         per_channel=True))
    near = ctx.run_dir / "near.onnx"
    q.build(pre, near, "qdq", "uint8", True, ctx)
    ada = ctx.run_dir / "ada.onnx"
    stats = adaround_onnx(near, pre, splits.x_calib[:64], ada, cfg=AdaRoundConfig(iters=200))
    assert stats["layers"] >= 2 and sum(stats["mse_adaround"]) < sum(stats["mse_nearest"])
    g0 = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(near)).graph.initializer}
    g1 = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(ada)).graph.initializer}
    changed = [n for n in g0 if n.endswith("_quantized") and g0[n].dtype == np.int8 and (g0[n] != g1[n]).any()]
    assert changed  # integers moved ...
    for n in changed:  # ... by at most one step (floor or ceil of w / s), on the same scales
        assert np.abs(g0[n].astype(int) - g1[n].astype(int)).max() <= 1
        assert np.array_equal(g0[n.replace("_quantized", "_scale")], g1[n.replace("_quantized", "_scale")])
    ref = predict(cnn, splits.x_test)
    e = [compare(ref, get_runtime("onnxruntime").load(p).run(splits.x_test))["mean_abs"] for p in (near, ada)]
    assert e[1] < e[0], e  # held-out test inputs, not the 64 it learned from


def test_old_flat_calibration_keys_of_the_onnx_passes_load_with_their_meaning():
    """quantize.static/quantize.auto take the shared `calibration:` sub-config; older recipes and the recipes stored
    in older report.json files (every default spelled out) still load, meaning what they meant."""
    from edgekit.passes.quant_schemes import AutoQuantConfig
    from edgekit.quant.options import Calibration

    old = StaticQuantConfig(name="quantize.static", calibration="percentile", calibration_size=64, exclude_nodes=["a"])
    assert old.calibration == Calibration(method="percentile", percentile=99.999, samples=64, keep_float=["a"])
    dumped = {"name": "quantize.static", "artifact": "onnx-int8", "calibration": "minmax", "percentile": 99.999,
              "calibration_size": None, "exclude_nodes": []}  # an older report.json's recipe
    assert StaticQuantConfig.model_validate(dumped).calibration == Calibration()
    assert StaticQuantConfig.model_validate(old.model_dump(mode="json")) == old
    assert StaticQuantConfig(name="quantize.static", calibration={"method": "percentile"}).calibration.percentile == 99.99
    auto = AutoQuantConfig(name="quantize.auto", calibration_size=16, exclude_nodes=["x"])
    assert auto.calibration == Calibration(samples=16, keep_float=["x"])
    assert AutoQuantConfig.model_validate(auto.model_dump(mode="json")) == auto
    with pytest.raises(ValueError, match="each scheme's"):
        AutoQuantConfig(name="quantize.auto", calibration={"method": "mse"})
