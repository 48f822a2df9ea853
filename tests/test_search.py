"""Search: spaces, strategies, Pareto fronts, workers sharing one study (PostgreSQL or SQLite), resume."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from edgekit import api
from edgekit.errors import RecipeError
from edgekit.search.config import SearchConfig
from edgekit.search.results import dominates, pareto_front
from edgekit.search.space import parse_search_text
from tests.helpers import tiny_recipe_dict

QUIET = {"log": lambda m: None}


def search_text(trials=4, strategy="random", **space_over) -> str:
    """A tiny search: MLP width and lr spaces, 2 epochs, dynamic int8, a short bench."""
    d = tiny_recipe_dict(
        model={"arch": "mlp", "hidden": {"$choice": [[16], [64]]}},
        train={"epochs": 2, "batch_size": 64, "progress": False,
               "optimizer": {"name": "adam", "lr": {"$float": [0.003, 0.03], "log": True}}},
        passes=[{"name": "quantize.dynamic"}],
        bench={"devices": ["host-cpu"], "warmup": 1, "iterations": 5, "min_time_s": 0.0},
        gates={},
    )
    d.update(space_over)
    d["search"] = {"objectives": [{"metric": "accuracy", "direction": "maximize"},
                                  {"metric": "size_mb", "direction": "minimize"}],
                   "constraints": [{"metric": "accuracy", "min": 0.5}], "strategy": strategy, "trials": trials,
                   "seed": 0}
    return yaml.safe_dump(d, sort_keys=False)


def test_spaces_parse_and_resolve():
    spec = parse_search_text(search_text())
    kinds = {s.path: s.kind for s in spec.spaces}
    assert kinds == {"model.hidden": "choice", "train.optimizer.lr": "float"}
    data = spec.resolve({"model.hidden": [64], "train.optimizer.lr": 0.01})
    assert data["model"]["hidden"] == [64] and data["train"]["optimizer"]["lr"] == 0.01
    assert "search" not in data


@pytest.mark.parametrize("space, message", [
    ({"$float": [0.5, 0.1]}, "low must be below high"),
    ({"$float": [0.0, 0.1], "log": True}, "log range needs low > 0"),
    ({"$int": [1.5, 4]}, "bounds must be integers"),
    ({"$choice": []}, "non-empty list"),
    ({"$float": [0.1, 0.5], "step": 0.05, "log": True}, "cannot be combined"),
    ({"$range": [1, 2]}, "a search space is one of"),
    ({"$float": [0.1, 1.5]}, "makes an invalid recipe"),  # ratio must be < 1: an end of the space is invalid
])
def test_bad_spaces_are_clear_errors_with_key_and_line(space, message):
    text = search_text(passes=[{"name": "prune.structured", "ratio": space}])
    with pytest.raises(RecipeError) as e:
        parse_search_text(text, source="s.yaml")
    assert message in str(e.value) and "passes.0.ratio" in str(e.value) and e.value.line is not None
    lines = text.splitlines()
    assert "ratio" in lines[e.value.line - 1] or "$" in lines[e.value.line - 1]


def test_search_section_is_required_and_validated(tmp_path):
    from edgekit.search.run import load_search

    with pytest.raises(RecipeError, match="needs a `search:` section"):
        parse_search_text(yaml.safe_dump(tiny_recipe_dict()))
    p = tmp_path / "s.yaml"
    p.write_text(search_text().replace("strategy: random", "strategy: annealing"))
    with pytest.raises(RecipeError, match="search.strategy"):
        load_search(p)


def test_grid_enumerates_steps_and_refuses_continuous_ranges():
    spec = parse_search_text(search_text(passes=[{"name": "prune.structured", "ratio": {"$float": [0.2, 0.6],
                                                                                           "step": 0.2}}]))
    ratio = next(s for s in spec.spaces if s.path == "passes.0.ratio")
    assert ratio.grid() == [0.2, 0.4, 0.6]
    with pytest.raises(RecipeError, match="grid search needs `step`"):
        next(s for s in spec.spaces if s.path == "train.optimizer.lr").grid()


def test_pareto_front_is_non_dominated():
    import numpy as np

    cfg = SearchConfig(objectives=[{"metric": "accuracy", "direction": "maximize"},
                                   {"metric": "latency_p90_ms", "direction": "minimize"}])
    rng = np.random.default_rng(0)
    rows = [{"values": [float(a), float(b)]} for a, b in rng.random((60, 2))]
    front = pareto_front(rows, cfg)
    signs = [1.0, -1.0]
    assert front and all(not dominates(o["values"], f["values"], signs) for f in front for o in rows)
    assert all(any(dominates(f["values"], r["values"], signs) for f in front) for r in rows if r not in front)


def _check_study(summary, out, trials):
    rows = [r for r in summary["rows"] if r["state"] == "complete"]
    assert summary["complete"] == len(rows) == trials, summary
    assert len({r["number"] for r in rows}) == trials and len({r["run_dir"] for r in rows}) == trials
    for r in rows:
        assert (out / "trials" / f"trial-{r['number']:04d}" / "report.json").is_file()


def test_search_end_to_end_and_best_recipe_reproduces(tmp_path):
    out = tmp_path / "s"
    recipe = tmp_path / "search.yaml"
    recipe.write_text(search_text(trials=3))
    summary = api.search(recipe, out, **QUIET)
    _check_study(summary, out, 3)
    assert (out / "pareto.png").stat().st_size > 1000 and (out / "summary.md").is_file()
    assert len((out / "trials.csv").read_text().splitlines()) == 1 + len(summary["rows"])
    best = summary["best"]["accuracy"]
    row = next(r for r in summary["rows"] if r["number"] == best)
    feasible = [r for r in summary["rows"] if r["state"] == "complete" and r["feasible"]]
    assert row["feasible"] and best in summary["pareto_front"]
    assert row["metrics"]["accuracy"] == max(r["metrics"]["accuracy"] for r in feasible)
    rerun = api.run(out / "best.yaml", tmp_path / "rerun", **QUIET)
    res = next(r for r in rerun.report.results if r.artifact == row["result"].split("@")[0])
    assert abs(res.accuracy - row["metrics"]["accuracy"]) <= 0.01
    _check_readable_outputs(summary, out, recipe)


def _check_readable_outputs(summary, out, recipe):
    """best.yaml is the user's recipe with the chosen values (no dump of defaults); tables and the printed summary
    carry no float noise and no Python dicts; pareto.png names its axes and draws the accuracy constraint."""
    from edgekit.report.plots import metric_label
    from edgekit.search.results import pareto_figure, summary_text

    user = yaml.safe_load(recipe.read_text())
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert set(best) == set(user) - {"search"}
    assert best["train"].keys() == user["train"].keys() and best["bench"] == user["bench"]
    assert best["model"]["hidden"] in ([16], [64]) and isinstance(best["train"]["optimizer"]["lr"], float)
    for line in (out / "trials.csv").read_text().splitlines()[1:]:
        for cell in line.split(","):
            assert len(cell.split(".")[-1]) <= 8 or not cell.replace(".", "").isdigit(), line
    text = summary_text(summary)
    assert "{" not in text and f"best accuracy (maximize): trial {summary['best']['accuracy']}" in text
    assert "best.yaml" in text and "Pareto front: trials" in text
    acc = next(r["metrics"]["accuracy"] for r in summary["rows"] if r["number"] == summary["best"]["accuracy"])
    assert f"accuracy {acc:.4g}" in text
    cfg = SearchConfig.model_validate(user["search"])
    fig = pareto_figure(summary["rows"], [r for r in summary["rows"] if r["number"] in summary["pareto_front"]], cfg,
                        cfg.constraints)
    ax = fig.axes[0]
    assert ax.get_xlabel() == metric_label("size_mb") == "size (MB)" and ax.get_ylabel() == "test accuracy"
    assert any(line.get_label().startswith("constraint: test accuracy >= 0.5") for line in ax.lines)
    assert ax.collections
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("size ") and t.endswith(" MB") for t in legend)


def _postgres(tmp_path):
    try:
        from tests.pg_server import PostgresUnavailable, start_postgres
    except ImportError as e:  # pragma: no cover
        pytest.skip(str(e))
    try:
        return start_postgres(tmp_path)
    except PostgresUnavailable:
        return None, None


def test_two_workers_share_one_study(tmp_path):
    """On a real PostgreSQL server on 127.0.0.1 when one is installed (CI installs it), else on SQLite."""
    url, stop = _postgres(tmp_path)
    storage = url or f"sqlite:///{tmp_path / 'study.db'}"
    try:
        recipe = tmp_path / "search.yaml"
        recipe.write_text(search_text(trials=4))
        summary = api.search(recipe, tmp_path / "s", storage=storage, workers=2, **QUIET)
        _check_study(summary, tmp_path / "s", 4)
        import optuna

        study = optuna.load_study(study_name=summary["study"], storage=storage)
        who = {t.user_attrs["worker"] for t in study.trials if "worker" in t.user_attrs}
        assert len(who) == 2, who  # both processes ran trials
        assert url or not shutil.which("initdb"), "PostgreSQL is installed but the test fell back to SQLite"
    finally:
        if stop:
            stop()


def test_killed_search_resumes_without_losing_the_trial(tmp_path):
    import optuna

    recipe = tmp_path / "search.yaml"
    recipe.write_text(search_text(trials=3))
    out = tmp_path / "s"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    log = open(tmp_path / "search.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "search", str(recipe), "--out", str(out)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    storage = f"sqlite:///{(out / 'study.db').resolve()}"
    deadline = time.time() + 240
    killed_running = None
    while time.time() < deadline:
        time.sleep(0.5)
        if not (out / "study.db").is_file() or not (out / "search.json").is_file():
            continue
        try:  # never create tables here: the search process does that
            st = optuna.storages.RDBStorage(storage, skip_table_creation=True, skip_compatibility_check=True)
            trials = optuna.load_study(study_name="tiny", storage=st).trials
        except Exception:
            continue
        done = [t for t in trials if t.state.name == "COMPLETE"]
        running = [t for t in trials if t.state.name == "RUNNING" and t.params]
        if done and running:
            killed_running = running[0]
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    log.close()
    assert killed_running is not None, ("the search never had a finished and a running trial at once: "
                                        + (tmp_path / "search.log").read_text()[-1500:])
    summary = api.search_resume(out, **QUIET)
    _check_study(summary, out, 3)
    retried = [r for r in summary["rows"] if r["retry_of"] == killed_running.number]
    assert len(retried) == 1 and retried[0]["params"] == killed_running.params
    assert any(r["number"] == killed_running.number and r["state"] == "fail" for r in summary["rows"])


def test_constraints_can_come_from_a_device_profile_budget():
    from edgekit.devices import load_profile
    from edgekit.search.study import all_constraints, constraint_values

    cfg = SearchConfig(objectives=[{"metric": "accuracy", "direction": "maximize"}], budgets_from="rpi5",
                       constraints=[{"metric": "accuracy", "min": 0.9}])
    b = load_profile("rpi5").budgets
    cons = {(c.metric, c.max, c.min) for c in all_constraints(cfg)}
    assert ("latency_p90_ms", b.max_latency_ms, None) in cons and ("accuracy", None, 0.9) in cons
    fast = constraint_values(cfg, {"accuracy": 0.95, "latency_p90_ms": b.max_latency_ms / 2, "peak_rss_mb": 10})
    slow = constraint_values(cfg, {"accuracy": 0.95, "latency_p90_ms": b.max_latency_ms * 2, "peak_rss_mb": 10})
    assert all(v <= 0 for v in fast) and any(v > 0 for v in slow)


def test_hopeless_trials_are_pruned_after_the_first_epochs(tmp_path):
    text = search_text(trials=2).replace("  seed: 0\n", "  seed: 0\n  prune: {after_epochs: 1, min_val_accuracy: 0.999}\n")
    recipe = tmp_path / "search.yaml"
    recipe.write_text(text)
    summary = api.search(recipe, tmp_path / "s", **QUIET)
    assert summary["pruned"] == 2 and summary["complete"] == 0 and not summary["constraints_met"]
    assert all("after 1 epochs" in r["pruned_because"] for r in summary["rows"])
    assert not (tmp_path / "s" / "best.yaml").exists()


def test_bad_storage_and_missing_search_folder_are_clear_errors(tmp_path):
    recipe = tmp_path / "search.yaml"
    recipe.write_text(search_text(trials=1))

    def ek(*args):
        return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True,
                              timeout=120)

    p = ek("search", recipe, "--out", tmp_path / "s", "--storage", "nosuchdb://x/y")
    assert p.returncode == 2 and "cannot open search storage nosuchdb://x/y" in p.stderr, p.stderr
    p = ek("search", "--resume", tmp_path / "nothing")
    assert p.returncode == 2 and "not a search folder" in p.stderr, p.stderr
    p = ek("search-worker", "--storage", f"sqlite:///{tmp_path / 'empty.db'}", "--study", "nope")
    assert p.returncode == 2 and "no search study named 'nope'" in p.stderr, p.stderr


def test_grid_search_runs_each_point_once_and_stops_at_the_grid_size(tmp_path):
    text = search_text(trials=5, strategy="grid").replace("log: true", "step: 0.027")  # lr grid: 0.003, 0.03
    recipe = tmp_path / "search.yaml"
    recipe.write_text(text)
    summary = api.search(recipe, tmp_path / "s", **QUIET)  # 2 widths x 2 learning rates = 4 points < 5 trials
    done = [r for r in summary["rows"] if r["state"] == "complete"]
    assert len(done) == 4 and summary["trials_requested"] == 4
    assert len({(str(r["params"]["model.hidden"]), r["params"]["train.optimizer.lr"]) for r in done}) == 4
    lrs = {line.split(",")[4] for line in (tmp_path / "s" / "trials.csv").read_text().splitlines()[1:]}
    assert lrs == {"0.003", "0.03"}, lrs  # 0.003 + 0.027 is 0.030000000000000002 in floats
