"""edgekit.quant.onnx_prepare: files with Constant weights and unfolded BatchNormalization, as paddle2onnx and
tf2onnx write them, are folded before quantization; an int8 file's float islands are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")


def paddle_style_cnn(path: Path, seed: int = 0, widths: tuple[int, int] = (16, 64)) -> Path:
    """Conv -> BatchNormalization -> HardSigmoid*x -> Conv -> BN -> Relu -> GAP -> Gemm over (N, 1, 8, 8), every
    weight in a Constant node."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, n = [], 0

    def const(arr):
        nonlocal n
        n += 1
        name = f"c{n}"
        nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr.astype(np.float32))))
        return name

    def conv_bn(x, cin, cout, tag):
        w = const(rng.normal(0, 0.3, (cout, cin, 3, 3)))
        nodes.append(helper.make_node("Conv", [x, w], [f"{tag}_conv"], pads=[1, 1, 1, 1]))
        scale, bias = const(rng.uniform(0.5, 1.5, cout)), const(rng.normal(0, 0.1, cout))
        mean, var = const(rng.normal(0, 0.1, cout)), const(rng.uniform(0.5, 1.5, cout))
        nodes.append(helper.make_node("BatchNormalization", [f"{tag}_conv", scale, bias, mean, var], [f"{tag}_bn"]))
        return f"{tag}_bn"

    c1, c2 = widths
    h = conv_bn("x", 1, c1, "b1")
    nodes.append(helper.make_node("HardSigmoid", [h], ["hs"], alpha=1 / 6, beta=0.5))
    nodes.append(helper.make_node("Mul", [h, "hs"], ["hswish"]))
    h = conv_bn("hswish", c1, c2, "b2")
    nodes.append(helper.make_node("Relu", [h], ["r"]))
    nodes.append(helper.make_node("GlobalAveragePool", ["r"], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    w, b = const(rng.normal(0, 0.3, (10, c2))), const(rng.normal(0, 0.1, 10))
    nodes.append(helper.make_node("Gemm", ["flat", w, b], ["y"], transB=1))
    graph = helper.make_graph(nodes, "paddle_style", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(1).normal(0, 1, (32, 1, 8, 8)).astype(np.float32)


def test_prepare_folds_constants_and_batchnorm_and_keeps_outputs(tmp_path, inputs):
    from edgekit.quant.onnx_prepare import prepare, unfolded_weights

    src = paddle_style_cnn(tmp_path / "m.onnx")
    assert unfolded_weights(onnx.load(str(src))) == {"Constant": 12, "BatchNormalization": 2}
    rec = prepare(src, tmp_path / "prepared.onnx", sample=inputs[:8])
    assert rec.ran, rec.error
    assert rec.constants_folded == 12
    assert (rec.batchnorm_before, rec.batchnorm_after) == (2, 0)
    assert rec.max_abs_diff is not None and rec.max_abs_diff < 1e-4
    prepared = onnx.load(str(tmp_path / "prepared.onnx"))
    assert unfolded_weights(prepared) == {}
    assert "BatchNormalization folded" in rec.summary()


def test_prepare_failure_is_recorded_and_writes_nothing(tmp_path):
    from edgekit.quant.onnx_prepare import prepare

    src = tmp_path / "junk.onnx"
    src.write_bytes(b"\x08\x07not really a model")
    rec = prepare(src, tmp_path / "out.onnx")
    assert not rec.ran and rec.error and "skipped" in rec.summary()
    assert not (tmp_path / "out.onnx").exists()


def test_quantized_prepared_file_is_smaller_and_islands_are_named(tmp_path, inputs):
    from onnxruntime import quantization as q

    from edgekit.quant.onnx_prepare import float_islands, optimized_graph, prepare, why_slower

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": inputs[i: i + 1]} for i in range(len(inputs))])

        def get_next(self):
            return next(self.items, None)

    src = paddle_style_cnn(tmp_path / "m.onnx")
    sizes = {}
    for tag, model in (("raw", src), ("prepared", tmp_path / "prepared.onnx")):
        if tag == "prepared":
            assert prepare(src, model, sample=inputs[:4]).ran
        out = tmp_path / f"{tag}-int8.onnx"
        q.quantize_static(str(model), str(out), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                          activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)
        sizes[tag] = out.stat().st_size
    assert sizes["prepared"] < sizes["raw"]  # the raw file's weights stay float inside Constant nodes
    assert "unfolded weights" in why_slower(src, tmp_path / "raw-int8.onnx")
    islands = float_islands(optimized_graph(tmp_path / "prepared-int8.onnx"))
    line = why_slower(tmp_path / "prepared.onnx", tmp_path / "prepared-int8.onnx")
    assert "unfolded" not in line
    if islands:  # which ops ORT fuses into int8 kernels depends on its version, not on this CPU
        assert next(iter(islands)) in line


def test_user_onnx_with_constant_weights_quantizes_smaller(tmp_path):
    """Brought as {arch: onnx}: the int8 artifact is smaller than the fp32 file, and the pass records the
    pre-processing that made it so."""
    from helpers import tiny_recipe

    from edgekit.pipeline import run_recipe

    src = paddle_style_cnn(tmp_path / "paddle.onnx")
    recipe = tiny_recipe(model={"arch": "onnx", "path": str(src)}, train=None, bench=None, gates={})
    run = run_recipe(recipe, out_dir=tmp_path / "run", log=lambda m: None)
    fp32, int8 = run.report.artifact("onnx-fp32"), run.report.artifact("onnx-int8")
    assert int8 is not None and int8.status == "ok", run.report.errors
    assert int8.details["preprocessed"] is True
    assert int8.size_bytes < 0.5 * fp32.size_bytes
