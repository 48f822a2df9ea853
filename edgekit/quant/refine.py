"""Weight refinements of a built QDQ candidate: AdaRound (learned rounding of its most sensitive layers) and bias
correction (each layer's rounding shift dW E[x] taken out of its bias). Each writes a new file next to the
candidate's, measures it, records its effect on the candidate and keeps it as the rules say."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field

from edgekit.config_base import Strict
from edgekit.quant.candidate import Candidate
from edgekit.quant.ort_build import Evaluation, fidelity


class AdaRoundOptions(Strict):
    """AdaRound (learned weight rounding, edgekit.quant.onnx_adaround) on the chosen QDQ per-channel model."""

    layers: int = Field(default=8, ge=0, description="the N layers adding the most error (0: every layer)")
    iters: int = Field(default=300, ge=10)
    samples: int = Field(default=32, ge=1, description="calibration samples it learns from")
    keep: Literal["auto", "always"] = Field(default="auto", description="auto: kept only if validation cosine rises")


def _effect(c: Candidate, after: dict, stats: dict) -> dict:
    return {**stats, "cosine_before": c.cosine, "cosine_after": after["cosine"],
            "top1_agreement_before": c.top1_agreement, "top1_agreement_after": after["top1_agreement"]}


def adaround(c: Candidate, x_calib: np.ndarray, ev: Evaluation, options: AdaRoundOptions | None,
             log: Callable[[str], None]) -> str:
    """AdaRound the candidate's most sensitive layers (QDQ per-channel only), learning from the first
    `options.samples` of `x_calib`; `keep: auto` keeps it only when cosine on `ev` rises. Returns the decision's
    sentence ('' when not asked for)."""
    from edgekit.quant.adaround import AdaRoundConfig
    from edgekit.quant.onnx_adaround import adaround_onnx
    from edgekit.quant.onnx_rewrite import sensitivity_ranking
    from edgekit.timing import Stopwatch

    a = options
    if a is None:
        return ""
    if c.format != "qdq" or not c.per_channel:
        return " AdaRound skipped: the chosen candidate is not QDQ with per-channel weights."
    assert c.path is not None and c.source is not None
    path, pre = c.path, c.source
    x = x_calib[: a.samples]
    nodes = [n for n, _ in sensitivity_ranking(path, pre, ev.x[:32])][: a.layers] if a.layers else None
    clock = Stopwatch()

    def progress(i, n, node, e0, e1):
        log(f"  AdaRound {i}/{n} {node}: output MSE {e0:.3g} -> {e1:.3g} (ETA {clock.eta_s(i, n):.0f} s)")

    fixed = path.with_name(path.stem + "-ada.onnx")
    stats = adaround_onnx(path, pre, x, fixed, nodes, AdaRoundConfig(iters=a.iters), progress=progress)
    if not stats["layers"]:
        return " AdaRound: no layer it can round (per-tensor or asymmetric pads)."
    after, each = fidelity(fixed, ev)
    before = c.cosine
    kept = a.keep == "always" or after["cosine"] > before
    c.adaround = {**_effect(c, after, stats), "kept": kept}
    if kept:
        c.measured(fixed, after, each)
    return (f" AdaRound of {stats['layers']} layers ({a.iters} iterations, {len(x)} samples): validation cosine "
            f"{before:.4f} -> {after['cosine']:.4f}, {'kept' if kept else 'not kept'}.")


def bias_correction(c: Candidate, x_calib: np.ndarray, ev: Evaluation, mode: bool | str) -> str:
    """Bias correction of a QDQ candidate measured on `x_calib`; `mode` auto keeps it only when cosine on `ev`
    improves, True always, False never runs it. Returns the decision's sentence ('' when nothing was corrected)."""
    from edgekit.quant.onnx_rewrite import bias_correct_qdq

    if mode is False or c.format != "qdq":
        return ""
    assert c.path is not None and c.source is not None
    path = c.path
    fixed = path.with_name(path.stem + "-bc.onnx")
    stats = bias_correct_qdq(path, c.source, x_calib, fixed)
    if not stats["layers_corrected"]:
        return ""
    after, each = fidelity(fixed, ev)
    before = c.cosine
    kept = mode is True or after["cosine"] > before
    c.bias_correction = {**_effect(c, after, stats), "kept": kept}
    if kept:
        c.measured(fixed, after, each)
    return (f" Bias correction of {stats['layers_corrected']} layers: validation cosine {before:.4f} -> "
            f"{after['cosine']:.4f}, {'kept' if kept else 'not kept'}.")
