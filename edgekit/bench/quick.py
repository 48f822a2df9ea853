"""A quick in-process ONNX Runtime latency of a torch model: export to a temporary ONNX, time it briefly.
For showing each torch pass's effect on speed; the bench stage does the careful measurement on devices."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


def export_temp_onnx(model, x: np.ndarray, path: Path) -> str:
    """`model` in eval mode to ONNX (opset 18) by the legacy exporter, or the dynamo one where legacy cannot;
    returns the exporter that worked."""
    from edgekit.export.onnx import export_onnx

    return export_onnx(model.eval(), x, path)


def time_onnx(paths: list[Path], x: np.ndarray, threads: int | None = None, budget_s: float = 1.0,
              rounds: int = 10, warmup: int = 10) -> list[dict]:
    """p50/p90 latency (ms) of one batch for each model, in fresh ONNX Runtime sessions timed in alternating short
    blocks for at least `rounds` rounds and `budget_s` seconds, so load changes on a shared machine hit every model
    alike."""
    from edgekit.runtimes.timed import time_onnx_files

    out = time_onnx_files({str(i): p for i, p in enumerate(paths)}, x, threads, min_time_s=budget_s, block=2,
                          warmup=warmup, min_rounds=rounds, max_rounds=None)
    return [{k: out[str(i)][k] for k in ("p50", "p90", "runs")} for i in range(len(paths))]


def onnx_latency(models: list, x: np.ndarray, threads: int | None = None, budget_s: float = 1.0) -> list[dict]:
    """Export each torch model to a temporary ONNX file and time batch `x` on all of them, interleaved."""
    with tempfile.TemporaryDirectory(prefix="edgekit-quick-") as tmp:
        paths, exporters = [], []
        for i, model in enumerate(models):
            paths.append(Path(tmp) / f"model{i}.onnx")
            exporters.append(export_temp_onnx(model, x, paths[-1]))
        rows = time_onnx(paths, x, threads, budget_s)
    return [{**r, "exporter": e, "threads": threads, "batch_size": int(len(x))} for r, e in zip(rows, exporters)]


def pass_latency(before, after, splits, bench) -> tuple[dict, dict]:
    """`onnx_latency` of a pass's input and output models at the bench's batch size and threads, on test inputs;
    a failure is recorded in both, not raised."""
    from edgekit.runtimes.base import fixed_batch

    x = fixed_batch(splits.x_test, getattr(bench, "batch_size", 1) or 1)
    try:
        a, b = onnx_latency([before, after], x, getattr(bench, "threads", None))
        return a, b
    except Exception as e:  # a model the exporters cannot handle: say so in the record, keep the run going
        err = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}
        return err, err
