"""The cuda transport: PyTorch on the GPU (fp32, fp16) and ONNX Runtime's CUDA EP. Skipped without a GPU."""

import pytest
import torch

from edgekit.bench.config import BenchConfig
from edgekit.devices.profile import DeviceProfile

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="torch.cuda.is_available() is False: no CUDA GPU (or a CPU-only torch build)")


@pytest.fixture(scope="module")
def artifacts(cnn, splits, tmp_path_factory):
    from edgekit.export.config import OnnxExport, TorchExport
    from edgekit.export.onnx import OnnxExporter
    from edgekit.export.torch_program import TorchProgramExporter

    d = tmp_path_factory.mktemp("cuda")
    onnx_art = OnnxExporter().export(cnn, splits.x_test, OnnxExport(format="onnx", exporter="legacy"), d / "m.onnx", d,
                                     "onnx-fp32")
    torch_art = TorchProgramExporter().export(cnn, splits.x_test, TorchExport(format="torch"), d / "m.pt2", d, "torch")
    return d, onnx_art, torch_art


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_torch_on_cuda_matches_cpu_accuracy(artifacts, splits, dtype):
    from edgekit.bench.run import bench_artifact
    from edgekit.devices import load_profile

    d, _, torch_art = artifacts
    gpu = DeviceProfile(name=f"gpu-{dtype}", kind="gpu", transport="cuda", runtimes=["torch"],
                        cuda={"torch_dtype": dtype})
    cfg = BenchConfig(warmup=5, iterations=50, min_time_s=0.2)
    row = bench_artifact(torch_art, d, splits.x_test, splits.y_test, gpu, cfg)
    cpu = bench_artifact(torch_art, d, splits.x_test, splits.y_test, load_profile("host-cpu"), cfg)
    assert row.status == "ok", row.error
    assert row.device_time_ms is not None and 0 < row.device_time_ms.p50 <= row.latency_ms.p50 * 1.5
    assert abs(row.accuracy - cpu.accuracy) <= (0.0 if dtype == "fp32" else 0.02)
    assert row.energy_mj is None


def test_onnxruntime_cuda_ep_when_installed(artifacts, splits):
    import onnxruntime as ort

    from edgekit.bench.run import bench_artifact

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed (no CUDAExecutionProvider)")
    d, onnx_art, _ = artifacts
    gpu = DeviceProfile(name="gpu", kind="gpu", transport="cuda", runtimes=["onnxruntime"],
                        providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    row = bench_artifact(onnx_art, d, splits.x_test, splits.y_test, gpu, BenchConfig(warmup=5, iterations=30))
    assert row.status == "ok", row.error


def test_cuda_probe_and_check():
    from edgekit.devices import check
    from edgekit.devices.probe import probe

    gpu = DeviceProfile(name="gpu", kind="gpu", transport="cuda", runtimes=["torch"])
    assert check(gpu)["reachable"]
    m = probe(gpu, mem_mb=256)
    assert m.fp32_gflops > 100 and m.fp16_gflops > m.fp32_gflops and m.mem_bandwidth_gbs > 50
