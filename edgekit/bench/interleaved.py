"""Time a baseline and a candidate artifact interleaved on one device (see bench/agent_paired.py for why)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.console import logger
from edgekit.runtimes.base import as_model_input

_log = logger("bench")

PER_ROUND = 10
MIN_ROUNDS = 30


@dataclass
class Side:
    """One artifact to time: its file, runtime and intra-op threads."""

    path: Path
    runtime: str
    threads: int | None


@dataclass
class Interleaved:
    base_ms: np.ndarray
    cand_ms: np.ndarray
    per_round: int
    rounds: int
    device: str


def bench_interleaved(base: Side, cand: Side, x: np.ndarray, profile, cfg) -> Interleaved:
    """Alternate rounds of `PER_ROUND` timed runs of each side in one agent process on the profile's device, for
    at least `MIN_ROUNDS` rounds, `cfg.iterations` runs per side and `cfg.min_time_s` seconds in all."""
    from edgekit.bench.job import Job, Model
    from edgekit.bench.run import timing_of
    from edgekit.devices import transport

    with tempfile.TemporaryDirectory(prefix="edgekit-paired-") as tmp:
        inputs = Path(tmp) / "x.npy"
        np.save(inputs, as_model_input(x))
        models = [Model(str(s.path), s.runtime, s.threads, profile.runtime_options(s.runtime)) for s in (base, cand)]
        job = Job(task="paired", models=models, threads=base.threads, providers=profile.providers,
                  affinity=profile.affinity, inputs=str(inputs), per_round=PER_ROUND, min_rounds=MIN_ROUNDS,
                  **{**timing_of(cfg), "min_time_s": 2 * cfg.min_time_s, "max_time_s": 2 * cfg.max_time_s})
        out = transport(profile)(job, cfg.timeout_s)
    a, b = out["latencies_ms"]
    return Interleaved(np.asarray(a), np.asarray(b), out["per_round"], out["rounds"], profile.name)


def interleave_targets(report, run_dir: Path, baseline, baseline_dir: Path, only: list[str] | None = None,
                       log=_log.info) -> dict:
    """For each artifact@device in both reports with latency: an `Interleaved` timing of the two files on that
    device now, or a string saying why it could not be made (the gate then compares the recorded runs)."""
    from edgekit.devices import load_profile, reachable
    from edgekit.errors import EdgekitError
    from edgekit.export.artifact import artifact_path, verified_path

    base_rows = {(r.artifact, r.device): r for r in baseline.results if r.status == "ok" and r.latency_ms}
    cand_arts = {a.name: a for a in report.artifacts}
    base_arts = {a.name: a for a in baseline.artifacts}
    out: dict = {}
    x = None
    for r in report.results:
        base = base_rows.get((r.artifact, r.device))
        if r.status != "ok" or r.latency_ms is None or base is None or (only and r.artifact not in only):
            continue
        key = (r.artifact, r.device)
        a, b = cand_arts.get(r.artifact), base_arts.get(r.artifact)
        paths = [artifact_path(run_dir, a) if a else None, artifact_path(baseline_dir, b) if b else None]
        missing = [str(p or name) for p, name in zip(paths, ("candidate", "baseline")) if p is None or not p.is_file()]
        if missing or a is None or b is None:
            out[key] = f"artifact file not found: {', '.join(missing)}"
            continue
        paths = [verified_path(run_dir, a), verified_path(baseline_dir, b)]
        try:
            profile = load_profile(r.device, name_only=True)
            why = reachable(profile)
            if why:
                raise EdgekitError(f"device unreachable: {why}")
            if x is None:
                x, cfg = _candidate_inputs(report)
            log(f"timing {r.artifact} of both runs interleaved on {r.device}")
            cfg = cfg.model_copy(update={"batch_size": r.batch_size or cfg.batch_size})
            out[key] = bench_interleaved(Side(paths[1], base.runtime, base.threads),
                                         Side(paths[0], r.runtime, r.threads), x, profile, cfg)
        except (EdgekitError, ValueError) as e:  # ValueError: a recorded recipe this version cannot read
            out[key] = f"interleaved timing failed: {e}"
    return out


def _candidate_inputs(report):
    """The candidate run's test inputs (from the data of the recipe its report records) and bench settings."""
    from edgekit.bench.config import BenchConfig
    from edgekit.data import load_data
    from edgekit.recipe import Recipe

    recipe = Recipe.model_validate(report.recipe)
    return load_data(recipe.data, recipe.seed).x_test, recipe.bench or BenchConfig()
