"""ExecuTorch (.pte) export and runtime: fp32 and int8 parity with PyTorch, delegation recorded, bad files named."""

from __future__ import annotations

import pytest

from edgekit.errors import ArtifactError
from edgekit.export.config import ExecutorchExport
from edgekit.export.parity import check, compare
from edgekit.runtimes import get_runtime, runtime_for
from edgekit.train.trainer import predict

pytest.importorskip("executorch.runtime")

BATCH = 4


@pytest.fixture(scope="module")
def pte(cnn, splits, tmp_path_factory):
    from edgekit.export.executorch import ExecutorchExporter

    d = tmp_path_factory.mktemp("pte")
    out = {}
    for precision in ("fp32", "int8"):
        cfg = ExecutorchExport(format="executorch", precision=precision)
        out[precision] = (ExecutorchExporter().export(cnn, splits.x_test, cfg, d / f"{precision}.pte", d, precision,
                                                      calibration=splits.x_calib, batch_size=BATCH), cfg, d)
    return out


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_pte_matches_torch_within_tolerance(precision, pte, cnn, splits):
    art, cfg, d = pte[precision]
    sess = runtime_for("executorch").load(d / art.path, threads=1)
    x = splits.x_test[:128]
    numbers = compare(predict(cnn, x), sess.run(x))  # 128 samples in chunks of the static batch
    assert check(art.name, numbers, cfg.tolerance, "torch fp32").passed, numbers
    assert sess.static_batch == BATCH == art.inputs[0].shape[0] and art.precision == precision
    if precision == "fp32":
        assert numbers["max_abs"] < 1e-4 and numbers["top1_agreement"] == 1.0
    else:
        assert numbers["cosine"] > 0.99 and numbers["top1_agreement"] >= 0.95, numbers
        assert art.details["weights"] == "per-channel symmetric int8" and art.details["calibration"] == "minmax"
        assert art.size_bytes < pte["fp32"][0].size_bytes


def test_delegation_summary_says_what_xnnpack_took(pte):
    for precision in ("fp32", "int8"):
        art = pte[precision][0]
        deleg = art.details["delegation"]
        assert deleg["delegate"] == "XNNPACK" and deleg["partitions"] >= 1
        assert deleg["delegated"] + deleg["not_delegated"] == deleg["ops"] == sum(art.ops.values()) > 0
        assert deleg["not_delegated"] == sum(deleg["not_delegated_ops"].values())
        assert deleg["delegated"] == deleg["ops"], deleg  # conv, linear, relu: all XNNPACK kernels
    assert any("dequantize_per_channel" in op for op in pte["int8"][0].ops)


def test_keep_float_leaves_the_named_module_in_float_and_an_unknown_name_is_an_error(pte, cnn, splits, tmp_path):
    from edgekit.errors import ExportError
    from edgekit.export.executorch import ExecutorchExporter

    def export(keep, name):
        cfg = ExecutorchExport(format="executorch", precision="int8", calibration={"keep_float": keep})
        return ExecutorchExporter().export(cnn, splits.x_test, cfg, tmp_path / f"{name}.pte", tmp_path, name,
                                           calibration=splits.x_calib, batch_size=BATCH)

    def per_channel(art):
        return sum(n for op, n in art.ops.items() if "dequantize_per_channel" in op)

    mixed = export(["features.0.0"], "mixed")
    assert mixed.details["float_modules"] == ["features.0.0"]
    assert 0 < per_channel(mixed) == per_channel(pte["int8"][0]) - 1  # one conv's weights stay float
    x = splits.x_test[:128]
    sess = runtime_for("executorch").load(tmp_path / "mixed.pte", threads=1)
    assert compare(predict(cnn, x), sess.run(x))["cosine"] > 0.99
    with pytest.raises(ExportError, match="'features.9'"):
        export(["features.9"], "bad")
    assert not (tmp_path / "bad.pte").exists()


def test_calibration_options_are_checked():
    with pytest.raises(ValueError, match="only with precision int8"):
        ExecutorchExport(format="executorch", precision="fp32", calibration="percentile")
    with pytest.raises(ValueError, match="percentile is used only"):
        ExecutorchExport(format="executorch", precision="int8", percentile=99.0)
    assert ExecutorchExport(format="executorch", precision="int8").tolerance.min_cosine == 0.98


def test_a_corrupt_or_truncated_pte_is_a_clear_error(pte, tmp_path):
    art, _, d = pte["fp32"]
    data = (d / art.path).read_bytes()
    truncated, junk = tmp_path / "truncated.pte", tmp_path / "junk.pte"
    truncated.write_bytes(data[: len(data) // 3])
    junk.write_bytes(b"definitely not a program")
    rt = get_runtime("executorch")
    with pytest.raises(ArtifactError, match="ExecuTorch cannot load") as e:
        rt.load(truncated)
    assert str(truncated) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ArtifactError, match="not an ExecuTorch program"):
        rt.load(junk)


def test_the_bench_agent_runs_a_pte(pte, splits):
    from edgekit.bench.config import BenchConfig
    from edgekit.bench.run import bench_artifact
    from edgekit.devices.profile import DeviceProfile

    art, _, d = pte["int8"]
    profile = DeviceProfile(name="et-cpu", runtimes=["executorch"], threads=1)
    row = bench_artifact(art, d, splits.x_test[:64], splits.y_test[:64], profile,
                         BenchConfig(warmup=1, iterations=5, min_time_s=0.0))
    assert row.status == "ok", row.error
    assert row.runtime == "executorch" and row.batch_size == BATCH and row.accuracy > 0.5


@pytest.mark.slow
def test_a_run_verifies_benches_and_cross_checks_pte_and_openvino_rows(tmp_path):
    """ONNX, its int8 pass and ExecuTorch fp32/int8 (fine-tuned) in one run: each file verified against PyTorch,
    the .pte files benched by the executorch runtime, the ONNX files by OpenVINO on the profile that lists it."""
    pytest.importorskip("openvino")
    from helpers import tiny_recipe

    from edgekit import api

    recipe = tiny_recipe(
        export=[{"format": "onnx", "exporter": "legacy"}, {"format": "executorch"},
                {"format": "executorch", "precision": "int8", "finetune": {"epochs": 1}}],
        bench={"devices": ["host-cpu", "host-cpu-openvino"], "warmup": 1, "iterations": 5, "min_time_s": 0.01})
    run = api.run(recipe, tmp_path / "run", log=lambda m: None)
    arts = {a.name: a for a in run.report.artifacts}
    assert all(a.status == "ok" and a.parity.passed for a in arts.values()), [(a.name, a.error) for a in arts.values()]
    assert arts["executorch-int8"].details["finetune"]["best_epoch"] >= 0
    rows = {(r.artifact, r.device): r for r in run.report.results}
    for name in ("executorch-fp32", "executorch-int8"):
        assert rows[(name, "host-cpu")].runtime == "executorch" and rows[(name, "host-cpu")].status == "ok"
    for name in ("onnx-fp32", "onnx-int8"):
        r = rows[(name, "host-cpu-openvino")]
        assert r.status == "ok" and r.runtime == "openvino" and r.runtime_precision == "f32", r.error
        assert rows[(name, "host-cpu")].runtime == "onnxruntime"
    pairs = {(p["a"], p["b"]) for p in run.report.cross_parity}
    assert ("onnx-fp32", "executorch-fp32") in pairs and ("executorch-fp32", "executorch-int8") in pairs


def test_relu6_is_fused_into_the_conv_output_quantization(tmp_path):
    """The stock XNNPACK quantizer fuses conv -> ReLU only: with ReLU6 each conv output is quantized before the
    clamp, over its whole pre-activation range. edgekit quantizes after the clamp: fewer quantize ops, a closer file."""
    import numpy as np
    import torch
    from torch import nn

    from edgekit.export.executorch import lower, quantize_pt2e

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU6(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU6(),
                          nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    with torch.no_grad():  # pre-activations well beyond 6, as in a trained mobile CNN
        model[0].weight.mul_(8.0)
    x = np.random.default_rng(0).standard_normal((64, 1, 8, 8)).astype(np.float32)
    x1 = torch.from_numpy(x[:4])
    ref = model(torch.from_numpy(x)).detach().numpy()
    out = {}
    for fuse in (False, True):
        ep = quantize_pt2e(torch.export.export(model, (x1,)), x1, x[:32], 4, "minmax", fuse_clamp=fuse)
        data, deleg = lower(ep)
        assert deleg["delegated"] == deleg["ops"] > 0, deleg
        (tmp_path / f"{fuse}.pte").write_bytes(data)
        y = get_runtime("executorch").load(tmp_path / f"{fuse}.pte").run(x)
        out[fuse] = (compare(ref, y)["mean_abs"], deleg["all_ops"].get("quantized_decomposed_quantize_per_tensor_default"))
    assert out[True][1] < out[False][1], out  # no quantize between each conv and its clamp
    assert out[True][0] < out[False][0], out
