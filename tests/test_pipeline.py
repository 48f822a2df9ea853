"""The pipeline through the Python API: user ONNX models, stage bookkeeping, failures recorded not lost."""

import json

import pytest
from helpers import tiny_recipe

from edgekit import api
from edgekit.export.config import OnnxExport
from edgekit.export.onnx import OnnxExporter

QUIET = {"log": lambda m: None}


def test_user_onnx_model_skips_export_and_quantizes(cnn, splits, tmp_path):
    OnnxExporter().export(cnn, splits.x_test, OnnxExport(format="onnx", exporter="legacy"), tmp_path / "user.onnx",
                          tmp_path, "u")
    recipe = tiny_recipe(model={"arch": "onnx", "path": str(tmp_path / "user.onnx")}, train=None,
                         bench={"devices": ["host-cpu"], "warmup": 1, "iterations": 5, "min_time_s": 0.01})
    run = api.run(recipe, tmp_path / "run", **QUIET)
    arts = {a.name: a for a in run.report.artifacts}
    assert arts["onnx-fp32"].details["user_model"] and arts["onnx-int8"].status == "ok"
    assert run.report.reference["source"].startswith("onnx fp32")
    assert arts["onnx-fp32"].parity.max_abs < 1e-5  # the copy runs exactly like the reference
    assert {r.artifact for r in run.report.results} == {"onnx-fp32", "onnx-int8"}


def test_onnx_model_cannot_take_torch_exports():
    with pytest.raises(Exception, match="cannot be exported"):
        tiny_recipe(model={"arch": "onnx", "path": "x.onnx"}, export=[{"format": "torch"}])


def test_report_is_saved_stage_by_stage(tmp_path):
    recipe = tiny_recipe(bench=None, gates={}, passes=[])
    run = api.run(recipe, tmp_path / "run", **QUIET)
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    for stage in ("data", "model", "train", "reference", "export", "gates"):
        assert stage in rep["stages_done"]
    assert rep["recipe_sha256"] == recipe.sha256() and rep["data"]["fingerprint"] == run.splits.fingerprint()
    assert rep["results"] == [] and rep["status"] == "completed"


def test_onnx_pass_without_onnx_export_is_a_recorded_failure(tmp_path):
    recipe = tiny_recipe(export=[{"format": "torch"}], bench=None, gates={})
    run = api.run(recipe, tmp_path / "run", **QUIET)
    assert run.report.passes[0].status == "failed" and "fp32 onnx artifact" in run.report.errors[0]
    assert run.report.artifacts[0].name == "torch-fp32" and run.report.artifacts[0].status == "ok"


def test_user_onnx_model_with_the_wrong_input_shape_names_both_shapes(cnn, splits, tmp_path):
    from edgekit.errors import ArtifactError

    OnnxExporter().export(cnn, splits.x_test, OnnxExport(format="onnx", exporter="legacy"), tmp_path / "user.onnx",
                          tmp_path, "u")
    recipe = tiny_recipe(model={"arch": "onnx", "path": str(tmp_path / "user.onnx")}, train=None, bench=None,
                         data={"source": "csv", "path": str(_tabular_csv(tmp_path))}, passes=[], gates={})
    with pytest.raises(ArtifactError, match=r"user.onnx.*expects shape .*got \(\d+, 3\)"):
        api.run(recipe, tmp_path / "run", **QUIET)


def _tabular_csv(folder):
    rows = ["a,b,c,label"] + [f"{i},{i % 3},{i % 5},{i % 2}" for i in range(60)]
    (folder / "t.csv").write_text("\n".join(rows))
    return folder / "t.csv"
