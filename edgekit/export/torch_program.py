"""PyTorch -> torch.export ExportedProgram (.pt2): the reference model as a file the torch runtime loads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgekit.atomic import atomic_path
from edgekit.errors import ExportError
from edgekit.export.artifact import describe

if TYPE_CHECKING:
    import torch

    from edgekit.export.config import TorchExport
    from edgekit.report.schema import Artifact


class TorchProgramExporter:
    format = "torch"

    def export(self, model: torch.nn.Module, example: np.ndarray, cfg: TorchExport, path: Path, run_dir: Path,
               name: str) -> Artifact:
        import torch

        from edgekit.models.inputs import dynamic_axes, input_spec, torch_dynamic_shapes
        from edgekit.runtimes.base import as_model_input

        example = as_model_input(example)
        x = torch.from_numpy(np.ascontiguousarray(example[:2] if len(example) > 1 else example[:1]))
        spec = input_spec(model, example)
        dyn = torch_dynamic_shapes(spec, x, cfg.dynamic_batch)
        axes = dynamic_axes(spec, x.ndim, cfg.dynamic_batch)
        details = {}
        try:
            try:
                ep = torch.export.export(model.eval(), (x,), dynamic_shapes=dyn)
            except Exception as e:  # e.g. nn.LSTM: torch.export unrolls it at the example's sequence length
                if dyn is None or set(dyn[0]) <= {0}:
                    raise
                batch_only = ({0: dyn[0][0]},) if 0 in dyn[0] else None
                ep = torch.export.export(model.eval(), (x,), dynamic_shapes=batch_only)
                static = sorted(i for i in axes if i != 0)
                details["static_axes"] = {str(i): axes[i][0] for i in static}
                details["note"] = (f"axes {static} exported static at {[int(x.shape[i]) for i in static]}: torch.export "
                                   f"specialized them ({str(e).strip().splitlines()[0][:160]})")
                axes = {i: a for i, a in axes.items() if i == 0}
        except Exception as e:  # torch.export raises several error types for untraceable code
            raise ExportError(f"torch.export of {type(model).__name__} failed: {str(e).strip().splitlines()[0]}") from e
        with atomic_path(path) as tmp:
            torch.export.save(ep, str(tmp))
        shape = [axes[i][0] if i in axes else int(d) for i, d in enumerate(x.shape)]
        return describe(name, "torch", "fp32", path, run_dir,
                        inputs=[{"name": spec.name, "shape": shape, "dtype": str(example.dtype)}], details=details)
