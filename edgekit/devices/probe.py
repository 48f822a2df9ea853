"""`edgekit devices probe`: measure a device's peak GEMM throughput (fp32, int8) through ONNX Runtime and its
memory bandwidth, and store them beside the datasheet figures.

The models are built here with onnx.helper (one MatMul; one MatMulInteger u8 x s8 -> s32) and run on the device
by the agent's `probe` task (edgekit/bench/agent_probe.py), through the same transport as benchmarks, with the
profile's threads, affinity and execution providers. On a `cuda` device the probe is torch matmuls on the GPU.
Results go to `<profile>.measured.yaml` beside the profile file (the profile and its comments stay as written);
`load_profile` reads them into `profile.measured`.
"""

from __future__ import annotations

import datetime as _dt
import tempfile
from pathlib import Path

import numpy as np

from edgekit.errors import BenchError

DEFAULT_GEMM = {"m": 1024, "n": 1024, "k": 1024}


def gemm_models(folder: Path, m: int, n: int, k: int) -> tuple[Path, Path]:
    """Write the fp32 MatMul and int8 MatMulInteger models; returns their paths."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    paths = []
    for name, a_type, b in (("fp32", TensorProto.FLOAT, rng.standard_normal((k, n)).astype(np.float32)),
                            ("int8", TensorProto.UINT8, rng.integers(-127, 127, (k, n), dtype=np.int8))):
        op = "MatMul" if name == "fp32" else "MatMulInteger"
        out_type = TensorProto.FLOAT if name == "fp32" else TensorProto.INT32
        graph = helper.make_graph(
            [helper.make_node(op, ["A", "B"], ["Y"], name=f"gemm_{name}")], f"edgekit_probe_{name}",
            [helper.make_tensor_value_info("A", a_type, [m, k])], [helper.make_tensor_value_info("Y", out_type, [m, n])],
            initializer=[numpy_helper.from_array(b, "B")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgekit-probe")
        model.ir_version = 8
        onnx.checker.check_model(model)
        path = Path(folder) / f"gemm_{name}.onnx"
        onnx.save(model, str(path))
        paths.append(path)
    return paths[0], paths[1]


def _peaks_from(out: dict) -> dict:
    def g(key):
        v = out.get(key, {})
        return round(v["g_per_s"], 2) if isinstance(v, dict) and "g_per_s" in v else None

    bw = out.get("bandwidth", {}).get("gbs")
    return {"fp32_gflops": g("fp32"), "fp16_gflops": g("fp16"), "int8_gops": g("int8"),
            "mem_bandwidth_gbs": round(bw, 2) if bw else None}


def probe(profile, mem_mb: int = 256, gemm: dict | None = None, min_time_s: float = 0.5, timeout_s: float = 600.0):
    """Run the probe on the profile's device; returns a MeasuredPeaks (not yet written anywhere)."""
    from edgekit.bench.job import Job, Model
    from edgekit.bench.run import resolve_threads
    from edgekit.devices import transport
    from edgekit.devices.profile import MeasuredPeaks

    g = dict(gemm or DEFAULT_GEMM)
    threads = resolve_threads(None, profile) if profile.transport in ("local", "cuda") else profile.threads
    job = Job(task="probe", gemm=g, threads=threads, affinity=profile.affinity, providers=profile.providers,
              mem_mb=mem_mb, min_time_s=min_time_s)
    with tempfile.TemporaryDirectory(prefix="edgekit-probe-") as tmp:
        if profile.transport != "cuda":
            fp32, int8 = gemm_models(Path(tmp), g["m"], g["n"], g["k"])
            job.models = [Model(str(fp32)), Model(str(int8))]
        out = transport(profile)(job, timeout_s)
    peaks = _peaks_from(out)
    if not any(peaks.values()):
        raise BenchError(f"the probe of {profile.name} measured nothing: {out}")
    if profile.transport == "cuda":
        how = f"torch {out.get('torch_version')} on {out.get('device')}: {out.get('n')}^3 matmuls (fp32 without TF32, " \
              f"fp16, int8 _int_mm), device copy of {out.get('bandwidth', {}).get('array_mb')} MiB"
    else:
        how = (f"edgekit devices probe: ONNX Runtime {out.get('runtime_version')} MatMul fp32 and MatMulInteger u8s8 "
               f"{g['m']}x{g['k']}x{g['n']}, best of timed runs, {out.get('threads')} threads; numpy copy of "
               f"{mem_mb} MiB (read + write bytes)")
    return MeasuredPeaks(**peaks, source=how, measured_at=_dt.datetime.now().isoformat(timespec="seconds"),
                         details=out)


def write_measured(profile, measured, path: Path | None = None) -> Path:
    """Write the sidecar `<profile>.measured.yaml` (or `path`); returns where it went."""
    import yaml

    from edgekit.atomic import atomic_write_text
    from edgekit.devices.profile import sidecar_path

    if path is None:
        if profile.path is None:
            raise BenchError(f"profile {profile.name} was not loaded from a file: give an output path")
        path = sidecar_path(profile.path)
    head = (f"# Measured by `edgekit devices probe {profile.name}`; re-run it to refresh. Datasheet figures stay in "
            f"{profile.path.name if profile.path else 'the profile'} under `peaks`.\n")
    body = yaml.safe_dump({"name": profile.name, "measured": measured.model_dump(mode="json")}, sort_keys=False)
    atomic_write_text(Path(path), head + body)
    return Path(path)
