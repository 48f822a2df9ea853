"""Op-profile task of the bench agent: per-node times from ONNX Runtime's profiler, plus the end-to-end latency
of an unprofiled session with the same options for comparison.

The profiler's JSON trace is reduced here to one record per executed node (time summed over the measured runs,
calls, op type, execution provider, input/output shapes and ORT's byte counts), so only a small result travels
back from a device. Warm-up runs are excluded by the `model_run` windows they fall into. Needs numpy + onnxruntime.
"""

from __future__ import annotations

import json
import os
import tempfile

from edgekit.bench.job import Job
from edgekit.timing import interleave


def _session(ort, model: str, job: Job, profile_dir: str | None):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if job.threads:
        so.intra_op_num_threads = job.threads
        so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_dir:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(profile_dir, "ort")
    return ort.InferenceSession(model, sess_options=so, providers=job.providers or ["CPUExecutionProvider"])


def _inputs(sess, job):
    import numpy as np

    inp = sess.get_inputs()[0]
    if job.inputs:
        x = np.load(job.inputs, allow_pickle=False)
    else:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if inp.type == "tensor(float16)":
        x = x.astype(np.float16)
    return {inp.name: np.ascontiguousarray(x)}


def reduce_trace(events: list[dict], warmup: int) -> dict:
    """Per-node totals, and the per-run sum of node times, over the model_run windows after the first `warmup`."""
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[warmup:]
    windows = [(r["ts"], r["ts"] + r["dur"]) for r in runs]
    sums = [0.0] * len(windows)
    nodes: dict[str, dict] = {}
    for e in sorted((e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")),
                    key=lambda e: e["ts"]):
        w = next((i for i, (a, b) in enumerate(windows) if a <= e["ts"] <= b), None)
        if w is None:
            continue
        sums[w] += float(e["dur"])
        name = e["name"][: -len("_kernel_time")]
        a = e.get("args", {})
        rec = nodes.get(name)
        if rec is None:
            rec = nodes[name] = {
                "name": name, "op": a.get("op_name", "?"), "provider": a.get("provider", "?"), "order": len(nodes),
                "total_us": 0.0, "calls": 0, "inputs": a.get("input_type_shape", []),
                "outputs": a.get("output_type_shape", []), "parameter_bytes": int(a.get("parameter_size", 0) or 0),
                "activation_bytes": int(a.get("activation_size", 0) or 0),
                "output_bytes": int(a.get("output_size", 0) or 0)}
        rec["total_us"] += float(e["dur"])
        rec["calls"] += 1
    return {"runs": len(runs), "nodes": list(nodes.values()), "model_run_ms": [(b - a) / 1e3 for a, b in windows],
            "run_op_sums_ms": [x / 1e3 for x in sums]}


def run_op_profile(job: Job) -> dict:
    """Profiled and plain sessions take turns run by run, so both see the same machine load: `warmup` then
    `iterations` runs each."""
    from edgekit.runtimes.onnxruntime import ort_module

    ort = ort_module()
    warmup = job.warmup
    with tempfile.TemporaryDirectory(prefix="edgekit-ortprof-") as tmp:
        sess = _session(ort, job.model, job, tmp)
        plain = _session(ort, job.model, job, None)
        feeds = _inputs(sess, job)
        lat = interleave({"profiled": lambda: sess.run(None, feeds), "plain": lambda: plain.run(None, feeds)},
                         warmup=warmup, min_rounds=job.iterations, max_rounds=job.iterations)["plain"]
        trace = sess.end_profiling()
        with open(trace) as f:
            events = json.load(f)
        providers = sess.get_providers()
    out = reduce_trace(events, warmup)
    out.update({"e2e_ms": lat, "providers": providers, "runtime_version": ort.__version__,
                "threads": job.threads, "batch": int(next(iter(feeds.values())).shape[0])})
    return out
