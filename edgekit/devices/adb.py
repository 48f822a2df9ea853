"""adb transport: push a .tflite to an Android device and run TFLite's `benchmark_model` binary there.

The binary (path in the profile's `adb.benchmark_model`) runs with the profile's threads, CPU affinity (via
`taskset`), delegate (XNNPACK / GPU / NNAPI, or none) and, for `edgekit profile`, op profiling. Its text output is
parsed (edgekit/devices/benchmark_model.py) into the agent's result schema: init time, first inference, warm-up
and steady-state latency, memory. benchmark_model keeps no per-run samples, so results carry the tool's own
summary (count, min, max, avg, std, and p5/median/p95 when the build prints them) instead of percentiles computed
by edgekit; it feeds random inputs, so there is no accuracy. Probing peaks needs Python on the device: not here.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from edgekit.bench.job import Job
from edgekit.devices.base import DeviceUnreachable
from edgekit.errors import BenchError

DELEGATE_FLAGS = {"xnnpack": ["--use_xnnpack=true"], "gpu": ["--use_gpu=true"], "nnapi": ["--use_nnapi=true"],
                  "none": ["--use_xnnpack=false"]}


ADB_ENV = "EDGEKIT_ADB"


def adb_argv(a, *args: str) -> list[str]:
    """The one adb argv edgekit builds. The client is $EDGEKIT_ADB or `adb` on PATH, never a profile's choice;
    the serial and the paths in `args` were checked when the profile loaded (none starts with '-')."""
    return [os.environ.get(ADB_ENV) or "adb", *(["-s", a.serial] if a.serial else []), *args]


def affinity_mask(cpus: list[int]) -> str:
    mask = 0
    for c in cpus:
        mask |= 1 << c
    return format(mask, "x")


def benchmark_command(profile, remote_model: str, job: Job, op_profiling: bool = False) -> list[str]:
    """The benchmark_model argv run on the device (before shell quoting)."""
    a = profile.adb
    argv = ["taskset", affinity_mask(profile.affinity)] if profile.affinity else []
    argv += [a.benchmark_model, f"--graph={remote_model}"]
    if job.threads:
        argv.append(f"--num_threads={int(job.threads)}")
    argv += [f"--warmup_runs={int(job.warmup)}", f"--num_runs={int(job.iterations)}",
             f"--min_secs={float(job.min_time_s):g}", f"--max_secs={float(job.max_time_s):g}"]
    argv += DELEGATE_FLAGS[profile.delegate or "xnnpack"]
    if op_profiling:
        argv.append("--enable_op_profiling=true")
    if a.report_peak_memory:
        argv.append("--report_peak_memory_footprint=true")
    return argv + list(a.extra_flags)


def _run(argv: list[str], timeout_s: float, data: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout_s, input=data)
    except FileNotFoundError as e:
        raise DeviceUnreachable(f"`{argv[0]}` not found: install Android platform-tools or set {ADB_ENV}") from e
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"`{' '.join(argv[:4])} ...` timed out after {timeout_s:.0f} s") from e


def _text(proc) -> str:
    return (proc.stdout or b"").decode(errors="replace") + (proc.stderr or b"").decode(errors="replace")


def device_state(a, timeout_s: float = 15.0) -> str | None:
    """None when the device answers `get-state` with 'device', else the reason it does not."""
    proc = _run(adb_argv(a, "get-state"), timeout_s)
    state = _text(proc).strip()
    return None if proc.returncode == 0 and state.endswith("device") else (state or f"adb exit {proc.returncode}")


def run_benchmark(profile, model: Path, job: Job, timeout_s: float, op_profiling: bool = False) -> dict:
    """Push, run benchmark_model, remove the file; returns the parsed output (raises on failure)."""
    from edgekit.devices.benchmark_model import parse

    a = profile.adb
    why = device_state(a)
    if why:
        raise DeviceUnreachable(f"adb device {a.serial or '(default)'} is not available: {why}")
    remote = f"{a.workdir.rstrip('/')}/{Path(model).name}"
    steps = [adb_argv(a, "shell", f"mkdir -p {shlex.quote(a.workdir)}"), adb_argv(a, "push", os.path.abspath(model), remote)]
    for argv in steps:
        proc = _run(argv, timeout_s)
        if proc.returncode != 0:
            raise BenchError(f"{' '.join(argv[:4])} failed: {_text(proc).strip()[-300:]}")
    cmd = " ".join(shlex.quote(x) for x in benchmark_command(profile, remote, job, op_profiling))
    try:
        proc = _run(adb_argv(a, "shell", cmd), timeout_s)
    finally:
        subprocess.run(adb_argv(a, "shell", f"rm -f {shlex.quote(remote)}"), capture_output=True, timeout=30)
    text = _text(proc)
    parsed = parse(text)
    if parsed["failed"] or proc.returncode not in (0, None):
        if device_state(a):
            raise DeviceUnreachable(f"adb device {a.serial or '(default)'} dropped during the bench of {model.name}")
        errors = parsed.get("errors") or text.strip().splitlines()[-3:]
        raise BenchError(f"benchmark_model failed on {a.serial or 'the device'}: {' | '.join(errors[-3:])}")
    parsed["command"] = cmd
    return parsed


def _static_batch(model: Path, default: int) -> int:
    try:
        from edgekit.runtimes.litert import LiteRtRuntime

        return LiteRtRuntime().load(model).static_batch or default
    except Exception:  # no LiteRT on this machine, or it cannot read the file: the job's batch it is
        return default


def to_result(parsed: dict, job: Job, profile, model: Path) -> dict:
    from edgekit.devices.benchmark_model import latency_summary

    summary = latency_summary(parsed)
    if summary is None:
        raise BenchError("benchmark_model printed no run statistics")
    memory = parsed.get("memory", {})
    return {
        "runtime": "litert", "runtime_version": "benchmark_model (on device)", "threads": job.threads,
        "affinity": profile.affinity, "batch_size": _static_batch(model, job.batch_size),
        "load_ms": parsed.get("init_ms", parsed.get("session_init_ms")),
        "first_inference_ms": parsed.get("first_inference_ms"),
        "latency_summary": summary, "peak_rss_mb": memory.get("peak_mb"), "baseline_rss_mb": None,
        "benchmark_model": {k: parsed[k] for k in ("warmup", "warmup_avg_ms", "memory", "delegation", "command")
                            if k in parsed},
    }


def run_agent(job: Job, timeout_s: float, profile=None) -> dict:
    if profile is None or profile.adb is None:
        raise BenchError("the adb transport needs a profile with an `adb:` section")
    task = job.task
    if task == "probe":
        raise BenchError("probing peaks over adb is not supported: it needs Python and ONNX Runtime on the device; "
                         "fill the profile's `peaks` from the SoC datasheet instead")
    model = Path(job.model)
    if model.suffix != ".tflite":
        raise BenchError(f"{model.name}: adb devices run .tflite artifacts with benchmark_model only")
    parsed = run_benchmark(profile, model, job, timeout_s, op_profiling=task == "op_profile")
    if task == "op_profile":
        return parsed
    return to_result(parsed, job, profile, model)


def reachable(profile) -> str | None:
    try:
        why = device_state(profile.adb)
    except (BenchError, DeviceUnreachable) as e:
        return str(e)
    return f"adb device {profile.adb.serial or '(default)'}: {why}" if why else None


def check(profile, timeout_s: float = 30.0) -> dict:
    from edgekit.devices.base import unreachable

    a = profile.adb
    try:
        why = device_state(a, timeout_s)
    except (BenchError, DeviceUnreachable) as e:
        return unreachable(profile, str(e))
    if why:
        return unreachable(profile, f"adb device {a.serial or '(default)'}: {why}")
    probe = (f"test -x {shlex.quote(a.benchmark_model)} && echo BM-OK; getprop ro.product.model; "
             "getprop ro.soc.model; getprop ro.product.cpu.abi")
    proc = _run(adb_argv(a, "shell", probe), timeout_s)
    lines = _text(proc).strip().splitlines()
    has_bm = bool(lines) and lines[0].strip() == "BM-OK"
    info = [ln.strip() for ln in lines[1:] if ln.strip()] if has_bm else [ln.strip() for ln in lines if ln.strip()]
    rows = {rt: {"importable": False, "detail": "adb devices run .tflite through benchmark_model only"}
            for rt in profile.runtimes if rt != "litert"}
    if "litert" in profile.runtimes:
        rows["litert"] = {"importable": has_bm, "detail": f"{a.benchmark_model} "
                                                          + ("is executable" if has_bm else "is missing or not executable")}
    return {"device": profile.name, "transport": "adb", "reachable": True, "environment": {"getprop": info},
            "runtimes": rows}
