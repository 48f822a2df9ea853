"""A transport that runs the real bench agent's job in this process (no subprocess, no copy)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from edgekit.bench.job import Job
from edgekit.errors import BenchError


def run_agent(job: Job, timeout_s: float, profile=None) -> dict:
    from edgekit.bench import agent

    with tempfile.TemporaryDirectory(prefix="edgekit-inproc-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(job.to_json())
        agent.main(["agent", str(job_path), str(result_path)])
        result = json.loads(result_path.read_text())
    if "error" in result:
        raise BenchError(result["error"])
    return result


def check(profile, timeout_s: float = 10.0) -> dict:
    from edgekit.devices.base import summarize_check

    return summarize_check(profile, {"python": "this process", "modules": {"numpy": {"version": "in process"}}})
