"""Agent task `bench`: load one artifact, time it, run the test inputs. Needs numpy and the runtime only."""

from __future__ import annotations

import itertools
import os
import platform

from edgekit.bench.agent_session import load_session, observed_threads, peak_rss_mb, rss_mb
from edgekit.bench.job import Job
from edgekit.timing import Stopwatch, interleave, time_call

CANARY_EVERY = 8


def _canary() -> None:
    acc = 0
    for k in range(3000):
        acc += k * k


def canary_ms() -> float:
    """A fixed single-threaded pure-Python workload timed between model runs: how fast this machine is right
    now. Gates divide latency ratios by canary ratios so two runs made under different machine load compare."""
    return time_call(_canary)


def run_bench(job: Job) -> dict:
    import numpy as np

    from edgekit.bench.energy import delta_uj, read_uj
    from edgekit.runtimes.base import fixed_batches

    x = np.load(job.input_file(), allow_pickle=False)
    out = {"threads": job.threads, "pid": os.getpid()}
    out["affinity"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    out["baseline_rss_mb"] = rss_mb()
    with Stopwatch() as load:
        runtime, sess = load_session(job)
    out["load_ms"] = load.ms
    out["runtime"], out["runtime_version"] = runtime.name, runtime.version()
    out["runtime_precision"] = getattr(sess, "inference_precision", None)
    out["machine"] = platform.machine()
    bs = sess.static_batch or job.batch_size
    out["batch_size"] = bs
    batches = fixed_batches(x, bs)
    out["first_inference_ms"] = time_call(lambda: sess.run_batch(batches[0]))
    for i in range(job.warmup):
        sess.run_batch(batches[i % len(batches)])
    device_lat, canary, runs, next_batch = [], [], itertools.count(), itertools.cycle(batches).__next__

    def after_each(_name):
        if getattr(sess, "last_device_ms", None) is not None:
            device_lat.append(sess.last_device_ms)
        if next(runs) % CANARY_EVERY == 0:
            canary.append(canary_ms())

    energy0 = read_uj() if job.energy else None
    lat = interleave({"model": lambda: sess.run_batch(next_batch())}, min_rounds=job.iterations,
                     min_time_s=job.min_time_s, max_time_s=job.max_time_s, after_each=after_each)["model"]
    energy = delta_uj(energy0, read_uj()) if energy0 else None
    out["latencies_ms"] = lat
    out["canary_ms"] = canary
    if device_lat:
        out["device_latencies_ms"] = device_lat
    if energy is not None and energy > 0:
        out["energy_per_batch_mj"] = energy / 1000.0 / len(lat)
    out.update(observed_threads())
    out["peak_rss_mb"] = peak_rss_mb()  # at the bench batch size: what the device needs to run the model
    if job.accuracy:
        outputs = sess.run(x)
        out["predictions"] = outputs.reshape(len(x), -1).argmax(1).tolist()
        if job.outputs_path:
            np.save(job.outputs_path, outputs.astype(np.float32))
        out["peak_rss_mb_accuracy_pass"] = peak_rss_mb()  # the whole test split at once, where the runtime allows
    try:
        out["ops"] = sess.ops()
    except Exception:  # op listing needs onnx, which a device may not have; it is not part of the measurement
        out["ops"] = {}
    return out
