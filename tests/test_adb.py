"""The adb transport without a phone: the benchmark_model parser on real published outputs
(tests/data/benchmark_model/SOURCES.md), the command line it builds, and the whole transport driven through a
stand-in `adb` executable that replays those outputs."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from edgekit.devices.benchmark_model import latency_summary, parse
from edgekit.devices.profile import DeviceProfile

DATA = Path(__file__).parent / "data" / "benchmark_model"


def sample(name: str) -> str:
    return (DATA / name).read_text()


def test_parse_cpu_op_profiling_output():
    p = parse(sample("cpu_op_profiling_mobilenet_v1.txt"))
    assert not p["failed"]
    assert p["init_ms"] == pytest.approx(17.187) and p["first_inference_ms"] == pytest.approx(3512.391)
    assert p["inference_avg_ms"] == pytest.approx(2950.34)  # "2.95034e+06" us
    assert p["warmup"]["count"] == 1 and p["warmup"]["avg"] == pytest.approx(3512.391)  # "count=1 curr=3512391"
    reg = p["regular"]
    assert reg["count"] == 50 and reg["min"] == pytest.approx(2727.568) and reg["max"] == pytest.approx(3189.954)
    assert reg["std"] == pytest.approx(109.798)
    assert p["memory"] == {"delta_init_mb": 4.21094, "delta_overall_mb": 46.0859}
    ops = p["ops"]
    assert len(ops) == 31 and ops[0]["type"] == "CONV_2D" and ops[0]["index"] == 0
    assert ops[0]["name"] == "MobilenetV1/MobilenetV1/Conv2d_0/Relu6" and ops[0]["avg_ms"] == pytest.approx(60.957)
    assert ops[-1] == {"type": "SOFTMAX", "start_ms": 2950.011, "first_ms": 0.23, "avg_ms": 0.233, "percent": 0.008,
                       "mem_kb": 0.0, "calls": 1, "name": "MobilenetV1/Predictions/Reshape_1", "index": 30}
    # the per-op averages account for the whole inference
    assert sum(o["avg_ms"] for o in ops) == pytest.approx(p["inference_avg_ms"], rel=0.01)


def test_parse_older_peak_memory_and_xnnpack_outputs():
    p = parse(sample("cpu_fp32_yolov5s.txt"))
    assert p["regular"]["avg"] == pytest.approx(249.684) and "warmup" not in p
    assert p["memory"] == {"footprint_init_mb": 4.92969, "footprint_overall_mb": 138.809}
    q = parse(sample("xnnpack_int8_rpi.txt"))
    assert q["warmup"]["count"] == 9 and q["regular"]["count"] == 50
    assert latency_summary(q) == {"count": 50, "first": 58.154, "min": 53.077, "max": 60.727,
                                  "avg": pytest.approx(55.0432), "std": 1.562}


def test_parse_failed_run():
    p = parse(sample("nnapi_failed_yolov5s_int8.txt"))
    assert p["failed"] and "Failed to apply NNAPI delegate." in p["errors"]


def test_parse_percentiles_prefixes_and_periodic_peak():
    # line formats from tsl StatWithPercentiles::OutputToStream and benchmark_model.cc, with log prefixes
    text = ("INFO: count=3 first=2000 curr=1500 min=1500 max=2000 avg=1666.67 std=235\n"
            "11-27 09:00:00.000  4242  4242 I tflite  : count=50 first=1200 curr=1100 min=1000 max=1500 avg=1120.5 "
            "std=80 p5=1010 median=1100 p95=1400\n"
            "INFO: Inference timings in us: Init: 3337, First inference: 2000, Warmup (avg): 1666.67, "
            "Inference (avg): 1120.5\n"
            "INFO: Overall peak memory footprint (MB) via periodic monitoring: 93.2383\n"
            "VERBOSE: Replacing 58 out of 58 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions "
            "for the whole graph.\n")
    p = parse(text)
    assert latency_summary(p) == {"count": 50, "first": 1.2, "min": 1.0, "max": 1.5, "avg": pytest.approx(1.1205),
                                  "std": 0.08, "p5": 1.01, "median": 1.1, "p95": 1.4}
    assert p["memory"]["peak_mb"] == pytest.approx(93.2383) and p["init_ms"] == pytest.approx(3.337)
    assert p["delegation"] == [{"delegated_nodes": 58, "total_nodes": 58, "delegate": "TfLiteXNNPackDelegate",
                                "partitions": 1}]
    prefixed = parse("\n".join("INFO: " + ln for ln in sample("xnnpack_int8_rpi.txt").splitlines()))
    assert latency_summary(prefixed) == latency_summary(parse(sample("xnnpack_int8_rpi.txt")))


@pytest.fixture(autouse=True)
def adb_client(tmp_path, monkeypatch):
    """The stand-in client written by `fake_adb`: the adb client comes from $EDGEKIT_ADB, never from a profile."""
    monkeypatch.setenv("EDGEKIT_ADB", str(tmp_path / "adb"))


def phone(tmp_path, **over) -> DeviceProfile:
    adb = {"serial": "R5CW123", "benchmark_model": "/data/local/tmp/benchmark_model"}
    adb.update(over.pop("adb", {}))
    return DeviceProfile(name="phone", kind="mobile", transport="adb", runtimes=["litert"], threads=4, adb=adb, **over)


def test_benchmark_command_has_threads_affinity_delegate_and_profiling(tmp_path):
    from edgekit.devices.adb import benchmark_command

    p = phone(tmp_path, affinity=[4, 5, 6, 7], delegate="gpu", adb={"extra_flags": ["--gpu_backend=cl"]})
    from edgekit.bench.job import Job

    job = Job(threads=4, warmup=5, iterations=100, min_time_s=2, max_time_s=60)
    argv = benchmark_command(p, "/data/local/tmp/edgekit/m.tflite", job, op_profiling=True)
    assert argv[:3] == ["taskset", "f0", "/data/local/tmp/benchmark_model"]
    for flag in ("--graph=/data/local/tmp/edgekit/m.tflite", "--num_threads=4", "--warmup_runs=5", "--num_runs=100",
                 "--min_secs=2", "--max_secs=60", "--use_gpu=true", "--enable_op_profiling=true",
                 "--report_peak_memory_footprint=true", "--gpu_backend=cl"):
        assert flag in argv
    plain = benchmark_command(phone(tmp_path, delegate="none", adb={"report_peak_memory": False}), "m.tflite", job)
    assert "--use_xnnpack=false" in plain and "taskset" not in plain and "--enable_op_profiling=true" not in plain
    assert "--report_peak_memory_footprint=true" not in plain
    assert "--use_nnapi=true" in benchmark_command(phone(tmp_path, delegate="nnapi"), "m.tflite", job)


def fake_adb(tmp_path: Path, output: str, state: str = "device") -> Path:
    """An `adb` stand-in: get-state, push and shell, replaying `output` for benchmark_model; logs its calls."""
    (tmp_path / "fake_adb.json").write_text(json.dumps({"state": state, "output": str(DATA / output)}))
    script = tmp_path / "adb"
    script.write_text(f"""#!{sys.executable}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
cfg = json.load(open(os.path.join(here, "fake_adb.json")))
args = sys.argv[1:]
open(os.path.join(here, "calls.log"), "a").write(json.dumps(args) + "\\n")
if args[:1] == ["-s"]:
    args = args[2:]
if args[0] == "get-state":
    print(cfg["state"] if cfg["state"] == "device" else "error: device offline", file=sys.stdout)
    sys.exit(0 if cfg["state"] == "device" else 1)
if args[0] == "push":
    print("1 file pushed")
    sys.exit(0)
cmd = " ".join(args[1:])
if "--graph=" in cmd:
    sys.stderr.write(open(cfg["output"]).read())
    sys.exit(1 if "Benchmarking failed" in open(cfg["output"]).read() else 0)
if "BM-OK" in cmd:
    print("BM-OK\\nPixel 8\\nTensor G3\\narm64-v8a")
sys.exit(0)
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
def tflite_art(tmp_path):
    from edgekit.export.artifact import file_sha256
    from edgekit.report.schema import Artifact

    (tmp_path / "model.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))  # never run here: the phone runs it
    return Artifact(name="tflite-int8", format="tflite", precision="int8", path="model.tflite",  # inside the run folder
                    size_bytes=72, sha256=file_sha256(tmp_path / "model.tflite"))


def test_bench_over_adb_fills_the_result_schema(tmp_path, tflite_art, splits):
    from edgekit.bench.config import BenchConfig
    from edgekit.bench.run import bench_artifact

    fake_adb(tmp_path, "xnnpack_int8_rpi.txt")
    row = bench_artifact(tflite_art, tmp_path, splits.x_test, splits.y_test, phone(tmp_path, affinity=[4, 5]),
                         BenchConfig(warmup=3, iterations=50, min_time_s=1, threads=4))
    assert row.status == "ok", row.error
    assert row.latency_ms is None and row.latency_summary["avg"] == pytest.approx(55.0432)  # the tool's own summary
    assert row.latency_summary["count"] == 50 and row.throughput == pytest.approx(1000 / 55.0432)
    assert row.load_ms == pytest.approx(18.777) and row.first_inference_ms == pytest.approx(64.791)
    assert row.accuracy is None and row.runtime_version == "benchmark_model (on device)"
    calls = [json.loads(ln) for ln in (tmp_path / "calls.log").read_text().splitlines()]
    assert ["-s", "R5CW123", "push", str(tmp_path / "model.tflite"), "/data/local/tmp/edgekit/model.tflite"] in calls
    run = next(c for c in calls if "--graph=" in " ".join(c))
    assert run[:3] == ["-s", "R5CW123", "shell"] and run[3].startswith("taskset 30 /data/local/tmp/benchmark_model")
    assert "--num_threads=4" in run[3] and "--use_xnnpack=true" in run[3]
    assert any(c[2:4] == ["shell", "rm -f /data/local/tmp/edgekit/model.tflite"] for c in calls)


def test_failed_benchmark_and_offline_device_are_clear_errors(tmp_path, tflite_art, splits, monkeypatch):
    from edgekit.bench.config import BenchConfig
    from edgekit.bench.run import bench_artifact
    from edgekit.devices import check, reachable

    fake_adb(tmp_path, "nnapi_failed_yolov5s_int8.txt")
    row = bench_artifact(tflite_art, tmp_path, splits.x_test, splits.y_test, phone(tmp_path, delegate="nnapi"),
                         BenchConfig(iterations=5))
    assert row.status == "failed" and "Failed to apply NNAPI delegate" in row.error
    fake_adb(tmp_path, "xnnpack_int8_rpi.txt", state="offline")
    assert "device offline" in reachable(phone(tmp_path))
    assert check(phone(tmp_path)) == {"device": "phone", "transport": "adb", "reachable": False,
                                      "reason": "adb device R5CW123: error: device offline"}
    row = bench_artifact(tflite_art, tmp_path, splits.x_test, splits.y_test, phone(tmp_path), BenchConfig())
    assert row.status == "failed" and "not available" in row.error
    monkeypatch.setenv("EDGEKIT_ADB", str(tmp_path / "no-such-adb"))
    assert "not found" in reachable(phone(tmp_path))


def test_check_over_adb(tmp_path):
    from edgekit.devices import check

    fake_adb(tmp_path, "xnnpack_int8_rpi.txt")
    out = check(phone(tmp_path))
    assert out["reachable"] and out["runtimes"]["litert"]["importable"]
    assert out["environment"]["getprop"] == ["Pixel 8", "Tensor G3", "arm64-v8a"]


def test_op_profile_over_adb_flags_layers_off_the_delegate(tmp_path, tflite_art):
    from edgekit.bench.profile import profile_artifact

    fake_adb(tmp_path, "nnapi_gpu_profile_yolov5s.txt")
    prof = profile_artifact(tmp_path / tflite_art.path, phone(tmp_path, delegate="nnapi"), runs=20, warmup=2)
    assert len(prof["layers"]) == 11
    off = {f["layer"] for f in prof["flags"] if f["kind"] == "fallback"}
    assert off == {lay["name"] for lay in prof["layers"] if lay["op"] in ("STRIDED_SLICE", "RESIZE_NEAREST_NEIGHBOR")}
    assert len(off) == 8 and not any(lay["off_accelerator"] for lay in prof["layers"] if "Delegate" in lay["op"])
    assert prof["sum_ops_ms"] == pytest.approx(2.118 + 1.020 + 2.118 + 1.030 + 1.040 + 1.024 + 79.010 + 0.253 + 14.418
                                               + 0.627 + 56.058)
    calls = (tmp_path / "calls.log").read_text()
    assert "--enable_op_profiling=true" in calls and "--use_nnapi=true" in calls


def test_op_profile_over_adb_on_a_cpu_run_accounts_for_the_latency(tmp_path, tflite_art):
    from edgekit.bench.profile import profile_artifact

    fake_adb(tmp_path, "cpu_op_profiling_mobilenet_v1.txt")
    prof = profile_artifact(tmp_path / tflite_art.path, phone(tmp_path, delegate="none"))
    assert prof["flags"] == [] and len(prof["layers"]) == 31
    assert prof["coverage"] == pytest.approx(1.0, abs=0.15)
    assert os.path.basename(prof["path"]) == "model.tflite"
