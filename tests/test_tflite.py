"""TFLite (LiteRT) export and runtime: parity per precision, real quantization, int8 I/O, failures named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.errors import ArtifactError, ExportError
from edgekit.export.config import ExecutorchExport, OnnxExport, TfliteExport, TorchExport
from edgekit.export.parity import check, compare
from edgekit.export.tflite import TfliteExporter, inspect_tflite
from edgekit.runtimes import get_runtime, runtime_for
from edgekit.train.trainer import predict

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")

BATCH = 4


def _tflite(model, splits, folder, precision="fp32", io_dtype="float32", name=None):
    cfg = TfliteExport(format="tflite", precision=precision, io_dtype=io_dtype)
    name = name or f"tflite-{precision}" + ("-io8" if io_dtype == "int8" else "")
    art = TfliteExporter().export(model, splits.x_test, cfg, folder / f"{name}.tflite", folder, name,
                                  calibration=splits.x_calib, batch_size=BATCH)
    return art, cfg


class _Built(dict):
    """Files built on first use: a run that selects one runtime's cases converts for that runtime only."""

    def __init__(self, build):
        super().__init__()
        self.build = build

    def __missing__(self, key):
        self[key] = value = self.build(*key)
        return value


OPTIONAL = {"executorch": "executorch.runtime", "openvino": "openvino"}  # runtimes whose extra may be missing


@pytest.fixture(scope="module")
def exported(cnn, splits, tmp_path_factory):
    """The trained tiny CNN as torch .pt2, ONNX fp32, TFLite in every precision and ExecuTorch fp32/int8, keyed by
    (runtime, precision); openvino runs the ONNX fp32 file."""
    from edgekit.export.executorch import ExecutorchExporter
    from edgekit.export.onnx import OnnxExporter
    from edgekit.export.torch_program import TorchProgramExporter

    d = tmp_path_factory.mktemp("tflite")

    def build(runtime, precision):
        if runtime == "torch":
            cfg = TorchExport(format="torch")
            return TorchProgramExporter().export(cnn, splits.x_test, cfg, d / "m.pt2", d, "torch"), cfg, d
        if runtime == "onnxruntime":
            cfg = OnnxExport(format="onnx", exporter="legacy")
            return OnnxExporter().export(cnn, splits.x_test, cfg, d / "m.onnx", d, "onnx"), cfg, d
        if runtime == "openvino":
            return out[("onnxruntime", precision)]
        if runtime == "executorch":
            cfg = ExecutorchExport(format="executorch", precision=precision)
            return ExecutorchExporter().export(cnn, splits.x_test, cfg, d / f"et-{precision}.pte", d,
                                               f"executorch-{precision}", calibration=splits.x_calib,
                                               batch_size=BATCH), cfg, d
        if precision == "int8-io8":
            return (*_tflite(cnn, splits, d, "int8", "int8"), d)
        return (*_tflite(cnn, splits, d, precision), d)

    out = _Built(build)
    return out


@pytest.mark.parametrize("runtime,precision", [("torch", "fp32"), ("onnxruntime", "fp32"), ("litert", "fp32"),
                                               ("litert", "fp16"), ("litert", "dynamic_int8"), ("litert", "int8"),
                                               ("executorch", "fp32"), ("executorch", "int8"), ("openvino", "fp32")])
def test_artifact_matches_torch_reference(runtime, precision, exported, cnn, splits):
    if runtime in OPTIONAL:
        pytest.importorskip(OPTIONAL[runtime])
    art, cfg, d = exported[(runtime, precision)]
    sess = get_runtime(runtime).load(d / art.path, threads=2)
    x = splits.x_test[:128]
    numbers = compare(predict(cnn, x), sess.run(x))
    assert check(art.name, numbers, cfg.tolerance, "torch fp32").passed, numbers
    if precision == "fp32":
        assert numbers["cosine"] > 0.99999 and numbers["top1_agreement"] == 1.0
    if runtime in ("litert", "executorch"):
        assert art.details["static_batch"] == BATCH and sess.static_batch == BATCH
        assert art.inputs[0].shape[0] == BATCH and art.precision == precision
        assert sess.run(x[:BATCH + 3]).shape == (BATCH + 3, 10)  # chunked and padded at the static batch
    if runtime == "litert":
        assert sum(sess.ops().values()) == art.details["delegation"]["ops"]
    if runtime == "openvino":
        assert sess.inference_precision == "f32"


def test_litert_is_the_default_runtime_and_xnnpack_takes_the_fp32_graph(exported):
    art, _, d = exported[("litert", "fp32")]
    assert runtime_for("tflite").name == "litert"
    deleg = art.details["delegation"]
    assert deleg["delegate"] == "XNNPACK" and deleg["delegated"] == deleg["ops"] > 0 and deleg["not_delegated"] == 0
    assert {"CONV_2D", "FULLY_CONNECTED"} <= set(art.ops)


def test_quantized_files_carry_their_precision(exported):
    fp32 = exported[("litert", "fp32")][0]
    assert not fp32.details["weight_dtypes"].get("int8")
    for p, dtype in (("fp16", "float16"), ("dynamic_int8", "int8"), ("int8", "int8")):
        art = exported[("litert", p)][0]
        assert art.details["weight_dtypes"].get(dtype, 0) > 0, (p, art.details)
        assert art.size_bytes < fp32.size_bytes
    full = exported[("litert", "int8")][0]
    assert full.inputs[0].dtype == "float32" and "QUANTIZE" in full.ops and "DEQUANTIZE" in full.ops


def test_int8_io_model_is_fed_floats_and_matches_float_io(exported, splits):
    io8, _, d = exported[("litert", "int8-io8")]
    f_io, _, _ = exported[("litert", "int8")]
    assert io8.inputs[0].dtype == "int8" and io8.outputs[0].dtype == "int8"
    s8 = get_runtime("litert").load(d / io8.path)
    sf = get_runtime("litert").load(d / f_io.path)
    assert s8.in_scale > 0 and s8.out_scale > 0
    x = splits.x_test[:64]
    y8, yf = s8.run(x), sf.run(x)
    assert y8.dtype == np.float32 and y8.shape == (64, 10)
    n = compare(yf, y8)
    assert n["cosine"] > 0.999 and n["top1_agreement"] >= 0.98, n


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_int8_ranges_cover_all_calibration_samples_not_only_the_last(method, cnn, splits, tmp_path):
    """ai-edge-quantizer alone keeps a moving average of per-batch min/max, so a range reached only by the first
    samples is forgotten; edgekit's minmax covers every sample (numpy reference), percentile clips the tail."""
    calib = splits.x_calib[:64].copy()
    calib[:4] *= 3.0  # the widest samples come first
    cfg = TfliteExport(format="tflite", precision="int8", io_dtype="int8", calibration=method,
                       **({"percentile": 99.0} if method == "percentile" else {}))
    art = TfliteExporter().export(cnn, splits.x_test, cfg, tmp_path / "m.tflite", tmp_path, "m",
                                  calibration=calib, batch_size=BATCH)
    assert art.details["calibration"] == method and art.details["calibrated_tensors"] > 5
    s = get_runtime("litert").load(tmp_path / "m.tflite")
    lo, hi = (-128 - s.in_zero) * s.in_scale, (127 - s.in_zero) * s.in_scale
    want_lo, want_hi = min(float(calib.min()), 0.0), max(float(calib.max()), 0.0)
    if method == "minmax":
        assert lo == pytest.approx(want_lo, abs=s.in_scale) and hi == pytest.approx(want_hi, abs=s.in_scale)
    else:
        p99 = float(np.percentile(calib, 99.0))
        assert hi < 0.75 * want_hi and hi == pytest.approx(p99, rel=0.1, abs=2 * s.in_scale)


def test_int8_after_label_free_finetuning(cnn, splits, tmp_path, exported):
    cfg = TfliteExport(format="tflite", precision="int8", finetune={"epochs": 2, "lr": 1e-4})
    art = TfliteExporter().export(cnn, splits.x_test, cfg, tmp_path / "ft.tflite", tmp_path, "ft",
                                  calibration=splits.x_calib, batch_size=BATCH)
    ft = art.details["finetune"]
    assert ft["epochs"] == 2 and ft["best_epoch"] in (0, 1, 2) and ft["holdout_cosine_after"] > 0.99
    plain, _, d = exported[("litert", "int8")]
    x = splits.x_test[:200]
    ref = predict(cnn, x)
    y_ft = get_runtime("litert").load(tmp_path / "ft.tflite").run(x)
    y_plain = get_runtime("litert").load(d / plain.path).run(x)
    assert not np.allclose(y_ft, y_plain)  # other weights went into the file
    ft_err, plain_err = compare(ref, y_ft), compare(ref, y_plain)
    assert ft_err["mean_abs"] < plain_err["mean_abs"], (ft_err, plain_err)  # closer to fp32 than plain int8
    assert ft_err["cosine"] > 0.995, ft_err


def test_keep_float_leaves_the_named_module_in_float_and_an_unknown_name_is_an_error(cnn, splits, tmp_path):
    def export(keep, name):
        cfg = TfliteExport(format="tflite", precision="int8", keep_float=keep)
        return TfliteExporter().export(cnn, splits.x_test, cfg, tmp_path / f"{name}.tflite", tmp_path, name,
                                       calibration=splits.x_calib, batch_size=BATCH)

    plain, mixed, block = export([], "plain"), export(["features.0.0"], "mixed"), export(["features.1"], "block")
    assert {"CONV_2D", "DEPTHWISE_CONV_2D"} & set(mixed.details["float_modules"]["features.0.0"])
    assert "CONV_2D" in block.details["float_modules"]["features.1"]  # a block: the conv inside it
    w_plain, w_mixed = plain.details["weight_dtypes"], mixed.details["weight_dtypes"]
    assert w_mixed["int8"] == w_plain["int8"] - 1 and w_mixed.get("float32", 0) > w_plain.get("float32", 0)
    assert block.details["weight_dtypes"]["int8"] == w_plain["int8"] - 1
    x = splits.x_test[:200]
    assert compare(predict(cnn, x), get_runtime("litert").load(tmp_path / "mixed.tflite").run(x))["cosine"] > 0.99
    with pytest.raises(ExportError, match="'features.9'"):
        export(["features.9"], "bad")
    assert not (tmp_path / "bad.tflite").exists()


@pytest.mark.parametrize("module,name,hit", [
    ("_blocks.0._dw", "R.Net/S__blocks/m.MBConv_0/c.Conv2d__dw;", True),
    ("_blocks.0._dw", "R.Net/S__blocks/m.MBConv_10/c.Conv2d__dw;", False),  # 0 is not 10
    ("_blocks.0", "R.Net/a.ReLU6_act;;R.Net/S__blocks/m.MBConv_0/c.Conv2d__dw;", True),  # fused scopes, a block
    ("0", "R.Net/S_features/S_1/c.Conv2d_0;", False),  # the root's child 0 only, not features.1.0
    ("conv", "R.Net/c.Conv2d__conv_stem;", False),  # not a suffix of another name
    ("_conv_stem", "R.Net/c.Conv2d__conv_stem;2", True),
])
def test_module_names_map_onto_litert_op_scopes(module, name, hit):
    import re

    from edgekit.export.tflite_scopes import module_scope_regex

    assert bool(re.search(module_scope_regex(module), name)) is hit


def test_calibration_options_need_int8():
    with pytest.raises(ValueError, match="only with precision int8"):
        TfliteExport(format="tflite", precision="fp16", calibration="mse")
    with pytest.raises(ValueError, match="only with precision int8"):
        TfliteExport(format="tflite", precision="dynamic_int8", finetune={})
    with pytest.raises(ValueError, match="calibration: percentile"):
        TfliteExport(format="tflite", precision="int8", percentile=99.0)


def test_int8_is_about_4x_smaller_on_a_weight_dominated_model(splits, tmp_path):
    from edgekit.models import build_model
    from edgekit.models.config import MlpConfig

    torch.manual_seed(0)
    mlp = build_model(MlpConfig(arch="mlp", hidden=[256, 256]), splits.input_shape, splits.num_classes).eval()
    sizes = {p: _tflite(mlp, splits, tmp_path, p)[0].size_bytes for p in ("fp32", "fp16", "dynamic_int8", "int8")}
    assert 1.8 < sizes["fp32"] / sizes["fp16"] < 2.1, sizes
    assert 3.0 < sizes["fp32"] / sizes["dynamic_int8"] < 4.1, sizes
    assert 3.0 < sizes["fp32"] / sizes["int8"] < 4.1, sizes
    art = inspect_tflite(tmp_path / "tflite-int8.tflite")
    assert art["weight_dtypes"]["int8"] >= 3  # the three Linear weights


def test_nothing_to_quantize_is_an_error_not_a_silent_fp32_file(splits, tmp_path):
    class Scale(nn.Module):  # no conv/linear: the quantizer has nothing to make int8
        def forward(self, x):
            return torch.flatten(x * 2.0 + 1.0, 1)[:, :10]

    with pytest.raises(ExportError, match="int8"):
        _tflite(Scale(), splits, tmp_path, "dynamic_int8")
    assert not (tmp_path / "tflite-dynamic_int8.tflite").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_tflite_is_an_artifact_error_naming_the_file(damage, exported, tmp_path):
    art, _, d = exported[("litert", "int8")]
    data = (d / art.path).read_bytes()
    bad = tmp_path / f"{damage}.tflite"
    bad.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x00" * 4 + b"TFL3" + b"\x17" * 500,
                     "empty": b""}[damage])
    with pytest.raises(ArtifactError, match=f"{damage}.tflite"):
        get_runtime("litert").load(bad)
    with pytest.raises(ArtifactError, match="not a TFLite"):
        get_runtime("litert").load(d / "m.onnx")


class _Erfinv(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.special.erfinv(torch.tanh(x) * 0.5))


def test_unconvertible_op_names_the_op_and_module(splits, tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Identity(), _Erfinv()))
    with pytest.raises(ExportError) as e:
        _tflite(model, splits, tmp_path)
    msg = str(e.value)
    assert "erfinv" in msg and "'1.1'" in msg and "_Erfinv" in msg and "test_tflite.py" in msg, msg
    assert len(msg) < 600 and "\n" not in msg


def user_net(num_classes: int = 10) -> nn.Module:
    """A user model for the factory path: conv, GELU, a residual add, LayerNorm."""

    class UserNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
            self.norm = nn.LayerNorm(8)
            self.fc = nn.Linear(8, num_classes)

        def forward(self, x):
            h = nn.functional.gelu(self.conv(x))
            h = h + torch.relu(self.conv2(h))
            return self.fc(self.norm(h.mean((2, 3))))

    return UserNet()


@pytest.mark.parametrize("arch", ["cnn", "resnet", "mobilenet_v2", "factory"])
def test_zoo_and_factory_models_export_fp32_and_int8(arch, splits, tmp_path):
    from helpers import TINY_MODELS

    from edgekit.models import build_model
    from edgekit.models.config import FactoryModel

    torch.manual_seed(0)
    cfg = FactoryModel(arch="factory", factory="test_tflite:user_net") if arch == "factory" else None
    if cfg is None:
        from pydantic import TypeAdapter

        from edgekit.models import ModelConfig

        cfg = TypeAdapter(ModelConfig).validate_python(TINY_MODELS[arch])
    model = build_model(cfg, splits.input_shape, splits.num_classes).eval()
    x = splits.x_test[:32]
    ref = predict(model, x)
    for p in ("fp32", "int8"):
        art, tcfg = _tflite(model, splits, tmp_path, p)
        out = get_runtime("litert").load(tmp_path / art.path).run(x)
        n = compare(ref, out)
        if p == "fp32":
            assert check(art.name, n, tcfg.tolerance, "torch").passed, n
        else:
            assert art.details["weight_dtypes"]["int8"] > 0 and n["cosine"] > 0.9, n


def test_recipe_with_tflite_targets_runs_end_to_end(tmp_path):
    from helpers import tiny_recipe

    from edgekit.pipeline import run_recipe

    recipe = tiny_recipe(export=[{"format": "onnx", "exporter": "legacy"}, {"format": "tflite"},
                                 {"format": "tflite", "precision": "int8"}], passes=[],
                         bench={"devices": ["host-cpu"], "batch_size": 2, "warmup": 2, "iterations": 10,
                                "min_time_s": 0.02})
    run = run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    rep = run.report
    assert not rep.errors, rep.errors
    arts = {a.name: a for a in rep.artifacts}
    assert arts["tflite-int8"].details["static_batch"] == 2 and arts["tflite-int8"].parity.passed
    rows = {(r["a"], r["b"]): r for r in rep.cross_parity}
    assert rows[("onnx-fp32", "tflite-fp32")]["cosine"] > 0.99999
    assert rows[("tflite-fp32", "tflite-int8")]["relation"] == "quantized vs its fp32"
    assert any(r["b"] == "tflite-fp32" and r["relation"] == "reference vs fp32" for r in rep.cross_parity)
    bench = {r.artifact: r for r in rep.results}
    assert bench["tflite-int8"].status == "ok" and bench["tflite-int8"].runtime == "litert"
    assert bench["tflite-int8"].batch_size == 2 and bench["tflite-int8"].accuracy > 0.5
    assert "Cross-runtime parity" in (tmp_path / "run" / "report.md").read_text()


def test_no_tflite_runtime_installed_is_runtime_unavailable(monkeypatch):
    import sys

    from edgekit.errors import RuntimeUnavailable

    for mod in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(RuntimeUnavailable, match="ai-edge-litert"):
        get_runtime("litert").version()
