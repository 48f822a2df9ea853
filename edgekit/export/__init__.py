"""Export formats, chosen by the export target's `format`: one entry per format holds its config, exporter and
file suffix. The runtime that loads the file is the first runtime registered for the format (edgekit.runtimes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgekit.export.config import ExecutorchExport, OnnxExport, TfliteExport, TorchExport
from edgekit.registry import FieldView, load_object, registry_union

if TYPE_CHECKING:
    from edgekit.export.base import Exporter


@dataclass(frozen=True)
class ExportFormat:
    """`config`: the export target's config class (its `format` field names the entry); `impl`: 'module:Class'
    of the exporter; `suffix`: the artifact file's suffix; `static_batch`: the file has a fixed batch (it is
    exported at the bench batch size, and int8 calibrates on the calibration split)."""

    config: type
    impl: str
    suffix: str
    static_batch: bool = False


EXPORTERS: dict[str, ExportFormat] = {
    "onnx": ExportFormat(OnnxExport, "edgekit.export.onnx:OnnxExporter", ".onnx"),
    "torch": ExportFormat(TorchExport, "edgekit.export.torch_program:TorchProgramExporter", ".pt2"),
    "tflite": ExportFormat(TfliteExport, "edgekit.export.tflite:TfliteExporter", ".tflite", static_batch=True),
    "executorch": ExportFormat(ExecutorchExport, "edgekit.export.executorch:ExecutorchExporter", ".pte",
                               static_batch=True),
}

ExportConfig = registry_union(EXPORTERS, "format")
SUFFIX = FieldView(EXPORTERS, "suffix")


def get_exporter(fmt: str) -> Exporter:
    return load_object(EXPORTERS[fmt].impl)()


__all__ = ["EXPORTERS", "ExportConfig", "ExportFormat", "SUFFIX", "get_exporter"]
