"""The emulated arm64 board (lab/arm64-qemu.sh) end to end: recipes/reach-arm64.yaml's fp32 and int8 ONNX, TFLite and
ExecuTorch files, run on this host by ONNX Runtime, OpenVINO, LiteRT and ExecuTorch, and on the board by the aarch64
kernels of ONNX Runtime, OpenVINO and LiteRT under qemu-user, reached over ssh like a real board; the report carries
every (file, runtime, ISA)'s fidelity to the fp32 reference, the ARM rows' parity with the same file on the same
runtime here, and no latency verdicts for the emulated rows."""

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

ROOT = Path(__file__).parents[1]
SCRIPT, RECIPE = ROOT / "lab" / "arm64-qemu.sh", ROOT / "recipes" / "reach-arm64.yaml"
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
    for module in ("executorch", "openvino"):
        pytest.importorskip(module, reason=f"the recipe's {module} files and rows need {module} on this host")
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


HOST_RUNTIME = {"onnx": "onnxruntime", "tflite": "litert", "executorch": "executorch"}
ARM_RUNTIME = {"onnx": "onnxruntime", "tflite": "litert"}


def test_board_lists_and_imports_its_runtimes(board):
    p = edgekit("devices", "check", "arm64-emulated", cwd=board)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    for rt in ("onnxruntime", "litert", "openvino"):
        assert re.search(rf"^\s+{rt}\s+ok\b", p.stdout, re.M), p.stdout


def test_every_file_runtime_and_isa_against_the_fp32_reference(board):
    p = edgekit("run", RECIPE, "--out", board / "run", cwd=board)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    rep = json.loads((board / "run" / "report.json").read_text())
    rows = {(r["artifact"], r["device"]): r for r in rep["results"]}
    names = {a["name"] for a in rep["artifacts"] if a["status"] == "ok"}
    assert names == {f"{f}-{p}" for f in HOST_RUNTIME for p in ("fp32", "int8")}
    for name in names:
        fmt = name.split("-")[0]
        ok = {"host-cpu": HOST_RUNTIME[fmt], "host-cpu-openvino": "openvino" if fmt == "onnx" else HOST_RUNTIME[fmt]}
        if fmt in ARM_RUNTIME:
            ok["arm64-emulated"] = ARM_RUNTIME[fmt]
        if fmt == "onnx":
            ok["arm64-emulated-openvino"] = "openvino"
        for dev in {"arm64-emulated", "arm64-emulated-openvino"} - set(ok):  # not listed there: skipped, not failed
            r = rows[(name, dev)]
            assert r["status"] == "skipped" and f"{HOST_RUNTIME[fmt]} is not listed" in r["error"]
        for dev, runtime in ok.items():
            r = rows[(name, dev)]
            assert r["status"] == "ok", r["error"]
            assert r["runtime"] == runtime
            m = r["metrics"]
            assert m["cosine"] > 0.99 and m["top1_agreement"] > 0.93, (name, dev, m)  # vs the x86 fp32 reference
            if runtime == "openvino":
                assert r["runtime_precision"] == "f32"
            if not dev.startswith("arm64"):
                continue
            assert r["machine"] == "aarch64" and r["emulated"] is True  # the agent really ran as aarch64 code
            host = "host-cpu-openvino" if runtime == "openvino" else "host-cpu"  # the same file on the same runtime
            assert r["vs_host"].startswith(f"{name}@{host} "), r["vs_host"]
            assert m["vs_host_cosine"] > 0.999 and m["vs_host_top1_flips"] <= 0.03 * r["test_samples"], m
            assert abs(r["accuracy"] - rows[(name, host)]["accuracy"]) <= 0.03
            if name.endswith("fp32"):
                assert m["vs_host_max_abs"] < 1e-3  # fp32 kernels differ only in rounding

    p = edgekit("gate", board / "run", "--junit", board / "gates.xml", cwd=board)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    cases = {(c.get("classname").rsplit(".", 1)[-1], c.get("name")): c
             for c in ET.parse(board / "gates.xml").iter("testcase")}
    lat = {t for g, t in cases if g == "max_latency_p90_ms"}
    arm = [(a, d) for (a, d), r in rows.items() if d.startswith("arm64") and r["status"] == "ok"]
    for name, dev in arm:  # latency gates skip the emulated rows; accuracy gates still judge them
        acc = cases[("max_accuracy_drop", f"{name}@{dev}")]
        assert acc.find("failure") is None and acc.find("skipped") is None
        if f"{name}@{dev}" in lat:
            skipped = cases[("max_latency_p90_ms", f"{name}@{dev}")].find("skipped")
            assert skipped is not None and "emulated device" in skipped.get("message")
    assert any(t.endswith("@arm64-emulated") for t in lat)
    assert cases[("max_latency_p90_ms", "onnx-int8@host-cpu")].find("skipped") is None
    md = (board / "run" / "report.md").read_text()
    assert "vs_host_cosine" in md and "| emulated |" in md
