"""Weight-side fixes on ORT QDQ graphs: saturation-safe int8 scales and empirical bias correction."""

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.quant.onnx_rewrite import _pair_scale, bias_correct_qdq, qdq_layers, saturation_safe
from tests.device_helpers import digits_onnx


def quantize(src, dst, x, per_channel=True):
    from onnxruntime import quantization as q

    from edgekit.quant.onnx_calibrate import make_reader
    from edgekit.quant.ort_build import input_name

    q.quantize_static(str(src), str(dst), make_reader(input_name(src), x), quant_format=q.QuantFormat.QDQ,
                      per_channel=per_channel, activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)


def run(path, x):
    from edgekit.runtimes.onnxruntime import OnnxRuntime

    return OnnxRuntime().load(path).run(x)


def pairs_and_groups(path):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    return [(init[f"{la.weight}_quantized"], la.group) for la in qdq_layers(m.graph)]


@pytest.fixture(scope="module")
def stiff(tmp_path_factory):
    """A conv stack with large, same-signed neighbouring weights (what overflows int16 pair sums), plus a
    depthwise conv, exported to ONNX, and calibration / held-out inputs."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, groups=16),
                        nn.ReLU(), nn.Conv2d(16, 8, 1), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    with torch.no_grad():
        net[0].weight.abs_()  # every pair of neighbours is same-signed and near the channel max
        net[0].weight.add_(0.5)
    d = tmp_path_factory.mktemp("rewrite")
    x = np.random.default_rng(0).random((96, 3, 8, 8)).astype(np.float32)
    torch.onnx.export(net, torch.from_numpy(x[:1]), str(d / "fp32.onnx"), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return d, x[:48], x[48:]


def test_saturation_safe_scales_keep_adjacent_pairs_within_128(stiff):
    d, xc, xe = stiff
    quantize(d / "fp32.onnx", d / "q.onnx", xc)
    before = pairs_and_groups(d / "q.onnx")
    stats = saturation_safe(d / "q.onnx", d / "fp32.onnx", d / "ss.onnx")
    after = pairs_and_groups(d / "ss.onnx")
    assert stats["layers_rescaled"] >= 1

    def worst_pair(q):
        k = q.transpose(0, 2, 3, 1).reshape(q.shape[0], -1) if q.ndim == 4 else q.reshape(q.shape[0], -1)
        k = np.pad(np.abs(k.astype(np.int32)), ((0, 0), (0, k.shape[1] % 2)))
        return k.reshape(k.shape[0], -1, 2).sum(2).max()

    assert worst_pair(before[0][0]) > 128  # the first conv overflowed int16 pair sums
    for (q, group), (q0, _) in zip(after, before):
        if group > 1 and group == q.shape[0]:
            assert np.array_equal(q, q0)  # depthwise kernels keep ORT's scale
        else:
            assert worst_pair(q) <= 128
    ref = run(d / "fp32.onnx", xe)
    out = run(d / "ss.onnx", xe)
    cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.mean() > 0.99


def test_pair_scale_is_never_below_the_plain_scale():
    w = np.random.default_rng(1).normal(size=(4, 3, 3, 3)).astype(np.float32)
    plain = np.abs(w).reshape(4, -1).max(1) / 127
    assert (_pair_scale(w) >= plain - 1e-9).all()


def test_bias_correction_reduces_mean_output_error_on_held_out_data(cnn, splits, tmp_path):
    src = digits_onnx(cnn, splits, tmp_path)
    quantize(src, tmp_path / "q.onnx", splits.x_calib, per_channel=False)  # coarse per-tensor weights: big dW
    stats = bias_correct_qdq(tmp_path / "q.onnx", src, splits.x_calib, tmp_path / "bc.onnx")
    assert stats["layers_corrected"] >= 2
    x = splits.x_test
    ref = run(src, x)
    err_before = np.abs((run(tmp_path / "q.onnx", x) - ref).mean(0)).mean()
    err_after = np.abs((run(tmp_path / "bc.onnx", x) - ref).mean(0)).mean()
    assert err_after < err_before, (err_before, err_after)
