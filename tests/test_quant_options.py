"""The calibration sub-config shared by int8 targets and passes; the flat keys of older recipes keep their meaning."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from edgekit.quant.options import DEFAULT_PERCENTILE, Calibration
from edgekit.recipe import Recipe, load_recipe

OLD_TARGETS = [
    {"format": "tflite", "precision": "int8", "calibration": "percentile", "percentile": 99.9,
     "calibration_size": 64, "keep_float": ["features.0.0"]},
    {"format": "executorch", "precision": "int8", "calibration": "histogram", "calibration_size": 32},
]


def test_an_old_recipe_with_flat_calibration_keys_loads_with_the_same_meaning(tmp_path):
    from helpers import tiny_recipe_dict

    p = tmp_path / "old.yaml"
    p.write_text(yaml.safe_dump(tiny_recipe_dict(export=OLD_TARGETS, passes=[]), sort_keys=False))
    r = load_recipe(p)
    tfl, et = r.export
    assert tfl.calibration == Calibration(method="percentile", percentile=99.9, samples=64, keep_float=["features.0.0"])
    assert et.calibration.method == "histogram" and et.calibration.samples == 32
    again = Recipe.model_validate(r.model_dump(mode="json"))  # the recipe a new report.json stores
    assert again.export == r.export
    old_report_recipe = tiny_recipe_dict(export=[{**OLD_TARGETS[0], "finetune": None, "io_dtype": "float32",
                                                  "name": None, "parity_samples": 256, "batch_size": None,
                                                  "tolerance": {"min_cosine": 0.98, "min_top1": 0.9}}], passes=[])
    assert Recipe.model_validate(old_report_recipe).export[0].calibration == tfl.calibration


def test_an_override_of_an_old_key_still_applies(tmp_path):
    from helpers import write_recipe

    p = write_recipe(tmp_path / "r.yaml", export=[{"format": "tflite", "precision": "int8"}], passes=[])
    r = load_recipe(p, ["export.0.calibration=mse"])
    assert r.export[0].calibration.method == "mse"


def test_one_default_percentile_and_the_checks_it_keeps():
    from edgekit.export.config import ExecutorchExport, TfliteExport
    from edgekit.passes.tflite_quantize import TfliteQuantConfig

    assert Calibration().percentile == DEFAULT_PERCENTILE
    for cfg in (TfliteExport(format="tflite", precision="int8"), ExecutorchExport(format="executorch", precision="int8"),
                TfliteQuantConfig(name="quantize.tflite")):
        assert cfg.calibration.percentile == DEFAULT_PERCENTILE
    with pytest.raises(ValueError, match="percentile is used only"):
        Calibration(method="mse", percentile=99.0)
    with pytest.raises(ValueError, match="also given as calibration.samples"):
        TfliteExport(format="tflite", precision="int8", calibration_size=8, calibration={"samples": 16})
    with pytest.raises(ValueError, match="only with precision int8"):
        TfliteQuantConfig(name="quantize.tflite", precision="fp16", calibration={"method": "mse"})
    assert TfliteQuantConfig(name="quantize.tflite", precision="fp16").artifact == "tflite-fp16"


def test_tolerance_bounds_are_named_after_the_metrics_and_the_old_names_still_load():
    from edgekit.config_base import Tolerance
    from edgekit.export.parity import compare, failures

    old = Tolerance.model_validate({"min_top1": 0.9, "max_rel": 0.1, "min_cosine": 0.99})
    assert old == Tolerance(min_top1_agreement=0.9, max_rel_error=0.1, min_cosine=0.99)
    numbers = compare(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32)[::-1].copy())
    metric = {"max_abs": "max_abs", "max_rel_error": "rel_error", "min_cosine": "cosine",
              "min_top1_agreement": "top1_agreement"}
    assert set(old.model_dump()) == set(metric) and set(metric.values()) <= set(numbers)
    assert [f.split()[0] for f in failures(numbers, old)] == ["rel_error", "cosine", "top1_agreement"]
