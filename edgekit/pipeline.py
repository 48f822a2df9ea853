"""The recipe pipeline: data -> model -> train -> torch passes -> export + parity -> file passes -> bench -> gates.

Each stage (edgekit.stages) appends to the report and saves it, so a killed run keeps what it finished; one
failing target is recorded and the others go on.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.errors import EdgekitError
from edgekit.recipe import Recipe
from edgekit.report.schema import Report
from edgekit.stages.compress import stage_file_passes, stage_torch_passes
from edgekit.stages.export import stage_export
from edgekit.stages.measure import stage_bench, stage_cross_parity, stage_gates
from edgekit.stages.model import stage_data, stage_model, stage_reference, stage_train
from edgekit.stages.state import Run
from edgekit.stages.state import log as _log


def _fresh_report(recipe: Recipe) -> Report:
    from edgekit.bench.environment import fingerprint

    return Report(
        edgekit_version=__version__, recipe_name=recipe.name, created=_dt.datetime.now().isoformat(timespec="seconds"),
        recipe=recipe.model_dump(mode="json"), recipe_sha256=recipe.sha256(), seed=recipe.seed,
        environment=fingerprint(threads=recipe.bench.threads if recipe.bench else None),
    )


def new_run(recipe: Recipe, out_dir: Path | None = None, log: Callable[[str], None] = _log.info,
            force: bool = False) -> Run:
    """A new run folder: `out_dir` must be absent or empty (or, with `force`, a run folder that is replaced)."""
    from edgekit.atomic import atomic_write_text, make_dir
    from edgekit.names import safe_target
    from edgekit.report.run_folder import prepare_new

    if out_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = Path(recipe.output_dir) / f"{recipe.name}-{stamp}"
        n = 1
        while out_dir.exists():  # two runs started in the same second
            n += 1
            out_dir = Path(recipe.output_dir) / f"{recipe.name}-{stamp}-{n}"
    run_dir = prepare_new(Path(out_dir), force)
    make_dir(run_dir / "artifacts")
    atomic_write_text(safe_target(run_dir, "recipe.yaml"), recipe.to_yaml())
    run = Run(recipe, run_dir, _fresh_report(recipe), log)
    run.save()
    return run


def resume_run(run_dir: Path, recipe: Recipe | None = None, log: Callable[[str], None] = _log.info) -> Run:
    """Reopen an interrupted run folder: finished stages whose inputs are unchanged are reused (the data by its
    content fingerprint, the checkpoint and every artifact by their sha256), the rest runs again."""
    from edgekit.errors import RecipeError, RunFolderError
    from edgekit.recipe import load_recipe
    from edgekit.report.io import load_report
    from edgekit.report.run_folder import remove_symlinks

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"--resume {run_dir}: not a folder")
    if (run_dir / "recipe.yaml").is_symlink():
        raise RunFolderError(f"--resume {run_dir}: recipe.yaml is a symlink; edgekit never writes one")
    remove_symlinks(run_dir, log)
    stored = load_recipe(run_dir / "recipe.yaml")
    if recipe is not None and recipe.sha256() != stored.sha256():
        raise RecipeError("differs from the recipe this run was started with; start a new run instead",
                          path=str(run_dir / "recipe.yaml"))
    try:
        previous = load_report(run_dir)
    except EdgekitError:
        previous = None  # killed before the first report was written: nothing to reuse
    for leftover in list(run_dir.rglob(".*.tmp")):  # half-written files of the killed run
        leftover.unlink()
    (run_dir / "artifacts").mkdir(exist_ok=True)
    run = Run(stored, run_dir, _fresh_report(stored), log, previous=previous)
    run.save()
    return run


def finish(run: Run) -> None:
    from edgekit.report.html import write_reports

    run.report.status = "completed" if not run.report.errors else "completed_with_errors"
    run.save()
    write_reports(run.report, run.run_dir)


@contextlib.contextmanager
def recording(run: Run):
    """Whatever stops the run is written to report.json: an error marks it `failed` with the error in `errors`,
    Ctrl-C marks it `interrupted` and says how to resume. The exception goes on to the caller."""
    try:
        yield run
    except KeyboardInterrupt:
        _close(run, "interrupted", "interrupted")
        run.log(f"interrupted; finish it with: edgekit run --resume {run.run_dir}")
        raise
    except Exception as e:
        _close(run, "failed", str(e) if isinstance(e, EdgekitError) else f"{type(e).__name__}: {e}")
        raise


def _close(run: Run, status: str, error: str) -> None:
    where = run.stage or (f"after {run.report.stages_done[-1]}" if run.report.stages_done else "setup")
    run.report.status = status
    run.report.errors.append(f"{where}: {error}")
    with contextlib.suppress(OSError, EdgekitError):  # a full disk must not hide the error that stopped the run
        run.save()


def run_recipe(recipe: Recipe, out_dir: Path | None = None, log: Callable[[str], None] = _log.info,
               checkpoint: Path | None = None) -> Run:
    """Run every stage of a recipe; returns the Run (report, run folder)."""
    return run_stages(new_run(recipe, out_dir, log), checkpoint)


def run_stages(run: Run, checkpoint: Path | None = None) -> Run:
    stages: list[tuple[str, Callable[[Run], Any]]] = [
        ("data", stage_data), ("model", lambda r: stage_model(r, checkpoint)),
        *([("train", stage_train)] if checkpoint is None else []),
        ("reference", stage_reference), ("torch_passes", stage_torch_passes), ("export", stage_export),
        ("onnx_passes", stage_file_passes), ("cross_parity", stage_cross_parity), ("bench", stage_bench),
        ("gates", stage_gates), ("report", finish)]
    with recording(run):
        for name, stage in stages:
            run.stage = name
            stage(run)
    return run
