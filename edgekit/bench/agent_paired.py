"""Agent task `paired`: time two artifacts interleaved in one process, so both see the same machine.

Two runs benchmarked minutes apart on a shared machine differ by whatever else ran meanwhile (measured here: up
to 1.4x on an unchanged 0.2 ms model), which no statistic over one run can see. Timing baseline and candidate in
alternating short rounds (A B, then B A, ...) exposes both to the same load, so their ratio is stable and a
bootstrap over rounds gives an honest interval. Needs only numpy and the runtimes, like the agent itself.
"""

from __future__ import annotations

import time


def _session(job: dict, suffix: str):
    """Model A is the job's `model`/`runtime`/`threads`; model B the same keys with `_b` (a flat job, so the ssh
    transport ships both files like any other)."""
    from edgekit.bench.agent import load_session

    spec = {k: job[k + suffix] for k in ("model", "runtime", "threads", "runtime_options") if k + suffix in job}
    return load_session({**job, **spec})[1]


def _batches(x, bs: int):
    import numpy as np

    n = max(1, min(64, len(x) // bs))
    return [np.ascontiguousarray(np.resize(x[i * bs:(i + 1) * bs], (bs, *x.shape[1:]))) for i in range(n)]


def run_paired(job: dict) -> dict:
    """job: model, runtime, threads (A) and model_b, runtime_b, threads_b (B), inputs, batch_size, warmup,
    per_round, min_rounds, iterations, min_time_s, max_time_s. Returns latencies_ms [A, B], each a multiple of
    per_round long, where sample i belongs to round i // per_round for both models."""
    import numpy as np

    x = np.load(job["inputs"], allow_pickle=False)
    sessions = [_session(job, ""), _session(job, "_b")]
    bs = [s.static_batch or job["batch_size"] for s in sessions]
    batches = [_batches(x, b) for b in bs]
    for s, bb in zip(sessions, batches):
        for i in range(job["warmup"] + 1):
            s.run_batch(bb[i % len(bb)])
    k, lat = job["per_round"], [[], []]
    start, rnd = time.perf_counter(), 0
    while True:
        order = (0, 1) if rnd % 2 == 0 else (1, 0)  # ABBA: neither side always runs right after the other
        for m in order:
            s, bb = sessions[m], batches[m]
            for j in range(k):
                t0 = time.perf_counter_ns()
                s.run_batch(bb[(rnd * k + j) % len(bb)])
                lat[m].append((time.perf_counter_ns() - t0) / 1e6)
        rnd += 1
        elapsed = time.perf_counter() - start
        enough = rnd >= job["min_rounds"] and rnd * k >= job["iterations"] and elapsed >= job["min_time_s"]
        if enough or elapsed >= job["max_time_s"]:
            break
    return {"latencies_ms": lat, "per_round": k, "rounds": rnd, "batch_size": bs,
            "threads": [job.get("threads"), job.get("threads_b", job.get("threads"))]}
