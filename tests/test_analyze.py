"""Per-layer sensitivity analysis: library function and CLI."""

import json

import pytest
from helpers import TINY_MODELS, tiny_recipe, write_recipe

from edgekit.analyze import analyze, legacy_onnx_node, sensitivity


@pytest.fixture(scope="module")
def result():
    return analyze(tiny_recipe(model=dict(TINY_MODELS["resnet"]), train={"epochs": 2, "progress": False}),
                   log=lambda m: None)


def test_every_layer_is_measured_and_ranked(result):
    names = [r["name"] for r in result["layers"]]
    assert names == ["stem.0", "stages.0.conv1", "stages.0.conv2", "stages.1.conv1", "stages.1.conv2",
                     "stages.1.shortcut.0", "head.fc"]
    assert sorted(result["ranking"]["quantization"]) == sorted(names)
    assert "head.fc" not in result["ranking"]["pruning"]
    for r in result["layers"]:
        assert r["quant"]["sqnr_db"] > 10 and abs(r["quant"]["drop"]) < 0.2
    drops = [next(r for r in result["layers"] if r["name"] == n)["prune"]["drop"] for n in result["ranking"]["pruning"]]
    assert drops == sorted(drops, reverse=True)
    coupled = {r["name"]: r["prune"].get("coupled") for r in result["layers"]}
    assert "stages.1.shortcut.0" in coupled["stages.1.conv2"]  # the residual add ties them


def test_ranking_is_deterministic_under_a_seed(result):
    again = analyze(tiny_recipe(model=dict(TINY_MODELS["resnet"]), train={"epochs": 2, "progress": False}),
                    log=lambda m: None)
    assert again["ranking"] == result["ranking"] and again["layers"] == result["layers"]
    assert json.loads(json.dumps(again)) == again


def test_suggestions_follow_the_threshold(cnn, splits):
    strict = sensitivity(cnn, splits, prune_ratio=0.5, threshold=-1.0)  # every layer counts as sensitive
    assert strict["suggest"]["protect"] == strict["ranking"]["pruning"]
    assert strict["suggest"]["recipe"]["prune.structured"]["protect"] == strict["suggest"]["protect"]
    assert sorted(strict["suggest"]["recipe"]["quantize.static"]["exclude_nodes"]) == [
        "/features/features.0/features.0.0/Conv", "/features/features.1/features.1.0/Conv", "/head/fc/Gemm"
    ]
    lax = sensitivity(cnn, splits, prune_ratio=0.5, threshold=1.0)
    assert lax["suggest"]["protect"] == [] and lax["suggest"]["keep_float"] == []


def test_legacy_onnx_node_names():
    assert legacy_onnx_node("features.1.conv.0.0", "Conv") == "/features/features.1/conv/conv.0/conv.0.0/Conv"
    assert legacy_onnx_node("stages.1.shortcut.0", "Conv") == "/stages/stages.1/shortcut/shortcut.0/Conv"
    assert legacy_onnx_node("head.fc", "Gemm") == "/head/fc/Gemm"


def test_cli_analyze_writes_json(tmp_path):
    from typer.testing import CliRunner

    from edgekit.cli import _register, app

    _register()
    recipe = write_recipe(tmp_path / "r.yaml", train={"epochs": 1, "progress": False})
    res = CliRunner().invoke(app, ["analyze", str(recipe), "--json", str(tmp_path / "a.json"), "--prune-ratio", "0.25"])
    assert res.exit_code == 0, res.output
    assert "int8 drop" in res.output and "protect from pruning" in res.output
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["prune_ratio"] == 0.25 and data["recipe"] == "tiny"
