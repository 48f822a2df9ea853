"""PyTorch eager: runs torch.export programs (.pt2) written by edgekit, or TorchScript files users bring."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgekit.errors import ArtifactError, RuntimeUnavailable
from edgekit.runtimes.base import Runtime, Session


class TorchSession(Session):
    def __init__(self, module):
        self.module = module

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(x)).float().numpy()

    def ops(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        graph = getattr(self.module, "graph", None)
        for node in getattr(graph, "nodes", []):
            if getattr(node, "op", None) == "call_function":
                key = str(node.target).split(".")[-2] if "." in str(node.target) else str(node.target)
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


class TorchRuntime(Runtime):
    name = "torch"

    def version(self) -> str:
        try:
            import torch
        except ImportError as e:
            raise RuntimeUnavailable("torch is not installed") from e
        return torch.__version__

    def load(self, path: Path, threads: int | None = None, providers: list[str] | None = None) -> TorchSession:
        import torch

        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"{path}: model file not found")
        if threads:
            torch.set_num_threads(threads)
        try:
            if path.suffix == ".pt2":
                module = torch.export.load(str(path)).module()
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    module = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:  # torch raises RuntimeError/ValueError/zip errors for bad archives
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ArtifactError(f"{path}: not a loadable PyTorch program: {first}") from e
        if hasattr(module, "eval"):
            try:
                module.eval()
            except (NotImplementedError, RuntimeError):
                pass  # exported programs are already in inference form
        return TorchSession(module)
