"""Runtimes, chosen by name; each artifact format has a default runtime."""

from __future__ import annotations

import importlib

from edgekit.runtimes.base import Runtime, Session

RUNTIMES = {
    "torch": "edgekit.runtimes.torch:TorchRuntime",
    "onnxruntime": "edgekit.runtimes.onnxruntime:OnnxRuntime",
    "litert": "edgekit.runtimes.litert:LiteRtRuntime",
    "executorch": "edgekit.runtimes.executorch:ExecuTorchRuntime",
    "openvino": "edgekit.runtimes.openvino:OpenVinoRuntime",
}

DEFAULT_RUNTIME = {"torch": "torch", "torchscript": "torch", "onnx": "onnxruntime", "tflite": "litert",
                   "executorch": "executorch"}


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        from edgekit.errors import RuntimeUnavailable

        raise RuntimeUnavailable(f"unknown runtime '{name}' (known: {sorted(RUNTIMES)})")
    return runtime_class(name)()


def runtime_class(name: str) -> type[Runtime]:
    module, _, cls = RUNTIMES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def runtime_name_for(fmt: str, listed: list[str] | tuple[str, ...] = ()) -> str:
    """The runtime that runs `fmt` artifacts on a device listing `listed` runtimes: the first listed one that runs
    the format (e.g. openvino before onnxruntime for .onnx), else the format's default runtime."""
    for name in listed:
        if name in RUNTIMES and fmt in runtime_class(name).formats:
            return name
    return DEFAULT_RUNTIME.get(fmt, "?")


def runtime_for(fmt: str) -> Runtime:
    from edgekit.errors import RuntimeUnavailable

    if fmt not in DEFAULT_RUNTIME:
        raise RuntimeUnavailable(f"no runtime runs '{fmt}' artifacts (known formats: {sorted(DEFAULT_RUNTIME)})")
    return get_runtime(DEFAULT_RUNTIME[fmt])


__all__ = ["DEFAULT_RUNTIME", "RUNTIMES", "Runtime", "Session", "get_runtime", "runtime_class", "runtime_for",
           "runtime_name_for"]
