"""The Python API: one function per CLI command (the CLI only parses arguments and prints what these return).

Every function that takes a recipe accepts a path, a `Recipe` or a dict. `log` decides where progress and
messages go: `True` (the terminal, with progress bars on a TTY), a callable that receives each line, or
`None`/`False` (nowhere). Whatever the choice, a run writes everything, third-party warnings included, to
RUN/run.log.

Commands that judge runs (gate, compare, baselines) live in edgekit.api_reports, and those about devices and this
machine (devices, device*, init, env) in edgekit.api_devices; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgekit.api_devices import device as device
from edgekit.api_devices import device_check as device_check
from edgekit.api_devices import device_probe as device_probe
from edgekit.api_devices import devices as devices
from edgekit.api_devices import env as env
from edgekit.api_devices import init as init
from edgekit.api_reports import baseline as baseline
from edgekit.api_reports import baseline_save as baseline_save
from edgekit.api_reports import baselines as baselines
from edgekit.api_reports import compare as compare
from edgekit.api_reports import gate as gate
from edgekit.console import LogTarget, logger, output, run_log
from edgekit.errors import EdgekitError
from edgekit.passes.apply import Applied as Applied
from edgekit.passes.apply import apply_pass as apply_pass
from edgekit.preflight import check_recipe
from edgekit.recipe import Recipe, load_recipe

_notes = logger("preflight").info


def as_recipe(recipe: Recipe | dict | str | Path, overrides: list[str] | None = None) -> Recipe:
    """A Recipe from a path, a dict or a Recipe; `overrides` are `dotted.key=value` strings (as `--set`)."""
    from edgekit.yaml_config import validate_yaml_text

    if isinstance(recipe, (str, Path)):
        return load_recipe(recipe, overrides)
    if isinstance(recipe, dict):
        recipe = Recipe.model_validate(recipe)
    if overrides:
        return validate_yaml_text(recipe.to_yaml(), Recipe, "<recipe>", overrides)
    return recipe


def run(recipe: Recipe | dict | str | Path, out_dir: Path | None = None, overrides: list[str] | None = None,
        log: LogTarget = True, on_epoch: Callable[[int, float], None] | None = None, mlflow: bool | None = None,
        force: bool = False):
    """Everything the recipe asks for; returns the pipeline Run (`.report`, `.run_dir`). `on_epoch(epoch,
    val_accuracy)` is called after each training epoch and may raise to stop the run (a search pruning a trial).
    `mlflow`: log the run to MLflow (None: when MLFLOW_TRACKING_URI is set). An `out_dir` that holds anything is
    refused unless `force` (which replaces a run folder there)."""
    from edgekit.pipeline import new_run, run_stages
    from edgekit.report.tracking import tracking_wanted

    recipe = as_recipe(recipe, overrides)
    with output(log):
        check_recipe(recipe, _notes)
        track = tracking_wanted(mlflow, _tracking_log.warning)
        r = new_run(recipe, out_dir, force=force)
        r.on_epoch = on_epoch
        with run_log(r.run_dir):
            return _tracked(run_stages(r), track)


def summary(run, file=None) -> None:
    """Print a run's results table, gate matrix, verdict and report paths (what `edgekit run` ends with)."""
    from edgekit.report.terminal import print_summary

    print_summary(run.report, run.run_dir, file)


def resume(run_dir: Path, recipe: Recipe | dict | str | Path | None = None, log: LogTarget = True,
           mlflow: bool | None = None):
    """Finish an interrupted run in its folder, reusing what it completed and what is unchanged."""
    from edgekit.pipeline import resume_run, run_stages
    from edgekit.report.tracking import tracking_wanted

    recipe = None if recipe is None else as_recipe(recipe)
    with output(log):
        check_recipe(recipe or load_recipe(Path(run_dir) / "recipe.yaml"), _notes)
        track = tracking_wanted(mlflow, _tracking_log.warning)
        r = resume_run(Path(run_dir), recipe)
        with run_log(r.run_dir):
            return _tracked(run_stages(r), track)


_tracking_log = logger("tracking")


def _tracked(run, track: bool):
    if track:
        from edgekit.report.tracking import log_run

        run.mlflow_run_id = log_run(run.report, run.run_dir, _tracking_log.info)
    return run


def inspect(path: Path) -> dict:
    """What an artifact file says about itself: format, I/O spec and the deployment metadata edgekit wrote into it
    (ONNX metadata_props) or beside it (`<file>.model_card.json`)."""
    from edgekit.export.model_card import read_card

    return read_card(Path(path))


def train(recipe: Recipe | dict | str | Path, out_dir: Path | None = None, overrides: list[str] | None = None,
          log: LogTarget = True):
    """Data, model and training only: writes model.safetensors and the training metrics."""
    from edgekit import pipeline as p

    recipe = as_recipe(recipe, overrides)
    if recipe.train is None:
        raise EdgekitError("the recipe has no `train` section")
    with output(log):
        check_recipe(recipe, _notes, passes=False, export=False, bench=False)
        r = p.new_run(recipe, out_dir)
        with run_log(r.run_dir):
            with p.recording(r):
                p.stage_data(r)
                p.stage_model(r)
                p.stage_train(r)
                p.finish(r)
        return r


def export(recipe: Recipe | dict | str | Path, checkpoint: Path | None = None, formats: set[str] | None = None,
           out_dir: Path | None = None, log: LogTarget = True, compress: bool = True,
           overrides: list[str] | None = None):
    """Build (and train, unless a checkpoint is given), run the passes, export and verify the targets."""
    from edgekit import pipeline as p

    recipe = as_recipe(recipe, overrides)
    with output(log):
        check_recipe(recipe, _notes, passes=compress, formats=formats, bench=False)
        r = p.new_run(recipe, out_dir)
        with run_log(r.run_dir):
            with p.recording(r):
                p.stage_data(r)
                p.stage_model(r, checkpoint)
                if checkpoint is None:
                    p.stage_train(r)
                p.stage_reference(r)
                if compress:
                    p.stage_torch_passes(r)
                p.stage_export(r, formats)
                if compress:
                    p.stage_file_passes(r)
                p.stage_cross_parity(r)
                p.finish(r)
        return r


def bench(run_dir: Path, devices: list[str] | None = None, log: LogTarget = True, **overrides):
    """Benchmark every artifact of an existing run folder (on its recipe's devices, or `devices`); keyword
    arguments override the recipe's `bench` settings (threads, iterations, min_time_s, batch_size ...). The folder
    is checked first: artifacts inside it with the sha256 its report recorded, and no planted symlink."""
    from edgekit import pipeline as p
    from edgekit.export.artifact import verify_artifacts
    from edgekit.report.io import load_report
    from edgekit.report.run_folder import refuse_symlinks

    run_dir = Path(run_dir)
    report = load_report(run_dir)
    refuse_symlinks(run_dir)
    verify_artifacts(report, run_dir, require=True)
    recipe = load_recipe(run_dir / "recipe.yaml")
    if recipe.bench is None:
        from edgekit.bench.config import BenchConfig

        recipe.bench = BenchConfig()
    for k, v in overrides.items():
        if v is not None:
            setattr(recipe.bench, k, v)
    with output(log):
        check_recipe(recipe, _notes, model=False, passes=False, export=False, devices=devices)
        r = p.Run(recipe, run_dir, report)
        with run_log(r.run_dir), p.recording(r):
            p.stage_data(r)
            p.stage_bench(r, devices)
            p.finish(r)
        return r


def validate(recipe: Recipe | dict | str | Path, overrides: list[str] | None = None, show: bool = False,
             log: LogTarget = True) -> str:
    """Check a recipe without running it: its schema, then what `run` would check before any work (devices load,
    export formats are known, the optional packages of its model, passes, exporters and runtimes are installed); a
    search recipe: every end of each space, and its `search:` section. Returns a one-line verdict, or with `show`
    the full recipe with defaults; raises on a problem."""
    from edgekit.recipe import is_search_recipe

    if isinstance(recipe, (str, Path)) and not overrides and is_search_recipe(Path(recipe)):
        from edgekit.search.run import load_search, preflight_search

        spec, cfg, _ = load_search(Path(recipe))
        with output(log):
            preflight_search(spec, None, _notes)
        return (f"{recipe}: ok (search, {len(spec.spaces)} spaces: {', '.join(s.path for s in spec.spaces)}; "
                f"{cfg.trials} trials, strategy {cfg.strategy})")
    r = as_recipe(recipe, overrides)
    with output(log):
        check_recipe(r, _notes)
    return r.to_yaml() if show else f"{recipe if isinstance(recipe, (str, Path)) else '<recipe>'}: ok ({r.name})"


def analyze(recipe: Recipe | dict | str | Path, checkpoint: Path | None = None, prune_ratio: float = 0.5,
            threshold: float = 0.01, overrides: list[str] | None = None, json_out: Path | None = None,
            log: LogTarget = True) -> dict:
    """Per-layer sensitivity to int8 quantization and to pruning, ranked (see edgekit.analyze)."""
    import json

    from edgekit.analyze import analyze as _analyze
    from edgekit.atomic import atomic_write_text

    recipe = as_recipe(recipe, overrides)
    with output(log):
        result = _analyze(recipe, checkpoint, prune_ratio, threshold)
    if json_out:
        atomic_write_text(Path(json_out), json.dumps(result, indent=2))
    return result


def profile(target: Path, device: str = "host-cpu", baseline: Path | None = None, runs: int = 50, warmup: int = 10,
            threads: int | None = None, log: LogTarget = True) -> list[dict]:
    """Per-layer profiles of an artifact, or of every artifact of a run folder (stored in its report.json);
    with `baseline`, the fp32 artifact is profiled too and a slower int8 layer is flagged."""
    from edgekit.bench.profile import compare_pair, profile_artifact
    from edgekit.bench.profile_report import profile_run_dir
    from edgekit.devices import load_profile

    target = Path(target)
    prof_dev = load_profile(device)
    with output(log):
        if target.is_dir():
            return profile_run_dir(target, prof_dev, runs=runs, warmup=warmup, threads=threads)
        profiles = [profile_artifact(target, prof_dev, runs=runs, warmup=warmup, threads=threads)]
        if baseline is not None:
            base = profile_artifact(Path(baseline), prof_dev, runs=runs, warmup=warmup, threads=threads)
            flag = compare_pair(profiles[0], base)
            profiles[0]["baseline"] = base["artifact"]
            if flag:
                profiles[0]["flags"].append(flag)
            profiles.append(base)
        return profiles


def search(recipe: str | Path, out_dir: Path | None = None, storage: str | None = None, workers: int = 1,
           trials: int | None = None, study: str | None = None, log: LogTarget = True) -> dict:
    """Search a recipe's spaces with Optuna (see edgekit.search); returns the summary written to the folder."""
    from edgekit.search.run import search as _search

    with output(log):
        return _search(Path(recipe), out_dir, storage, workers, trials, study)


def search_resume(out_dir: Path, workers: int = 1, log: LogTarget = True) -> dict:
    """Finish a stopped search: interrupted trials are re-queued with their parameters."""
    from edgekit.search.run import resume as _resume

    with output(log):
        return _resume(Path(out_dir), workers)


def search_worker(storage: str, study: str, out_dir: Path, worker_id: int = 1, log: LogTarget = True) -> int:
    """Join a running search from any machine that reaches its storage; returns the number of trials run."""
    from edgekit.search.run import worker

    with output(log):
        return worker(storage, study, Path(out_dir), worker_id)

