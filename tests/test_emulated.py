"""Rows from an emulated device: outputs count, timings do not (latency gates skipped, no speed-ups); cross-ISA
parity against the same file on this host."""

import platform
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from device_helpers import write_profile

from edgekit.bench.cross_isa import add_cross_isa
from edgekit.bench.stats import latency_stats
from edgekit.devices import load_profile
from edgekit.errors import DeviceError
from edgekit.recipe import GatesConfig
from edgekit.report.ci_outputs import gates_junit
from edgekit.report.gates import evaluate_gates, gates_passed, verdict
from edgekit.report.schema import Artifact, Report, Result
from edgekit.report.summary import run_verdict, speedup_cell


def _row(artifact, device, ms, emulated=None, machine=None, accuracy=0.9):
    return Result(artifact=artifact, device=device, runtime="onnxruntime", accuracy=accuracy, size_bytes=1000,
                  latency_ms=latency_stats(np.full(50, ms) + np.linspace(0, 0.01, 50)), emulated=emulated,
                  machine=machine, test_samples=100)


def _report(*rows):
    arts = [Artifact(name="fp32", format="onnx", precision="fp32", path="fp32.onnx", size_bytes=1000),
            Artifact(name="int8", format="onnx", precision="int8", path="int8.onnx", size_bytes=400, source="fp32")]
    return Report(edgekit_version="0", recipe_name="t", created="now", artifacts=arts, results=list(rows),
                  reference={"accuracy": 0.9}, status="completed")


def test_latency_gates_skip_emulated_rows_and_accuracy_gates_still_apply():
    rep = _report(_row("int8", "host-cpu", 2.0), _row("int8", "arm64-emulated", 900.0, emulated=True, accuracy=0.5))
    gates = evaluate_gates(rep, GatesConfig(max_latency_p90_ms=5, max_accuracy_drop=0.05))
    by = {(g.name, g.target): g for g in gates}
    skipped = by[("max_latency_p90_ms", "int8@arm64-emulated")]
    assert skipped.severity == "skipped" and skipped.passed and skipped.value is None
    assert "emulated" in skipped.detail and verdict(skipped) == "SKIP"
    assert by[("max_latency_p90_ms", "int8@host-cpu")].passed
    drop = by[("max_accuracy_drop", "int8@arm64-emulated")]  # 0.9 -> 0.5 on the board: still an error
    assert not drop.passed and drop.severity == "error" and not gates_passed(gates)
    ts = ET.fromstring(gates_junit(gates)).find("testsuite")
    assert ts.get("skipped") == "1" and ts.get("failures") == "1"
    v = run_verdict(rep.model_copy(update={"gates": gates}))
    assert v.headline.startswith("FAILED: gate max_accuracy_drop on int8@arm64-emulated") and v.details[0] == \
        "2/3 gates passed"


def test_an_emulated_row_alone_passes_its_gates_on_outputs_only():
    rep = _report(_row("int8", "arm64-emulated", 900.0, emulated=True))
    gates = evaluate_gates(rep, GatesConfig(max_latency_p90_ms=5, max_accuracy_drop=0.05))
    assert gates_passed(gates) and {g.severity for g in gates} == {"error", "skipped"}
    assert run_verdict(rep.model_copy(update={"gates": gates})).headline == "1/1 gates passed"


def test_device_budget_latency_is_skipped_on_an_emulated_device(tmp_path, monkeypatch):
    (tmp_path / "devices").mkdir()
    write_profile(tmp_path / "devices", "board-emu", emulated=True, budgets={"max_latency_ms": 1, "max_size_mb": 1})
    monkeypatch.chdir(tmp_path)
    assert load_profile("board-emu").emulated and not load_profile("host-cpu").emulated
    rep = _report(_row("int8", "board-emu", 900.0, emulated=True))
    gates = {g.name: g for g in evaluate_gates(rep, GatesConfig(device_budgets=True))}
    assert gates["device_budget_latency_ms"].severity == "skipped"
    assert gates["device_budget_size_mb"].passed and gates["device_budget_size_mb"].severity == "error"


def test_emulated_flag_is_validated(tmp_path):
    path = write_profile(tmp_path, "bad-emu", emulated="sometimes")
    with pytest.raises(DeviceError) as e:
        load_profile(str(path))
    assert "emulated" in str(e.value)


def test_no_speed_up_is_claimed_for_emulated_rows():
    fp32_emu, int8_emu = _row("fp32", "arm64-emulated", 900.0, True), _row("int8", "arm64-emulated", 300.0, True)
    rep = _report(_row("fp32", "host-cpu", 3.0), _row("int8", "host-cpu", 1.0), fp32_emu, int8_emu)
    assert speedup_cell(rep, rep.results[1], None).text.endswith("×")
    assert speedup_cell(rep, int8_emu, None).text == "emulated"
    assert speedup_cell(rep, fp32_emu, None).text == "emulated"


def test_cross_isa_metrics_compare_the_same_file_across_architectures():
    rng = np.random.default_rng(0)
    host_out = rng.normal(size=(40, 10)).astype(np.float32)
    arm_out = host_out.copy()
    arm_out[3] = 0
    arm_out[3, 7] = 50.0  # one sample whose top-1 moves
    host_out[3, 7] = -50.0
    rows = [_row("int8", "host-cpu", 1.0, machine=platform.machine()),
            _row("int8", "arm64-emulated", 900.0, emulated=True, machine="aarch64"),
            _row("fp32", "arm64-emulated", 900.0, emulated=True, machine="aarch64")]  # no host row: left alone
    outs = {("int8", "host-cpu"): host_out, ("int8", "arm64-emulated"): arm_out,
            ("fp32", "arm64-emulated"): arm_out}
    add_cross_isa(rows, outs)
    m = rows[1].metrics
    assert m["vs_host_top1_flips"] == 1 and m["vs_host_max_abs"] == pytest.approx(100.0)
    assert 0 < m["vs_host_cosine"] < 1 and rows[1].vs_host == f"int8@host-cpu ({platform.machine()})"
    assert rows[0].metrics is None and rows[2].metrics is None
    same = [rows[0], rows[1].model_copy(update={"metrics": None})]
    add_cross_isa(same, {("int8", "host-cpu"): host_out, ("int8", "arm64-emulated"): host_out.copy()})
    assert same[1].metrics == {"vs_host_max_abs": 0.0, "vs_host_mean_abs": 0.0, "vs_host_cosine": pytest.approx(1.0),
                               "vs_host_top1_flips": 0.0}


def test_cross_isa_compares_with_the_same_runtime_on_this_host():
    rng = np.random.default_rng(1)
    ort_out, ov_out = rng.normal(size=(20, 10)).astype(np.float32), rng.normal(size=(20, 10)).astype(np.float32)
    here = platform.machine()
    rows = [_row("int8", "host-cpu", 1.0, machine=here),
            _row("int8", "host-cpu-openvino", 1.0, machine=here).model_copy(update={"runtime": "openvino"}),
            _row("int8", "arm64-emulated-openvino", 900.0, emulated=True, machine="aarch64")
            .model_copy(update={"runtime": "openvino"}),
            _row("int8", "arm64-emulated", 900.0, emulated=True, machine="aarch64").model_copy(update={"runtime": "x"})]
    outs = {("int8", "host-cpu"): ort_out, ("int8", "host-cpu-openvino"): ov_out,
            ("int8", "arm64-emulated-openvino"): ov_out.copy(), ("int8", "arm64-emulated"): ort_out.copy()}
    add_cross_isa(rows, outs)
    assert rows[2].vs_host == f"int8@host-cpu-openvino ({here})" and rows[2].metrics["vs_host_max_abs"] == 0.0
    assert rows[3].vs_host == f"int8@host-cpu ({here})"  # no host row on its runtime: the first host row
