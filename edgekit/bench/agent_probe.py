"""Probe task of the bench agent: peak GEMM throughput through the runtime, and memory bandwidth.

The host builds two one-node ONNX models (fp32 MatMul, int8 MatMulInteger u8 x s8 -> s32) and ships them; here
they run in ONNX Runtime with the job's threads and providers, and the best of several timed runs gives the
throughput (2*M*N*K operations per run). Bandwidth is the best of several numpy copies of a large array, counted
as bytes read plus bytes written, with one thread and with the job's threads. Needs numpy and onnxruntime only.
"""

from __future__ import annotations

from edgekit.bench.job import Job
from edgekit.timing import interleave


def _best_seconds(fn, min_time_s: float, min_runs: int = 3, warmup: int = 2) -> tuple[float, int]:
    ms = interleave({"fn": fn}, warmup=warmup, min_rounds=min_runs, min_time_s=min_time_s)["fn"]
    return min(ms) / 1e3, len(ms)


def _feeds(sess, rng):
    import numpy as np

    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        if inp.type == "tensor(uint8)":
            feeds[inp.name] = rng.integers(0, 255, size=shape, dtype=np.uint8)
        elif inp.type == "tensor(int8)":
            feeds[inp.name] = rng.integers(-127, 127, size=shape, dtype=np.int8)
        else:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def gemm_ops_per_s(path: str, ops: float, threads: int | None, providers: list[str] | None, min_time_s: float) -> dict:
    import numpy as np

    from edgekit.runtimes.onnxruntime import ort_module

    ort = ort_module()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, sess_options=so, providers=providers or ["CPUExecutionProvider"])
    feeds = _feeds(sess, np.random.default_rng(0))
    best, runs = _best_seconds(lambda: sess.run(None, feeds), min_time_s)
    return {"g_per_s": ops / best / 1e9, "best_ms": best * 1e3, "runs": runs, "providers": sess.get_providers()}


def copy_bandwidth_gbs(mb: int, threads: int, reps: int = 5) -> dict:
    """Best copy bandwidth of an `mb`-MiB float64 array (read + write bytes), with 1 and with `threads` threads."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    n = mb * 2**20 // 8
    src = np.ones(n)
    dst = np.empty_like(src)
    out = {}
    for t in sorted({1, max(1, threads)}):
        bounds = np.linspace(0, n, t + 1).astype(int)
        parts = [(src[a:b], dst[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        with ThreadPoolExecutor(t) as ex:
            def copy(ex=ex, parts=parts):
                list(ex.map(lambda p: np.copyto(p[1], p[0]), parts))

            best, _ = _best_seconds(copy, 0.0, min_runs=reps, warmup=1)
        out[t] = 2 * src.nbytes / best / 1e9
    return {"gbs_by_threads": out, "gbs": max(out.values()), "array_mb": mb}


def run_probe(job: Job) -> dict:
    """models[0] is the fp32 GEMM, models[1] (optional) the int8 one."""
    import os

    if job.device == "cuda":
        from edgekit.bench.cuda_agent import probe_cuda

        return probe_cuda(job)
    g = job.gemm or {}
    ops = 2.0 * g["m"] * g["n"] * g["k"]
    threads = job.threads or len(os.sched_getaffinity(0))
    out = {"gemm": g, "threads": threads, "affinity": sorted(os.sched_getaffinity(0))}
    for key, m in zip(("fp32", "int8"), job.models):
        out[key] = gemm_ops_per_s(m.path, ops, threads, job.providers, job.min_time_s)
    out["bandwidth"] = copy_bandwidth_gbs(job.mem_mb, threads)
    from edgekit.runtimes.onnxruntime import ort_module

    out["runtime_version"] = ort_module().__version__
    return out
