"""Mixed precision for an int8 candidate that misses its bounds: rank its layers (by the error each adds, or by
measuring each kept float alone), then keep the top 1, 2, ... layers in float until the bounds hold. Every step is
a candidate with its fidelity and latency.

Building and timing are handed in (`build`, `probe`, `time_ms`), so the steps are the same for quantize.static and
quantize.auto and the rules here read no pass context."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from edgekit.config_base import Strict
from edgekit.quant.candidate import Candidate, failed


class FallbackConfig(Strict):
    """Mixed precision: when the chosen int8 model misses these bounds on the validation split, keep the most
    sensitive layers in float, one more at a time, until it meets them (each step timed and reported)."""

    max_layers: int = Field(default=3, ge=1, description="at most this many layers in float")
    min_cosine: float | None = Field(default=None, gt=0, le=1)
    min_top1: float | None = Field(default=None, gt=0, le=1)
    ranking: Literal["measured", "error"] = Field(
        default="measured", description="error: by the error each layer adds to its output (no extra builds); measured: "
                                        "the `probe` layers adding the most error and the first `probe` quantized layers "
                                        "(high resolution, whose error every later layer inherits) are each kept float "
                                        "alone and ranked by the validation fidelity that gives")
    probe: int = Field(default=5, ge=1, description="measured ranking: layers probed from each of the two lists")

    def within_bounds(self, c: Candidate) -> bool:
        return ((self.min_cosine is None or c.cosine >= self.min_cosine)
                and (self.min_top1 is None or c.top1_agreement >= self.min_top1))


Build = Callable[[list[str], Path], Candidate]  # (float nodes, output file) -> a measured candidate


def error_ranking(c: Candidate, x: np.ndarray) -> list[str]:
    """The candidate's quantized layers, the one adding the most output error on `x` first."""
    from edgekit.quant.onnx_rewrite import sensitivity_ranking

    assert c.path is not None and c.source is not None
    return [n for n, _ in sensitivity_ranking(c.path, c.source, x)]


def measured_ranking(ranked: list[str], chosen: Candidate, probe: Build, k: int, tmp: Path,
                     log: Callable[[str], None]) -> tuple[list[str], list[dict]]:
    """Probe layers one at a time: each kept float alone (`probe` builds it, without bias correction or AdaRound)
    and measured on the validation split. The error ranking alone misses the early high-resolution layers, whose
    error every later layer inherits (EfficientNet-Lite0: it picked project convs that did not help, while the
    stem and the first depthwise conv did). Probed: the first `k` of `ranked` and the first `k` quantized layers
    in graph order. Returns the probed layers, most faithful first, then the rest of `ranked`, and the probes."""
    from edgekit.model_files import onnx_header
    from edgekit.quant.onnx_rewrite import qdq_layers

    order = [la.node for la in qdq_layers(onnx_header(chosen.file).graph)]
    cands = list(dict.fromkeys([*ranked[:k], *[n for n in order if n in ranked][:k]]))
    probes = []
    for i, node in enumerate(cands):
        try:
            c = probe([node], tmp / f"probe-{i}.onnx")
        except Exception as e:  # a graph ORT cannot quantize with this exclusion: not a candidate
            log(f"  probe {i + 1}/{len(cands)}: {node} kept float failed ({type(e).__name__}: {e}); skipped")
            continue
        probes.append({"node": node, "cosine": c.cosine, "top1_agreement": c.top1_agreement})
        log(f"  probe {i + 1}/{len(cands)}: {node} kept float: cosine {c.cosine:.4f}")
    probes.sort(key=lambda p: (p["cosine"], p["top1_agreement"]), reverse=True)
    first = [p["node"] for p in probes]
    return [*first, *[n for n in ranked if n not in first]], probes


def keep_float_steps(chosen: Candidate, ranked: list[str], build: Build, time_ms: Callable[[Path], float],
                     meets: Callable[[Candidate], bool], max_layers: int, tmp: Path
                     ) -> tuple[Candidate, list[Candidate]]:
    """Float for the first k layers of `ranked`, k = 1, 2, ... up to `max_layers`, until a step `meets` the
    bounds (that step is returned) or the layers run out (then the most faithful by cosine, `chosen` included).
    Returns it and every step tried; a step ORT cannot build ends the steps as a failed candidate."""
    best, steps = chosen, []
    for k in range(1, min(max_layers, len(ranked)) + 1):
        try:
            row = build(ranked[:k], tmp / f"fallback-{k}.onnx")
            row.latency["p50"] = time_ms(row.file)
        except Exception as e:  # a graph ORT cannot quantize with these exclusions: stop adding layers
            steps.append(failed(Candidate(format=chosen.format, float_nodes=list(ranked[:k])), e))
            break
        steps.append(row)
        if meets(row):
            best = row
            break
        if row.cosine > best.cosine:
            best = row
    return best, steps


def mixed_precision(chosen: Candidate, options: FallbackConfig, x_rank: np.ndarray, build: Build, probe: Build,
                    time_ms: Callable[[Path], float], tmp: Path, log: Callable[[str], None],
                    meets: Callable[[Candidate], bool] | None = None) -> tuple[Candidate, list[Candidate], str]:
    """Greedy mixed precision on `chosen` (see the module docstring): the candidate kept, every step tried (built
    ones and failed ones), and the decision's sentence. `meets` defaults to the options' bounds; layers are ranked
    on `x_rank` (then, with `ranking: measured`, by probes)."""
    meets = meets or options.within_bounds
    if meets(chosen):
        return chosen, [], " Mixed-precision fallback not needed: the int8 model meets its bounds."
    ranked = error_ranking(chosen, x_rank)
    probes: list[dict] = []
    if options.ranking == "measured":
        ranked, probes = measured_ranking(ranked, chosen, probe, options.probe, tmp, log)
    base_ms = chosen.latency_ms_p50 or time_ms(chosen.file)
    best, tried = keep_float_steps(chosen, ranked, build, time_ms, meets, options.max_layers, tmp)
    steps = [r for r in tried if r.built]
    trail = "; ".join(f"{len(r.float_nodes)} float: cosine {r.cosine:.4f}, agreement "
                      f"{r.top1_agreement:.3f}, {r.latency_ms_p50:.3f} ms" for r in steps)
    head = f" Mixed precision from all-int8 (cosine {chosen.cosine:.4f}, {base_ms:.3f} ms): {trail}."
    if probes:
        head += (" Layers ranked by measurement, each kept float alone: " + ", ".join(
            f"{p['node']} {p['cosine']:.4f}/{p['top1_agreement']:.3f}" for p in probes[:5]) + ".")
        for r in steps:
            r.ranking = probes
    if best is chosen or not meets(best):
        head += (" No fallback met the bounds; kept the most faithful" +
                 (f" ({len(best.float_nodes)} layers in float)." if best is not chosen else " (all int8)."))
    else:
        head += f" Kept {', '.join(best.float_nodes)} in float."
    return best, tried, head
