"""A quick in-process ONNX Runtime latency of a torch model: export to a temporary ONNX, time it briefly.
For showing each torch pass's effect on speed; the bench stage does the careful measurement on devices."""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def export_temp_onnx(model, x: np.ndarray, path: Path) -> str:
    """Legacy exporter (fast) for eager models; the dynamo exporter for exported graphs (PT2E-quantized) and for
    models legacy cannot trace. Returns the exporter that worked."""
    import logging

    import torch

    model.eval()
    example = (torch.from_numpy(np.ascontiguousarray(x)),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not isinstance(model, torch.fx.GraphModule):  # legacy has no symbolic for PT2E's quantized_decomposed ops
            try:
                torch.onnx.export(model, example, str(path), dynamo=False, opset_version=18, input_names=["input"],
                                  output_names=["logits"])
                return "legacy"
            except Exception:  # some models only the dynamo exporter can trace
                pass
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
        prog = torch.onnx.export(model, example, dynamo=True, opset_version=18, input_names=["input"],
                                 output_names=["logits"], verbose=False)
        prog.save(str(path), external_data=False)
        return "dynamo"


def _stats(lat: list[float]) -> dict:
    return {"p50": float(np.median(lat)), "p90": float(np.percentile(lat, 90)), "runs": len(lat)}


def time_onnx(paths: list[Path], x: np.ndarray, threads: int | None = None, budget_s: float = 1.0,
              rounds: int = 10, warmup: int = 10) -> list[dict]:
    """p50/p90 latency (ms) of one batch for each model, in fresh ONNX Runtime sessions timed in alternating
    short rounds, so load changes on a shared machine hit every model alike."""
    from edgekit.runtimes.onnxruntime import OnnxRuntime

    sessions = [OnnxRuntime().load(p, threads=threads) for p in paths]
    for sess in sessions:
        for _ in range(warmup):
            sess.run_batch(x)
    lat: list[list[float]] = [[] for _ in sessions]
    slot = budget_s / (rounds * len(sessions))
    for _ in range(rounds):
        for sess, out in zip(sessions, lat):
            start = time.perf_counter()
            while time.perf_counter() - start < slot or len(out) < 2:
                t0 = time.perf_counter_ns()
                sess.run_batch(x)
                out.append((time.perf_counter_ns() - t0) / 1e6)
    return [_stats(v) for v in lat]


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
    batch = getattr(bench, "batch_size", 1) or 1
    x = np.ascontiguousarray(np.resize(splits.x_test[:batch], (batch, *splits.x_test.shape[1:])))
    try:
        a, b = onnx_latency([before, after], x, getattr(bench, "threads", None))
        return a, b
    except Exception as e:  # a model the exporters cannot handle: say so in the record, keep the run going
        err = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}
        return err, err
