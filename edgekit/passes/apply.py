"""`apply_pass`: one pass on one model or file, outside a recipe (notebooks, benchmarks, tests)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.handles import InputSpec, ModelFile, ModelHandle, TorchModel
from edgekit.passes.base import PassContext
from edgekit.report.schema import PassRecord


@dataclass
class Applied:
    """A pass's output handle and its record."""

    output: ModelHandle
    record: PassRecord


def apply_pass(model_or_file: Any, config: Any, data: Any, *, work_dir: Path | None = None, reference: Any = None,
               seed: int = 0, train: Any = None, bench: Any = None, log: Any = None) -> Applied:
    """Run the pass `config` (a pass config, or its mapping with `name`) on a torch module, a model file path or a
    handle, with `data` (edgekit.data.Splits; `Splits.from_arrays` builds one from calibration/validation arrays).

    Files are written under `work_dir` (a new temporary folder by default). `reference` is the torch module a model
    file was exported from, for passes that fine-tune or need the fp32 model; the fidelity reference outputs come
    from it, else from the fp32 file run in its runtime."""
    from edgekit.passes import get_pass, pass_config

    cfg = pass_config(config)
    p = get_pass(cfg)
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="edgekit-pass-"))
    (work / "artifacts").mkdir(parents=True, exist_ok=True)
    handle = as_handle(model_or_file, data, work)
    out, rec = p.apply(handle, pass_context(handle, data, work, reference=reference, seed=seed, train=train, bench=bench,
                                            log=log))
    return Applied(out, rec)


def pass_context(handle: ModelHandle, data: Any, work_dir: Path, *, reference: Any = None, seed: int = 0,
                 train: Any = None, bench: Any = None, log: Any = None) -> PassContext:
    """The context a pass on `handle` sees outside a recipe (what `apply_pass` gives it); the fidelity reference
    outputs come from the torch module (the handle's, else `reference`), else from the fp32 file in its runtime."""
    module = handle.module if isinstance(handle, TorchModel) else reference
    return PassContext(splits=data, run_dir=Path(work_dir), seed=seed, train=train, bench=bench,
                       reference=reference if reference is not None else module, model=module,
                       reference_logits=_reference_outputs(handle, module, data),
                       **({"log": log} if log else {}))


def as_handle(model_or_file: Any, data: Any, work_dir: Path) -> ModelHandle:
    """A typed handle: handles pass through, a torch module is wrapped, a file path is copied into
    `work_dir/artifacts` (unless already there) and described."""
    from edgekit.errors import PassError

    if isinstance(model_or_file, ModelHandle):
        return model_or_file
    spec = InputSpec(tuple(data.input_shape), str(data.x_val.dtype))
    if isinstance(model_or_file, (str, Path)):
        return _file_handle(Path(model_or_file), spec, work_dir)
    import torch

    if isinstance(model_or_file, torch.nn.Module):
        _check_fits(model_or_file.eval(), data)
        return TorchModel(module=model_or_file, input=spec, lineage=(type(model_or_file).__name__,))
    raise PassError(f"apply_pass takes a torch module, a model file path or a handle, not {type(model_or_file).__name__}")


def _check_fits(module: Any, data: Any) -> None:
    """One sample through the module before any work: data of the wrong shape is an error naming both."""
    import torch

    from edgekit.errors import PassError
    from edgekit.runtimes.base import as_model_input

    x = as_model_input(data.x_calib[:1] if len(data.x_calib) else data.x_val[:1])
    try:
        with torch.no_grad():
            module(torch.from_numpy(x))
    except Exception as e:  # torch raises RuntimeError/ValueError/TypeError for inputs that do not fit
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise PassError(f"the data's samples {tuple(x.shape[1:])} {x.dtype} do not fit {type(module).__name__}: "
                        f"{first}") from None


def _file_handle(path: Path, spec: InputSpec, work_dir: Path) -> ModelFile:
    import shutil

    from edgekit.errors import PassError
    from edgekit.export import EXPORTERS, get_exporter
    from edgekit.export.artifact import artifact_target, describe
    from edgekit.names import is_within

    cls = next((e.handle for e in EXPORTERS.values() if e.suffix == path.suffix), None)
    if cls is None:
        known = sorted(e.suffix for e in EXPORTERS.values())
        raise PassError(f"{path}: not a model file edgekit knows (suffixes: {known})")
    if not path.is_file():
        raise PassError(f"{path}: no such file")
    if not is_within(work_dir, path):
        dst = artifact_target(work_dir, path.stem, cls.suffix)
        shutil.copyfile(path, dst)
        path = dst
    art = describe(path.stem, cls.format, "fp32", path, work_dir, **get_exporter(cls.format).facts(path))
    return cls(path=path, artifact=art, input=spec, lineage=(path.stem,))


def _reference_outputs(handle: ModelHandle, module: Any, data: Any) -> dict:
    """The fp32 outputs on each non-empty split: from the torch module when there is one, else the file's runtime."""
    if module is not None:
        from edgekit.train.trainer import predict

        run = lambda x: predict(module, x)  # noqa: E731
    elif isinstance(handle, ModelFile):
        from edgekit.runtimes import runtime_for

        run = runtime_for(handle.format).load(handle.path, threads=2).run
    else:
        from edgekit.errors import PassError

        raise PassError(f"a {type(handle).__name__} without a torch module has nothing to run")
    return {k: run(getattr(data, f"x_{k}")) for k in ("val", "calib", "test") if len(getattr(data, f"x_{k}"))}
