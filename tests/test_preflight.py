"""Failures come before the work: every command checks devices, formats and the packages the recipe needs first,
and a missing extra is named (with the `pip install 'edgekit[...]'` to run) before any data is loaded or any
training starts. Each case runs the real command in a subprocess, some with a package's import blocked."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import tiny_recipe_dict, write_recipe

ROOT = Path(__file__).parents[1]

# `python -c` wrapper: a meta-path finder refusing the named top-level packages, then the edgekit command
BLOCKED_CLI = """
import sys
blocked = set(sys.argv[1].split(",")) - {""}
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ImportError(f"{name} is blocked for this test")
        return None
sys.meta_path.insert(0, Refuse())
sys.argv = ["edgekit", *sys.argv[2:]]
from edgekit.cli import main
main()
"""


def edgekit(*args, block: tuple[str, ...] = (), cwd=None):
    """Run the command; returns (process, wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", BLOCKED_CLI, ",".join(block), *map(str, args)], capture_output=True,
                       text=True, cwd=cwd, timeout=300)
    return p, time.perf_counter() - t0


def assert_refused_before_work(p, seconds, out_dir: Path, *phrases: str):
    err_lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, p.stdout + p.stderr
    assert len(err_lines) <= 2 and "Traceback" not in p.stderr, p.stderr
    for phrase in phrases:
        assert phrase in p.stderr, (phrase, p.stderr)
    # nothing trained, exported or even started: the checks ran before the run folder was made
    assert not out_dir.exists() or not any(out_dir.rglob("model.safetensors")), sorted(out_dir.rglob("*"))
    assert not out_dir.exists(), sorted(out_dir.rglob("*"))
    assert seconds < 10, seconds  # generous: no training happened


TFLITE = [{"format": "onnx", "exporter": "legacy"}, {"format": "tflite"}]

# blocked package -> (recipe changes that need it, the extra the message must name)
EXTRAS = {
    "litert_torch": ({"export": TFLITE}, "pip install 'edgekit[tflite]'"),
    "ai_edge_litert": ({"export": TFLITE}, "pip install 'edgekit[tflite]'"),
    "torch_pruning": ({"passes": [{"name": "prune.structured", "ratio": 0.3}]}, "pip install 'edgekit[compress]'"),
    "neural_compressor": ({"passes": [{"name": "quantize.autotune"}]}, "pip install 'edgekit[compress]'"),
    "transformers": ({"model": {"arch": "hf", "path": "no-such-folder"}, "data": {"source": "tokens", "task": "random"},
                      "train": None, "passes": [], "gates": {}}, "pip install 'edgekit[hf]'"),
    "executorch": ({"export": [{"format": "executorch"}]}, "pip install 'edgekit[executorch]'"),
    "openvino": ({"bench": {"devices": ["host-cpu-openvino"]}}, "pip install 'edgekit[openvino]'"),  # its .onnx runtime
}


@pytest.mark.parametrize("package", sorted(EXTRAS))
def test_every_extras_absence_is_named_before_any_training(package, tmp_path):
    over, install = EXTRAS[package]
    recipe = write_recipe(tmp_path / "r.yaml", **over)
    p, s = edgekit("run", recipe, "--out", tmp_path / "run", block=(package,))
    assert_refused_before_work(p, s, tmp_path / "run", install, package)
    v, _ = edgekit("validate", recipe, block=(package,))
    assert v.returncode == 2 and install in v.stderr and "ok" not in v.stdout, v.stdout + v.stderr


def test_export_and_train_check_only_what_they_run(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", export=TFLITE)
    p, s = edgekit("export", recipe, "--format", "tflite", "--out", tmp_path / "run", block=("litert_torch",))
    assert_refused_before_work(p, s, tmp_path / "run", "tflite export needs: pip install 'edgekit[tflite]'")
    # exporting only ONNX needs no TFLite package: the checks pass and the export runs
    p, _ = edgekit("export", recipe, "--format", "onnx", "--no-passes", "--set", "train.epochs=1", "--out",
                   tmp_path / "onnx", block=("litert_torch", "ai_edge_litert"))
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "onnx" / "artifacts" / "onnx-fp32.onnx").is_file()
    assert not list((tmp_path / "onnx" / "artifacts").glob("*.tflite"))


def test_every_problem_is_listed_at_once(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", export=TFLITE, passes=[{"name": "prune.structured"}],
                          bench={"devices": ["typo-one", "host-cpu", "typo-two"]})
    p, s = edgekit("run", recipe, "--out", tmp_path / "run", block=("litert_torch", "torch_pruning"))
    assert_refused_before_work(p, s, tmp_path / "run", "4 problems", "unknown device 'typo-one'",
                               "unknown device 'typo-two'", "edgekit[tflite]", "edgekit[compress]")


def test_unknown_export_format_exits_2_at_once_naming_the_known(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml")
    p, s = edgekit("export", recipe, "--format", "tflitee", "--out", tmp_path / "run")
    assert_refused_before_work(p, s, tmp_path / "run", "unknown export format 'tflitee'",
                               "known: executorch, onnx, tflite, torch")
    p, s = edgekit("export", recipe, "--format", "torch", "--out", tmp_path / "run")
    assert_refused_before_work(p, s, tmp_path / "run", "no 'torch' export target", "it exports: onnx")


def test_validate_says_no_to_an_unknown_device_and_to_malformed_yaml(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", bench={"devices": ["host-cpuu"]})
    p, _ = edgekit("validate", recipe)
    assert p.returncode == 2 and "unknown device 'host-cpuu'" in p.stderr and "host-cpu" in p.stderr, p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n  model: [\n")
    p, _ = edgekit("validate", bad)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "invalid YAML" in p.stderr and "bad.yaml:2" in p.stderr
    ok, _ = edgekit("validate", ROOT / "recipes" / "quickstart.yaml")
    assert ok.returncode == 0 and "ok (quickstart)" in ok.stdout, ok.stdout + ok.stderr


def test_bench_with_an_unknown_device_leaves_the_report_as_it_was(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_recipe(run / "recipe.yaml")
    from edgekit.report.schema import Report

    report = Report(edgekit_version="0", recipe_name="tiny", created="then", recipe={}, recipe_sha256="0", seed=0,
                    environment={}, status="completed").model_dump_json(by_alias=True).encode()  # must not change
    (run / "report.json").write_bytes(report)
    p, s = edgekit("bench", run, "--device", "typo")
    assert p.returncode == 2 and "unknown device 'typo'" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert (run / "report.json").read_bytes() == report and sorted(x.name for x in run.iterdir()) == [
        "recipe.yaml", "report.json"]
    assert s < 10, s


def test_search_without_optuna_names_the_extra_in_one_line(tmp_path):
    p, s = edgekit("search", ROOT / "recipes" / "search-mobile-budget.yaml", "--out", tmp_path / "search",
                   block=("optuna",))
    assert_refused_before_work(p, s, tmp_path / "search", "pip install 'edgekit[search]'")
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_missing_plots_are_a_note_not_an_error(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml")
    p, _ = edgekit("validate", recipe, block=("matplotlib",))
    assert p.returncode == 0 and "pip install 'edgekit[report]'" in p.stderr and "without plots" in p.stderr, p.stderr


def test_the_checks_read_the_recipe_not_a_training():
    """In-process: the scope each command asks for."""
    from edgekit.preflight import collect
    from edgekit.recipe import Recipe

    r = Recipe.model_validate(tiny_recipe_dict(bench={"devices": ["nope", "nope"]}))
    problems, _ = collect(r)
    assert problems == ["unknown device 'nope' (known: " + problems[0].split("(known: ")[1]]
    assert collect(r, bench=False)[0] == [] and collect(r, devices=["host-cpu"])[0] == []
    assert collect(r, formats={"onnx"}, bench=False)[0] == []
