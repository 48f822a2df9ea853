"""CUDA side of the bench agent: PyTorch artifacts on the GPU (fp32 or fp16) and the GPU probe.

Host timing around `run_batch` is synchronized (the result is copied back to the host, after an explicit
`torch.cuda.synchronize()`); CUDA events around the forward pass give the device-side time as well
(`last_device_ms`). ONNX artifacts use ONNX Runtime's CUDA execution provider (onnxruntime-gpu).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.bench.job import Job, Model
from edgekit.errors import RuntimeUnavailable
from edgekit.runtimes.base import Runtime, Session


def _torch_cuda(index: int = 0):
    import torch

    if not torch.cuda.is_available():
        raise RuntimeUnavailable("torch.cuda.is_available() is False: no CUDA device or a CPU-only torch build")
    return torch, torch.device("cuda", index)


class CudaTorchSession(Session):
    """A loaded torch module on the GPU, timed by CUDA events (`last_device_ms`)."""

    def __init__(self, module, device, dtype):
        self.module, self.device, self.dtype = module, device, dtype

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, self.dtype)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            y = self.module(t)
            end.record()
            torch.cuda.synchronize(self.device)
            self.last_device_ms = start.elapsed_time(end)
            return y.float().cpu().numpy()

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_batch(np.ascontiguousarray(x, dtype=np.float32))

    def ops(self) -> dict[str, int]:
        return {}


def load_on_cuda(runtime: Runtime, job: Job, model: Model) -> Session:
    if runtime.name == "onnxruntime":
        providers = job.providers or ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if "CUDAExecutionProvider" not in providers:
            providers = ["CUDAExecutionProvider", *providers]
        return runtime.load(Path(model.path), threads=model.threads, providers=providers)
    if runtime.name != "torch":
        raise RuntimeUnavailable(f"runtime {runtime.name} has no CUDA path in edgekit (torch and onnxruntime do)")
    from edgekit.runtimes.torch import TorchSession

    torch, device = _torch_cuda(job.device_index)
    sess = runtime.load(Path(model.path), threads=model.threads)
    assert isinstance(sess, TorchSession)  # the torch runtime's session holds the module
    dtype = torch.float16 if job.torch_dtype == "fp16" else torch.float32
    return CudaTorchSession(sess.module.to(device=device, dtype=dtype), device, dtype)


def probe_cuda(job: Job) -> dict:
    """Peak matmul throughput (fp32 without TF32, fp16, int8 via torch._int_mm) and device-to-device copy bandwidth."""
    torch, device = _torch_cuda(job.device_index)
    torch.backends.cuda.matmul.allow_tf32 = False
    n = job.cuda_n
    out = {"device": torch.cuda.get_device_name(device), "n": n, "torch_version": torch.__version__}

    def timed(fn, reps=10):
        fn()
        torch.cuda.synchronize(device)
        best = float("inf")
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            torch.cuda.synchronize(device)
            best = min(best, s.elapsed_time(e) / 1e3)
        return best

    for key, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        out[key] = {"g_per_s": 2.0 * n**3 / timed(lambda a=a, b=b: a @ b) / 1e9}
    try:
        a = torch.randint(-127, 127, (n, n), device=device, dtype=torch.int8)
        b = torch.randint(-127, 127, (n, n), device=device, dtype=torch.int8)
        out["int8"] = {"g_per_s": 2.0 * n**3 / timed(lambda: torch._int_mm(a, b)) / 1e9}
    except (RuntimeError, AttributeError) as e:
        out["int8"] = {"error": str(e).splitlines()[0]}
    nbytes = job.mem_mb * 2**20
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    out["bandwidth"] = {"gbs": 2 * nbytes / timed(lambda: dst.copy_(src)) / 1e9, "array_mb": nbytes // 2**20}
    return out
