import os

import numpy as np
import pytest

from edgekit.bench.config import BenchConfig
from edgekit.bench.environment import fingerprint
from edgekit.bench.run import bench_artifact
from edgekit.bench.stats import latency_stats
from edgekit.devices import load_profile
from edgekit.devices.profile import DeviceProfile
from edgekit.export.config import OnnxExport, TorchExport
from edgekit.export.onnx import OnnxExporter
from edgekit.export.torch_program import TorchProgramExporter


def test_latency_stats_by_hand():
    s = latency_stats([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.p50 == 3.0 and s.min == 1.0 and s.max == 100.0 and s.samples == 5
    assert s.mean == pytest.approx(22.0) and s.std == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    assert s.p50 <= s.p90 <= s.p99 <= s.max
    with pytest.raises(ValueError):
        latency_stats([])


@pytest.fixture(scope="module")
def artifacts(cnn, splits, tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    onnx_art = OnnxExporter().export(cnn, splits.x_test, OnnxExport(format="onnx", exporter="legacy"), d / "m.onnx", d,
                                     "onnx-fp32")
    torch_art = TorchProgramExporter().export(cnn, splits.x_test, TorchExport(format="torch"), d / "m.pt2", d, "torch")
    return d, {"onnxruntime": onnx_art, "torch": torch_art}


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_bench_on_a_real_session(runtime, artifacts, splits, cnn):
    from edgekit.train.trainer import predict

    d, arts = artifacts
    cfg = BenchConfig(warmup=2, iterations=30, min_time_s=0.1)
    row = bench_artifact(arts[runtime], d, splits.x_test, splits.y_test, load_profile("host-cpu"), cfg,
                         keep_samples_dir=d / "samples")
    assert row.status == "ok", row.error
    lat = row.latency_ms
    assert lat.samples >= 30 and 0 < lat.min <= lat.p50 <= lat.p90 <= lat.p99 <= lat.max
    assert row.throughput > 0 and row.peak_rss_mb > row.baseline_rss_mb > 0
    assert row.peak_rss_mb_accuracy_pass >= row.peak_rss_mb  # measured at the bench batch first
    ref_acc = float((predict(cnn, splits.x_test).argmax(1) == splits.y_test).mean())
    # same model, same test split; a near-tie may break differently in another runtime's kernels
    assert row.accuracy == pytest.approx(ref_acc, abs=2.5 / len(splits.y_test))
    saved = np.load(d / "samples" / f"{arts[runtime].name}@host-cpu.npz")
    assert len(saved["predictions"]) == len(splits.y_test) and len(saved["latency_ms"]) == lat.samples


def test_threads_and_affinity_take_effect_in_the_subprocess(artifacts, splits):
    from edgekit.bench.job import Job, Model
    from edgekit.devices.local import run_agent

    d, arts = artifacts
    np.save(d / "x.npy", splits.x_test[:8])
    job = Job(models=[Model(str(d / "m.onnx"))], threads=1, affinity=[0], batch_size=1, warmup=1, iterations=5,
              min_time_s=0.0, max_time_s=5, accuracy=False, inputs=str(d / "x.npy"))
    out = run_agent(job, timeout_s=120)
    assert out["affinity"] == [0] and out["threads"] == 1


def test_failed_bench_is_a_row_not_an_exception(artifacts, splits, tmp_path):
    from edgekit.report.schema import Artifact

    d, arts = artifacts
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    bad = Artifact(name="bad", format="onnx", precision="fp32", path="bad.onnx", size_bytes=7)
    row = bench_artifact(bad, tmp_path, splits.x_test, splits.y_test, load_profile("host-cpu"),
                         BenchConfig(iterations=1, min_time_s=0))
    assert row.status == "failed" and "bad.onnx" in row.error


def test_runtime_not_on_device_is_skipped(artifacts, splits):
    d, arts = artifacts
    prof = DeviceProfile(name="ort-only", runtimes=["onnxruntime"])
    row = bench_artifact(arts["torch"], d, splits.x_test, splits.y_test, prof, BenchConfig())
    assert row.status == "skipped" and "torch" in row.error


def test_environment_fingerprint():
    env = fingerprint(threads=2)
    assert env["logical_cores"] >= 1 and "onnxruntime" in env["packages"] and env["cpu"]["model"]


def test_hardware_facts():
    from edgekit.hardware import ISA_FLAGS, cpu_info, usable_cores

    info = cpu_info()
    assert info["model"] and set(info["isa"]) <= set(ISA_FLAGS)
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
