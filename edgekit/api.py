"""The Python API behind each CLI command: one function per stage, all built on edgekit.pipeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.preflight import check_recipe
from edgekit.recipe import Recipe, load_recipe


def validate(recipe: Recipe | str | Path, overrides: list[str] | None = None,
             log: Callable[[str], None] = print) -> Recipe:
    """Check a recipe without running it: its schema, then what `run` would check before any work (devices load,
    export formats are known, the optional packages of its model, passes, exporters and runtimes are installed)."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    check_recipe(recipe, log)
    return recipe


def run(recipe: Recipe | str | Path, out_dir: Path | None = None, overrides: list[str] | None = None,
        log: Callable[[str], None] = print, on_epoch: Callable[[int, float], None] | None = None,
        mlflow: bool | None = None):
    """Everything the recipe asks for; returns the pipeline Run. `on_epoch(epoch, val_accuracy)` is called after
    each training epoch and may raise to stop the run (a search pruning a hopeless trial). `mlflow`: log the run to
    MLflow (None: when MLFLOW_TRACKING_URI is set)."""
    from edgekit.pipeline import new_run, run_stages
    from edgekit.report.tracking import tracking_wanted

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    check_recipe(recipe, log)
    track = tracking_wanted(mlflow, log)
    run = new_run(recipe, out_dir, log)
    run.on_epoch = on_epoch
    return _tracked(run_stages(run), track, log)


def resume(run_dir: Path, recipe: Recipe | str | Path | None = None, log: Callable[[str], None] = print,
           mlflow: bool | None = None):
    """Finish an interrupted run in its folder, reusing what it completed and what is unchanged."""
    from edgekit.pipeline import resume_run, run_stages
    from edgekit.report.tracking import tracking_wanted

    if recipe is not None and not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    check_recipe(recipe or load_recipe(Path(run_dir) / "recipe.yaml"), log)
    track = tracking_wanted(mlflow, log)
    return _tracked(run_stages(resume_run(Path(run_dir), recipe, log)), track, log)


def _tracked(run, track: bool, log: Callable[[str], None]):
    if track:
        from edgekit.report.tracking import log_run

        run.mlflow_run_id = log_run(run.report, run.run_dir, log)
    return run


def train(recipe: Recipe, out_dir: Path | None = None, log: Callable[[str], None] = print):
    """Data, model and training only: writes model.safetensors and the training metrics."""
    from edgekit import pipeline as p

    if recipe.train is None:
        raise EdgekitError("the recipe has no `train` section")
    check_recipe(recipe, log, passes=False, export=False, bench=False)
    run = p.new_run(recipe, out_dir, log)
    p.stage_data(run)
    p.stage_model(run)
    p.stage_train(run)
    p.finish(run)
    return run


def export(recipe: Recipe, checkpoint: Path | None = None, formats: set[str] | None = None,
           out_dir: Path | None = None, log: Callable[[str], None] = print, compress: bool = True):
    """Build (and train, unless a checkpoint is given), run the passes, export and verify the targets."""
    from edgekit import pipeline as p

    check_recipe(recipe, log, passes=compress, formats=formats, bench=False)
    run = p.new_run(recipe, out_dir, log)
    p.stage_data(run)
    p.stage_model(run, checkpoint)
    if checkpoint is None:
        p.stage_train(run)
    p.stage_reference(run)
    if compress:
        p.stage_torch_passes(run)
    p.stage_export(run, formats)
    if compress:
        p.stage_onnx_passes(run)
    p.stage_cross_parity(run)
    p.finish(run)
    return run


def bench(run_dir: Path, devices: list[str] | None = None, log: Callable[[str], None] = print, **overrides):
    """Benchmark every artifact of an existing run folder (on its recipe's devices, or `devices`)."""
    from edgekit import pipeline as p
    from edgekit.report.io import load_report

    run_dir = Path(run_dir)
    recipe = load_recipe(run_dir / "recipe.yaml")
    if recipe.bench is None:
        from edgekit.bench.config import BenchConfig

        recipe.bench = BenchConfig()
    for k, v in overrides.items():
        if v is not None:
            setattr(recipe.bench, k, v)
    check_recipe(recipe, log, model=False, passes=False, export=False, devices=devices)
    run = p.Run(recipe, run_dir, load_report(run_dir), log)
    p.stage_data(run)
    p.stage_bench(run, devices)
    p.finish(run)
    return run


def gate(report_path: Path, baseline_path: Path | str | None = None, gates=None, log: Callable[[str], None] = print,
         if_missing: str = "fail"):
    """Evaluate gates (the report's recipe gates unless `gates` is given); returns (results, passed).

    `baseline_path` is a report.json, a run folder, or the name of a baseline saved with `edgekit baseline save`.
    A latency-regression gate times baseline and candidate artifacts interleaved now (`gates.latency_comparison`).
    `if_missing="warn"`: a baseline that does not exist yet (a first CI run) adds a warning row and the gates that
    need no baseline still apply; "fail" raises GateInputError (exit 2)."""
    from edgekit.recipe import GatesConfig
    from edgekit.report.baselines import baseline_exists, resolve_baseline
    from edgekit.report.gates import evaluate_gates, gates_passed
    from edgekit.report.io import load_report, report_dir
    from edgekit.report.schema import GateResult

    if if_missing not in ("fail", "warn"):
        raise EdgekitError(f"if_missing must be 'fail' or 'warn', not {if_missing!r}")
    report = load_report(report_path)
    baseline, baseline_dir, missing = None, None, []
    if baseline_path is not None and if_missing == "warn" and not baseline_exists(baseline_path):
        detail = f"baseline '{baseline_path}' not found: baseline gates skipped (save one with `edgekit baseline save`)"
        log(f"warning: {detail}")
        missing = [GateResult(name="baseline_present", target="run", value=None, threshold=1, passed=False,
                              severity="warning", detail=detail)]
        baseline_path = None
    if baseline_path is not None:
        found = resolve_baseline(baseline_path)
        baseline, baseline_dir = load_report(found), report_dir(found)
    if gates is None:
        gates = GatesConfig.model_validate(report.recipe.get("gates", {}))
    interleaved = None
    if baseline is not None and gates.max_latency_regression is not None and gates.latency_comparison == "interleaved":
        from edgekit.bench.interleaved import interleave_targets

        interleaved = interleave_targets(report, report_dir(report_path), baseline, baseline_dir, gates.artifacts, log)
    results = missing + evaluate_gates(report, gates, baseline, run_dir=report_dir(report_path),
                                       baseline_dir=baseline_dir, interleaved=interleaved)
    return results, gates_passed(results)


def inspect(path: Path) -> dict:
    """What an artifact file says about itself: format, I/O spec and the deployment metadata edgekit wrote into it
    (ONNX metadata_props) or beside it (`<file>.model_card.json`)."""
    from edgekit.export.model_card import read_card

    return read_card(Path(path))


def search(recipe: Path, out_dir: Path | None = None, storage: str | None = None, workers: int = 1,
           trials: int | None = None, study: str | None = None, log: Callable[[str], None] = print) -> dict:
    """Search a recipe's spaces with Optuna (see edgekit.search); returns the summary written to the folder."""
    from edgekit.search.run import search as _search

    return _search(recipe, out_dir, storage, workers, trials, study, log)


def search_resume(out_dir: Path, workers: int = 1, log: Callable[[str], None] = print) -> dict:
    """Finish a stopped search: interrupted trials are re-queued with their parameters."""
    from edgekit.search.run import resume

    return resume(out_dir, workers, log)


def search_worker(storage: str, study: str, out_dir: Path, worker_id: int = 1, log: Callable[[str], None] = print) -> int:
    """Join a running search from any machine that reaches its storage; returns the number of trials run."""
    from edgekit.search.run import worker

    return worker(storage, study, out_dir, worker_id, log)


def init(dest: Path | str, force: bool = False) -> list[Path]:
    """Copy the starter recipe (quickstart.yaml) and the shipped device profiles (devices/*.yaml) into `dest`.

    Refuses to overwrite an existing file unless `force`; returns the files written."""
    from importlib.resources import files

    from edgekit.devices.profile import MEASURED_SUFFIX
    from edgekit.names import check_name, safe_target
    from edgekit.report.atomic import atomic_write_text

    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise EdgekitError(f"{dest} exists and is not a folder")
    if not dest.exists():
        check_name(dest.name, "folder name")
    profiles = files("edgekit.devices") / "profiles"
    sources = [(files("edgekit") / "recipes" / "quickstart.yaml", "quickstart.yaml")]
    sources += [(p, f"devices/{p.name}") for p in sorted(profiles.iterdir(), key=lambda p: p.name)
                if p.name.endswith(".yaml") and not p.name.endswith(MEASURED_SUFFIX)]
    targets = [safe_target(dest, rel, "init") for _, rel in sources]
    existing = [str(dest / rel) for (_, rel), target in zip(sources, targets) if target.exists()]
    if existing and not force:
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise EdgekitError(f"{', '.join(existing[:3])}{more} already exist: pass --force to overwrite")
    for (src, _), target in zip(sources, targets):
        atomic_write_text(target, src.read_text(encoding="utf-8"))
    return [dest / rel for _, rel in sources]


def env() -> dict:
    """What a bug report needs: versions, the CPU and its ISA flags, which runtimes and ONNX Runtime providers load
    (imported in a fresh interpreter), and which extras are missing with the pip command that adds them."""
    import subprocess
    import sys

    from edgekit import __version__
    from edgekit.bench.environment import PACKAGES, fingerprint
    from edgekit.child_python import child_env, python_argv
    from edgekit.devices.base import check_code, parse_check_output
    from edgekit.extras import Needs

    out = fingerprint()
    out["edgekit"] = __version__
    out["executable"] = sys.executable
    requirements = _declared_requirements()
    names = dict.fromkeys([*PACKAGES, "onnxscript", "pydantic", "typer",
                           *(n for reqs in (requirements or {}).values() for n in reqs)])
    names.pop("edgekit", None)
    out["packages"] = {n: _installed_version(n) for n in names}
    try:
        proc = subprocess.run(python_argv("-c", check_code()), capture_output=True, text=True, timeout=300,
                              env=child_env())
        out["modules"], out["modules_error"] = parse_check_output(proc.stdout)["modules"], None
    except (subprocess.TimeoutExpired, OSError, EdgekitError) as e:
        out["modules"], out["modules_error"] = {}, f"{type(e).__name__}: {e}"
    out["required_missing"] = [n for n in (requirements or {}).get("", []) if out["packages"].get(n) is None]
    out["extras_missing"] = None if requirements is None else {}
    for extra, reqs in (requirements or {}).items():
        missing = [n for n in reqs if n != "edgekit" and out["packages"].get(n) is None]
        if extra and missing:
            out["extras_missing"][extra] = {"missing": missing, "install": Needs(extra, ()).install}
    return out


def _installed_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _declared_requirements() -> dict[str, list[str]] | None:
    """edgekit's declared requirements by extra ('' for the core), as distribution names; None when edgekit is not
    installed (imported from a source tree)."""
    import re
    from importlib import metadata

    try:
        reqs = metadata.requires("edgekit") or []
    except metadata.PackageNotFoundError:
        return None
    out: dict[str, list[str]] = {}
    for req in reqs:
        name = re.match(r"[A-Za-z0-9._-]+", req.strip())
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
        if name:
            out.setdefault(extra.group(1) if extra else "", []).append(name.group(0))
    return out
