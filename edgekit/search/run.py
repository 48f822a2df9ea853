"""Start, join and resume searches. A search folder holds search.yaml (the recipe as given), search.json (storage
URL and study name), study.db (the default SQLite storage), trials/ (one edgekit run per trial) and the summary."""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from edgekit.atomic import atomic_write_text, make_dir
from edgekit.child_python import child_env, python_argv
from edgekit.console import logger
from edgekit.errors import EdgekitError, RecipeError
from edgekit.limits import read_json
from edgekit.names import check_name
from edgekit.search.config import SearchConfig
from edgekit.search.space import SearchSpec, parse_search_text
from edgekit.yaml_lines import read_yaml_text

_log = logger("search")


def load_search(path: Path, trials: int | None = None) -> tuple[SearchSpec, SearchConfig, str]:
    from pydantic import ValidationError

    path = Path(path)
    text = read_yaml_text(path)
    spec = parse_search_text(text, source=str(path))
    try:
        cfg = SearchConfig.model_validate({**spec.search, **({"trials": trials} if trials else {})})
    except ValidationError as e:
        err = e.errors()[0]
        key = "search." + ".".join(str(p) for p in err["loc"])
        raise RecipeError(f"{key}: {err['msg']}", path=str(path), key=key) from None
    if cfg.strategy == "grid":  # a grid has only so many points: more trials would repeat them
        cfg.trials = min(cfg.trials, len(spec.grid_points()))
    return spec, cfg, text


def preflight_search(spec: SearchSpec, storage: str | None, log: Callable[[str], None] | None = None) -> None:
    """Before the first trial: Optuna and the storage's driver are installed, and the recipe at every end of every
    space passes the checks a run makes first (devices, export formats, the extras its passes and targets need)."""
    from edgekit.errors import PreflightError
    from edgekit.extras import missing_extras
    from edgekit.preflight import collect
    from edgekit.recipe import Recipe
    from edgekit.search.study import storage_needs

    problems = missing_extras(("search", n) for n in storage_needs(storage))
    notes: list[str] = []
    base = {s.path: s.ends()[0] for s in spec.spaces}
    ends = [{**base, s.path: v} for s in spec.spaces for v in s.ends()] or [base]
    for values in ends:
        found, seen = collect(Recipe.model_validate(spec.resolve(values)))
        problems += [p for p in found if p not in problems]
        notes += [n for n in seen if n not in notes]
    if problems:
        raise PreflightError(problems, spec.source)
    for n in notes if log is not None else []:
        log(f"note: {n}")


def search(recipe: Path, out_dir: Path | None = None, storage: str | None = None, workers: int = 1,
           trials: int | None = None, study: str | None = None, log: Callable[[str], None] = _log.info) -> dict:
    """Run a search from a search recipe; returns the summary (also written to the search folder)."""
    from edgekit.search.study import open_study

    spec, cfg, text = load_search(recipe, trials)
    preflight_search(spec, storage, log)
    name = check_name(study or cfg.study or spec.template.get("name", "search"), "study name")
    if out_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = Path(spec.template.get("output_dir", "runs")) / f"{name}-search-{stamp}"
    out_dir = make_dir(Path(out_dir))
    storage = storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    atomic_write_text(out_dir / "search.yaml", text)
    st = open_study(spec, cfg, storage, name, text)
    # written once the study exists: a process that sees search.json finds the storage's tables ready (two
    # processes creating Optuna's tables in one empty database at once fail)
    atomic_write_text(out_dir / "search.json", json.dumps({"storage": storage, "study": name}, indent=2))
    log(f"search '{name}': {cfg.trials} trials, strategy {cfg.strategy}, {len(spec.spaces)} spaces, storage {storage}")
    return _work(st, spec, cfg, out_dir, storage, name, workers, log)


def resume(out_dir: Path, workers: int = 1, log: Callable[[str], None] = _log.info) -> dict:
    """Continue a search whose process was stopped: interrupted trials are re-queued, the budget is finished."""
    from edgekit.search.study import fail_orphans, open_study

    out_dir = Path(out_dir)
    state = out_dir / "search.json"
    if not state.is_file():
        raise EdgekitError(f"{out_dir}: not a search folder (no search.json)")
    info = read_json(state)
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in ("storage", "study")):
        raise EdgekitError(f"{state}: not a search state file (needs 'storage' and 'study' strings)")
    spec, cfg, text = load_search(out_dir / "search.yaml")
    check_name(info.get("study"), "study", where=str(state))
    preflight_search(spec, info["storage"], log)
    st = open_study(spec, cfg, info["storage"], info["study"], text)
    fail_orphans(st, log)
    return _work(st, spec, cfg, out_dir, info["storage"], info["study"], workers, log)


def worker(storage: str, study: str, out_dir: Path, worker_id: int = 1, log: Callable[[str], None] = _log.info) -> int:
    """Join a study from any machine that reaches its storage; runs trials until the budget is used."""
    from edgekit.extras import require
    from edgekit.search.study import join_study, run_worker, storage_needs

    require("search", *storage_needs(storage))
    st, spec, cfg = join_study(storage, check_name(study, "study name"), worker_id)
    return run_worker(st, spec, cfg, Path(out_dir), log)


def _work(st, spec, cfg, out_dir: Path, storage: str, name: str, workers: int, log) -> dict:
    from edgekit.search.results import write_summary
    from edgekit.search.study import run_worker

    procs = [subprocess.Popen(python_argv("-m", "edgekit", "search-worker", "--storage", storage, "--study", name,
                                          "--out", str(out_dir), "--worker-id", str(i)), env=child_env())
             for i in range(1, workers)]
    try:
        run_worker(st, spec, cfg, out_dir, log)
    finally:
        codes = [p.wait() for p in procs]
    if any(codes):
        log(f"search: worker exit codes {codes}")
    summary = write_summary(st, spec, cfg, out_dir)
    log(f"search: {summary['complete']} trials complete; summary in {out_dir / 'summary.md'}")
    return summary
