"""PyTorch -> LiteRT (.tflite): litert-torch converts at a static batch (`tflite_convert`); fp16 and int8 precisions
are ai-edge-quantizer on that fp32 flatbuffer (`tflite_quantize`, the code the `quantize.tflite` pass runs).

Every quantized file is checked after writing: a file that claims int8 (or fp16) but carries no such weight
tensors is an ExportError, not a silently fp32 artifact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgekit.atomic import atomic_path
from edgekit.export.artifact import describe
from edgekit.export.int8 import calibration_samples
from edgekit.export.tflite_convert import convert_fp32, inspect_tflite
from edgekit.export.tflite_quantize import checked, dtype_details, quantize_tflite
from edgekit.extras import installed_version
from edgekit.runtimes.base import fixed_batch

if TYPE_CHECKING:
    import torch

    from edgekit.export.config import TfliteExport
    from edgekit.report.schema import Artifact

__all__ = ["TfliteExporter", "inspect_tflite"]


class TfliteExporter:
    format = "tflite"
    static_batch = True  # converts at one fixed batch; int8 calibrates on the calibration split

    @staticmethod
    def facts(path: Path) -> dict:
        """Inputs, outputs and op counts of a written .tflite, read through the interpreter (a bad file raises)."""
        info = inspect_tflite(path)
        return {"inputs": info["inputs"], "outputs": info["outputs"], "ops": info["ops"]}

    def export(self, model: torch.nn.Module, example: np.ndarray, cfg: TfliteExport, path: Path, run_dir: Path,
               name: str, *, calibration: np.ndarray | None = None, batch_size: int | None = None,
               log: Callable[[str], None] | None = None) -> Artifact:
        batch = batch_size or cfg.batch_size or 1
        details: dict = {"static_batch": batch, "converter": f"litert-torch {installed_version('litert-torch', '?')}"}
        if cfg.precision == "fp32":
            data = convert_fp32(model, fixed_batch(example, batch))
        else:
            q = quantize_tflite(cfg, calibration_samples(calibration, example, cfg), batch, model=model, log=log)
            data = q.data
            details.update(q.details)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
            info = checked(tmp, cfg.precision)
        details.update(dtype_details(info))
        return describe(name, "tflite", cfg.precision, path, run_dir, inputs=info["inputs"], outputs=info["outputs"],
                        ops=info["ops"], details=details)
