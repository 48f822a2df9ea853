"""Bench agent: run one job (edgekit/bench/job.py) in a fresh process and write its result as JSON.

Run as `python -m edgekit.bench.agent JOB.json RESULT.json`. It needs only numpy and the runtime, so a fresh
process gives honest load time and peak memory and applies threads and CPU affinity to itself alone. The same
agent runs on remote devices (the ssh transport copies `shipped_modules()` there), so everything those modules
import at module level must need nothing beyond numpy and the runtime.

A job's `task` names its entry in `TASKS`: `bench` (time one artifact, run the test inputs), `probe` (peak GEMM
and memory bandwidth), `op_profile` (per-operator times from ONNX Runtime's profiler) or `paired` (two artifacts
timed interleaved).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import sys

from edgekit.bench.job import Job, JobError

TASKS = {
    "bench": "edgekit.bench.agent_bench:run_bench",
    "probe": "edgekit.bench.agent_probe:run_probe",
    "op_profile": "edgekit.bench.agent_opprof:run_op_profile",
    "paired": "edgekit.bench.agent_paired:run_paired",
}
"""Task name -> "module:function" taking the Job and returning the result dict."""

SUPPORT_MODULES = ("edgekit", "edgekit.errors", "edgekit.extras", "edgekit.timing", "edgekit.runtimes.*",
                   "edgekit.bench", "edgekit.bench.agent", "edgekit.bench.job", "edgekit.bench.agent_session",
                   "edgekit.bench.energy", "edgekit.bench.cuda_agent")
"""The modules the tasks run on; `name.*` is every module of that package."""


def shipped_modules() -> list[str]:
    """Every module the agent may import on a device: its support modules and each task's module."""
    return [*SUPPORT_MODULES, *(spec.partition(":")[0] for spec in TASKS.values())]


def run_task(job: Job) -> dict:
    if job.task not in TASKS:
        raise JobError(f"unknown agent task '{job.task}' (known: {sorted(TASKS)})")
    if job.affinity and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, job.affinity)
    module, _, fn = TASKS[job.task].partition(":")
    return getattr(importlib.import_module(module), fn)(job)


def main(argv: list[str]) -> int:
    job_path, result_path = argv[1], argv[2]
    job = None
    try:
        with open(job_path) as f:
            job = Job.from_json(f.read())
        result = run_task(job)
    except Exception as e:  # report any failure as data: the parent turns it into a failed result row
        result = {"error": f"{type(e).__name__}: {e}"}
    result["agent_file"] = os.path.abspath(__file__)  # which copy ran (the ssh transport ships its own)
    outputs = job.outputs_path if job is not None and job.return_outputs else None
    if outputs and "error" not in result and os.path.isfile(outputs):
        with open(outputs, "rb") as f:  # a remote job sends its outputs back inside the result
            result["outputs_npy_b64"] = base64.b64encode(f.read()).decode()
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, result_path)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
