import json
import os
import subprocess
import sys

import numpy as np
import pytest
from device_helpers import bench_run, digits_onnx, save_inputs, write_profile

from edgekit.devices import list_profiles, load_profile
from edgekit.devices.profile import DeviceProfile
from edgekit.errors import RecipeError

SHIPPED = {"host-cpu", "host-cpu-1t", "cuda-gpu", "rpi5", "android-phone", "jetson-orin-nano"}


def test_shipped_profiles_validate_and_cite_their_figures():
    profiles = {p.name: p for p in list_profiles()}
    assert SHIPPED <= set(profiles)
    for name in ("cuda-gpu", "rpi5", "jetson-orin-nano"):
        p = profiles[name]
        assert p.peaks.fp32_gflops and p.peaks.mem_bandwidth_gbs and p.peaks.source
        assert "datasheet" in p.path.read_text() or "published" in p.path.read_text().lower()
    assert profiles["rpi5"].ssh.host and profiles["android-phone"].adb.benchmark_model.endswith("benchmark_model")
    assert profiles["cuda-gpu"].transport == "cuda" and profiles["host-cpu-1t"].affinity == [0]


@pytest.mark.parametrize("text, key, line, words", [
    ("name: d\ntransport: ssh\nssh:\n  host: pi\n  hots: typo\n", "ssh.hots", 5, "unknown key"),
    ("name: d\ntransport: ssh\nssh:\n  host: pi\n  port: 70000\n", "ssh.port", 5, "less than or equal"),
    ("name: d\nkind: phone\n", "kind", 2, "'cpu'"),
    ("name: d\ndelegate: hexagon\n", "delegate", 2, "'xnnpack'"),
    ("name: d\npeaks:\n  fp32_gflops: -3\n", "peaks.fp32_gflops", 3, "greater than 0"),
    ("name: d\ntransport: adb\n", "(top level)", None, "`adb:` section"),
    ("name: d\nssh:\n  host: pi\n", "(top level)", None, "transport is 'local'"),
])
def test_bad_profile_names_key_and_line(tmp_path, text, key, line, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError) as e:
        load_profile(str(path))
    assert e.value.key == key and words in str(e.value)
    if line is not None:
        assert e.value.line == line and f"bad.yaml:{line}:" in str(e.value)


def test_measured_sidecar_is_read_back_and_preferred(tmp_path):
    path = write_profile(tmp_path, "dev", peaks={"fp32_gflops": 100.0, "int8_gops": 400.0, "source": "sheet"})
    (tmp_path / "dev.measured.yaml").write_text("name: dev\nmeasured:\n  fp32_gflops: 42.5\n  source: probe\n")
    p = load_profile(str(path))
    peaks = p.effective_peaks()
    assert p.measured.fp32_gflops == 42.5 and peaks["fp32_gflops"] == 42.5 and peaks["int8_gops"] == 400.0
    assert peaks["basis"] == {"fp32_gflops": "measured", "fp16_gflops": None, "int8_gops": "datasheet",
                              "mem_bandwidth_gbs": None}
    assert "dev.measured" not in {q.name for q in list_profiles(tmp_path)}
    (tmp_path / "dev.measured.yaml").write_text("name: other\nmeasured:\n  fp32_gflops: 1\n")
    with pytest.raises(RecipeError, match="not 'dev'"):
        load_profile(str(path))


@pytest.fixture(scope="module")
def cnn_onnx(cnn, splits, tmp_path_factory):
    return digits_onnx(cnn, splits, tmp_path_factory.mktemp("cnn"))


def _job(model, inputs, threads, affinity):
    from edgekit.bench.job import Job, Model

    return Job(models=[Model(str(model))], threads=threads, affinity=affinity, batch_size=8, warmup=2, iterations=30,
               min_time_s=0.2, max_time_s=5, inputs=inputs, accuracy=False)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs to tell placements apart")
def test_threads_and_affinity_are_observable_inside_the_agent(cnn_onnx, splits, tmp_path):
    from edgekit.devices.local import run_agent

    inputs = save_inputs(tmp_path, splits.x_test[:64])
    last = max(os.sched_getaffinity(0))
    one = run_agent(_job(cnn_onnx, inputs, 1, [last]), timeout_s=120)
    two = run_agent(_job(cnn_onnx, inputs, 2, sorted(os.sched_getaffinity(0))[:2]), timeout_s=120)
    assert one["affinity"] == [last] and set(one["cpus_seen"]) <= {last}  # every thread ran on the pinned CPU
    assert one["threads"] == 1 and two["threads"] == 2
    assert two["os_threads"] > one["os_threads"]  # the second intra-op thread (and BLAS/OpenMP pools) exist
    assert "energy_per_batch_mj" not in one or one["energy_per_batch_mj"] > 0


def test_energy_counters_sum_package_zones_and_handle_wraparound(tmp_path):
    from edgekit.bench.energy import delta_uj, read_uj

    assert read_uj(str(tmp_path)) is None  # nothing readable: no number, never an estimate
    for zone, e in (("intel-rapl:0", 1000), ("intel-rapl:0:0", 50), ("intel-rapl:1", 5000)):
        (tmp_path / zone).mkdir()
        (tmp_path / zone / "energy_uj").write_text(str(e))
        (tmp_path / zone / "max_energy_range_uj").write_text("10000")
    before = read_uj(str(tmp_path))
    assert set(before) == {str(tmp_path / "intel-rapl:0"), str(tmp_path / "intel-rapl:1")}  # sub-zones not counted
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("3000")
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("500")  # wrapped past 10000
    assert delta_uj(before, read_uj(str(tmp_path))) == 2000 + 5500


def test_energy_is_absent_without_readable_counters(cnn_onnx, splits, tmp_path):
    from edgekit.bench.config import BenchConfig
    from edgekit.bench.energy import read_uj
    from edgekit.bench.run import bench_artifact
    from edgekit.export.artifact import describe

    art = describe("cnn", "onnx", "fp32", cnn_onnx, cnn_onnx.parent)
    row = bench_artifact(art, cnn_onnx.parent, splits.x_test, splits.y_test, load_profile("host-cpu"),
                         BenchConfig(warmup=1, iterations=5, min_time_s=0, accuracy=False))
    assert row.status == "ok"
    if read_uj() is None:
        assert row.energy_mj is None
    else:
        assert row.energy_mj > 0


def test_probe_gives_positive_plausible_peaks_and_writes_the_sidecar(tmp_path):
    from edgekit.devices.probe import probe, write_measured

    path = write_profile(tmp_path, "probed", threads=1, runtimes=["onnxruntime"],
                         peaks={"fp32_gflops": 1e6, "source": "not a real datasheet"})
    p = load_profile(str(path))
    m = probe(p, mem_mb=32, gemm={"m": 256, "n": 256, "k": 256}, min_time_s=0.1)
    assert 0.1 < m.fp32_gflops < 5000 and 0.1 < m.int8_gops < 20000 and 0.1 < m.mem_bandwidth_gbs < 5000
    assert m.details["threads"] == 1 and "MatMulInteger" in m.source
    side = write_measured(p, m)
    assert side == tmp_path / "probed.measured.yaml"
    again = load_profile(str(path))
    assert again.measured.fp32_gflops == m.fp32_gflops and again.peaks.fp32_gflops == 1e6  # datasheet kept
    assert again.effective_peaks()["basis"]["fp32_gflops"] == "measured"


def test_probe_over_adb_is_refused_with_a_reason(tmp_path):
    from edgekit.devices.probe import probe
    from edgekit.errors import BenchError

    p = DeviceProfile(name="phone", transport="adb", adb={})
    with pytest.raises(BenchError, match="Python and ONNX Runtime on the device"):
        probe(p, mem_mb=8, gemm={"m": 8, "n": 8, "k": 8})


def test_check_local_lists_importable_runtimes():
    from edgekit.devices import check

    out = check(load_profile("host-cpu"))
    assert out["reachable"] and out["runtimes"]["onnxruntime"]["importable"]
    assert out["runtimes"]["torch"]["detail"].startswith("torch ")


def test_unreachable_device_is_skipped_and_the_others_still_run(cnn_onnx, splits, tmp_path):
    from edgekit.pipeline import stage_bench
    from edgekit.report.io import load_report

    dead = write_profile(tmp_path, "dead-pi", transport="ssh", runtimes=["onnxruntime"],
                         ssh={"host": "127.0.0.1", "port": 9, "connect_timeout_s": 3,
                              "known_hosts": str(tmp_path / "kh"), "ssh_config": "/dev/null"})
    run = bench_run(tmp_path, splits, cnn_onnx, ["a", "b"], [str(dead), "host-cpu"])
    stage_bench(run)
    rows = {(r.artifact, r.device): r for r in load_report(run.run_dir).results}
    for art in ("a", "b"):
        skipped = rows[(art, "dead-pi")]
        assert skipped.status == "skipped" and "unreachable" in skipped.error and "127.0.0.1:9" in skipped.error
        assert rows[(art, "host-cpu")].status == "ok" and rows[(art, "host-cpu")].latency_ms.samples >= 10
    assert any("dead-pi" in e for e in run.report.errors)



def test_a_format_the_device_lists_no_runtime_for_is_skipped_not_failed(cnn_onnx, splits, tmp_path):
    from edgekit.pipeline import stage_bench

    tfl_only = write_profile(tmp_path, "tflite-only", runtimes=["torch", "litert"])
    run = bench_run(tmp_path, splits, cnn_onnx, ["a"], [str(tfl_only)])
    stage_bench(run)
    row = run.report.results[0]
    assert row.status == "skipped" and "runtime onnxruntime is not listed for device tflite-only" in row.error
    assert run.report.errors == []  # the profile's choice, not a stage failure: the run still exits 0

def test_devices_cli_list_show_check():
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, timeout=300)

    out = cli("devices", "list")
    assert out.returncode == 0 and all(name in out.stdout for name in SHIPPED)
    out = cli("devices", "show", "rpi5")
    assert out.returncode == 0 and "raspberrypi.local" in out.stdout and "mem_bandwidth_gbs: 17.07" in out.stdout
    out = cli("devices", "check", "host-cpu", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["reachable"] is True
    out = cli("devices", "check", "rpi5")  # no Pi here: unreachable, exit 1, with the ssh reason
    assert out.returncode == 1 and "UNREACHABLE" in out.stdout


def test_local_bench_result_has_observability_fields(cnn_onnx, splits, tmp_path):
    from edgekit.devices.local import run_agent

    out = run_agent(_job(cnn_onnx, save_inputs(tmp_path, splits.x_test[:16]), 1, None), timeout_s=120)
    assert out["os_threads"] >= 1 and out["cpus_seen"] and np.isfinite(out["latencies_ms"]).all()


def test_a_shipped_profile_keeps_its_measured_peaks_in_the_working_folder(tmp_path, monkeypatch):
    """An installed package is not a place to write: probing host-cpu from a folder writes ./devices/."""
    from edgekit.devices.probe import write_measured
    from edgekit.devices.profile import MeasuredPeaks, load_profile, shipped_dir

    monkeypatch.chdir(tmp_path)
    p = load_profile("host-cpu")
    assert p.path.parent == shipped_dir().resolve()
    side = write_measured(p, MeasuredPeaks(fp32_gflops=12.5, source="test"))
    assert side == tmp_path / "devices" / "host-cpu.measured.yaml"
    assert not (shipped_dir() / "host-cpu.measured.yaml").exists()
    assert load_profile("host-cpu").measured.fp32_gflops == 12.5
