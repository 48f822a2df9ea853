"""Bench agent: load one artifact in a fresh process, time it, run the test inputs, print JSON.

Run as `python -m edgekit.bench.agent JOB.json RESULT.json`. It needs only numpy and the runtime, so a fresh
process gives honest load time and peak memory and applies threads and CPU affinity to itself alone. The same
agent runs on remote devices (the ssh transport copies it there with the runtimes), so everything imported at
module level here, in edgekit.runtimes and in the task modules must need nothing beyond numpy and the runtime.

A job's `task` picks what it does: `bench` (default), `probe` (peak GEMM and memory bandwidth) or
`op_profile` (per-operator times from ONNX Runtime's profiler) or `paired` (two artifacts timed interleaved).
"""

from __future__ import annotations

import base64
import json
import os
import platform
import resource
import sys
import time


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    return _status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _peak_rss_mb() -> float:
    """VmHWM belongs to this process image; ru_maxrss would carry over the parent's peak across exec."""
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def observed_threads() -> dict:
    """What the OS says about this process: its thread count and the CPUs its threads last ran on."""
    cpus, n = set(), 0
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            n += 1
            cpus.add(int(fields[36]))  # field 39 of stat: the CPU last executed on
    except (OSError, IndexError, ValueError):
        return {}
    return {"os_threads": n, "cpus_seen": sorted(cpus)}


def apply_placement(job: dict) -> None:
    if job.get("affinity") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, job["affinity"])


def load_session(job: dict):
    from edgekit.runtimes import get_runtime

    runtime = get_runtime(job["runtime"])
    if job.get("device") == "cuda":
        from edgekit.bench.cuda_agent import load_on_cuda

        return runtime, load_on_cuda(runtime, job)
    return runtime, runtime.load(job["model"], threads=job.get("threads"), providers=job.get("providers"),
                                 **(job.get("runtime_options") or {}))


CANARY_EVERY = 8


def _canary_ms() -> float:
    """A fixed single-threaded pure-Python workload timed between model runs: how fast this machine is right
    now. Gates divide latency ratios by canary ratios so two runs made under different machine load compare."""
    t0 = time.perf_counter_ns()
    acc = 0
    for k in range(3000):
        acc += k * k
    return (time.perf_counter_ns() - t0) / 1e6


def run_job(job: dict) -> dict:
    import numpy as np

    from edgekit.bench.energy import delta_uj, read_uj

    x = np.load(job["inputs"], allow_pickle=False)
    out = {"threads": job.get("threads"), "pid": os.getpid()}
    out["affinity"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    out["baseline_rss_mb"] = _rss_mb()
    t0 = time.perf_counter()
    runtime, sess = load_session(job)
    out["load_ms"] = (time.perf_counter() - t0) * 1e3
    out["runtime"], out["runtime_version"] = runtime.name, runtime.version()
    out["runtime_precision"] = getattr(sess, "inference_precision", None)
    out["machine"] = platform.machine()
    bs = sess.static_batch or job["batch_size"]
    out["batch_size"] = bs
    n_batches = max(1, min(64, len(x) // bs))
    batches = [np.ascontiguousarray(np.resize(x[i * bs:(i + 1) * bs], (bs, *x.shape[1:]))) for i in range(n_batches)]
    t0 = time.perf_counter()
    sess.run_batch(batches[0])
    out["first_inference_ms"] = (time.perf_counter() - t0) * 1e3
    for i in range(job["warmup"]):
        sess.run_batch(batches[i % n_batches])
    lat, device_lat, canary = [], [], []
    energy0 = read_uj() if job.get("energy", True) else None
    start = time.perf_counter()
    i = 0
    while True:
        b = batches[i % n_batches]
        t0 = time.perf_counter_ns()
        sess.run_batch(b)
        lat.append((time.perf_counter_ns() - t0) / 1e6)
        if getattr(sess, "last_device_ms", None) is not None:
            device_lat.append(sess.last_device_ms)
        if i % CANARY_EVERY == 0:
            canary.append(_canary_ms())
        i += 1
        elapsed = time.perf_counter() - start
        if (i >= job["iterations"] and elapsed >= job["min_time_s"]) or elapsed >= job["max_time_s"]:
            break
    energy = delta_uj(energy0, read_uj()) if energy0 else None
    out["latencies_ms"] = lat
    out["canary_ms"] = canary
    if device_lat:
        out["device_latencies_ms"] = device_lat
    if energy is not None and energy > 0:
        out["energy_per_batch_mj"] = energy / 1000.0 / len(lat)
    out.update(observed_threads())
    out["peak_rss_mb"] = _peak_rss_mb()  # at the bench batch size: what the device needs to run the model
    if job.get("accuracy", True):
        outputs = sess.run(x)
        out["predictions"] = outputs.reshape(len(x), -1).argmax(1).tolist()
        if job.get("outputs_path"):
            np.save(job["outputs_path"], outputs.astype(np.float32))
        out["peak_rss_mb_accuracy_pass"] = _peak_rss_mb()  # the whole test split at once, where the runtime allows
    try:
        out["ops"] = sess.ops()
    except Exception:  # op listing needs onnx, which a device may not have; it is not part of the measurement
        out["ops"] = {}
    return out


def run_task(job: dict) -> dict:
    apply_placement(job)
    task = job.get("task", "bench")
    if task == "probe":
        from edgekit.bench.agent_probe import run_probe

        return run_probe(job)
    if task == "op_profile":
        from edgekit.bench.agent_opprof import run_op_profile

        return run_op_profile(job)
    if task == "paired":
        from edgekit.bench.agent_paired import run_paired

        return run_paired(job)
    return run_job(job)


def main(argv: list[str]) -> int:
    job_path, result_path = argv[1], argv[2]
    with open(job_path) as f:
        job = json.load(f)
    try:
        result = run_task(job)
    except Exception as e:  # report any failure as data: the parent turns it into a failed result row
        result = {"error": f"{type(e).__name__}: {e}"}
    result["agent_file"] = os.path.abspath(__file__)  # which copy ran (the ssh transport ships its own)
    if job.get("return_outputs") and "error" not in result and os.path.isfile(job.get("outputs_path") or ""):
        with open(job["outputs_path"], "rb") as f:  # a remote job sends its outputs back inside the result
            result["outputs_npy_b64"] = base64.b64encode(f.read()).decode()
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, result_path)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
