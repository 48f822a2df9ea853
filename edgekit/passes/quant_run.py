"""What the ONNX int8 passes take from their pass context, as the explicit inputs of edgekit.quant's building
blocks: validation data and fp32 outputs, calibration data and the run's calibration cache, the timing batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.passes.base import PassContext
from edgekit.quant.ort_build import Calibrator, Evaluation


@dataclass
class QuantRun:
    ev: Evaluation  # fidelity is measured here (validation split)
    calib: Calibrator  # calibration samples (`calibration.samples` of them) and the run's range cache
    x_calib: np.ndarray  # every calibration sample (AdaRound takes its own count)
    x_time: np.ndarray  # the batch candidates are timed on
    threads: int | None
    log: Callable[[str], None]
    runtime: str = "onnxruntime"  # the runtime candidates are timed in
    runtime_options: dict = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: PassContext, samples: int | None, runtime: str = "onnxruntime") -> QuantRun:
        """From a pass context; the calibration cache is the run's (`ctx.cache`), so passes on one fp32 file
        calibrate once. `runtime` 'auto': the runtime the bench's first local, non-emulated device runs .onnx in."""
        from edgekit.runtimes.base import fixed_batch

        s = ctx.splits
        x_time = fixed_batch(s.x_calib, getattr(ctx.bench, "batch_size", 1))
        name, options = timing_runtime(ctx, runtime)
        return cls(ev=Evaluation.of(s, ctx.reference_logits),
                   calib=Calibrator(s.x_calib[:samples] if samples else s.x_calib, ctx.cache,
                                    ctx.log),
                   x_calib=s.x_calib, x_time=x_time, threads=getattr(ctx.bench, "threads", None), log=ctx.log,
                   runtime=name, runtime_options=options)

    def time_ms(self, path: Path, budget_s: float) -> float:
        """Median latency (ms) of one batch of the file alone; used only to choose among candidates."""
        return self.side_by_side({"m": path}, budget_s, block=1, min_rounds=10, max_rounds=None)["m"]["p50"]

    def side_by_side(self, paths: dict[str, Path], min_time_s: float, **kw) -> dict[str, dict]:
        """Latency (ms: p50, p90, p99, iqr, runs) of each file, timed in interleaved blocks (edgekit.timing)."""
        from edgekit.runtimes.timed import time_onnx_files

        return time_onnx_files(paths, self.x_time, self.threads, min_time_s=min_time_s, runtime=self.runtime,
                               options=self.runtime_options, **kw)

    def timed_on(self) -> str:
        """The runtime the latencies come from, with its options (e.g. 'openvino (precision f32)')."""
        opts = ", ".join(f"{k} {v}" for k, v in self.runtime_options.items())
        return self.runtime + (f" ({opts})" if opts else "")


def timing_runtime(ctx: PassContext, runtime: str) -> tuple[str, dict]:
    """(runtime, load options) to time ONNX candidates in. A named runtime is used as it is; 'auto' is the runtime
    the recipe's first bench device that runs here (local, not emulated) uses for .onnx, with that profile's
    settings, so the choice is timed where the file will run; ONNX Runtime when no such device or it is missing."""
    from importlib.util import find_spec

    from edgekit.devices.profile import load_profile
    from edgekit.devices.transports import TRANSPORTS
    from edgekit.errors import EdgekitError
    from edgekit.runtimes import RUNTIMES, runtime_name_for

    if runtime != "auto":
        return runtime, {}
    for dev in getattr(ctx.bench, "devices", None) or []:
        try:
            profile = load_profile(dev)
        except EdgekitError:
            continue
        if profile.emulated or TRANSPORTS[profile.transport].remote:
            continue
        name = runtime_name_for("onnx", profile.runtimes)
        if name in RUNTIMES and any(find_spec(m.split(".")[0]) for m in RUNTIMES[name].imports.values()):
            return name, profile.runtime_options(name)
        ctx.log(f"  timing in ONNX Runtime: {dev}'s runtime for .onnx ({name}) is not installed here")
        break
    return "onnxruntime", {}
