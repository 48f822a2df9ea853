"""What edgekit prints: the plain-text summary, --quiet, a silent API run whose third-party output lands in
run.log, progress lines, file modes, and the Python API example of docs/python-api.md."""

import json
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from helpers import tiny_recipe, write_recipe

ANSI = re.compile(r"\x1b\[")
FAST = {"export": [{"format": "onnx", "exporter": "legacy"}],
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}},
        "bench": {"devices": ["host-cpu"], "warmup": 2, "iterations": 10, "min_time_s": 0.05}}


def edgekit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600, preexec_fn=lambda: os.umask(0o022),
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("output")
    recipe = write_recipe(d / "tiny.yaml", **FAST)
    p = edgekit("run", recipe, "--out", d / "run")
    assert p.returncode == 0, p.stderr[-3000:]
    return p, d / "run"


def test_plain_summary_when_not_a_terminal(cli_run):
    p, run_dir = cli_run
    assert not ANSI.search(p.stdout) and not ANSI.search(p.stderr), "control codes in piped output"
    out = p.stdout.splitlines()
    header = next(line for line in out if "artifact@device" in line)
    assert all(col in header for col in ("size", "accuracy", "p50", "p90", "load", "first inf"))
    rows = [line for line in out if line.startswith(("onnx-fp32@host-cpu", "onnx-int8@host-cpu"))]
    assert len(rows) >= 4  # two result rows and two gate-matrix rows
    rep = json.loads((run_dir / "report.json").read_text())
    load_ms = {r["artifact"]: r["load_ms"] for r in rep["results"]}
    assert f"{load_ms['onnx-int8']:.1f}" in next(r for r in rows if r.startswith("onnx-int8") and "KiB" in r)
    verdict = next(line for line in out if line.startswith(("PASS", "FAIL")))
    assert re.match(r"(PASS|FAIL): \d+/\d+ gates passed", verdict)
    assert out[-2] == f"report: {run_dir / 'report.html'}" and out[-1].strip() == str(run_dir / "report.md")
    assert "bench 2/2" in p.stderr and "data: digits" in p.stderr  # progress and stage lines go to stderr


def test_the_fp32_reference_is_not_gated_against_absolute_budgets(cli_run):
    rep = json.loads((cli_run[1] / "report.json").read_text())
    latency = {g["target"] for g in rep["gates"] if g["name"] == "max_latency_p90_ms"}
    assert latency == {"onnx-int8@host-cpu"}
    assert {g["target"] for g in rep["gates"] if g["name"] == "max_accuracy_drop"} >= {"onnx-fp32@host-cpu"}


def test_files_are_written_0644_under_umask_022(cli_run):
    run_dir = cli_run[1]
    files = [run_dir / n for n in ("report.json", "report.md", "report.html", "recipe.yaml", "run.log",
                                   "model.safetensors")] + list((run_dir / "artifacts").iterdir())
    modes = {f.name: oct(f.stat().st_mode & 0o777) for f in files}
    assert set(modes.values()) == {"0o644"}, modes


def test_atomic_writes_follow_the_umask(tmp_path):
    from edgekit.atomic import atomic_write_text

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


def test_quiet_prints_nothing_but_errors(cli_run, tmp_path):
    run_dir = cli_run[1]
    ok = edgekit("--quiet", "bench", run_dir, "--iterations", "5", "--min-time", "0.02")
    assert ok.returncode == 0 and ok.stdout == "" and ok.stderr == "", ok.stdout + ok.stderr
    fail = edgekit("--quiet", "gate", run_dir, "--max-latency-p90-ms", "0.000001")
    assert fail.returncode == 1 and fail.stdout == ""
    assert fail.stderr.strip().startswith("FAIL") and len(fail.stderr.strip().splitlines()) == 1


def test_api_run_with_log_none_prints_nothing_and_keeps_third_party_output_in_run_log(tmp_path, capfd):
    from edgekit import api

    def noisy(epoch, acc):  # what third-party libraries do while a run works
        logging.getLogger("onnxruntime").warning("third-party logger line %d", epoch)
        warnings.warn(f"a warnings.warn line {epoch}", RuntimeWarning, stacklevel=1)
        os.write(2, b"native stderr line\n")
        os.write(1, b"native stdout line\n")

    recipe = tiny_recipe(**{**FAST, "train": {**FAST["train"], "progress": True}})
    capfd.readouterr()
    run = api.run(recipe, tmp_path / "run", log=None, on_epoch=noisy)
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)
    log = (run.run_dir / "run.log").read_text()
    for line in ("third-party logger line 0", "a warnings.warn line 1", "native stderr line", "native stdout line",
                 "epoch 2/2", "bench: onnx-int8 on host-cpu"):
        assert line in log, line

    lines = []
    api.bench(run.run_dir, log=lines.append, iterations=5, min_time_s=0.02)
    out, err = capfd.readouterr()
    assert out == "" and err == "" and any(line.startswith("  bench 2/2") for line in lines), lines


def test_progress_lines_carry_eta_and_elapsed_time():
    from edgekit.console import progress

    lines = []
    with progress("trial", 10, log=lines.append) as p:
        for _ in range(10):
            p.update()
    assert len(lines) == 5 and re.fullmatch(r"  trial 2/10, ETA [\d.]+ s", lines[0]), lines
    assert re.fullmatch(r"  trial 10/10 in [\d.]+ s", lines[-1])


def test_every_api_function_takes_a_path_or_a_recipe(tmp_path):
    from edgekit import api

    path = write_recipe(tmp_path / "r.yaml", **FAST)
    assert api.as_recipe(path) == api.as_recipe(tiny_recipe(**FAST)) == api.as_recipe(tiny_recipe(**FAST).model_dump())
    assert api.as_recipe(path, ["train.epochs=1"]).train.epochs == 1
    assert api.validate(path).endswith("ok (tiny)") and api.validate(tiny_recipe()) == "<recipe>: ok (tiny)"


def test_the_python_api_example_runs(tmp_path, monkeypatch, capsys):
    text = (Path(__file__).parents[1] / "docs" / "python-api.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    write_recipe(tmp_path / "recipe.yaml", **FAST)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/python-api.md", "exec"), {"__name__": "__doc_example__"})
    out = capsys.readouterr().out
    assert "completed" in out and "first inference" in out and "gates:" in out
    assert (tmp_path / "runs/notebook/run.log").is_file() and (tmp_path / "runs/notebook-train/model.safetensors").is_file()
    assert "epoch 1/1" in (tmp_path / "runs/notebook-train/run.log").read_text()
