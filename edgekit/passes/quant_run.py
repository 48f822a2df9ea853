"""What the ONNX int8 passes take from their pass context, as the explicit inputs of edgekit.quant's building
blocks: validation data and fp32 outputs, calibration data and the run's calibration cache, the timing batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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

    @classmethod
    def of(cls, ctx: PassContext, samples: int | None) -> QuantRun:
        """From a pass context; the calibration cache is the run's (`ctx.cache`), so passes on one fp32 file
        calibrate once."""
        from edgekit.runtimes.base import fixed_batch

        s = ctx.splits
        x_time = fixed_batch(s.x_calib, getattr(ctx.bench, "batch_size", 1))
        return cls(ev=Evaluation.of(s, ctx.reference_logits),
                   calib=Calibrator(s.x_calib[:samples] if samples else s.x_calib, ctx.cache,
                                    ctx.log),
                   x_calib=s.x_calib, x_time=x_time, threads=getattr(ctx.bench, "threads", None), log=ctx.log)

    def time_ms(self, path: Path, budget_s: float) -> float:
        """Median latency (ms) of one batch of the file alone; used only to choose among candidates."""
        return self.side_by_side({"m": path}, budget_s, block=1, min_rounds=10, max_rounds=None)["m"]["p50"]

    def side_by_side(self, paths: dict[str, Path], min_time_s: float, **kw) -> dict[str, dict]:
        """Latency (ms: p50, p90, p99, iqr, runs) of each file, timed in interleaved blocks (edgekit.timing)."""
        from edgekit.runtimes.timed import time_onnx_files

        return time_onnx_files(paths, self.x_time, self.threads, min_time_s=min_time_s, **kw)
