"""Agent task `paired`: time two artifacts interleaved in one process, so both see the same machine.

Two runs benchmarked minutes apart on a shared machine differ by whatever else ran meanwhile (measured here: up
to 1.4x on an unchanged 0.2 ms model), which no statistic over one run can see. Timing baseline and candidate in
alternating short rounds (A B, then B A, ...) exposes both to the same load, so their ratio is stable and a
bootstrap over rounds gives an honest interval. Needs only numpy and the runtimes, like the agent itself.
"""

from __future__ import annotations

import itertools

from edgekit.bench.agent_session import load_session
from edgekit.bench.job import Job
from edgekit.timing import interleave


def _runner(sess, batches):
    next_batch = itertools.cycle(batches).__next__
    return lambda: sess.run_batch(next_batch())


def run_paired(job: Job) -> dict:
    """The job's models[0] (A) and models[1] (B) timed in rounds of `per_round` runs each. Returns latencies_ms
    [A, B], each a multiple of per_round long, where sample i belongs to round i // per_round for both models."""
    import numpy as np

    from edgekit.runtimes.base import fixed_batches

    x = np.load(job.input_file(), allow_pickle=False)
    sessions = [load_session(job, i)[1] for i in range(2)]
    bs = [s.static_batch or job.batch_size for s in sessions]
    runners = {str(i): _runner(s, fixed_batches(x, b)) for i, (s, b) in enumerate(zip(sessions, bs))}
    k = job.per_round
    lat = interleave(runners, block=k, warmup=job.warmup + 1, min_rounds=job.min_rounds, min_samples=job.iterations,
                     min_time_s=job.min_time_s, max_time_s=job.max_time_s)
    return {"latencies_ms": [lat["0"], lat["1"]], "per_round": k, "rounds": len(lat["0"]) // k, "batch_size": bs,
            "threads": [job.session(0).threads, job.session(1).threads]}
