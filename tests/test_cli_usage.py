"""A newcomer's first commands, run as the real `edgekit` from an empty folder: usage mistakes get one line and a
hint (exit 2), `--version`, `devices list` finds the profiles shipped in the package, and `edgekit init`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import pytest

import edgekit

SOURCE_ROOT = str(Path(edgekit.__file__).resolve().parents[1])
SHIPPED = sorted(p.name[:-5] for p in (files("edgekit.devices") / "profiles").iterdir() if p.name.endswith(".yaml"))


def edgekit_cli(*args, cwd: Path, code: str | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """Run `edgekit ARGS` in `cwd` (importing this checkout's edgekit); returns the process and its wall time."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SOURCE_ROOT, os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "edgekit", *map(str, args)]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    return proc, time.perf_counter() - start


@pytest.mark.parametrize(("args", "says"), [
    (["rnu"], ["no such command 'rnu'", "Did you mean 'run'?", "hint: edgekit --help"]),
    (["train"], ["missing argument", "hint: edgekit train --help"]),
    (["run", "r.yaml", "--sett", "x=1"], ["no such option: --sett", "--set?", "hint: edgekit run --help"]),
    (["bench", "RUN", "--iterations", "abc"], ["'--iterations'", "hint: edgekit bench --help"]),
])
def test_usage_errors_are_one_line_and_a_hint(tmp_path, args, says):
    proc, elapsed = edgekit_cli(*args, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), proc.stderr
    assert all(s in proc.stderr for s in says), proc.stderr
    assert elapsed < 10  # under 2 s on an idle machine; the bound only catches work done before parsing


def test_version(tmp_path):
    proc, _ = edgekit_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"edgekit {edgekit.__version__}" and proc.stderr == ""


def test_usage_errors_and_help_without_click(tmp_path):
    """typer brings its own parser: a plain install has no `click`, and edgekit must not need it."""
    block = "import sys; sys.modules['click'] = None; sys.argv[0] = 'edgekit'; from edgekit.cli import main; main()"
    proc, _ = edgekit_cli("rnu", cwd=tmp_path, code=block)
    assert proc.returncode == 2 and "Did you mean 'run'?" in proc.stderr and len(proc.stderr.splitlines()) == 2
    proc, _ = edgekit_cli("--help", cwd=tmp_path, code=block)
    assert proc.returncode == 0 and "init" in proc.stdout and "env" in proc.stdout


def test_os_error_is_one_line_without_traceback(tmp_path):
    (tmp_path / "a-file").write_text("")
    proc, _ = edgekit_cli("init", "a-file/demo", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "a-file" in lines[0], proc.stderr
    assert lines[0].endswith(": Not a directory"), proc.stderr

def test_devices_list_from_an_empty_folder_shows_the_shipped_profiles(tmp_path):
    assert {"host-cpu", "host-cpu-1t", "rpi5"} <= set(SHIPPED)
    proc, _ = edgekit_cli("devices", "list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(line.split()[0] for line in proc.stdout.splitlines()) == SHIPPED


def test_init_copies_a_recipe_and_the_profiles_and_keeps_edits(tmp_path):
    from edgekit.recipe import load_recipe

    proc, _ = edgekit_cli("init", "demo", cwd=tmp_path)
    demo = tmp_path / "demo"
    assert proc.returncode == 0, proc.stderr
    assert (demo / "quickstart.yaml").read_text() == (files("edgekit") / "recipes" / "quickstart.yaml").read_text()
    assert sorted(p.stem for p in (demo / "devices").glob("*.yaml")) == SHIPPED
    assert load_recipe(demo / "quickstart.yaml").bench.devices == ["host-cpu"]

    # the copied profiles override the shipped ones when edgekit runs in that folder
    profile = demo / "devices" / "host-cpu.yaml"
    profile.write_text(profile.read_text().replace("description:", "description: EDITED", 1))
    listed, _ = edgekit_cli("devices", "list", cwd=demo)
    assert listed.returncode == 0 and "EDITED" in listed.stdout

    again, _ = edgekit_cli("init", "demo", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert "EDITED" in profile.read_text()
    forced, _ = edgekit_cli("init", "demo", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and "EDITED" not in profile.read_text()

    bad, _ = edgekit_cli("init", "-rf", cwd=tmp_path)
    assert bad.returncode == 2 and not (tmp_path / "-rf").exists()
    bad, _ = edgekit_cli("init", "two words", cwd=tmp_path)
    assert bad.returncode == 2 and "not a valid name" in bad.stderr and not (tmp_path / "two words").exists()


def test_env_reports_versions_cpu_runtimes_and_extras(tmp_path):
    proc, _ = edgekit_cli("env", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["edgekit"] == edgekit.__version__ and info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["packages"]["torch"] and info["cpu"]["model"] and isinstance(info["cpu"]["isa"], list)
    assert "CPUExecutionProvider" in info["modules"]["onnxruntime"]["providers"]
    assert info["modules_error"] is None and info["modules"]["torch"]["version"]
    for extra, missing in (info["extras_missing"] or {}).items():
        assert missing["install"] == f"pip install 'edgekit[{extra}]'" and missing["missing"]
    text, _ = edgekit_cli("env", cwd=tmp_path)
    assert text.returncode == 0 and "onnxruntime" in text.stdout and "isa" in text.stdout


def test_interrupt_exits_130(tmp_path):
    code = ("import sys; sys.argv[0] = 'edgekit'; from edgekit.cli import app, main\n"
            "@app.command('wait')\ndef wait():\n    raise KeyboardInterrupt\nmain()")
    proc, _ = edgekit_cli("wait", cwd=tmp_path, code=code)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr
