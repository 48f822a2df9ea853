"""Runtimes, chosen by name. The first runtime registered for an artifact format is that format's default.

Shipped to remote devices with the bench agent: imports nothing beyond the standard library here."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from edgekit.runtimes.base import Runtime, Session


@dataclass(frozen=True)
class RuntimeEntry:
    """`impl`: 'module:Class' of the Runtime; `formats`: the artifact formats it loads; `imports`: what a device check
    imports to tell whether it is installed there, as {label: import name} (any one of them will do); `settings`: the
    device profile section whose fields are keyword arguments of its `load`."""

    impl: str
    formats: tuple[str, ...]
    imports: Mapping[str, str] = field(default_factory=dict)
    settings: str | None = None


RUNTIMES: dict[str, RuntimeEntry] = {
    "onnxruntime": RuntimeEntry("edgekit.runtimes.onnxruntime:OnnxRuntime", ("onnx",), {"onnxruntime": "onnxruntime"}),
    "litert": RuntimeEntry("edgekit.runtimes.litert:LiteRtRuntime", ("tflite",),
                           {"litert": "ai_edge_litert", "tflite_runtime": "tflite_runtime"}),
    "torch": RuntimeEntry("edgekit.runtimes.torch:TorchRuntime", ("torch", "torchscript"), {"torch": "torch"}),
    "openvino": RuntimeEntry("edgekit.runtimes.openvino:OpenVinoRuntime", ("onnx",), {"openvino": "openvino"},
                             settings="openvino"),
    "executorch": RuntimeEntry("edgekit.runtimes.executorch:ExecuTorchRuntime", ("executorch",),
                               {"executorch": "executorch.runtime"}),
}


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        from edgekit.errors import RuntimeUnavailable

        raise RuntimeUnavailable(f"unknown runtime '{name}' (known: {sorted(RUNTIMES)})")
    return runtime_class(name)()


def runtime_class(name: str) -> type[Runtime]:
    module, _, cls = RUNTIMES[name].impl.partition(":")
    return getattr(importlib.import_module(module), cls)


def default_runtime(fmt: str) -> str | None:
    """The runtime that runs `fmt` artifacts unless a device lists another: the first registered for it."""
    return next((name for name, e in RUNTIMES.items() if fmt in e.formats), None)


def runtime_formats() -> list[str]:
    return list(dict.fromkeys(f for e in RUNTIMES.values() for f in e.formats))


def runtime_name_for(fmt: str, listed: list[str] | tuple[str, ...] = ()) -> str:
    """The runtime that runs `fmt` artifacts on a device listing `listed` runtimes: the first listed one that runs
    the format (e.g. openvino before onnxruntime for .onnx), else the format's default runtime."""
    for name in listed:
        if name in RUNTIMES and fmt in RUNTIMES[name].formats:
            return name
    return default_runtime(fmt) or "?"


def runtime_for(fmt: str) -> Runtime:
    from edgekit.errors import RuntimeUnavailable

    name = default_runtime(fmt)
    if name is None:
        raise RuntimeUnavailable(f"no runtime runs '{fmt}' artifacts (known formats: {sorted(runtime_formats())})")
    return get_runtime(name)


__all__ = ["RUNTIMES", "Runtime", "RuntimeEntry", "Session", "default_runtime", "get_runtime", "runtime_class",
           "runtime_for", "runtime_formats", "runtime_name_for"]
