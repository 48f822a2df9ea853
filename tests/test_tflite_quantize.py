"""`quantize.tflite`: ai-edge-quantizer on the fp32 .tflite as a file pass, the same code as a quantized export target."""

from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.export.config import TfliteExport
from edgekit.export.parity import compare
from edgekit.export.tflite import TfliteExporter
from edgekit.handles import TfliteFile
from edgekit.runtimes import get_runtime
from edgekit.train.trainer import predict

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")

BATCH = 4


@pytest.fixture(scope="module")
def fp32_file(cnn, splits, tmp_path_factory):
    d = tmp_path_factory.mktemp("fp32")
    TfliteExporter().export(cnn, splits.x_test, TfliteExport(format="tflite"), d / "cnn.tflite", d, "cnn",
                            calibration=splits.x_calib, batch_size=BATCH)
    return d / "cnn.tflite"


def test_pass_on_the_fp32_file_gives_the_int8_file_the_export_target_gives(fp32_file, cnn, splits, tmp_path):
    done = edgekit.apply_pass(fp32_file, {"name": "quantize.tflite"}, splits, work_dir=tmp_path / "w")
    out, rec = done.output, done.record
    assert isinstance(out, TfliteFile) and out.artifact.precision == "int8" and out.artifact.source == "cnn"
    assert out.path.is_file() and out.path.parent == tmp_path / "w" / "artifacts"
    d = out.artifact.details
    assert d["weight_dtypes"]["int8"] > 0 and d["calibration"] == "minmax" and d["static_batch"] == BATCH
    assert rec.name == "quantize.tflite" and rec.stage == "tflite" and rec.produced == "tflite-int8"
    assert rec.after["size_bytes"] < rec.before["size_bytes"]  # a tiny model: flatbuffer overhead dominates
    x = splits.x_test[:200]
    y = get_runtime("litert").load(out.path).run(x)
    n = compare(predict(cnn, x), y)
    assert n["cosine"] > 0.98 and n["top1_agreement"] > 0.9, n  # the pass's default int8 tolerance
    target = TfliteExporter().export(cnn, splits.x_test, TfliteExport(format="tflite", precision="int8"),
                                     tmp_path / "t.tflite", tmp_path, "t", calibration=splits.x_calib,
                                     batch_size=BATCH)
    assert target.details["calibrated_tensors"] == d["calibrated_tensors"]
    np.testing.assert_array_equal(get_runtime("litert").load(tmp_path / "t.tflite").run(x), y)  # one code path


def test_finetune_uses_the_torch_model_the_file_came_from_else_says_it_is_skipped(fp32_file, cnn, splits, tmp_path):
    cfg = {"name": "quantize.tflite", "finetune": {"epochs": 2, "lr": 1e-4}}
    alone = edgekit.apply_pass(fp32_file, cfg, splits, work_dir=tmp_path / "alone")
    assert "finetune" not in alone.output.artifact.details
    assert any("no torch model" in n for n in alone.record.notes), alone.record.notes
    tuned = edgekit.apply_pass(fp32_file, cfg, splits, work_dir=tmp_path / "tuned", reference=cnn)
    ft = tuned.output.artifact.details["finetune"]
    assert ft["epochs"] == 2 and ft["holdout_cosine_after"] > 0.99 and not tuned.record.notes
    x = splits.x_test[:200]
    y_alone, y_tuned = (get_runtime("litert").load(d.output.path).run(x) for d in (alone, tuned))
    assert not np.allclose(y_alone, y_tuned)  # the fine-tuned weights were converted anew
    assert compare(predict(cnn, x), y_tuned)["cosine"] > 0.98


def test_pass_in_a_recipe_is_verified_and_paired_with_its_fp32_source(tmp_path):
    from helpers import tiny_recipe

    from edgekit.pipeline import run_recipe

    recipe = tiny_recipe(export=[{"format": "tflite", "batch_size": 2}],
                         passes=[{"name": "quantize.tflite", "calibration": {"method": "percentile", "samples": 64}}],
                         bench=None, gates={})
    rep = run_recipe(recipe, tmp_path / "run", log=lambda s: None).report
    assert not rep.errors, rep.errors
    arts = {a.name: a for a in rep.artifacts}
    q = arts["tflite-int8"]
    assert q.source == "tflite-fp32" and q.parity.passed and q.parity.top1_agreement > 0.9
    assert q.details["calibration"] == "percentile" and q.details["calibration_samples"] == 64
    assert q.details["percentile"] == 99.99 and q.details["static_batch"] == 2
    assert [p.name for p in rep.passes if p.status == "ok"] == ["quantize.tflite"]
    rows = {(r["a"], r["b"]): r for r in rep.cross_parity}
    assert rows[("tflite-fp32", "tflite-int8")]["relation"] == "quantized vs its fp32"
