"""Deployment metadata in every artifact: ONNX metadata_props and a model_card.json sidecar, written before the
artifact is hashed; `edgekit inspect` prints them."""

import json
import subprocess
import sys

import pytest
from helpers import tiny_recipe

from edgekit.export.artifact import artifact_path, file_sha256
from edgekit.export.model_card import card_path


def inspect_cli(*args):
    return subprocess.run([sys.executable, "-m", "edgekit", "inspect", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from edgekit import api

    export = [{"format": "onnx", "exporter": "legacy"}, {"format": "tflite"}]
    return api.run(tiny_recipe(export=export), tmp_path_factory.mktemp("card") / "run", log=lambda m: None)


def test_every_artifact_carries_its_card_and_keeps_its_hash_and_parity(run):
    import onnx

    report = run.report
    arts = [a for a in report.artifacts if a.status == "ok"]
    assert {a.name for a in arts} == {"onnx-fp32", "onnx-int8", "tflite-fp32"}
    norm = report.data["normalization"]
    assert norm["kind"] == "standard" and len(norm["shift"]) == 1 and norm["scale"][0] > 0
    for a in arts:
        path = artifact_path(run.run_dir, a)
        assert file_sha256(path) == a.sha256 and path.stat().st_size == a.size_bytes, a.name
        assert a.parity is not None and a.parity.passed, a.name
        card = json.loads(card_path(path).read_text())
        assert card["recipe_sha256"] == report.recipe_sha256 and card["edgekit_version"] == report.edgekit_version
        assert card["normalization"] == norm and card["input_layout"] == "NCHW" and card["precision"] == a.precision
        assert card["class_names"] == [str(i) for i in range(10)] and card["input_dtype"] == "float32"
        assert "divided by 16" in card["preprocess"]
        if a.format == "onnx":
            props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
            assert json.loads(props["edgekit.normalization"]) == norm
            assert props["edgekit.recipe_sha256"] == report.recipe_sha256 and props["edgekit.input_layout"] == "NCHW"
            assert json.loads(props["edgekit.class_names"])[:3] == ["0", "1", "2"]
            assert props["edgekit.precision"] == a.precision
    int8 = report.artifact("onnx-int8")
    rec = next(p for p in report.passes if p.produced == "onnx-int8")
    assert rec.after["size_bytes"] == int8.size_bytes


def test_inspect_prints_io_and_normalization(run):
    report = run.report
    onnx_file = artifact_path(run.run_dir, report.artifact("onnx-int8"))
    p = inspect_cli(onnx_file)
    assert p.returncode == 0, p.stderr
    shift = report.data["normalization"]["shift"][0]
    assert "normalization" in p.stdout and str(shift) in p.stdout and "from file + sidecar" in p.stdout
    assert "input " in p.stdout and "float32" in p.stdout and report.recipe_sha256 in p.stdout
    p = inspect_cli(artifact_path(run.run_dir, report.artifact("tflite-fp32")), "--json")
    info = json.loads(p.stdout)
    assert info["format"] == "tflite" and info["metadata_source"] == "sidecar"
    assert info["metadata"]["normalization"] == report.data["normalization"] and info["inputs"][0]["dtype"] == "float32"


def test_inspect_treats_file_text_as_data(run, tmp_path):
    import onnx

    src = artifact_path(run.run_dir, run.report.artifact("onnx-fp32"))
    model = onnx.load(str(src))
    model.metadata_props.add(key="author", value="\x1b[2J\x1b[31mred\nsecond line")
    bad = tmp_path / "m.onnx"
    onnx.save(model, str(bad))
    p = inspect_cli(bad)
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stdout and "\\x1b[31mred\\nsecond line" in p.stdout
    assert "no edgekit metadata" not in p.stdout  # the file's own edgekit.* props, no sidecar here
    card_path(bad).write_text("[1, 2]")
    p = inspect_cli(bad)
    assert p.returncode == 2 and "not a JSON model card" in p.stderr and "Traceback" not in p.stderr
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage" * 10)
    p = inspect_cli(tmp_path / "junk.onnx")
    assert p.returncode == 2 and "not a valid ONNX model" in p.stderr, p.stderr
