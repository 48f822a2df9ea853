"""What the bench agent's tasks share: loading a job's model in its runtime, and this process's memory and threads
as the OS reports them. Needs numpy and the runtime only, like the agent."""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.bench.job import Job

if TYPE_CHECKING:
    from edgekit.runtimes.base import Runtime, Session


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mb() -> float:
    return _status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_rss_mb() -> float:
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


def load_session(job: Job, i: int = 0) -> tuple[Runtime, Session]:
    """(runtime, session) of the job's model `i`, on the job's device."""
    from edgekit.runtimes import get_runtime

    m = job.session(i)
    runtime = get_runtime(m.runtime)
    if job.device == "cuda":
        from edgekit.bench.cuda_agent import load_on_cuda

        return runtime, load_on_cuda(runtime, job, m)
    return runtime, runtime.load(Path(m.path), threads=m.threads, providers=job.providers, **(m.runtime_options or {}))
