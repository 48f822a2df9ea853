"""Local transport: each bench runs in a fresh subprocess with the profile's threads and CPU affinity.

The agent pins itself (sched_setaffinity) before it imports numpy or a runtime, so every thread pool they create
inherits the affinity; thread counts go to the runtime and to the OpenMP/BLAS environment variables. (No
preexec_fn: forking a parent that runs JAX or other threaded libraries that way is unsafe.)
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from edgekit.bench.job import Job
from edgekit.child_python import child_env, python_argv
from edgekit.errors import BenchError

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def agent_env(job: Job) -> dict:
    env = child_env()
    if job.threads:
        for k in THREAD_ENV:
            env[k] = str(job.threads)
    return env


def run_agent(job: Job, timeout_s: float, profile=None) -> dict:
    """Run the bench agent on this machine and return its result dict (raises BenchError on failure)."""
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(job.to_json())
        try:
            proc = subprocess.run(
                python_argv("-m", "edgekit.bench.agent", str(job_path), str(result_path)),
                capture_output=True, text=True, timeout=timeout_s, env=agent_env(job),
            )
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"bench of {job.model or job.task} timed out after {timeout_s:.0f} s") from e
        if not result_path.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise BenchError(f"bench agent died (exit {proc.returncode}): {' | '.join(tail)}")
        import json

        result = json.loads(result_path.read_text())
    if "error" in result:
        raise BenchError(result["error"])
    return result


def check(profile, timeout_s: float = 120.0) -> dict:
    """Reachable (always, locally), and which of the profile's runtimes import in a fresh interpreter."""
    from edgekit.devices.base import check_code, parse_check_output, summarize_check, unreachable

    try:
        proc = subprocess.run(python_argv("-c", check_code()), capture_output=True, text=True, timeout=timeout_s,
                              env=child_env())
    except (subprocess.TimeoutExpired, OSError) as e:
        return unreachable(profile, f"{type(e).__name__}: {e}")
    return summarize_check(profile, parse_check_output(proc.stdout))
