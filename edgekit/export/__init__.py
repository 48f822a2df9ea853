"""Export formats, chosen by the export target's `format`: one entry per format holds its config, its exporter and
the handle type of the file it writes (which names the file's suffix). The runtime that loads the file is the first
runtime registered for the format (edgekit.runtimes)."""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.export.config import ExecutorchExport, OnnxExport, TfliteExport, TorchExport
from edgekit.handles import ModelFile, OnnxFile, PteFile, TfliteFile, TorchProgramFile
from edgekit.registry import load_object, registry_union


@dataclass(frozen=True)
class ExportFormat:
    """`config`: the export target's config class (its `format` field names the entry); `impl`: 'module:Class'
    of the exporter (edgekit.export.base.Exporter); `handle`: the typed handle of the file it writes."""

    config: type
    impl: str
    handle: type[ModelFile]

    @property
    def suffix(self) -> str:
        return self.handle.suffix


EXPORTERS: dict[str, ExportFormat] = {
    "onnx": ExportFormat(OnnxExport, "edgekit.export.onnx:OnnxExporter", OnnxFile),
    "torch": ExportFormat(TorchExport, "edgekit.export.torch_program:TorchProgramExporter", TorchProgramFile),
    "tflite": ExportFormat(TfliteExport, "edgekit.export.tflite:TfliteExporter", TfliteFile),
    "executorch": ExportFormat(ExecutorchExport, "edgekit.export.executorch:ExecutorchExporter", PteFile),
}

ExportConfig = registry_union(EXPORTERS, "format")


def get_exporter(fmt: str):
    return load_object(EXPORTERS[fmt].impl)()


__all__ = ["EXPORTERS", "ExportConfig", "ExportFormat", "get_exporter"]
