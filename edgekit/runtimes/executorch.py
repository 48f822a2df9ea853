"""ExecuTorch (.pte) through the `executorch.runtime` Python API: XNNPACK-delegated programs, static batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import ArtifactError
from edgekit.extras import Needs
from edgekit.runtimes.base import Runtime, Session, import_for

_SCALAR_TYPES = {3: np.int32, 4: np.int64, 6: np.float32}  # c10::ScalarType codes of the inputs edgekit exports


NEEDS = Needs("executorch", ("executorch",))


def _runtime_module():
    return import_for("executorch.runtime", NEEDS)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:6] != b"ET":
        raise ArtifactError(f"{path}: not an ExecuTorch program (no 'ET..' identifier at byte 4; wrong file or "
                            "truncated)")


def _failure(path: Path, what: str, e: BaseException, logs: list[str]) -> ArtifactError:
    why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    native = [ln.split("] ", 1)[-1] for ln in logs if ln.startswith("[")][:2]
    return ArtifactError(f"{path}: ExecuTorch cannot {what}: {why}" + (f" ({'; '.join(native)})" if native else ""))


class ExecuTorchSession(Session):
    def __init__(self, method, path: Path):
        self.method, self.path = method, path
        meta = method.metadata.input_tensor_meta(0)
        self.input_shape = tuple(int(d) for d in meta.sizes())
        self.input_dtype = np.dtype(_SCALAR_TYPES.get(int(meta.dtype()), np.float32))
        self.static_batch = self.input_shape[0] if self.input_shape else None

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        import torch

        from edgekit.runtimes.litert import quiet_stderr

        logs: list[str] = []
        try:
            with quiet_stderr(logs):
                out = self.method.execute([torch.from_numpy(np.ascontiguousarray(x, dtype=self.input_dtype))])
        except RuntimeError as e:
            raise _failure(self.path, f"run input {tuple(x.shape)} {x.dtype} (the program expects "
                                      f"{self.input_shape} {self.input_dtype})", e, logs) from e
        return np.asarray(out[0].detach().numpy(), dtype=np.float32)


class ExecuTorchRuntime(Runtime):
    name = "executorch"
    needs = NEEDS

    def version(self) -> str:
        _runtime_module()
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("executorch")
        except PackageNotFoundError:
            return "unknown"

    def load(self, path: Path, threads: int | None = None, providers: list[str] | None = None) -> ExecuTorchSession:
        """`threads` sets the process-wide XNNPACK thread pool size (ExecuTorch has no per-program setting)."""
        from edgekit.runtimes.litert import quiet_stderr

        runtime = _runtime_module()
        path = Path(path)
        _check_file(path)
        if threads:
            _set_threads(threads)
        logs: list[str] = []
        try:
            with quiet_stderr(logs):
                program = runtime.Runtime.get().load_program(path)
                method = program.load_method("forward")
        except RuntimeError as e:
            raise _failure(path, "load this program", e, logs) from e
        if method is None:
            raise ArtifactError(f"{path}: the ExecuTorch program has no 'forward' method")
        return ExecuTorchSession(method, path)


def _set_threads(threads: int) -> None:
    """ExecuTorch's CPU thread pool, shared by every program in the process (a no-op where the build lacks it)."""
    try:
        from executorch.extension.pybindings import portable_lib
    except ImportError:
        return
    from edgekit.runtimes.litert import quiet_stderr

    get = getattr(portable_lib, "_threadpool_get_thread_count", None)
    reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
    if reset is not None and (get is None or get() != int(threads)):
        with quiet_stderr():
            reset(int(threads))
