"""MLflow tracking against a real local MLflow store: one MLflow run per edgekit run, with the recipe as params,
each artifact@device's metrics and the reports as artifacts."""

import os
import subprocess
import sys

import pytest
from helpers import write_recipe

pytest.importorskip("mlflow")


def test_a_run_logs_one_mlflow_run_with_accuracy_and_p90(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this switch
    store = (tmp_path / "mlruns").resolve()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    recipe = write_recipe(tmp_path / "tiny.yaml")
    p = subprocess.run([sys.executable, "-m", "edgekit", "run", str(recipe), "--out", str(tmp_path / "run")], env=env,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "mlflow: logged run" in p.stderr

    client = MlflowClient(tracking_uri=store.as_uri())
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    m, params = run.data.metrics, run.data.params
    for art in ("onnx-fp32", "onnx-int8"):
        assert 0.5 < m[f"{art}/host-cpu/accuracy"] <= 1 and m[f"{art}/host-cpu/latency_p90_ms"] > 0
    assert m["gates/failed"] == 0 and m["gates/passed"] >= 1
    assert params["recipe.model.arch"] == "cnn" and params["recipe.train.epochs"] == "3"
    assert params["recipe.passes"].startswith("[{") and len(params["recipe_sha256"]) == 64
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "report.json"} <= files


def test_tracking_follows_the_flag_then_the_environment(monkeypatch):
    from edgekit.report.tracking import tracking_wanted

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///nowhere")
    assert tracking_wanted(None) and tracking_wanted(True) and not tracking_wanted(False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert not tracking_wanted(None) and tracking_wanted(True)


def test_flatten_keeps_every_recipe_value_within_mlflow_limits():
    from edgekit.report.tracking import MAX_PARAM_CHARS, flatten

    flat = flatten({"recipe": {"a": {"b": 1, "c": [1, 2]}, "d": None, "e": "x" * 9000, "f": {}}})
    assert flat["recipe.a.b"] == "1" and flat["recipe.a.c"] == "[1, 2]" and flat["recipe.d"] == "null"
    assert len(flat["recipe.e"]) == MAX_PARAM_CHARS and flat["recipe.f"] == "{}"
