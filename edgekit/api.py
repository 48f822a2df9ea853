"""The Python API: one function per CLI command (the CLI only parses arguments and prints what these return).

Every function that takes a recipe accepts a path, a `Recipe` or a dict. `log` decides where progress and
messages go: `True` (the terminal, with progress bars on a TTY), a callable that receives each line, or
`None`/`False` (nowhere). Whatever the choice, a run writes everything, third-party warnings included, to
RUN/run.log.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit.console import LogTarget, logger, output, run_log
from edgekit.errors import EdgekitError
from edgekit.preflight import check_recipe
from edgekit.recipe import GatesConfig, Recipe, load_recipe

_notes = logger("preflight").info


def as_recipe(recipe: Recipe | dict | str | Path, overrides: list[str] | None = None) -> Recipe:
    """A Recipe from a path, a dict or a Recipe; `overrides` are `dotted.key=value` strings (as `--set`)."""
    from edgekit.recipe import validate_yaml_text

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
                    p.stage_onnx_passes(r)
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


def gate(report_path: Path, baseline_path: Path | str | None = None, gates: GatesConfig | dict | None = None,
         log: LogTarget = True, if_missing: str = "fail", markdown: Path | None = None, junit: Path | None = None,
         step_summary: bool = False):
    """Evaluate gates; returns (results, passed). `gates`: a GatesConfig, or a dict of values that override the
    report's own recipe gates, or None for those gates.

    `baseline_path` is a report.json, a run folder, or the name of a baseline saved with `baseline_save`. A
    latency-regression gate times baseline and candidate artifacts interleaved now (`gates.latency_comparison`).
    `if_missing="warn"`: a baseline that does not exist yet (a first CI run) adds a warning row and the gates that
    need no baseline still apply; "fail" raises GateInputError (exit 2). A run (or baseline) that did not complete
    fails; an artifact file that differs from its report is an error (exit 2).
    `markdown`/`junit` write those summaries; `step_summary` appends the Markdown to $GITHUB_STEP_SUMMARY."""
    import os

    from edgekit.export.artifact import verify_artifacts
    from edgekit.report.atomic import atomic_write_text
    from edgekit.report.baselines import baseline_exists, resolve_baseline
    from edgekit.report.ci_outputs import gates_junit, gates_markdown
    from edgekit.report.gates import evaluate_gates, gates_passed, status_gates
    from edgekit.report.io import load_report, report_dir
    from edgekit.report.schema import GateResult

    if if_missing not in ("fail", "warn"):
        raise EdgekitError(f"if_missing must be 'fail' or 'warn', not {if_missing!r}")
    report = load_report(report_path)
    verify_artifacts(report, report_dir(report_path))
    if not isinstance(gates, GatesConfig):
        own = GatesConfig.model_validate(report.recipe.get("gates", {})).model_dump()
        gates = GatesConfig.model_validate({**own, **{k: v for k, v in (gates or {}).items() if v is not None}})
    with output(log):
        baseline, baseline_dir, missing = None, None, []
        if baseline_path is not None and if_missing == "warn" and not baseline_exists(baseline_path):
            detail = (f"baseline '{baseline_path}' not found: baseline gates skipped (save one with "
                      f"`edgekit baseline save`)")
            logger("gate").warning(f"warning: {detail}")
            missing = [GateResult(name="baseline_present", target="run", value=None, threshold=1, passed=False,
                                  severity="warning", detail=detail)]
            baseline_path = None
        if baseline_path is not None:
            found = resolve_baseline(baseline_path)
            baseline, baseline_dir = load_report(found), report_dir(found)
            verify_artifacts(baseline, baseline_dir)
        interleaved = None
        if baseline is not None and gates.max_latency_regression is not None \
                and gates.latency_comparison == "interleaved":
            from edgekit.bench.interleaved import interleave_targets

            interleaved = interleave_targets(report, report_dir(report_path), baseline, baseline_dir, gates.artifacts)
        results = missing + status_gates(report, baseline) + evaluate_gates(
            report, gates, baseline, run_dir=report_dir(report_path), baseline_dir=baseline_dir,
            interleaved=interleaved)
    md = gates_markdown(results, f"edgekit gates: {report.recipe_name}")
    if markdown:
        atomic_write_text(markdown, md)
    if junit:
        atomic_write_text(junit, gates_junit(results))
    if step_summary and os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
            f.write(md)
    return results, gates_passed(results)


def compare(run_a: Path, run_b: Path, html: Path | None = None, timing: str = "interleaved",
            log: LogTarget = True) -> list[dict]:
    """Row-by-row differences (artifact@device) between two runs (run folders or report.json files).

    `timing="interleaved"` also times A's and B's artifact files now, alternating in one process on the device (as
    the gate's latency-regression check does), for a p50 ratio B/A with its 95% confidence interval where both
    files exist (`rows[].interleaved`, or why not in `rows[].interleaved_note`); "recorded" only divides the
    latencies the runs recorded. `html` also writes a self-contained page."""
    from edgekit.report.atomic import atomic_write_text
    from edgekit.report.compare import compare_html, compare_rows, load_compared
    from edgekit.report.io import report_dir

    if timing not in ("interleaved", "recorded"):
        raise EdgekitError(f"timing must be 'interleaved' or 'recorded', not {timing!r}")
    a, b = load_compared(run_a), load_compared(run_b)
    dir_a, dir_b = report_dir(run_a), report_dir(run_b)
    interleaved = None
    if timing == "interleaved":
        from edgekit.bench.interleaved import interleave_targets

        with output(log):
            interleaved = interleave_targets(b, dir_b, a, dir_a)
    rows = compare_rows(a, b, interleaved)
    if html:
        atomic_write_text(html, compare_html(a, b, dir_a, dir_b, rows))
    return rows


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


def devices() -> list:
    """The known device profiles."""
    from edgekit.devices import list_profiles

    return list_profiles()


def device(name: str) -> dict:
    """One profile with its defaults (and, for this machine, the detected CPU), as plain data."""
    from edgekit.devices import load_profile

    p = load_profile(name)
    data = p.model_dump(mode="json")
    if p.transport in ("local", "cuda"):
        import os

        from edgekit.bench.environment import cpu_info

        data["detected"] = {**cpu_info(), "usable_cores": len(os.sched_getaffinity(0))}
    data["_path"] = str(p.path) if p.path else None
    return data


def device_check(name: str) -> dict:
    """Is the device reachable, and which of its runtimes import there?"""
    from edgekit.devices import check, load_profile

    return check(load_profile(name))


def device_probe(name: str, mem_mb: int = 256, size: int = 1024, out: Path | None = None,
                 dry_run: bool = False) -> dict:
    """Measure peak GEMM throughput and memory bandwidth on a device; unless `dry_run`, store them beside the
    datasheet peaks. Returns {"rows": [(key, measured, datasheet)], "source": ..., "written": path or None}."""
    from edgekit.devices import load_profile
    from edgekit.devices.probe import probe, write_measured

    p = load_profile(name)
    m = probe(p, mem_mb=mem_mb, gemm={"m": size, "n": size, "k": size})
    rows = [(k, getattr(m, k), getattr(p.peaks, k)) for k in ("fp32_gflops", "fp16_gflops", "int8_gops",
                                                               "mem_bandwidth_gbs")]
    written = None if dry_run else write_measured(p, m, Path(out) if out else None)
    return {"rows": [r for r in rows if r[1] is not None or r[2] is not None], "source": m.source, "written": written}


def analyze(recipe: Recipe | dict | str | Path, checkpoint: Path | None = None, prune_ratio: float = 0.5,
            threshold: float = 0.01, overrides: list[str] | None = None, json_out: Path | None = None,
            log: LogTarget = True) -> dict:
    """Per-layer sensitivity to int8 quantization and to pruning, ranked (see edgekit.analyze)."""
    import json

    from edgekit.analyze import analyze as _analyze
    from edgekit.report.atomic import atomic_write_text

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


def baseline_save(run_dir: Path, name: str = "main") -> Path:
    """Store a run's report and evidence as a named baseline (in $EDGEKIT_BASELINES or .edgekit/baselines)."""
    from edgekit.report.baselines import save_baseline

    return save_baseline(Path(run_dir), name)


def baselines() -> list[tuple[str, Any]]:
    """The stored baselines: (name, Report)."""
    from edgekit.report.baselines import list_baselines
    from edgekit.report.io import load_report

    return [(p.name, load_report(p)) for p in list_baselines()]


def baseline(name: str):
    """The Report of one stored baseline."""
    from edgekit.report.baselines import resolve_baseline
    from edgekit.report.io import load_report

    return load_report(resolve_baseline(name))
