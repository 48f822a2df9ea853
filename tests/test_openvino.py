"""The openvino runtime: edgekit's fp32 and QDQ int8 ONNX files on the CPU plugin, precision pinned and recorded."""

from __future__ import annotations

import pytest
from helpers import cosine, onnx_pass_setup

from edgekit.errors import ArtifactError, RuntimeUnavailable
from edgekit.runtimes import get_runtime, runtime_name_for

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def onnx_files(cnn, splits, tmp_path_factory):
    """The tiny CNN as fp32 ONNX and as edgekit's per-channel QDQ int8 (uint8 activations)."""
    from edgekit.passes import get_pass
    from edgekit.passes.ort_quantize import StaticQuantConfig

    src, ctx = onnx_pass_setup(cnn, splits, tmp_path_factory.mktemp("ov"))
    cfg = StaticQuantConfig(name="quantize.static", format="qdq", activation_type="uint8", per_channel=True,
                            artifact="onnx-int8")
    q, _ = get_pass(cfg).apply(src, ctx)
    return {"fp32": src.path, "int8": q.path}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_openvino_matches_onnxruntime_in_f32(precision, onnx_files, splits):
    x = splits.x_test[:128]
    sess = get_runtime("openvino").load(onnx_files[precision], threads=1)
    y = sess.run(x)
    assert y.shape == (128, 10) and y.dtype.name == "float32"
    assert cosine(get_runtime("onnxruntime").load(onnx_files[precision]).run(x), y) >= 0.99
    assert sess.inference_precision == "f32" and sess.threads == 1  # the honest baseline, even on AMX CPUs
    assert sess.ops().get("Convolution", 0) >= 2


def test_bf16_is_labelled_and_only_where_the_cpu_has_it(onnx_files, splits):
    from edgekit.runtimes.openvino import cpu_capabilities

    rt = get_runtime("openvino")
    if "BF16" not in cpu_capabilities():
        with pytest.raises(RuntimeUnavailable, match="bf16"):
            rt.load(onnx_files["fp32"], precision="bf16")
        return
    sess = rt.load(onnx_files["fp32"], precision="bf16", threads=1)
    assert sess.inference_precision == "bf16"
    x = splits.x_test[:64]
    assert cosine(get_runtime("onnxruntime").load(onnx_files["fp32"]).run(x), sess.run(x)) >= 0.99


def test_a_bad_file_is_a_one_line_error_naming_it(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an ONNX model")
    with pytest.raises(ArtifactError) as e:
        get_runtime("openvino").load(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ArtifactError, match="not found"):
        get_runtime("openvino").load(tmp_path / "missing.onnx")


def test_a_profile_listing_openvino_benches_onnx_files_with_it(onnx_files, splits):
    from edgekit.bench.config import BenchConfig
    from edgekit.bench.run import bench_artifact
    from edgekit.devices.profile import DeviceProfile
    from edgekit.export.artifact import describe

    assert runtime_name_for("onnx", ["torch", "onnxruntime"]) == "onnxruntime"
    assert runtime_name_for("onnx", ["torch", "openvino", "onnxruntime"]) == "openvino"
    assert runtime_name_for("onnx", ["torch"]) == "onnxruntime"  # the default, then skipped as not listed
    profile = DeviceProfile(name="ov-cpu", runtimes=["openvino"], threads=1, openvino={"precision": "f32"})
    path = onnx_files["int8"]
    art = describe("onnx-int8", "onnx", "int8", path, path.parent)
    row = bench_artifact(art, path.parent, splits.x_test[:64], splits.y_test[:64], profile,
                         BenchConfig(warmup=1, iterations=5, min_time_s=0.0))
    assert row.status == "ok", row.error
    assert row.runtime == "openvino" and row.runtime_precision == "f32" and row.accuracy > 0.5
    with pytest.raises(ValueError, match="openvino"):
        DeviceProfile(name="x", runtimes=["onnxruntime"], openvino={"precision": "bf16"})
