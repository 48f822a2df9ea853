"""Environment fingerprint: what a latency number depends on, recorded beside it."""

from __future__ import annotations

import os
import platform
from importlib import metadata

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
             "asimd", "asimddp", "sve", "i8mm")
PACKAGES = ("edgekit", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "ai-edge-litert", "litert-torch", "numpy",
            "torch-pruning", "neural-compressor", "executorch", "openvino")


def cpu_info() -> dict:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "Hardware") and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "isa": sorted(f for f in ISA_FLAGS if f in flags)}


def fingerprint(threads: int | None = None) -> dict:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "cpu": cpu_info(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "threads": threads,
        "packages": versions,
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "MKL_NUM_THREADS") if k in os.environ},
    }
