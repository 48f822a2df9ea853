"""The exporter interface: what an export format's implementation (its registry entry's `impl`) provides."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch

    from edgekit.report.schema import Artifact


class Exporter(Protocol):
    """Writes a torch model to `path` as its format, checks it against the model on held-out `example` inputs, and
    returns the report's description of the file. `cfg` is the export target's config (the entry's config class).
    Exporters with a static batch (`static_batch = True`) also take the keywords `calibration` (the calibration
    split), `batch_size` and `log`."""

    format: str

    def export(self, model: torch.nn.Module, example: np.ndarray, cfg: Any, path: Path, run_dir: Path,
               name: str) -> Artifact: ...
