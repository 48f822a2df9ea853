"""An export format and the runtime that runs it: an MLP's Linear layers as an .npz of weights, run with numpy."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from edgekit.config_base import Strict, Tolerance
from edgekit.export.artifact import describe
from edgekit.handles import ModelFile
from edgekit.runtimes.base import Runtime, Session


class NpzWeightsFile(ModelFile):
    format = "npz-weights"
    suffix = ".npz"


class NpzWeightsExport(Strict):
    format: Literal["npz-weights"]
    name: str | None = None
    parity_samples: int = Field(64, ge=1)
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(max_abs=1e-4, min_cosine=0.9999, min_top1=0.99))


class NpzWeightsExporter:
    def export(self, model, example: np.ndarray, cfg, path: Path, run_dir: Path, name: str):
        from torch import nn

        layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
        arrays = {}
        for i, m in enumerate(layers):
            arrays[f"w{i}"] = m.weight.detach().numpy()
            arrays[f"b{i}"] = m.bias.detach().numpy()
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return describe(name, "npz-weights", "fp32", path, run_dir,
                        inputs=[{"name": "x", "shape": ["batch", int(np.prod(example.shape[1:]))], "dtype": "float32"}])


class NumpyMlpSession(Session):
    def __init__(self, weights: list[tuple[np.ndarray, np.ndarray]]):
        self.weights = weights

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        h = x.reshape(len(x), -1).astype(np.float32)
        for i, (w, b) in enumerate(self.weights):
            h = h @ w.T + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0)
        return h.astype(np.float32)


class NumpyMlpRuntime(Runtime):
    name = "numpy-mlp"

    def version(self) -> str:
        return np.__version__

    def load(self, path: Path, threads: int | None = None, providers: list[str] | None = None, **_) -> Session:
        with np.load(path, allow_pickle=False) as f:
            n = len(f.files) // 2
            return NumpyMlpSession([(f[f"w{i}"], f[f"b{i}"]) for i in range(n)])
