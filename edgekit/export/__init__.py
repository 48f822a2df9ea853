"""Exporters, chosen by the export target's `format`."""

from __future__ import annotations

import importlib

EXPORTERS = {
    "onnx": "edgekit.export.onnx:OnnxExporter",
    "torch": "edgekit.export.torch_program:TorchProgramExporter",
    "tflite": "edgekit.export.tflite:TfliteExporter",
    "executorch": "edgekit.export.executorch:ExecutorchExporter",
}

SUFFIX = {"onnx": ".onnx", "torch": ".pt2", "tflite": ".tflite", "executorch": ".pte"}


def get_exporter(fmt: str):
    module, _, cls = EXPORTERS[fmt].partition(":")
    return getattr(importlib.import_module(module), cls)()
