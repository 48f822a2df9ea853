"""Bench agent: load one artifact in a fresh process, time it, run the test inputs, print JSON.

Run as `python -m edgekit.bench.agent JOB.json RESULT.json`. It needs only numpy and the runtime, so a fresh
process gives honest load time and peak memory and applies threads and CPU affinity to itself alone.
"""

from __future__ import annotations

import json
import os
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


def run_job(job: dict) -> dict:
    import numpy as np

    from edgekit.runtimes import get_runtime

    if job.get("affinity"):
        os.sched_setaffinity(0, job["affinity"])
    x = np.load(job["inputs"], allow_pickle=False)
    runtime = get_runtime(job["runtime"])
    out = {"runtime": runtime.name, "runtime_version": runtime.version(), "threads": job.get("threads"),
           "affinity": sorted(os.sched_getaffinity(0)), "pid": os.getpid()}
    out["baseline_rss_mb"] = _rss_mb()
    t0 = time.perf_counter()
    sess = runtime.load(job["model"], threads=job.get("threads"), providers=job.get("providers"))
    out["load_ms"] = (time.perf_counter() - t0) * 1e3
    bs = sess.static_batch or job["batch_size"]
    out["batch_size"] = bs
    n_batches = max(1, min(64, len(x) // bs))
    batches = [np.ascontiguousarray(np.resize(x[i * bs:(i + 1) * bs], (bs, *x.shape[1:]))) for i in range(n_batches)]
    t0 = time.perf_counter()
    sess.run_batch(batches[0])
    out["first_inference_ms"] = (time.perf_counter() - t0) * 1e3
    for i in range(job["warmup"]):
        sess.run_batch(batches[i % n_batches])
    lat = []
    start = time.perf_counter()
    i = 0
    while True:
        b = batches[i % n_batches]
        t0 = time.perf_counter_ns()
        sess.run_batch(b)
        lat.append((time.perf_counter_ns() - t0) / 1e6)
        i += 1
        elapsed = time.perf_counter() - start
        if (i >= job["iterations"] and elapsed >= job["min_time_s"]) or elapsed >= job["max_time_s"]:
            break
    out["latencies_ms"] = lat
    if job.get("accuracy", True):
        outputs = sess.run(x)
        out["predictions"] = outputs.reshape(len(x), -1).argmax(1).tolist()
        if job.get("outputs_path"):
            np.save(job["outputs_path"], outputs.astype(np.float32))
    out["peak_rss_mb"] = _peak_rss_mb()
    out["ops"] = sess.ops()
    return out


def main(argv: list[str]) -> int:
    job_path, result_path = argv[1], argv[2]
    with open(job_path) as f:
        job = json.load(f)
    try:
        result = run_job(job)
    except Exception as e:  # report any failure as data: the parent turns it into a failed result row
        result = {"error": f"{type(e).__name__}: {e}"}
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, result_path)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
