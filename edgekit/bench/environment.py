"""Environment fingerprint: what a latency number depends on, recorded beside it."""

from __future__ import annotations

import os
import platform

from edgekit.extras import installed_version
from edgekit.hardware import cpu_info, usable_cores

PACKAGES = ("edgekit", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "ai-edge-litert", "litert-torch", "numpy",
            "torch-pruning", "neural-compressor", "executorch", "openvino")


def fingerprint(threads: int | None = None) -> dict:
    versions = {pkg: v for pkg in PACKAGES if (v := installed_version(pkg)) is not None}
    return {
        "cpu": cpu_info(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "threads": threads,
        "packages": versions,
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "MKL_NUM_THREADS") if k in os.environ},
    }
