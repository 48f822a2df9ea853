"""docs/github-actions.yml, step by step from an empty cache: the first run on main warns that there is no baseline
and saves one; the next run gates against it and passes; a degraded model fails the gate."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from helpers import write_recipe

WORKFLOW = Path(__file__).parents[1] / "docs" / "github-actions.yml"
EDGEKIT = f"{shlex.quote(sys.executable)} -m edgekit"


def _job():
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert doc["permissions"]["checks"] == "write"
    return next(iter(doc["jobs"].values()))


def _step(job, name):
    return next(s for s in job["steps"] if s.get("name") == name)


def _run(job, name, cwd: Path, recipe: Path) -> subprocess.CompletedProcess:
    """A step's `run:` command as the runner would execute it, with this interpreter's edgekit."""
    cmd = _step(job, name)["run"].replace(".venv/bin/edgekit", EDGEKIT)
    env = {**os.environ, **job["env"], "RECIPE": str(recipe)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(["bash", "-e", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_workflow_caches_per_run_and_saves_on_main_even_after_a_failed_gate():
    job = _job()
    restore, store = _step(job, "Restore the baseline"), _step(job, "Store the baseline in the cache")
    assert restore["uses"].startswith("actions/cache/restore@") and store["uses"].startswith("actions/cache/save@")
    assert "github.run_id" in store["with"]["key"] and restore["with"]["key"] == store["with"]["key"]
    prefix = restore["with"]["restore-keys"].strip()
    assert store["with"]["key"].startswith(prefix)
    for name in ("Save the baseline", "Store the baseline in the cache"):
        cond = _step(job, name)["if"]
        assert cond.startswith("always() && github.ref == 'refs/heads/main'"), cond
    gate = _step(job, "Gate against the baseline")["run"]
    assert "--if-missing warn" in gate and "--max-latency-regression 1.25" in gate and "--junit gates.xml" in gate


def test_workflow_bootstraps_its_baseline_then_gates(tmp_path):
    job = _job()
    good = write_recipe(tmp_path / "good.yaml")
    bad = write_recipe(tmp_path / "bad.yaml",  # same recipe, a model that learned nothing
                       train={"epochs": 1, "batch_size": 64, "optimizer": {"name": "sgd", "lr": 1e-6},
                              "progress": False})
    main, pr = tmp_path / "main", tmp_path / "pr"
    main.mkdir()

    # first run on main: empty cache
    assert _run(job, "Run the recipe", main, good).returncode == 0
    p = _run(job, "Gate against the baseline", main, good)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "baseline 'main' not found" in p.stderr and "WARN" in p.stdout and "PASS" in p.stdout
    assert ElementTree.parse(main / "gates.xml").getroot() is not None
    p = _run(job, "Save the baseline", main, good)
    assert p.returncode == 0 and (main / ".edgekit/baselines/main/report.json").is_file(), p.stderr

    # a later run restores the cache (the folder) and gates against the baseline: the same model passes
    pr.mkdir()
    shutil.copytree(main / ".edgekit", pr / ".edgekit")
    assert _run(job, "Run the recipe", pr, good).returncode == 0
    p = _run(job, "Gate against the baseline", pr, good)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "not found" not in p.stderr and "latency_regression" in p.stdout and "PASS" in p.stdout

    # a degraded model: its own run passes (int8 matches its fp32), the gate against the baseline fails
    shutil.rmtree(pr / "runs")
    assert _run(job, "Run the recipe", pr, bad).returncode in (0, 1)
    p = _run(job, "Gate against the baseline", pr, bad)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "FAIL" in p.stdout
    failures = ElementTree.parse(pr / "gates.xml").getroot().iter("failure")
    assert any(True for _ in failures)


def test_gate_if_missing_fail_is_still_exit_2(tmp_path):
    pytest.importorskip("onnxruntime")
    from edgekit.report.io import save_report
    from edgekit.report.schema import Report

    save_report(Report(edgekit_version="0", recipe_name="r", created="now", status="completed"), tmp_path)
    env = {**os.environ, "EDGEKIT_BASELINES": str(tmp_path / "store")}
    p = subprocess.run([sys.executable, "-m", "edgekit", "gate", str(tmp_path), "--baseline", "main"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "baseline 'main' not found" in p.stderr, p.stderr
    p = subprocess.run([sys.executable, "-m", "edgekit", "gate", str(tmp_path), "--baseline", "main", "--if-missing",
                        "maybe"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "maybe" in p.stderr
