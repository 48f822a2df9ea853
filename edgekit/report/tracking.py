"""Optional experiment tracking with MLflow: one MLflow run per edgekit run, holding the flattened recipe as params,
each artifact@device's metrics, and the run's reports as artifacts. Enabled by `--mlflow` or by
MLFLOW_TRACKING_URI being set; the `mlflow` extra (mlflow-skinny) provides it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from edgekit.errors import MissingExtra
from edgekit.extras import Needs
from edgekit.report.schema import Report

NEEDS = Needs("mlflow", ("mlflow",))

MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
BATCH = 100  # params/metrics per log_batch call
REPORT_FILES = ("report.html", "report.json", "report.md", "recipe.yaml")


def tracking_wanted(flag: bool | None, log: Callable[[str], None] = print) -> bool:
    """Whether to log to MLflow: `flag` (True/False) decides; None follows MLFLOW_TRACKING_URI. Checked before any
    work, so a missing extra is named first."""
    if flag is False:
        return False
    if flag is None and not os.environ.get("MLFLOW_TRACKING_URI"):
        return False
    if NEEDS.missing():
        if flag:
            raise MissingExtra(f"--mlflow needs MLflow: {NEEDS.install}")
        log(f"note: MLFLOW_TRACKING_URI is set but mlflow is not installed ({NEEDS.install}); not tracking this run")
        return False
    return True


def flatten(d, prefix: str = "") -> dict[str, str]:
    """Nested recipe values as dotted keys; lists become JSON, long values are cut to MLflow's limit."""
    out: dict[str, str] = {}
    if isinstance(d, dict) and d:
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    text = d if isinstance(d, str) else json.dumps(d, default=str)
    out[prefix] = text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."
    return out


def run_metrics(report: Report) -> dict[str, float]:
    """`artifact/device/metric` for every successful result, plus the gate counts."""
    out: dict[str, float] = {}
    for r in report.results:
        if r.status != "ok":
            continue
        key = f"{r.artifact}/{r.device}"
        values = {"accuracy": r.accuracy, "throughput": r.throughput, "peak_rss_mb": r.peak_rss_mb,
                  "size_mb": r.size_bytes / 1e6 if r.size_bytes is not None else None, "energy_mj": r.energy_mj}
        if r.latency_ms is not None:
            values.update({f"latency_{q}_ms": getattr(r.latency_ms, q) for q in ("p50", "p90", "p99", "mean")})
        values.update(r.metrics or {})
        out.update({f"{key}/{k}": float(v) for k, v in values.items() if isinstance(v, (int, float))})
    errors = [g for g in report.gates if g.severity == "error"]
    out["gates/passed"] = float(sum(g.passed for g in errors))
    out["gates/failed"] = float(sum(not g.passed for g in errors))
    return out


def log_run(report: Report, run_dir: Path, log: Callable[[str], None] = print) -> str | None:
    """Log one edgekit run as one MLflow run (experiment: MLFLOW_EXPERIMENT_NAME, else the recipe name); returns its
    MLflow run id. A tracking failure is reported, never allowed to lose the finished edgekit run."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    run_dir = Path(run_dir)
    try:
        client = MlflowClient()
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or report.recipe_name
        exp = client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
        tags = {"edgekit.status": report.status, "edgekit.run_dir": str(run_dir.resolve()),
                "edgekit.version": report.edgekit_version, "edgekit.recipe_sha256": report.recipe_sha256}
        mrun = client.create_run(exp_id, run_name=run_dir.name, tags=tags)
        rid = mrun.info.run_id
        params = [Param(k, v) for k, v in flatten({"recipe": report.recipe}).items()]
        params.append(Param("recipe_sha256", report.recipe_sha256))
        stamp = mrun.info.start_time
        metrics = [Metric(k, v, stamp, 0) for k, v in run_metrics(report).items()]
        for i in range(0, max(len(params), len(metrics)), BATCH):
            client.log_batch(rid, metrics=metrics[i:i + BATCH], params=params[i:i + BATCH],
                             tags=[RunTag("edgekit.recipe_name", report.recipe_name)] if i == 0 else [])
        for f in REPORT_FILES:
            if (run_dir / f).is_file():
                client.log_artifact(rid, str(run_dir / f))
        if (run_dir / "plots").is_dir():
            client.log_artifacts(rid, str(run_dir / "plots"), "plots")
        client.set_terminated(rid, "FINISHED" if report.status == "completed" else "FAILED")
    except Exception as e:  # MlflowException, a store's OSError, a server's connection error: the run is kept
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        log(f"warning: mlflow: could not log this run ({type(e).__name__}: {first})")
        return None
    log(f"mlflow: logged run {rid} in experiment '{name}' ({mlflow.get_tracking_uri()})")
    return rid
