"""The emulated arm64 board (lab/arm64-qemu.sh) end to end: a tiny recipe's fp32 and int8 ONNX files and its int8
TFLite file run through ONNX Runtime's and LiteRT's aarch64 kernels under qemu-user, reached over ssh like a real
board; the report carries their fidelity, their cross-ISA parity with this host, and no latency verdicts for them."""

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from helpers import write_recipe

SCRIPT = Path(__file__).parents[1] / "lab" / "arm64-qemu.sh"
PREREQUISITES = ("needs root and apt-get", "missing:", "could not download", "did not unpack")

pytestmark = pytest.mark.slow


def _why_not() -> str | None:
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return f"the emulated board is built on x86_64 Linux hosts (this is {platform.system()} {platform.machine()})"
    if not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        return "no OpenSSH client (ssh, ssh-keygen) on this machine"
    have = os.path.exists("/usr/bin/qemu-aarch64-static") and os.path.exists("/usr/sbin/sshd")
    if not have and (os.geteuid() != 0 or not shutil.which("apt-get")):
        return "qemu-user-static or openssh-server is missing and this session cannot apt-get install them"
    return None


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    why = _why_not()
    if why:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("arm64")
    env = dict(os.environ, EDGEKIT_ARM64_PROFILES=str(d / "devices"), EDGEKIT_ARM64_SSHD=str(d / "sshd"),
               EDGEKIT_ARM64_HOST_PYTHON=sys.executable)
    p = subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True, env=env, timeout=1200)
    if p.returncode != 0 and any(k in p.stderr for k in PREREQUISITES):
        pytest.skip(f"the board could not be built here: {p.stderr.strip().splitlines()[-1]}")
    assert p.returncode == 0, p.stderr[-3000:]
    yield d
    subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, env=env, timeout=60)


def edgekit(*args, cwd):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=1200)


def test_artifacts_run_on_arm_kernels_with_cross_isa_parity(board):
    bench = {"devices": ["host-cpu"], "warmup": 1, "iterations": 5, "min_time_s": 0.01, "max_time_s": 2}
    recipe = write_recipe(board / "tiny.yaml", bench=bench,
                          export=[{"format": "onnx", "exporter": "legacy"}, {"format": "tflite", "precision": "int8"}],
                          gates={"max_accuracy_drop": 0.2, "max_latency_p90_ms": 1000})
    p = edgekit("run", recipe, "--out", board / "run", cwd=board)
    assert p.returncode == 0, p.stderr[-3000:]
    p = edgekit("bench", board / "run", "-d", "host-cpu", "-d", "arm64-emulated", cwd=board)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    rep = json.loads((board / "run" / "report.json").read_text())
    arm = {r["artifact"]: r for r in rep["results"] if r["device"] == "arm64-emulated"}
    host = {r["artifact"]: r for r in rep["results"] if r["device"] == "host-cpu"}
    assert set(arm) == set(host) == {"onnx-fp32", "onnx-int8", "tflite-int8"}
    for name, r in arm.items():
        assert r["status"] == "ok", r["error"]
        assert r["machine"] == "aarch64" and r["emulated"] is True  # the agent really ran as aarch64 code
        assert r["runtime"] == ("litert" if name.startswith("tflite") else "onnxruntime")
        m = r["metrics"]
        assert m["cosine"] > 0.99 and m["top1_agreement"] > 0.95  # fidelity to the x86 fp32 reference
        assert r["vs_host"].startswith(f"{name}@host-cpu") and m["vs_host_cosine"] > 0.999
        assert m["vs_host_top1_flips"] <= 0.02 * r["test_samples"]
        assert abs(r["accuracy"] - host[name]["accuracy"]) <= 0.02
    assert arm["onnx-fp32"]["metrics"]["vs_host_max_abs"] < 1e-3  # fp32 kernels differ only in rounding

    p = edgekit("gate", board / "run", "--junit", board / "gates.xml", cwd=board)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    cases = {(c.get("classname").rsplit(".", 1)[-1], c.get("name")): c
             for c in ET.parse(board / "gates.xml").iter("testcase")}
    lat = {t for g, t in cases if g == "max_latency_p90_ms"}
    for name in arm:  # latency gates skip the emulated rows; accuracy gates still judge them
        acc = cases[("max_accuracy_drop", f"{name}@arm64-emulated")]
        assert acc.find("failure") is None and acc.find("skipped") is None
        assert (f"{name}@host-cpu" in lat) == (f"{name}@arm64-emulated" in lat)
        if f"{name}@arm64-emulated" in lat:
            assert cases[("max_latency_p90_ms", f"{name}@host-cpu")].find("skipped") is None
            skipped = cases[("max_latency_p90_ms", f"{name}@arm64-emulated")].find("skipped")
            assert skipped is not None and "emulated device" in skipped.get("message")
    assert any(t.endswith("@arm64-emulated") for t in lat)
    md = (board / "run" / "report.md").read_text()
    assert "vs_host_cosine" in md and "| emulated |" in md
