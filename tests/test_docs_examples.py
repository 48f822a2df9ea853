"""The code in docs/writing-a-pass.md runs: its example ONNX pass, registered with one registry line, goes through
apply_pass and through a recipe run."""

import re
from pathlib import Path

import numpy as np
import pytest

from edgekit.passes import PASSES, PassEntry

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-pass.md"


def example_module(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    source = blocks[0]
    assert len(source.splitlines()) <= 40  # the bound for an example ONNX pass
    (tmp_path / "ort_optimize_example.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    import ort_optimize_example

    monkeypatch.setitem(PASSES, "onnx.optimize", PassEntry(ort_optimize_example.OrtOptimizeConfig,
                                                           "ort_optimize_example:OrtOptimize"))
    return ort_optimize_example


def test_example_onnx_pass_runs_through_apply_pass(cnn, splits, tmp_path, monkeypatch):
    from helpers import onnx_pass_setup

    import edgekit
    from edgekit.runtimes import get_runtime

    example_module(tmp_path, monkeypatch)
    src, _ = onnx_pass_setup(cnn, splits, tmp_path)
    done = edgekit.apply_pass(src, {"name": "onnx.optimize"}, splits, work_dir=tmp_path)
    assert done.output.path.is_file() and done.output.lineage[-1] == "onnx.optimize"
    assert done.record.produced == "onnx-optimized" and done.record.after["size_bytes"] > 0
    ref = get_runtime("onnxruntime").load(src.path).run(splits.x_test[:32])
    out = get_runtime("onnxruntime").load(done.output.path).run(splits.x_test[:32])
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.mark.filterwarnings("ignore")
def test_example_onnx_pass_runs_in_a_recipe(tmp_path, monkeypatch):
    from helpers import tiny_recipe_dict

    from edgekit.pipeline import run_recipe
    from edgekit.recipe import Recipe

    example_module(tmp_path, monkeypatch)
    data = tiny_recipe_dict(passes=[{"name": "onnx.optimize"}], export=[{"format": "onnx", "exporter": "legacy"}],
                            bench=None)
    run = run_recipe(Recipe.model_validate(data), tmp_path / "run")
    art = run.report.artifact("onnx-optimized")
    assert art is not None and art.status == "ok" and art.parity.passed and not run.report.errors
