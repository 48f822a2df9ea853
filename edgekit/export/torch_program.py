"""PyTorch -> torch.export ExportedProgram (.pt2): the reference model as a file the torch runtime loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import ExportError
from edgekit.export.artifact import describe
from edgekit.report.atomic import atomic_path


class TorchProgramExporter:
    format = "torch"

    def export(self, model, example: np.ndarray, cfg, path: Path, run_dir: Path, name: str):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(example[:2] if len(example) > 1 else example[:1]))
        dyn = ({0: torch.export.Dim("batch", min=1, max=65536)},) if cfg.dynamic_batch else None
        try:
            ep = torch.export.export(model.eval(), (x,), dynamic_shapes=dyn)
        except Exception as e:  # torch.export raises several error types for untraceable code
            raise ExportError(f"torch.export of {type(model).__name__} failed: {str(e).strip().splitlines()[0]}") from e
        with atomic_path(path) as tmp:
            torch.export.save(ep, str(tmp))
        shape = ["batch" if cfg.dynamic_batch else x.shape[0], *x.shape[1:]]
        return describe(name, "torch", "fp32", path, run_dir,
                        inputs=[{"name": "input", "shape": shape, "dtype": "float32"}])
