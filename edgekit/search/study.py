"""The Optuna side of a search: storage, samplers, the trial budget shared by workers, and one trial.

Every trial is a normal edgekit run (its own run folder with artifacts and report.json). The search recipe's text
is stored in the study, so a worker on another machine joins with only the storage URL and the study name.
Workers share the trial budget through the storage: a trial whose number falls past the budget (two workers
asked at the same instant) is closed as `surplus` before anything runs, so the study ends with exactly the
requested number of finished trials. A worker killed mid-trial stops sending heartbeats (RDB storages); its trial
is failed and re-queued with the same parameters, so it is neither lost nor counted twice.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from edgekit.console import logger, progress
from edgekit.errors import EdgekitError
from edgekit.extras import Needs
from edgekit.search.config import Constraint, SearchConfig
from edgekit.search.space import SearchSpec

_log = logger("search")

HEARTBEAT_S, GRACE_S = 5, 30
RECIPE_ATTR, CONFIG_ATTR = "edgekit.search_recipe", "edgekit.search_config"


class TrialError(EdgekitError):
    """A trial that failed for a recorded reason (bad sampled recipe, failed run); the search goes on."""


class Surplus(EdgekitError):
    """This trial's number is past the budget: closed without running."""


def storage_needs(url: str | None) -> list[Needs]:
    """Optuna, and the database driver a storage URL names."""
    needs = [Needs("search", ("optuna",))]
    if url and url.startswith("postgresql"):
        needs.append(Needs("search", ("psycopg2",)))
    return needs


def open_storage(url: str):
    """An Optuna storage: `sqlite:///FILE`, any SQLAlchemy URL (`postgresql+psycopg2://...`) with heartbeats, or
    `journal:FILE` (Optuna's append-only journal file, for file systems where SQLite locking is unreliable)."""
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        file = Path(url[len("journal:"):])
        if not file.name or not file.parent.is_dir():
            raise EdgekitError(f"{file}: the folder of the search journal ({url}) does not exist; create it first")
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(file)))
        except OSError as e:
            raise EdgekitError(f"{file}: cannot open the search journal: {e.strerror or e}") from None
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2))
    except Exception as e:  # SQLAlchemy raises many types for a bad URL / unreachable server
        raise EdgekitError(f"cannot open search storage {url}: {type(e).__name__}: {e}") from None


def make_sampler(cfg: SearchConfig, worker: int):
    """Samplers by name; each worker gets its own seed so two workers do not propose the same sequence."""
    import optuna

    seed = cfg.seed + worker
    strategy = cfg.strategy
    if strategy == "auto":
        strategy = "tpe" if len(cfg.objectives) == 1 else "nsga2"
    startup = max(2, min(10, cfg.trials // 3))
    samplers = {
        "grid": lambda: optuna.samplers.RandomSampler(seed=seed),  # the grid itself is enqueued: see open_study
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, cfg.trials // 2))),
    }
    return samplers[strategy]()


def open_study(spec: SearchSpec, cfg: SearchConfig, storage_url: str, name: str, recipe_text: str, worker: int = 0):
    """Create (or join) the study; the creator stores the recipe and enqueues the grid for grid search."""
    import json

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2) if cfg.prune else optuna.pruners.NopPruner()
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True, pruner=pruner,
                                directions=[o.direction for o in cfg.objectives], sampler=make_sampler(cfg, worker))
    if RECIPE_ATTR not in study.user_attrs:
        study.set_user_attr(RECIPE_ATTR, recipe_text)
        study.set_user_attr(CONFIG_ATTR, json.dumps(cfg.model_dump(mode="json")))
        if cfg.strategy == "grid":
            _enqueue_grid(study, spec, cfg)
    return study


def join_study(storage_url: str, name: str, worker: int):
    """A worker on any machine: the recipe and config come from the study itself."""
    import json

    import optuna

    from edgekit.search.space import parse_search_text

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        attrs = optuna.load_study(study_name=name, storage=open_storage(storage_url)).user_attrs
    except KeyError:
        raise EdgekitError(f"no search study named '{name}' in {storage_url}") from None
    text = attrs[RECIPE_ATTR]
    cfg = SearchConfig.model_validate(json.loads(attrs[CONFIG_ATTR]))
    spec = parse_search_text(text, source=f"study {name}")
    return open_study(spec, cfg, storage_url, name, text, worker), spec, cfg


def _enqueue_grid(study, spec: SearchSpec, cfg: SearchConfig) -> None:
    """Every grid point as a queued trial, in a seeded order: a queued trial is taken by one worker only, which
    keeps distributed grid search free of duplicates."""
    for p in spec.grid_points(cfg.seed)[: cfg.trials]:
        study.enqueue_trial(p)


def budget_trials(study) -> list:
    """Trials that use up the budget: finished ones, running ones and those failed for a recorded reason (not
    the surplus tickets, nor trials whose worker died, which are re-queued)."""
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
            out.append(t)
        elif t.state == TrialState.FAIL and "error" in t.user_attrs:
            out.append(t)
    return out


def remaining(study, cfg: SearchConfig) -> int:
    return cfg.trials - len(budget_trials(study))


def fail_orphans(study, log: Callable[[str], None]) -> int:
    """On --resume: trials left RUNNING by a search that was killed are failed and re-queued with their params."""
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)  # its process is gone (the user asked to resume)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        log(f"search: trial {t.number} was interrupted; re-queued with the same parameters")
        n += 1
    return n


def constraint_values(cfg: SearchConfig, metrics: dict[str, float]) -> list[float]:
    from edgekit.search.metrics import metric

    return [metric(metrics, c.metric) - c.max if c.max is not None else c.min - metric(metrics, c.metric)
            for c in all_constraints(cfg)]


def all_constraints(cfg: SearchConfig) -> list[Constraint]:
    """The recipe's constraints plus the budgets of `budgets_from`'s device profile."""
    out = list(cfg.constraints)
    if cfg.budgets_from:
        from edgekit.devices import load_profile

        b = load_profile(cfg.budgets_from).budgets
        for metric_name, bound in (("latency_p90_ms", b.max_latency_ms), ("size_mb", b.max_size_mb),
                                   ("peak_rss_mb", b.max_memory_mb)):
            if bound is not None:
                out.append(Constraint(metric=metric_name, max=bound))
    return out


def trial_dir(out_dir: Path, number: int) -> Path:
    return Path(out_dir) / "trials" / f"trial-{number:04d}"


def make_objective(spec: SearchSpec, cfg: SearchConfig, out_dir: Path, log: Callable[[str], None]):
    """The Optuna objective: sample the spaces, run the recipe, read the objectives off its report."""
    import optuna

    from edgekit.recipe import Recipe
    from edgekit.search.metrics import chosen_result, metric, trial_metrics

    def objective(trial):
        if _is_surplus(trial, cfg):
            trial.set_user_attr("surplus", True)
            raise Surplus(f"trial {trial.number} is past the budget of {cfg.trials}")
        values = {s.path: s.suggest(trial) for s in spec.spaces}
        run_dir = trial_dir(out_dir, trial.number)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        log(f"search: trial {trial.number}: {shown}")
        try:
            recipe = Recipe.model_validate(spec.resolve(values))
            run = run_trial(recipe, run_dir, _pruner(trial, cfg))
            row = chosen_result(run.report, cfg.artifact, cfg.device)
            m = trial_metrics(run.report, row)
            trial.set_user_attr("metrics", m)
            trial.set_user_attr("result", f"{row.artifact}@{row.device}")
            cons = constraint_values(cfg, m)
            trial.set_user_attr("constraints", cons)
            for c, v in zip(all_constraints(cfg), cons):  # <= 0 is feasible; the samplers and best_trials use these
                bound = f"<={c.max}" if c.max is not None else f">={c.min}"
                trial.set_constraint(f"{c.metric}{bound}", v)
            objectives = [metric(m, o.metric) for o in cfg.objectives]
        except optuna.TrialPruned:
            log(f"search: trial {trial.number} pruned")
            raise
        except Exception as e:  # a bad sample or a failed run is this trial's result, not the search's end
            trial.set_user_attr("error", f"{type(e).__name__}: {e}"[:2000])
            log(f"search: trial {trial.number} failed: {e}")
            raise TrialError(str(e)) from None
        log(f"search: trial {trial.number}: " + ", ".join(f"{o.metric} {v:.4g}" for o, v in zip(cfg.objectives,
                                                                                            objectives)))
        return objectives

    return objective


def run_trial(recipe, run_dir: Path, on_epoch: Callable[[int, float], None] | None = None):
    """One trial's pipeline run, silent, with its run.log (and logged to MLflow when MLFLOW_TRACKING_URI is set, as
    `edgekit run` does)."""
    from edgekit.console import output, run_log
    from edgekit.pipeline import new_run, run_stages
    from edgekit.preflight import check_recipe
    from edgekit.report.tracking import log_run, tracking_wanted

    with output(None):
        check_recipe(recipe)
        track = tracking_wanted(None, _log.warning)
        r = new_run(recipe, run_dir)
        r.on_epoch = on_epoch
        with run_log(r.run_dir):
            run = run_stages(r)
        if track:
            run.mlflow_run_id = log_run(run.report, run.run_dir, _log.info)
    return run


def _is_surplus(trial, cfg: SearchConfig) -> bool:
    """Past the budget when, counting this trial, it is not among the `trials` lowest-numbered budget trials.
    Every worker computes the same order, so of two racing workers exactly one stands down."""
    numbers = sorted(t.number for t in budget_trials(trial.study))
    return trial.number not in numbers[: cfg.trials]


def _pruner(trial, cfg: SearchConfig):
    """Training-epoch hook: the recipe's rule (works with several objectives); with one objective also Optuna's
    median pruner against earlier trials' validation accuracy."""
    if cfg.prune is None:
        return None
    import optuna

    def on_epoch(epoch: int, val_acc: float) -> None:
        step = epoch + 1
        if step == cfg.prune.after_epochs and val_acc < cfg.prune.min_val_accuracy:
            trial.set_user_attr("pruned_because", f"val accuracy {val_acc:.4f} < {cfg.prune.min_val_accuracy} "
                                                  f"after {step} epochs")
            raise optuna.TrialPruned()
        if len(cfg.objectives) == 1 and val_acc == val_acc:
            trial.report(val_acc, step)
            if step >= cfg.prune.after_epochs and trial.should_prune():
                trial.set_user_attr("pruned_because", f"val accuracy {val_acc:.4f} below the median of earlier "
                                                      f"trials at epoch {step}")
                raise optuna.TrialPruned()

    return on_epoch


def run_worker(study, spec: SearchSpec, cfg: SearchConfig, out_dir: Path, log: Callable[[str], None] = _log.info) -> int:
    """Run trials until the study's budget is used up; returns how many this worker ran."""
    objective = make_objective(spec, cfg, out_dir, log)
    ran = 0
    with progress("trial", remaining(study, cfg), log=log) as bar:
        while remaining(study, cfg) > 0:
            study.optimize(objective, n_trials=1, catch=(TrialError, Surplus))
            ran += 1
            bar.update()
    return ran
