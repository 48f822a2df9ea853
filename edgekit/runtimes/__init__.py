"""Runtimes, chosen by name; each artifact format has a default runtime."""

from __future__ import annotations

import importlib

from edgekit.runtimes.base import Runtime, Session

RUNTIMES = {
    "torch": "edgekit.runtimes.torch:TorchRuntime",
    "onnxruntime": "edgekit.runtimes.onnxruntime:OnnxRuntime",
    "litert": "edgekit.runtimes.litert:LiteRtRuntime",
}

DEFAULT_RUNTIME = {"torch": "torch", "torchscript": "torch", "onnx": "onnxruntime", "tflite": "litert"}


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        from edgekit.errors import RuntimeUnavailable

        raise RuntimeUnavailable(f"unknown runtime '{name}' (known: {sorted(RUNTIMES)})")
    module, _, cls = RUNTIMES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def runtime_for(fmt: str) -> Runtime:
    from edgekit.errors import RuntimeUnavailable

    if fmt not in DEFAULT_RUNTIME:
        raise RuntimeUnavailable(f"no runtime runs '{fmt}' artifacts (known formats: {sorted(DEFAULT_RUNTIME)})")
    return get_runtime(DEFAULT_RUNTIME[fmt])


__all__ = ["DEFAULT_RUNTIME", "RUNTIMES", "Runtime", "Session", "get_runtime", "runtime_for"]
