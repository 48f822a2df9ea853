"""edgekit.apply_pass (edgekit/passes/apply.py) and the pass contract's checks (edgekit/passes/base.py): what goes in
is typed, and what does not fit is a PassError naming it, before any work."""

import numpy as np
import pytest
import torch

import edgekit
from edgekit.data.splits import Splits
from edgekit.errors import PassError
from edgekit.handles import OnnxFile, TorchModel


def data(features: int = 3) -> Splits:
    x = np.random.default_rng(0).standard_normal((16, features)).astype(np.float32)
    return Splits.from_arrays(x_calib=x, x_val=x[:8])


def test_a_torch_pass_returns_a_new_handle_and_leaves_the_module_alone(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    done = edgekit.apply_pass(model, {"name": "prune.unstructured", "sparsity": 0.5, "include_head": True}, data(),
                              work_dir=tmp_path)
    assert isinstance(done.output, TorchModel) and done.output.lineage[-1] == "prune.unstructured"
    assert done.record.after["sparsity"] == pytest.approx(0.5, abs=0.05) and (model[0].weight != 0).all()


def test_a_file_pass_on_a_path_gives_a_typed_file_in_the_work_folder(tmp_path):
    from edgekit.export.onnx import export_onnx

    model = torch.nn.Linear(3, 2).eval()
    export_onnx(model, np.zeros((2, 3), np.float32), tmp_path / "lin.onnx")
    done = edgekit.apply_pass(tmp_path / "lin.onnx", {"name": "quantize.fp16"}, data(), work_dir=tmp_path / "work")
    assert isinstance(done.output, OnnxFile) and done.output.path.parent == (tmp_path / "work" / "artifacts").resolve()
    assert done.output.artifact.precision == "fp16" and done.record.produced == done.output.name


@pytest.mark.parametrize(("model", "config", "d", "message"), [
    ("linear", {"name": "nope"}, data(), "unknown pass 'nope'"),
    ("linear", {"name": "prune.unstructured", "sparsity": 7}, data(), "prune.unstructured: sparsity: "),
    ("linear", {"name": "quantize.fp16"}, data(), "works on OnnxFile models, not on a TorchModel; export"),
    ("linear", {"name": "prune.unstructured"}, data(5), r"samples \(5,\) float32 do not fit Linear"),
    ("missing", {"name": "quantize.fp16"}, data(), "no such file"),
    ("text", {"name": "quantize.fp16"}, data(), "not a model file edgekit knows"),
])
def test_what_does_not_fit_is_a_pass_error_before_any_work(model, config, d, message, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    given = {"linear": torch.nn.Linear(3, 2), "missing": tmp_path / "none.onnx", "text": tmp_path / "notes.txt"}[model]
    with pytest.raises(PassError, match=message):
        edgekit.apply_pass(given, config, d, work_dir=tmp_path / "work")
    assert not list((tmp_path / "work" / "artifacts").glob("*")) if (tmp_path / "work").exists() else True
