import numpy as np
import pytest

from edgekit.config_base import Tolerance
from edgekit.errors import ArtifactError, ExportParityError
from edgekit.export.config import OnnxExport, TorchExport
from edgekit.export.onnx import OnnxExporter
from edgekit.export.parity import check, compare
from edgekit.export.torch_program import TorchProgramExporter
from edgekit.runtimes import get_runtime
from edgekit.train.trainer import predict

EXPORTS = {
    "onnxruntime": (OnnxExporter, lambda: OnnxExport(format="onnx"), ".onnx"),
    "onnxruntime-legacy": (OnnxExporter, lambda: OnnxExport(format="onnx", exporter="legacy"), ".onnx"),
    "torch": (TorchProgramExporter, lambda: TorchExport(format="torch"), ".pt2"),
}


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_export_matches_pytorch_on_real_inputs(name, cnn, splits, tmp_path):
    exporter, cfg, suffix = EXPORTS[name]
    art = exporter().export(cnn, splits.x_test, cfg(), tmp_path / f"m{suffix}", tmp_path, "m")
    sess = get_runtime(name.split("-")[0]).load(tmp_path / f"m{suffix}")
    x = splits.x_test[:64]
    numbers = compare(predict(cnn, x), sess.run(x))
    parity = check("m", numbers, cfg().tolerance, "torch fp32")
    assert parity.passed and parity.cosine > 0.99999 and parity.top1_agreement == 1.0
    assert art.size_bytes > 0 and len(art.sha256) == 64
    assert sess.run(splits.x_test[:1]).shape == (1, 10) and sess.run(splits.x_test[:5]).shape == (5, 10)


def test_parity_raises_with_numbers_on_a_broken_export(cnn, splits, tmp_path):
    import onnx
    from onnx import numpy_helper

    OnnxExporter().export(cnn, splits.x_test, OnnxExport(format="onnx", exporter="legacy"), tmp_path / "m.onnx",
                          tmp_path, "m")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    init = proto.graph.initializer[0]  # break one weight tensor on purpose
    arr = numpy_helper.to_array(init).copy()
    init.CopyFrom(numpy_helper.from_array((arr * -3.0 + 0.5).astype(arr.dtype), init.name))
    onnx.save(proto, str(tmp_path / "broken.onnx"))
    x = splits.x_test[:64]
    numbers = compare(predict(cnn, x), get_runtime("onnxruntime").load(tmp_path / "broken.onnx").run(x))
    with pytest.raises(ExportParityError) as e:
        check("broken", numbers, OnnxExport(format="onnx").tolerance, "torch fp32")
    assert "max_abs" in str(e.value) and e.value.parity["max_abs"] > 1e-3


def test_compare_metrics_by_hand():
    ref = np.array([[1.0, 0.0], [0.0, 2.0]])
    out = np.array([[1.0, 0.1], [0.5, 1.0]])
    n = compare(ref, out)
    assert n["max_abs"] == pytest.approx(1.0) and n["top1_agreement"] == 1.0
    cos2 = 2.0 / (2.0 * np.sqrt(1.25))
    assert n["cosine"] == pytest.approx((1 / np.sqrt(1.01) + cos2) / 2)
    p = check("x", n, Tolerance(min_top1=1.0), "ref", raise_on_fail=False)
    assert p.passed


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"\x08\x07garbage" * 10, "not a valid ONNX"),
                                            (None, "not found")])
def test_corrupt_onnx_file_gives_clear_error(tmp_path, content, reason):
    from edgekit.onnx_graph import check_onnx_file

    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ArtifactError, match=reason) as e:
        check_onnx_file(path)
    assert "model.onnx" in str(e.value)


def test_truncated_onnx_rejected_by_runtime(cnn, splits, tmp_path):
    OnnxExporter().export(cnn, splits.x_test, OnnxExport(format="onnx", exporter="legacy"), tmp_path / "m.onnx",
                          tmp_path, "m")
    data = (tmp_path / "m.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="cut.onnx"):
        get_runtime("onnxruntime").load(tmp_path / "cut.onnx")


def test_user_onnx_model_is_checked(tmp_path):
    from edgekit.models import build_model
    from edgekit.models.config import OnnxModel

    (tmp_path / "u.onnx").write_bytes(b"nonsense")
    with pytest.raises(ArtifactError, match="u.onnx"):
        build_model(OnnxModel(arch="onnx", path=tmp_path / "u.onnx"), (1, 8, 8), 10)
