"""Local transport: each bench runs in a fresh subprocess with the profile's threads and CPU affinity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from edgekit.errors import BenchError


def run_agent(job: dict, timeout_s: float) -> dict:
    """Run the bench agent on this machine and return its result dict (raises BenchError on failure)."""
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job))
        env = dict(os.environ)
        if job.get("threads"):
            env["OMP_NUM_THREADS"] = str(job["threads"])
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "edgekit.bench.agent", str(job_path), str(result_path)],
                capture_output=True, text=True, timeout=timeout_s, env=env,
            )
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"bench of {job['model']} timed out after {timeout_s:.0f} s") from e
        if not result_path.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise BenchError(f"bench agent died (exit {proc.returncode}): {' | '.join(tail)}")
        result = json.loads(result_path.read_text())
    if "error" in result:
        raise BenchError(result["error"])
    return result
