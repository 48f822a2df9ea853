"""Hostile and unlucky run folders, names and runs, through the real CLI: nothing escapes its folder, nothing
tampered with is used, and a run that did not complete never passes a gate.

Each case asserts the exit code, that no file outside the run folder changed, and that no traceback is shown."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import tiny_recipe_dict

BAD_NAMES = ["..", "", "../x", "../../../x", "a/b", "-x"]


def edgekit(*args, cwd=None, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every path under `root` (not following symlinks) with its kind and content hash; `skip` is left out."""
    out = {}
    for top, dirs, files in os.walk(root, followlinks=False):
        if skip is not None and Path(top).resolve() == skip.resolve():
            dirs[:] = []
            continue
        for n in dirs + files:
            p = Path(top) / n
            if p.is_symlink():
                out[str(p.relative_to(root))] = ("link", os.readlink(p))
            elif p.is_file():
                out[str(p.relative_to(root))] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            elif skip is None or p.resolve() != skip.resolve():
                out[str(p.relative_to(root))] = ("dir",)
    return out


def clean_error(p, code: int, *words: str) -> None:
    """Exit `code`, no traceback, and an `error:` line naming `words`."""
    assert p.returncode == code, p.stdout[-2000:] + p.stderr[-2000:]
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    if words:
        line = next((x for x in p.stderr.splitlines() if x.startswith("error:")), "")
        assert all(w in line for w in words), p.stderr[-2000:]


def report(d: Path) -> dict:
    return json.loads((d / "report.json").read_text())


def write_report(d: Path, rep: dict) -> None:
    (d / "report.json").write_text(json.dumps(rep, indent=2))


def recipe_file(path: Path, **over) -> Path:
    d = tiny_recipe_dict(passes=[], **over)
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished tiny run (trained CNN, fp32 ONNX, benched on the host), copied by each test that alters it."""
    d = tmp_path_factory.mktemp("hostile")
    p = edgekit("run", "r.yaml", "--out", "run", cwd=recipe_file(d / "r.yaml").parent)  # relative paths, as in CI
    assert p.returncode == 0, p.stderr[-3000:]
    assert report(d / "run")["training"]["checkpoint_sha256"]
    return d / "run"


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run, deep inside tmp_path so an escape would land in tmp_path."""
    dst = tmp_path / "a" / "b" / "run"
    shutil.copytree(trained, dst)
    return dst


# --- names --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", BAD_NAMES)
def test_every_name_in_a_recipe_is_checked_with_its_line(tmp_path, bad):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    cases = {"export name": {"export": [{"format": "onnx", "exporter": "legacy", "name": bad}]},
             "pass artifact": {"passes": [{"name": "quantize.dynamic", "artifact": bad}]},
             "recipe name": {"name": bad}}
    for what, over in cases.items():
        f = work / "r.yaml"
        f.write_text(yaml.safe_dump(tiny_recipe_dict(**over), sort_keys=False))
        before = snapshot(tmp_path)
        p = edgekit("run", f, "--out", work / "run", cwd=work)
        clean_error(p, 2, "r.yaml:", "not a valid name")
        assert snapshot(tmp_path) == before, what


@pytest.mark.parametrize("bad", ["..", "../x", "a/b"])
def test_device_and_study_names_are_checked(tmp_path, bad):
    prof = tmp_path / "dev.yaml"
    prof.write_text(yaml.safe_dump({"name": bad, "transport": "local"}))
    clean_error(edgekit("devices", "show", prof), 2, "dev.yaml", "not a valid name")
    search = tiny_recipe_dict(model={"arch": "mlp", "hidden": {"$choice": [[16], [32]]}}, passes=[])
    search["search"] = {"objectives": [{"metric": "accuracy", "direction": "maximize"}], "trials": 1}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(search, sort_keys=False))
    before = snapshot(tmp_path)
    clean_error(edgekit("search", tmp_path / "s.yaml", "--study", bad, "--out", tmp_path / "s"), 2, "study name")
    search["search"]["study"] = bad
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(search, sort_keys=False))
    before = snapshot(tmp_path)
    clean_error(edgekit("search", tmp_path / "s.yaml", "--out", tmp_path / "s"), 2, "search.study")
    assert snapshot(tmp_path) == before


def test_baseline_names_cannot_leave_the_store(run, tmp_path):
    store = tmp_path / "keep" / "baselines"
    env = {"EDGEKIT_BASELINES": str(store)}
    (tmp_path / "keep" / "precious.txt").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "keep" / "precious.txt").write_text("must survive")
    assert edgekit("baseline", "save", run, "--name", "main", env=env).returncode == 0
    before = snapshot(tmp_path)
    for bad in BAD_NAMES:
        p = edgekit("baseline", "save", run, "--name", bad, env=env)
        clean_error(p, 2, "baseline name")
        assert snapshot(tmp_path) == before, bad
    again = edgekit("baseline", "save", run, "--name", "main", env=env)  # replacing one keeps the store's neighbours
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "keep" / "precious.txt").read_text() == "must survive"
    assert sorted(p.name for p in store.iterdir()) == ["main"]  # no temporary folder left behind
    assert edgekit("gate", run, "--baseline", "main", env=env).returncode == 0


# --- tampered run folders -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../../../etc/passwd", "ABSOLUTE_COPY"])
def test_an_artifact_path_outside_the_folder_is_never_opened(run, tmp_path, path):
    outside = tmp_path / "outside.onnx"
    shutil.copyfile(run / "artifacts" / "onnx-fp32.onnx", outside)  # same bytes: the hash in the report matches
    rep = report(run)
    rep["artifacts"][0]["path"] = str(outside) if path == "ABSOLUTE_COPY" else path
    write_report(run, rep)
    before = snapshot(tmp_path, skip=run)
    clean_error(edgekit("bench", run, "-d", "host-cpu", "--iterations", "5"), 2, "onnx-fp32")
    clean_error(edgekit("gate", run), 2, "onnx-fp32")
    clean_error(edgekit("compare", run, run), 2, "onnx-fp32")
    assert snapshot(tmp_path, skip=run) == before
    res = edgekit("run", "--resume", run)  # never adopted: exported again inside the folder
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    art = report(run)["artifacts"][0]
    assert art["path"] == "artifacts/onnx-fp32.onnx" and "not reused" in res.stderr
    assert snapshot(tmp_path, skip=run) == before


def test_a_swapped_model_file_is_refused_by_bench_gate_and_compare(run, trained, tmp_path):
    model = run / "artifacts" / "onnx-fp32.onnx"
    model.write_bytes(model.read_bytes() + b"\0")  # still loads in most readers; the hash says otherwise
    before = snapshot(tmp_path, skip=run)
    run_before = snapshot(run)
    for p in (edgekit("bench", run, "-d", "host-cpu", "--iterations", "5"),
              edgekit("gate", trained, "--baseline", run),
              edgekit("gate", run, "--baseline", trained),
              edgekit("compare", trained, run)):
        clean_error(p, 2, "onnx-fp32", "sha256", str(run))
    assert snapshot(tmp_path, skip=run) == before and snapshot(run) == run_before


def test_resume_replaces_a_symlinked_artifact_and_leaves_its_target_alone(run, tmp_path):
    victim = tmp_path / "victim.onnx"
    model = run / "artifacts" / "onnx-fp32.onnx"
    victim.write_bytes(b"precious bytes that are not a model")
    model.unlink()
    model.symlink_to(victim)
    before = snapshot(tmp_path, skip=run)
    clean_error(edgekit("bench", run, "-d", "host-cpu", "--iterations", "5"), 2, "symlink")
    p = edgekit("run", "--resume", run)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert victim.read_bytes() == b"precious bytes that are not a model"
    assert not model.is_symlink() and report(run)["status"] == "completed"
    assert snapshot(tmp_path, skip=run) == before


def test_resume_retrains_when_the_checkpoint_was_swapped(run, tmp_path):
    ckpt = run / "model.safetensors"
    recorded = report(run)["training"]["checkpoint_sha256"]
    ckpt.write_bytes(ckpt.read_bytes()[:-8] + b"\x00" * 8)
    before = snapshot(tmp_path, skip=run)
    p = edgekit("run", "--resume", run)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert "does not match the sha256" in p.stderr and "reused the interrupted run's checkpoint" not in p.stderr
    rep = report(run)
    assert rep["training"]["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert rep["status"] == "completed" and rep["training"]["checkpoint_sha256"] == recorded  # seeded: same weights
    assert snapshot(tmp_path, skip=run) == before


# --- honest status ------------------------------------------------------------------------------------------------

def test_a_run_that_fails_is_marked_failed_and_never_passes_a_gate(tmp_path):
    data = tmp_path / "d.npz"
    import numpy as np

    np.savez(data, x=np.zeros((40, 4), np.float32), y=np.zeros(40, np.int64))
    recipe = recipe_file(tmp_path / "r.yaml", data={"source": "npz", "path": str(data)})
    data.write_bytes(b"not an npz any more")  # valid when checked, broken when the run reads it
    before = snapshot(tmp_path, skip=tmp_path / "run")
    p = edgekit("run", recipe, "--out", tmp_path / "run")
    clean_error(p, 2)
    rep = report(tmp_path / "run")
    assert rep["status"] == "failed" and rep["errors"] and rep["errors"][-1].startswith("data:")
    g = edgekit("gate", tmp_path / "run")
    assert g.returncode == 1 and "run_status" in g.stdout and "failed" in g.stdout and "FAIL" in g.stdout, g.stdout
    assert snapshot(tmp_path, skip=tmp_path / "run") == before


def test_ctrl_c_marks_the_run_interrupted_and_says_how_to_resume(tmp_path):
    recipe = recipe_file(tmp_path / "r.yaml", train={"epochs": 500, "batch_size": 64, "progress": False,
                                                     "optimizer": {"name": "adam", "lr": 0.01}})
    out = tmp_path / "run"
    # a child of a process that ignores SIGINT (a pytest-xdist worker, a background job) inherits the ignore, and
    # Python then installs no KeyboardInterrupt handler: restore the default, as an interactive shell has it
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "run", str(recipe), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if "model" in report(out)["stages_done"]:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    time.sleep(0.5)  # inside the training loop
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert f"edgekit run --resume {out}" in err
    rep = report(out)
    assert rep["status"] == "interrupted" and "train" not in rep["stages_done"] and rep["errors"]
    g = edgekit("gate", out)
    assert g.returncode == 1 and "interrupted" in g.stdout


def test_a_report_left_running_fails_the_gate_and_an_old_report_still_gates(run):
    rep = report(run)
    rep.pop("status")  # an old report from a killed run: no status written but the default
    write_report(run, rep)
    g = edgekit("gate", run)
    assert g.returncode == 1 and "did not finish" in g.stdout
    rep["status"] = "completed"
    rep["training"].pop("checkpoint_sha256")
    for a in rep["artifacts"]:
        a["details"].pop("companions_sha256", None)
    write_report(run, rep)
    g = edgekit("gate", run)
    assert g.returncode == 0 and "PASS" in g.stdout, g.stdout + g.stderr


def test_completed_with_errors_fails_the_gate_naming_the_error(run):
    rep = report(run)
    rep["status"], rep["errors"] = "completed_with_errors", ["export tflite-int8: converter crashed"]
    write_report(run, rep)
    g = edgekit("gate", run)
    assert g.returncode == 1 and "converter crashed" in g.stdout


# --- one run per folder -------------------------------------------------------------------------------------------

def test_out_into_an_existing_folder_is_refused_unless_forced(run, tmp_path):
    recipe = recipe_file(tmp_path / "r.yaml")
    before = snapshot(tmp_path)
    clean_error(edgekit("run", recipe, "--out", run), 2, "--resume", "--force")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("mine")
    (tmp_path / "file").write_text("x")
    before = snapshot(tmp_path)
    clean_error(edgekit("run", recipe, "--out", other), 2, "not empty")
    clean_error(edgekit("run", recipe, "--out", other, "--force"), 2, "no report.json")
    clean_error(edgekit("run", recipe, "--out", tmp_path / "file"), 2, "not a folder")
    assert snapshot(tmp_path) == before
    old = report(run)["created"]
    outside = snapshot(tmp_path, skip=run)
    (run / "mine.txt").write_text("not edgekit's")
    (run / "artifacts" / "stale.onnx").write_bytes(b"stale")
    p = edgekit("run", recipe, "--out", run, "--force")
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-3000:]
    rep = report(run)
    assert rep["status"] == "completed" and not (run / "artifacts" / "stale.onnx").exists()
    assert (run / "mine.txt").read_text() == "not edgekit's" and rep["created"] >= old
    assert snapshot(tmp_path, skip=run) == outside
