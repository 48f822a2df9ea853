"""A run folder written before the redesign (edgekit b76bf03: no recipe version, flat calibration keys, `min_top1`,
the old stage names) still reads: recipe, report, gate, bench, baseline and compare work on it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

OLD = Path(__file__).parent / "data" / "run_pre_redesign"


def edgekit(*args, cwd):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def old_run(tmp_path):
    return Path(shutil.copytree(OLD, tmp_path / "old"))


def test_old_recipe_and_report_load(old_run):
    from edgekit.recipe import load_recipe
    from edgekit.report.io import load_report

    recipe = load_recipe(old_run / "recipe.yaml")
    assert recipe.version == 1 and recipe.passes[0].calibration.method == "minmax"
    report = load_report(old_run)
    assert report.status == "completed" and report.artifact("onnx-int8").parity.passed
    assert {r.artifact for r in report.results} == {"onnx-fp32", "onnx-int8"}


def test_gate_and_bench_an_old_run(old_run, tmp_path):
    gate = edgekit("gate", old_run / "report.json", cwd=tmp_path)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    bench = edgekit("--quiet", "bench", old_run, cwd=tmp_path)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    again = edgekit("gate", old_run / "report.json", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.filterwarnings("ignore")
def test_a_new_run_gates_and_compares_against_an_old_baseline(old_run, tmp_path):
    from edgekit.pipeline import run_recipe
    from edgekit.recipe import load_recipe

    saved = edgekit("baseline", "save", old_run, "--name", "old", cwd=tmp_path)
    assert saved.returncode == 0, saved.stdout + saved.stderr
    new = run_recipe(load_recipe(old_run / "recipe.yaml"), tmp_path / "new")
    assert new.report.status == "completed"
    gate = edgekit("gate", new.run_dir / "report.json", "--baseline", "old", cwd=tmp_path)
    assert gate.returncode in (0, 1) and "Traceback" not in gate.stderr, gate.stdout + gate.stderr
    cmp = edgekit("compare", old_run, new.run_dir, "--json", tmp_path / "cmp.json", cwd=tmp_path)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    assert "onnx-int8" in (tmp_path / "cmp.json").read_text()
