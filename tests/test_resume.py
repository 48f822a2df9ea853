"""An interrupted run (killed mid-way) resumes in its folder and ends with the same report as an uninterrupted run."""

import json
import signal
import subprocess
import sys
import time

from helpers import write_recipe


def _report(d):
    return json.loads((d / "report.json").read_text())


def _summary(rep):
    arts = sorted((a["name"], a["sha256"], a["status"]) for a in rep["artifacts"])
    res = sorted((r["artifact"], r["device"], r["status"], r["accuracy"]) for r in rep["results"])
    return arts, res, rep["reference"]["accuracy"], rep["training"]["test_accuracy"], rep["status"]


def test_killed_run_resumes_to_the_same_report(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", train={"epochs": 4, "batch_size": 64, "progress": False,
                                                      "optimizer": {"name": "adam", "lr": 0.01}})
    cmd = [sys.executable, "-m", "edgekit", "run"]
    full = subprocess.run(cmd + [str(recipe), "--out", str(tmp_path / "full")], capture_output=True, text=True)
    assert full.returncode == 0, full.stderr[-2000:]

    victim = tmp_path / "killed"
    proc = subprocess.Popen(cmd + [str(recipe), "--out", str(victim)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if "export" in _report(victim)["stages_done"]:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = _report(victim)
    assert killed["status"] == "running" and "bench" not in killed["stages_done"]  # really interrupted

    resumed = subprocess.run(cmd + ["--resume", str(victim)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "reused" in resumed.stderr
    assert _summary(_report(victim)) == _summary(_report(tmp_path / "full"))
    assert not list(victim.rglob("*.tmp"))  # no partial file left behind


def test_resume_refuses_a_changed_recipe(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", bench=None, passes=[], gates={})
    ok = subprocess.run([sys.executable, "-m", "edgekit", "run", str(recipe), "--out", str(tmp_path / "run")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr[-2000:]
    other = write_recipe(tmp_path / "other.yaml", bench=None, passes=[], gates={}, seed=5)
    p = subprocess.run([sys.executable, "-m", "edgekit", "run", str(other), "--resume", str(tmp_path / "run")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "differs from the recipe" in p.stderr
