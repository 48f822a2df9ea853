"""Per-layer profiling of an artifact on a device: where the time goes, what each layer costs, and how close it
runs to the device's roofline.

- ONNX: ONNX Runtime's profiler on the device (agent task `op_profile`), one row per executed node (fused nodes
  included) with its execution provider; per-node costs from the shapes ORT reports, totals from the ONNX graph
  with shape inference. The per-node times are checked against an unprofiled end-to-end latency (`coverage`).
- TFLite on an adb device: benchmark_model's op profiling; costs from a local LiteRT interpreter when installed.
- TFLite here: LiteRT's Python interpreter has no per-op timer, so layers carry costs and delegation only, and the
  whole-model latency comes from a normal bench job.
Roofline: a layer cannot run faster than max(FLOPs / compute peak, bytes moved / memory bandwidth), with the peak
matching its precision; the model's bound is the sum over layers. Peaks are the profile's measured ones when
probed, else its datasheet ones. `achieved` = bound / measured time (1.0 = at the roofline).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from edgekit.errors import BenchError

MEMORY_BOUND_MIN_SHARE = 0.01
_DELEGATE_NODE = re.compile(r"Delegate|DELEGATE")
_BUILTIN = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _peak_for(peaks: dict, precision: str) -> float | None:
    if precision == "int8":
        return peaks.get("int8_gops")
    if precision == "fp16":
        return peaks.get("fp16_gflops") or peaks.get("fp32_gflops")
    return peaks.get("fp32_gflops")


def roofline(layer: dict, peaks: dict) -> None:
    """Add bound_ms, bound_by, intensity and achieved to a layer that has flops/bytes and (maybe) time_ms."""
    peak, bw = _peak_for(peaks, layer.get("precision", "fp32")), peaks.get("mem_bandwidth_gbs")
    flops, nbytes = layer.get("flops") or 0, (layer.get("param_bytes") or 0) + (layer.get("act_bytes") or 0)
    layer["intensity"] = flops / nbytes if nbytes else None
    t_c = flops / (peak * 1e9) * 1e3 if peak and flops else None
    t_m = nbytes / (bw * 1e9) * 1e3 if bw and nbytes else None
    if t_c is None and t_m is None:
        return
    layer["bound_ms"] = max(t for t in (t_c, t_m) if t is not None)
    if t_c is not None and t_m is not None:
        layer["bound_by"] = "memory" if t_m > t_c else "compute"
    if layer.get("time_ms"):
        layer["achieved"] = layer["bound_ms"] / layer["time_ms"]


def _graph_index(graph: list[dict]) -> tuple[dict, dict]:
    by_name = {g["name"]: g for g in graph}
    by_output = {o: g for g in graph for o in g.get("outputs", [])}
    return by_name, by_output


def _match(name: str, by_name: dict, by_output: dict) -> dict | None:
    """The graph node an executed ORT node stands for (itself, or the last node of a fused chain)."""
    if name in by_name:
        return by_name[name]
    for suffix in ("_nchwc", "_token_0", ""):
        base = name[: -len(suffix)] if suffix and name.endswith(suffix) else name
        if base in by_output:
            return by_output[base]
    return None


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms, dtype=float)
    return {"p50": float(np.median(a)), "mean": float(a.mean()), "min": float(a.min()), "samples": int(a.size)}


def _onnx_job(path: Path, profile, runs: int, warmup: int, threads, inputs):
    from edgekit.bench.job import Job, Model
    from edgekit.bench.run import resolve_threads

    return Job(task="op_profile", models=[Model(str(path))], iterations=runs, warmup=warmup,
               threads=resolve_threads(threads, profile), affinity=profile.affinity, providers=profile.providers,
               inputs=inputs)


def profile_onnx(path: Path, profile, runs: int = 50, warmup: int = 10, threads: int | None = None,
                 x: np.ndarray | None = None, timeout_s: float = 600.0) -> dict:
    from edgekit.bench.costs import onnx_graph_costs, trace_node_cost
    from edgekit.devices import transport, transport_entry
    from edgekit.devices.transports import TRANSPORTS

    if not transport_entry(profile).runs_agent:
        others = ", ".join(n for n, e in TRANSPORTS.items() if e.runs_agent)
        raise BenchError(f"{profile.transport} devices run {', '.join(transport_entry(profile).formats or ())} only; "
                         f"profile the ONNX artifact on a {others} device")
    with tempfile.TemporaryDirectory(prefix="edgekit-prof-") as tmp:
        inputs = None
        if x is not None:
            inputs = str(Path(tmp) / "x.npy")
            np.save(inputs, np.ascontiguousarray(x, dtype=np.float32))
        out = transport(profile)(_onnx_job(path, profile, runs, warmup, threads, inputs), timeout_s)
    n = max(1, out["runs"])
    graph = onnx_graph_costs(path, batch=out.get("batch", 1))
    by_name, by_output = _graph_index(graph)
    first = (profile.providers or ["CPUExecutionProvider"])[0]
    layers = []
    for node in sorted(out["nodes"], key=lambda r: r["order"]):
        layer = {"name": node["name"], "op": node["op"], "provider": node["provider"],
                 "time_ms": node["total_us"] / n / 1e3, "calls": node["calls"] / n, **trace_node_cost(node)}
        g = _match(node["name"], by_name, by_output)
        if g is not None and g["name"] != node["name"]:
            layer["graph_node"] = g["name"]
        layer["off_accelerator"] = first != "CPUExecutionProvider" and node["provider"] != first
        layers.append(layer)
    e2e = _stats(out["e2e_ms"])
    sums = out.get("run_op_sums_ms")
    result = {"format": "onnx", "runtime": f"onnxruntime {out.get('runtime_version')}", "providers": out["providers"],
              "run_op_sum_ms": _stats(sums) if sums else None, "threads": out.get("threads"),
              "batch": out.get("batch"), "runs": out["runs"], "e2e_ms": e2e,
              "profiled_run_ms": _stats(out["model_run_ms"]) if out.get("model_run_ms") else None,
              "graph_totals": {k: sum(g[k] for g in graph) for k in ("flops", "macs", "param_bytes", "act_bytes")},
              "layers": layers}
    return result


def profile_tflite(path: Path, profile, runs: int = 50, warmup: int = 10, threads: int | None = None,
                   x: np.ndarray | None = None, timeout_s: float = 600.0) -> dict:
    """Per-op times of a .tflite (LiteRT's op profile, or benchmark_model's on an adb device); `x` is not used: the
    file's static input shape is fed random data."""
    from edgekit.bench.job import Job, Model
    from edgekit.devices import transport, transport_entry

    costs, delegation, notes = {}, None, []
    try:
        from edgekit.bench.costs import tflite_op_costs
        from edgekit.runtimes.litert import LiteRtRuntime

        sess = LiteRtRuntime().load(path, threads=threads)
        costs, delegation = tflite_op_costs(sess.interp), sess.delegation()
        in_shape = [int(d) for d in sess._in["shape"]]
    except Exception as e:  # no LiteRT here: times only (adb), no costs
        notes.append(f"no per-op costs: LiteRT could not load the model here ({type(e).__name__})")
        in_shape = None
    if not transport_entry(profile).runs_agent:  # the device's own tool profiles the ops
        parsed = transport(profile)(Job(task="op_profile", models=[Model(str(path), "litert")],
                                        threads=threads or profile.threads, warmup=warmup, iterations=runs,
                                        max_time_s=150.0), timeout_s)
        delegate = profile.delegate or "xnnpack"
        layers = []
        for row in parsed.get("ops", []):
            layer = {"name": row["name"], "op": row["type"], "provider": "delegate" if _DELEGATE_NODE.search(row["type"])
                     else "cpu", "time_ms": row["avg_ms"], "calls": row["calls"]}
            layer.update({k: v for k, v in costs.get(row["index"], {}).items() if k != "op"})
            layer["off_accelerator"] = delegate != "none" and bool(_BUILTIN.match(row["type"]))
            layers.append(layer)
        reg = parsed.get("regular") or {}
        e2e = {"p50": reg.get("median", reg.get("avg")), "mean": reg.get("avg"), "min": reg.get("min"),
               "samples": reg.get("count")}
        if "median" not in reg:
            notes.append("benchmark_model printed no median: e2e p50 is its average")
        return {"format": "tflite", "runtime": "benchmark_model (on device)", "threads": threads or profile.threads,
                "delegate": delegate, "runs": reg.get("count"), "e2e_ms": e2e, "layers": layers, "notes": notes,
                "benchmark_model": {k: parsed[k] for k in ("delegation", "memory", "command") if k in parsed}}
    if in_shape is None:
        raise BenchError(f"{path.name}: LiteRT cannot load it here, and the device is not an adb device")
    with tempfile.TemporaryDirectory(prefix="edgekit-prof-") as tmp:
        xp = Path(tmp) / "x.npy"
        np.save(xp, np.random.default_rng(0).standard_normal(in_shape).astype(np.float32))
        from edgekit.bench.run import resolve_threads

        out = transport(profile)(Job(models=[Model(str(path), "litert")], inputs=str(xp),
                                     threads=resolve_threads(threads, profile), affinity=profile.affinity,
                                     providers=profile.providers, batch_size=in_shape[0], warmup=warmup,
                                     iterations=runs, min_time_s=0.0, max_time_s=60.0, accuracy=False), timeout_s)
    not_delegated = (delegation or {}).get("not_delegated_ops", {})
    layers = []
    for idx, c in sorted(costs.items()):
        layer = {"name": f"{c['op']}:{idx}", "time_ms": None, **c}
        layer["off_accelerator"] = bool(delegation and delegation.get("partitions")) and c["op"] in not_delegated
        layers.append(layer)
    notes.append("LiteRT's Python interpreter has no per-op timer: layers show costs and delegation only; "
                 "per-op times need an adb device (benchmark_model --enable_op_profiling)")
    return {"format": "tflite", "runtime": f"litert {out.get('runtime_version')}", "threads": out.get("threads"),
            "delegation": delegation, "runs": len(out["latencies_ms"]), "e2e_ms": _stats(out["latencies_ms"]),
            "layers": layers, "notes": notes}


def add_roofline(prof: dict, profile) -> dict:
    """Roofline per layer and for the model, shares, coverage and flags."""
    peaks = profile.effective_peaks()
    prof["peaks"] = peaks
    prof.setdefault("notes", [])
    if not any(peaks[k] for k in ("fp32_gflops", "int8_gops", "mem_bandwidth_gbs")):
        prof["notes"].append(f"no peaks for {profile.name}: run `edgekit devices probe {profile.name}` or fill "
                             "`peaks` in its profile for a roofline")
    layers = prof["layers"]
    timed = [lay for lay in layers if lay.get("time_ms")]
    total = sum(lay["time_ms"] for lay in timed)
    for lay in layers:
        roofline(lay, peaks)
        if total and lay.get("time_ms"):
            lay["share"] = lay["time_ms"] / total
    e2e = (prof.get("e2e_ms") or {}).get("p50")
    per_run = (prof.get("run_op_sum_ms") or {}).get("p50")  # median over runs of the per-run sum of node times
    prof["sum_ops_ms"] = (per_run or total) if timed else None
    prof["coverage"] = prof["sum_ops_ms"] / e2e if timed and e2e else None
    best_sum, best_e2e = (prof.get("run_op_sum_ms") or {}).get("min"), (prof.get("e2e_ms") or {}).get("min")
    # best run against best run: both free of interference from other work on the machine
    prof["coverage_best"] = best_sum / best_e2e if best_sum and best_e2e else None
    bounds = [lay["bound_ms"] for lay in layers if lay.get("bound_ms") is not None]
    prof["roofline_ms"] = sum(bounds) if bounds else None
    prof["achieved_fraction"] = prof["roofline_ms"] / e2e if bounds and e2e else None
    flags = []
    for lay in layers:
        if lay.get("off_accelerator"):
            flags.append({"kind": "fallback", "layer": lay["name"],
                          "detail": f"{lay.get('op')} runs on {lay.get('provider', 'the CPU')}, off the accelerated path"})
        if lay.get("bound_by") == "memory" and lay.get("share", 0) >= MEMORY_BOUND_MIN_SHARE:
            flags.append({"kind": "memory_bound", "layer": lay["name"],
                          "detail": f"{lay.get('op')}: {lay['intensity']:.2f} FLOP/byte, below the ridge; "
                                    f"{100 * lay['share']:.1f}% of the time"})
    prof["flags"] = flags
    return prof


def compare_pair(candidate: dict, baseline: dict) -> dict | None:
    """A flag when a quantized (int8) artifact runs slower than its fp32 source on the same device."""
    if not any(lay.get("precision") == "int8" for lay in candidate["layers"]):
        return None
    a, b = candidate["e2e_ms"]["p50"], baseline["e2e_ms"]["p50"]
    if a is None or b is None or a <= b:
        return None
    by_op: dict[str, float] = {}
    for lay in candidate["layers"]:
        if lay.get("time_ms"):
            by_op[lay["op"]] = by_op.get(lay["op"], 0.0) + lay["time_ms"]
    top = ", ".join(f"{op} {ms:.3f} ms" for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1])[:3])
    return {"kind": "int8_slower", "layer": None,
            "detail": f"{candidate['artifact']} (int8) p50 {a:.3f} ms is {a / b:.2f}x its fp32 {baseline['artifact']} "
                      f"({b:.3f} ms)" + (f"; most time in {top}" if top else "")}


def profile_artifact(path: Path, profile, name: str | None = None, runs: int = 50, warmup: int = 10,
                     threads: int | None = None, x: np.ndarray | None = None, timeout_s: float = 600.0) -> dict:
    """Profile one artifact file on one device; returns a JSON-ready dict (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: artifact not found")
    profiler = PROFILERS.get(file_format(path) or "")
    if profiler is None:
        raise BenchError(f"{path.name}: profiling covers {', '.join(sorted(PROFILERS))} artifacts")
    prof = profiler(path, profile, runs, warmup, threads, x, timeout_s)
    prof = {"artifact": name or path.stem, "path": str(path), "device": profile.name, "transport": profile.transport,
            **prof}
    return add_roofline(prof, profile)


PROFILERS = {"onnx": profile_onnx, "tflite": profile_tflite}  # export format -> its per-layer profiler


def file_format(path: Path) -> str | None:
    """The export format whose files have `path`'s suffix (edgekit.export.EXPORTERS)."""
    from edgekit.export import EXPORTERS

    return next((name for name, e in EXPORTERS.items() if e.suffix == Path(path).suffix), None)
