"""Benchmark one artifact on one device: latency statistics, accuracy on the test split, memory."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgekit.bench.job import Job, Model
from edgekit.bench.stats import latency_stats
from edgekit.errors import EdgekitError, OutputError
from edgekit.export.artifact import artifact_path
from edgekit.hardware import usable_cores
from edgekit.report.schema import Artifact, Result
from edgekit.runtimes import runtime_name_for
from edgekit.runtimes.base import as_model_input
from edgekit.timing import Stopwatch

if TYPE_CHECKING:
    from edgekit.bench.config import BenchConfig
    from edgekit.devices.profile import DeviceProfile


def resolve_threads(threads: int | None, profile: DeviceProfile) -> int:
    """The intra-op threads of a bench: the recipe's, else the profile's, else its affinity's or the usable cores."""
    if threads:
        return threads
    if profile.threads:
        return profile.threads
    return len(profile.affinity) if profile.affinity else usable_cores()


def timing_of(cfg: BenchConfig) -> dict:
    """The Job fields a BenchConfig sets: batch size, warm-up, iterations and time limits."""
    return {"batch_size": cfg.batch_size, "warmup": cfg.warmup, "iterations": cfg.iterations,
            "min_time_s": cfg.min_time_s, "max_time_s": cfg.max_time_s}


def bench_artifact(artifact: Artifact, run_dir: Path, x_test: np.ndarray, y_test: np.ndarray | None,
                   profile: DeviceProfile, cfg: BenchConfig,
                   runtime: str | None = None, keep_samples_dir: Path | None = None,
                   reference: np.ndarray | None = None, outputs_into: dict | None = None) -> Result:
    """Run the bench agent for (artifact, device); a failure becomes a failed Result, never an exception.

    `y_test` None means unlabelled data; `reference` (fp32 outputs on x_test) enables the fidelity metrics;
    `outputs_into` collects the device's outputs under (artifact, device), for cross-ISA parity."""
    from edgekit.devices import transport
    from edgekit.model_files import check_model_file

    rt = runtime or runtime_name_for(artifact.format, profile.runtimes)
    threads = resolve_threads(cfg.threads, profile)
    row = Result(artifact=artifact.name, device=profile.name, runtime=rt, batch_size=cfg.batch_size, threads=threads,
                 size_bytes=artifact.size_bytes, emulated=True if getattr(profile, "emulated", False) else None)
    if rt not in profile.runtimes:
        row.status, row.error = "skipped", f"runtime {rt} is not listed for device {profile.name}"
        return row
    took = Stopwatch()
    with tempfile.TemporaryDirectory(prefix="edgekit-inputs-") as tmp:
        inputs, outputs_file = Path(tmp) / "x.npy", Path(tmp) / "outputs.npy"
        job = Job(models=[Model(str(artifact_path(run_dir, artifact)), rt, runtime_options=profile.runtime_options(rt))],
                  threads=threads, providers=profile.providers, affinity=profile.affinity, inputs=str(inputs),
                  outputs_path=str(outputs_file), **timing_of(cfg), accuracy=cfg.accuracy)
        try:
            try:
                np.save(inputs, as_model_input(x_test))
            except OSError as e:
                raise OutputError.from_os(e, inputs) from e
            check_model_file(Path(job.model))  # here, before a device (which may lack the checks) reads it
            out = transport(profile)(job, cfg.timeout_s)
        except EdgekitError as e:
            row.status, row.error = "failed", str(e)
            row.duration_s = took.seconds
            return row
        outputs = np.load(outputs_file, allow_pickle=False) if outputs_file.is_file() else None
    row.duration_s = took.seconds
    row.batch_size = out["batch_size"]
    if out.get("latencies_ms"):
        row.latency_ms = latency_stats(out["latencies_ms"])
        mean = row.latency_ms.mean
    else:  # a device tool that reports only its own summary (adb benchmark_model)
        row.latency_summary = summary = out["latency_summary"]
        mean = summary["avg"]
    row.throughput = 1000.0 * out["batch_size"] / mean
    if out.get("device_latencies_ms"):
        row.device_time_ms = latency_stats(out["device_latencies_ms"])
    if out.get("energy_per_batch_mj"):
        row.energy_mj = out["energy_per_batch_mj"] / out["batch_size"]
    row.peak_rss_mb = out.get("peak_rss_mb")
    row.baseline_rss_mb = out.get("baseline_rss_mb")
    row.peak_rss_mb_accuracy_pass = out.get("peak_rss_mb_accuracy_pass")
    row.load_ms = out["load_ms"]
    row.first_inference_ms = out["first_inference_ms"]
    row.runtime_version = out["runtime_version"]
    row.runtime_precision = out.get("runtime_precision")
    row.machine = out.get("machine")
    if outputs_into is not None and outputs is not None:
        outputs_into[(artifact.name, profile.name)] = outputs
    if "predictions" in out and len(x_test):
        from edgekit.bench.metrics import compute_metrics

        preds = np.asarray(out["predictions"])
        row.test_samples = int(len(x_test))
        if y_test is not None and len(y_test):
            row.accuracy = float((preds == np.asarray(y_test)).mean())
        row.metrics = compute_metrics(cfg.metrics, outputs=outputs, predictions=preds, labels=y_test,
                                      reference=reference, top_k=cfg.top_k) or None
        if keep_samples_dir is not None:
            from edgekit.report.evidence import save_samples

            labels = y_test if y_test is not None else np.full(len(preds), -1)
            from edgekit.names import safe_target

            target = safe_target(keep_samples_dir, f"{artifact.name}@{profile.name}.npz", what="samples")
            path, digest = save_samples(target, preds, labels, out.get("latencies_ms"), out.get("canary_ms"))
            row.samples, row.samples_sha256 = str(path.relative_to(Path(run_dir).resolve())), digest
    return row
