"""Steps the static-batch int8 exporters share (TFLite, ExecuTorch): the calibration samples and label-free
fine-tuning before quantization."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from edgekit.errors import ExportError


def calibration_samples(calibration: np.ndarray | None, example: np.ndarray, cfg) -> np.ndarray:
    """The samples int8 calibrates on: the calibration split (else `example`), cut to `cfg.calibration.samples`."""
    calib = calibration if calibration is not None and len(calibration) else example
    return cfg.calibration.subset(calib)


def finetuned_model(model, calib: np.ndarray, f, log) -> tuple:
    """The model after label-free fine-tuning under simulated int8 on the grid of ai-edge-quantizer and the
    XNNPACK quantizer (per-channel symmetric weights at max|w|/127; XNNPACK's int8 kernels do not saturate, so no
    saturation-safe scale)."""
    from edgekit.quant.finetune import finetune_for_int8

    try:
        ft = finetune_for_int8(model, calib, epochs=f.epochs, lr=f.lr, temperature=f.temperature,
                               mse_weight=f.mse_weight, batch=f.batch, holdout=f.holdout, per_channel=True,
                               saturation_safe=False, log=log or (lambda _m: None))
    except Exception as e:  # a model the simulation cannot hook (no conv/linear) or a failing forward pass
        raise ExportError(f"label-free fine-tuning for int8 failed: {type(e).__name__}: {e}") from e
    model = cast(Any, ft.model).eval()
    return model, {"best_epoch": ft.best_epoch, "reused": ft.reused, "holdout_cosine_rounded": ft.cosine_plain,
                   "holdout_cosine_before": ft.cosine_before, "holdout_cosine_after": ft.cosine_after,
                   "calibration_samples": int(len(calib)), **f.model_dump()}
