"""The Runtime interface: load an artifact file, run float batches, list its operators."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType

import numpy as np

from edgekit.extras import Needs


def as_model_input(x: np.ndarray) -> np.ndarray:
    """Float arrays become float32; integer arrays (token ids) stay integers, as int64. Contiguous either way."""
    x = np.asarray(x)
    return np.ascontiguousarray(x, dtype=np.int64 if x.dtype.kind in "iu" else np.float32)


def fixed_batch(x: np.ndarray, batch: int, start: int = 0) -> np.ndarray:
    """`batch` model inputs from row `start` of `x`, the rows repeated in turn when `x` has fewer: a batch of the
    fixed size a benchmark or a static-batch model needs."""
    return np.ascontiguousarray(np.resize(as_model_input(x[start:start + batch]), (batch, *x.shape[1:])))


def fixed_batches(x: np.ndarray, batch: int, limit: int = 64) -> list[np.ndarray]:
    """Consecutive fixed-size batches of `x`, at least one and at most `limit`."""
    return [fixed_batch(x, batch, i * batch) for i in range(max(1, min(limit, len(x) // batch)))]


def import_for(module: str, needs: Needs) -> ModuleType:
    """Import a runtime's package, or raise RuntimeUnavailable naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        from edgekit.errors import RuntimeUnavailable

        raise RuntimeUnavailable(f"{needs.modules[0]} is not installed: {needs.install}") from e


def check_before_load(path: Path) -> None:
    """Bounds-check a model file before a runtime reads it (edgekit.model_files). The device side of a bench runs a
    mini-package without that module; there the host has checked the file before sending it."""
    try:
        from edgekit.model_files import check_model_file
    except ImportError:
        return
    check_model_file(path)


class Session(ABC):
    """A loaded model. `run` takes float32 (or int64 token id) arrays and returns float32; any quantized I/O and
    the model's own input dtype (e.g. int32 ids in TFLite) are handled inside."""

    static_batch: int | None = None
    last_device_ms: float | None = None  # accelerator time of the last batch, where the runtime measures it

    @abstractmethod
    def run_batch(self, x: np.ndarray) -> np.ndarray:
        """Run one batch the model accepts as is."""

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run any number of samples, splitting into the model's static batch when it has one."""
        x = as_model_input(x)
        b = self.static_batch
        if b is None or len(x) == b:
            return self.run_batch(x)
        outs = []
        for i in range(0, len(x), b):
            chunk = x[i: i + b]
            n = len(chunk)
            if n < b:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - n, axis=0)])
            outs.append(self.run_batch(chunk)[:n])
        return np.concatenate(outs)

    def ops(self) -> dict[str, int]:
        return {}


class Runtime(ABC):
    name: str = ""
    needs: Needs | None = None  # optional packages this runtime imports, and their extra

    @abstractmethod
    def version(self) -> str:
        """Version of the underlying package; raises RuntimeUnavailable when it is not installed."""

    @abstractmethod
    def load(self, path: Path, threads: int | None = None, providers: list[str] | None = None) -> Session:
        ...
