"""Post-training quantization of the fp32 ONNX export with ONNX Runtime: static INT8, dynamic INT8, FP16."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from edgekit.config_base import Strict, Tolerance
from edgekit.console import progress
from edgekit.errors import PassError
from edgekit.handles import OnnxFile
from edgekit.names import Name
from edgekit.passes.base import FilePass, PassContext, Written
from edgekit.timing import Stopwatch

_logger = logging.getLogger(__name__)


class FallbackConfig(Strict):
    """Mixed precision: when the chosen int8 model misses these bounds on the validation split, keep the most
    sensitive layers in float, one more at a time, until it meets them (each step timed and reported)."""

    max_layers: int = Field(3, ge=1, description="at most this many layers in float")
    min_cosine: float | None = Field(None, gt=0, le=1)
    min_top1: float | None = Field(None, gt=0, le=1)
    ranking: Literal["measured", "error"] = Field(
        "measured", description="error: by the error each layer adds to its output (no extra builds); measured: "
                                "the `probe` layers adding the most error and the first `probe` quantized layers "
                                "(high resolution, whose error every later layer inherits) are each kept float "
                                "alone and ranked by the validation fidelity that gives")
    probe: int = Field(5, ge=1, description="measured ranking: layers probed from each of the two lists")


class AdaRoundOptions(Strict):
    """AdaRound (learned weight rounding, edgekit.quant.onnx_adaround) on the chosen QDQ per-channel model."""

    layers: int = Field(8, ge=0, description="the N layers adding the most error (0: every layer)")
    iters: int = Field(300, ge=10)
    samples: int = Field(32, ge=1, description="calibration samples it learns from")
    keep: Literal["auto", "always"] = Field("auto", description="auto: kept only if validation cosine rises")


class StaticQuantConfig(Strict):
    """Static INT8 (calibrated activations). `auto` picks the format by measuring candidates on this host."""

    name: Literal["quantize.static"]
    artifact: Name = "onnx-int8"
    format: Literal["auto", "qdq", "qoperator"] = "auto"
    activation_type: Literal["auto", "uint8", "int8"] = "auto"
    weight_type: Literal["int8", "uint8"] = "int8"
    per_channel: Literal["auto", True, False] = Field(
        "auto", description="auto tries per-channel and per-tensor weights; per-channel wins ties")
    reduce_range: bool = False
    calibration: Literal["minmax", "entropy", "percentile", "mse"] = "minmax"
    calibrator: Literal["edgekit", "onnxruntime"] = Field(
        "edgekit", description="who computes entropy/percentile/mse ranges: edgekit's streaming calibrators "
                               "(bounded memory, progress with ETA; handed to ORT as tensor range overrides) or ORT's "
                               "own (keeps all activations in memory; no mse)")
    percentile: float = Field(99.999, gt=90, le=100)
    calibration_size: int | None = Field(None, ge=1, description="default: all of the data's calibration subset")
    exclude_nodes: list[str] = Field(default_factory=list, description="ONNX node names kept in float")
    agreement_slack: float = Field(0.005, ge=0, le=1, description="auto: candidates within this top-1 agreement "
                                                                "of the best are 'accurate enough'; the fastest wins")
    cosine_slack: float = Field(0.002, ge=0, le=1, description="auto: and within this mean cosine of the best")
    speed_margin: float = Field(0.05, ge=0, description="auto: latencies closer than this fraction are a tie, "
                                                        "which the more faithful candidate wins")
    select_time_s: float = Field(0.5, gt=0, description="auto: timing budget per candidate")
    saturation_safe: Literal["auto", True, False] = Field(
        "auto", description="QDQ U8S8: re-scale int8 weights so the int16 pair sums of x86 kernels without VNNI "
                            "cannot saturate (auto: on such CPUs; see edgekit.quant.onnx_rewrite)")
    bias_correction: Literal["auto", True, False] = Field(
        "auto", description="QDQ: remove each layer's weight-rounding shift dW E[x] through its bias, measured on "
                            "the calibration data (auto: kept when it raises validation cosine)")
    adaround: AdaRoundOptions | None = Field(None, description="learned rounding of the weights (QDQ per-channel)")
    fallback: FallbackConfig | None = Field(None, description="keep the most sensitive layers in float until "
                                                               "these validation bounds are met")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(min_cosine=0.98, min_top1=0.9))

    @model_validator(mode="after")
    def _options_fit_the_format(self):
        if self.calibration == "mse" and self.calibrator == "onnxruntime":
            raise ValueError("calibration: mse exists only in edgekit's calibrators (calibrator: edgekit)")
        if self.calibration == "mse" and self.format == "qoperator":
            raise ValueError("calibration: mse needs format: qdq (ORT's QOperator quantizer misapplies range overrides)")
        if self.adaround is not None and (self.format == "qoperator" or self.per_channel is False):
            raise ValueError("adaround needs format: qdq and per-channel weights (it rounds on the QDQ weight grid)")
        return self


class DynamicQuantConfig(Strict):
    """Dynamic INT8: weights int8, activations quantized at run time. For Linear/MatMul-heavy models."""

    name: Literal["quantize.dynamic"]
    artifact: Name = "onnx-int8-dynamic"
    weight_type: Literal["int8", "uint8"] = "int8"
    per_channel: bool = True
    op_types: list[str] = Field(default_factory=lambda: ["MatMul", "Attention", "LSTM", "Gather"],
                                description="Conv is left out by default: ConvInteger is slower than fp32")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(min_cosine=0.98, min_top1=0.9))


class Fp16Config(Strict):
    name: Literal["quantize.fp16"]
    artifact: Name = "onnx-fp16"
    keep_io_types: bool = Field(True, description="keep float32 inputs/outputs")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(min_cosine=0.999, min_top1=0.98))


_QTYPE = {"int8": "QInt8", "uint8": "QUInt8"}
_CALIB = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}  # ORT's own calibrators
_FORMAT = {"qdq": "QDQ", "qoperator": "QOperator"}


def preprocess(src: Path, dst: Path, log=None) -> tuple[Path, str | None]:
    """Fold Constant weights and BatchNormalization and run ORT's pre-processing into `dst` (edgekit.quant.onnx_prepare):
    (dst, None), or, when it fails, (src, the reason) after a warning: a model it cannot handle is quantized as is."""
    from edgekit.quant.onnx_prepare import prepare

    prep = prepare(src, dst)
    if prep.ran:
        return Path(dst).resolve(), None
    (log or _logger.warning)(f"  WARNING: ONNX Runtime pre-processing of {Path(src).name} failed, quantizing without "
                             f"it: {prep.error}")
    return Path(src), prep.error


def int8_cost_notes(fp32: Path, int8: Path, fp32_ms: float | None, int8_ms: float | None) -> list[str]:
    """A note naming the likely cause when the int8 file is slower or bigger than its fp32 source."""
    from edgekit.quant.onnx_prepare import why_slower

    what = []
    if fp32_ms is not None and int8_ms is not None and int8_ms > fp32_ms:
        what.append(f"slower ({int8_ms:.3f} vs {fp32_ms:.3f} ms p50)")
    if Path(int8).stat().st_size > Path(fp32).stat().st_size:
        what.append(f"bigger ({Path(int8).stat().st_size / 1024:.0f} vs {Path(fp32).stat().st_size / 1024:.0f} KiB)")
    return [f"WARNING: the int8 file is {' and '.join(what)} than fp32: {why_slower(fp32, int8)}"] if what else []


def preprocess_note(reason: str | None) -> list[str]:
    """The pass record's note for a pre-processing that failed (nothing when it ran)."""
    return [] if reason is None else [f"WARNING: ONNX Runtime pre-processing failed, quantized without it: {reason}"]


def _input_name(path: Path) -> str:
    from edgekit.model_files import onnx_header

    return onnx_header(path).graph.input[0].name


def _time_session(path: Path, x: np.ndarray, threads: int | None, budget_s: float) -> float:
    """Median latency (ms) of one batch in a fresh session; used only to choose among candidates."""
    from edgekit.runtimes.timed import time_onnx_files

    return time_onnx_files({"m": path}, x, threads, min_time_s=budget_s, block=1, min_rounds=10, max_rounds=None)["m"]["p50"]


def _fidelity(path: Path, ctx: PassContext) -> dict:
    """Top-1 agreement with the fp32 reference and accuracy, on the validation split (never the test split); the
    per-sample values, for paired tests between candidates, under the private key `_per_sample`."""
    from edgekit.export.parity import compare, per_sample
    from edgekit.runtimes.onnxruntime import OnnxRuntime

    x, y = ctx.splits.x_val, ctx.splits.y_val
    if len(x) == 0:
        x, y = ctx.splits.x_calib, None
    ref = ctx.reference_logits["val" if y is not None else "calib"]
    out = OnnxRuntime().load(path).run(x)
    numbers = compare(ref, out)
    numbers["_per_sample"] = per_sample(ref, out)
    if y is not None and (y >= 0).all():  # unlabelled data has labels -1
        numbers["val_accuracy"] = float((out.argmax(1) == y).mean())
        numbers["_per_sample"]["correct"] = out.argmax(1) == y
    return numbers


def drop_private(rows: list[dict]) -> None:
    """Remove the keys only the pass itself uses (`_path`, `_per_sample`, ...) before rows go into the report."""
    for r in rows:
        for k in [k for k in r if k.startswith("_")]:
            del r[k]


class StaticQuantize(FilePass):
    name = "quantize.static"
    takes = returns = OnnxFile

    def candidates(self) -> list[tuple[str, str, bool]]:
        c = self.config
        formats = ["qdq", "qoperator"] if c.format == "auto" else [c.format]
        acts = ["uint8", "int8"] if c.activation_type == "auto" else [c.activation_type]
        chans = [True, False] if c.per_channel == "auto" else [c.per_channel]
        combos = [(f, a, pc) for pc in chans for f in formats for a in acts]
        if c.format == "auto" and c.activation_type == "auto":  # S8S8 QOperator is rarely a fast kernel path
            combos = [k for k in combos if k[:2] != ("qoperator", "int8")]
        return combos

    def quantize(self, src: Path, dst: Path, fmt: str, act: str, per_channel: bool, ctx: PassContext,
                 float_nodes: list[str] | None = None) -> None:
        from onnxruntime import quantization as q

        c = self.config
        x = ctx.splits.x_calib[: c.calibration_size] if c.calibration_size else ctx.splits.x_calib
        method = c.calibration
        if c.calibration != "minmax" and c.calibrator == "edgekit" and fmt == "qdq":
            extra, method = _streamed_ranges(src, x, c, ctx), "minmax"  # ORT's own pass is then a cheap MinMax
        elif c.calibration == "mse":
            raise PassError("calibration: mse needs format: qdq (ORT's QOperator quantizer misapplies tensor range "
                            "overrides: measured cosine 0.07 with ranges that work in QDQ)")
        else:  # ORT's own calibrator (its QOperator quantizer misapplies range overrides, so those use it too)
            extra = {"CalibPercentile": c.percentile} if c.calibration == "percentile" else {}
        with contextlib.redirect_stdout(io.StringIO()):  # ORT prints its histogram calibrators' progress
            q.quantize_static(
                str(src), str(dst), make_reader_for(src, x),
                quant_format=getattr(q.QuantFormat, _FORMAT[fmt]),
                per_channel=per_channel, reduce_range=c.reduce_range,
                activation_type=getattr(q.QuantType, _QTYPE[act]),
                weight_type=getattr(q.QuantType, _QTYPE[c.weight_type]),
                nodes_to_exclude=[*c.exclude_nodes, *(float_nodes or [])] or None,
                calibrate_method=getattr(q.CalibrationMethod, _CALIB[method]), extra_options=extra,
            )
        floats = [*c.exclude_nodes, *(float_nodes or [])]
        if floats and fmt == "qdq":  # else ORT re-quantizes them per-tensor at session load
            from edgekit.quant.onnx_rewrite import keep_float

            keep_float(dst, floats)

    def transform(self, source: OnnxFile, out: Path, ctx: PassContext) -> Written:
        from edgekit.runtimes.base import fixed_batch

        src = source.path
        threads = getattr(ctx.bench, "threads", None)
        bs = getattr(ctx.bench, "batch_size", 1)
        x_time = fixed_batch(ctx.splits.x_calib, bs)
        combos = self.candidates()
        rows = []
        with tempfile.TemporaryDirectory(prefix="edgekit-quant-") as tmp:
            tmp = Path(tmp)
            pre, pre_error = preprocess(src, tmp / "pre.onnx", ctx.log)
            fp32_ms = _time_session(src, x_time, threads, self.config.select_time_s) if len(combos) > 1 else None
            with progress("candidate", len(combos), log=ctx.log) as bar:
                for fmt, act, pc in combos:
                    cand = tmp / f"{fmt}-{act}-{'pc' if pc else 'pt'}.onnx"
                    try:
                        row = self.build(pre, cand, fmt, act, pc, ctx)
                        if len(combos) > 1:
                            row["latency_ms_p50"] = _time_session(cand, x_time, threads, self.config.select_time_s)
                    except Exception as e:  # one failing candidate must not lose the others
                        row = {"format": fmt, "activation_type": act, "per_channel": pc,
                               "error": f"{type(e).__name__}: {e}"}
                        first = (str(row["error"]).strip().splitlines() or [""])[0]
                        ctx.log(f"  candidate {fmt} {act} {'per-channel' if pc else 'per-tensor'} failed: {first}")
                    rows.append(row)
                    bar.update(note=cand.stem)
            ok = [r for r in rows if "_path" in r]
            if not ok:
                raise PassError(f"quantize.static: every candidate failed: {[r['error'] for r in rows]}")
            chosen, decision = self._choose(ok, fp32_ms)
            decision += self._adaround(chosen, pre, ctx)
            decision += self._bias_correct(chosen, pre, ctx)
            if self.config.fallback is not None:
                chosen, note = self._fallback(chosen, pre, tmp, ctx, rows, threads, x_time)
                decision += note
            out.write_bytes(Path(chosen["_path"]).read_bytes())
        drop_private(rows)
        for r in rows:
            r["chosen"] = r is chosen
        details = {"format": chosen["format"], "activation_type": chosen["activation_type"],
                   "weight_type": self.config.weight_type, "per_channel": chosen["per_channel"],
                   "saturation_safe": bool(chosen.get("saturation_safe")),
                   "bias_correction": bool(chosen.get("bias_correction", {}).get("kept")),
                   "adaround": bool(chosen.get("adaround", {}).get("kept")),
                   "float_nodes": [*self.config.exclude_nodes, *chosen.get("float_nodes", [])],
                   "calibration": self.config.calibration, "calibration_samples": int(len(ctx.splits.x_calib)),
                   "preprocessed": pre_error is None}
        timed = fp32_ms is not None
        return Written(precision="int8", details=details, decision=decision, candidates=rows,
                       notes=preprocess_note(pre_error) + int8_cost_notes(src, out, fp32_ms, chosen.get("latency_ms_p50")),
                       before={"latency_ms_p50_selection": fp32_ms} if timed else {},
                       after={"latency_ms_p50_selection": chosen["latency_ms_p50"]} if timed else {})

    def build(self, pre: Path, cand: Path, fmt: str, act: str, per_channel: bool, ctx: PassContext,
              float_nodes: list[str] | None = None) -> dict:
        """Quantize `pre` into `cand` (saturation-safe weights where that applies) and measure its fidelity on the
        validation split: one candidate row, its file under the private key `_path`."""
        self.quantize(pre, cand, fmt, act, per_channel, ctx, float_nodes=float_nodes)
        sat = self._saturation_safe(cand, pre, fmt, act, per_channel)
        return {"format": fmt, "activation_type": act, "weight_type": self.config.weight_type,
                "per_channel": per_channel, **({"saturation_safe": sat} if sat else {}),
                **({"float_nodes": list(float_nodes)} if float_nodes else {}),
                **_fidelity(cand, ctx), "size_bytes": cand.stat().st_size, "_path": cand}

    def _saturation_safe(self, cand: Path, pre: Path, fmt: str, act: str, per_channel: bool) -> dict | None:
        """Rewrite the candidate's weights in place on saturation-safe scales when that applies here."""
        from edgekit.quant.onnx_rewrite import cpu_saturates_u8s8, saturation_safe

        c = self.config
        applies = fmt == "qdq" and act == "uint8" and c.weight_type == "int8" and per_channel and not c.reduce_range
        if c.saturation_safe is False or not applies or (c.saturation_safe == "auto" and not cpu_saturates_u8s8()):
            return None
        return saturation_safe(cand, pre, cand)

    def _adaround(self, chosen: dict, pre: Path, ctx: PassContext) -> str:
        """AdaRound the chosen QDQ per-channel candidate's most sensitive layers; `keep: auto` keeps it only when
        validation cosine rises."""
        from edgekit.quant.adaround import AdaRoundConfig
        from edgekit.quant.onnx_adaround import adaround_onnx
        from edgekit.quant.onnx_rewrite import sensitivity_ranking

        a = self.config.adaround
        if a is None:
            return ""
        if chosen["format"] != "qdq" or not chosen["per_channel"]:
            return " AdaRound skipped: the chosen candidate is not QDQ with per-channel weights."
        path = Path(chosen["_path"])
        x = ctx.splits.x_calib[: a.samples]
        nodes = None
        if a.layers:
            xv = ctx.splits.x_val if len(ctx.splits.x_val) else ctx.splits.x_calib
            nodes = [n for n, _ in sensitivity_ranking(path, pre, xv[:32])][: a.layers]
        clock = Stopwatch()

        def progress(i, n, node, e0, e1):
            ctx.log(f"  AdaRound {i}/{n} {node}: output MSE {e0:.3g} -> {e1:.3g} (ETA {clock.eta_s(i, n):.0f} s)")

        fixed = path.with_name(path.stem + "-ada.onnx")
        stats = adaround_onnx(path, pre, x, fixed, nodes, AdaRoundConfig(iters=a.iters), progress=progress)
        if not stats["layers"]:
            return " AdaRound: no layer it can round (per-tensor or asymmetric pads)."
        after = _fidelity(fixed, ctx)
        kept = a.keep == "always" or after["cosine"] > chosen["cosine"]
        chosen["adaround"] = {**stats, "cosine_before": chosen["cosine"], "cosine_after": after["cosine"],
                              "top1_agreement_before": chosen["top1_agreement"],
                              "top1_agreement_after": after["top1_agreement"], "kept": kept}
        before = chosen["cosine"]
        if kept:
            chosen.update(after)
            chosen["_path"] = fixed
        return (f" AdaRound of {stats['layers']} layers ({a.iters} iterations, {len(x)} samples): validation cosine "
                f"{before:.4f} -> {after['cosine']:.4f}, {'kept' if kept else 'not kept'}.")

    def _bias_correct(self, chosen: dict, pre: Path, ctx: PassContext) -> str:
        """Bias correction of the chosen QDQ candidate; `auto` keeps it only when validation cosine improves."""
        from edgekit.quant.onnx_rewrite import bias_correct

        c = self.config
        if c.bias_correction is False or chosen["format"] != "qdq":
            return ""
        path = Path(chosen["_path"])
        fixed = path.with_name(path.stem + "-bc.onnx")
        x = ctx.splits.x_calib[: c.calibration_size] if c.calibration_size else ctx.splits.x_calib
        stats = bias_correct(path, pre, x, fixed)
        if not stats["layers_corrected"]:
            return ""
        after = _fidelity(fixed, ctx)
        chosen["bias_correction"] = {**stats, "cosine_before": chosen["cosine"], "cosine_after": after["cosine"],
                                     "top1_agreement_before": chosen["top1_agreement"],
                                     "top1_agreement_after": after["top1_agreement"]}
        kept = c.bias_correction is True or after["cosine"] > chosen["cosine"]
        chosen["bias_correction"]["kept"] = kept
        if kept:
            chosen.update({k: v for k, v in after.items()})
            chosen["_path"] = fixed
        before = chosen["bias_correction"]["cosine_before"]
        return (f" Bias correction of {stats['layers_corrected']} layers: validation cosine {before:.4f} -> "
                f"{after['cosine']:.4f}, {'kept' if kept else 'not kept'}.")

    def _fallback(self, chosen: dict, pre: Path, tmp: Path, ctx: PassContext, rows: list, threads, x_time,
                  meets=None):
        """Greedy mixed precision: float for the k layers that add the most error, k = 1, 2, ... until the
        bounds hold (`meets(row)`, default: the fallback config's); every step is a candidate row with its
        fidelity and latency."""
        from edgekit.quant.onnx_rewrite import sensitivity_ranking

        fb, c = self.config.fallback, self.config

        def within_bounds(r):
            return ((fb.min_cosine is None or r["cosine"] >= fb.min_cosine)
                    and (fb.min_top1 is None or r["top1_agreement"] >= fb.min_top1))

        meets = meets or within_bounds

        if meets(chosen):
            return chosen, " Mixed-precision fallback not needed: the int8 model meets its bounds."
        x = ctx.splits.x_val if len(ctx.splits.x_val) else ctx.splits.x_calib
        ranked = [n for n, _ in sensitivity_ranking(Path(chosen["_path"]), pre, x[:32])]
        probes: list[dict] = []
        if fb.ranking == "measured":
            ranked, probes = self._measured_ranking(ranked, chosen, pre, tmp, ctx)
        base_ms = chosen.get("latency_ms_p50") or _time_session(Path(chosen["_path"]), x_time, threads, c.select_time_s)
        best, steps = chosen, []
        for k in range(1, min(fb.max_layers, len(ranked)) + 1):
            cand = tmp / f"fallback-{k}.onnx"
            fmt, act, pc = chosen["format"], chosen["activation_type"], chosen["per_channel"]
            try:
                row = self.build(pre, cand, fmt, act, pc, ctx, float_nodes=ranked[:k])
                self._adaround(row, pre, ctx)
                self._bias_correct(row, pre, ctx)
                row["latency_ms_p50"] = _time_session(Path(row["_path"]), x_time, threads, c.select_time_s)
            except Exception as e:  # a graph ORT cannot quantize with these exclusions: stop adding layers
                rows.append({"format": fmt, "float_nodes": ranked[:k], "error": f"{type(e).__name__}: {e}"})
                break
            rows.append(row)
            steps.append(row)
            if meets(row):
                best = row
                break
            if row["cosine"] > best["cosine"]:
                best = row
        trail = "; ".join(f"{len(r['float_nodes'])} float: cosine {r['cosine']:.4f}, agreement "
                          f"{r['top1_agreement']:.3f}, {r['latency_ms_p50']:.3f} ms" for r in steps)
        head = f" Mixed precision from all-int8 (cosine {chosen['cosine']:.4f}, {base_ms:.3f} ms): {trail}."
        if probes:
            head += (" Layers ranked by measurement, each kept float alone: " + ", ".join(
                f"{p['node']} {p['cosine']:.4f}/{p['top1_agreement']:.3f}" for p in probes[:5]) + ".")
            for r in steps:
                r["ranking"] = probes
        if best is chosen or not meets(best):
            head += (" No fallback met the bounds; kept the most faithful" +
                     (f" ({len(best.get('float_nodes', []))} layers in float)." if best is not chosen else " (all int8)."))
        else:
            head += f" Kept {', '.join(best['float_nodes'])} in float."
        return best, head

    def _measured_ranking(self, ranked: list[str], chosen: dict, pre: Path, tmp: Path, ctx: PassContext
                          ) -> tuple[list[str], list[dict]]:
        """Probe layers one at a time: each kept float alone (no bias correction or AdaRound on the probes) and
        measured on the validation split. The error ranking alone misses the early high-resolution layers, whose
        error every later layer inherits (EfficientNet-Lite0: it picked project convs that did not help, while the
        stem and the first depthwise conv did). Returns the probed layers, most faithful first, then the rest of
        `ranked`, and the probes' fidelity."""
        from edgekit.model_files import onnx_header
        from edgekit.quant.onnx_rewrite import qdq_layers

        k = self.config.fallback.probe
        order = [la.node for la in qdq_layers(onnx_header(chosen["_path"]).graph)]
        cands = list(dict.fromkeys([*ranked[:k], *[n for n in order if n in ranked][:k]]))
        probes = []
        fmt, act, pc = chosen["format"], chosen["activation_type"], chosen["per_channel"]
        for i, node in enumerate(cands):
            try:
                row = self.build(pre, tmp / f"probe-{i}.onnx", fmt, act, pc, ctx, float_nodes=[node])
            except Exception as e:  # a graph ORT cannot quantize with this exclusion: not a candidate
                ctx.log(f"  probe {i + 1}/{len(cands)}: {node} kept float failed ({type(e).__name__}: {e}); skipped")
                continue
            probes.append({"node": node, "cosine": row["cosine"], "top1_agreement": row["top1_agreement"]})
            ctx.log(f"  probe {i + 1}/{len(cands)}: {node} kept float: cosine {row['cosine']:.4f}")
        probes.sort(key=lambda p: (p["cosine"], p["top1_agreement"]), reverse=True)
        first = [p["node"] for p in probes]
        return [*first, *[n for n in ranked if n not in first]], probes

    def _choose(self, ok: list[dict], fp32_ms: float | None) -> tuple[dict, str]:
        """Fastest candidate among the faithful ones; near-equal speeds go to the more faithful."""
        c = self.config

        def label(r):
            act = "U8S8" if r["activation_type"] == "uint8" else "S8S8"
            safe = ", saturation-safe weights" if r.get("saturation_safe") else ""
            return f"{r['format'].upper()} {act} {'per-channel' if r['per_channel'] else 'per-tensor'}{safe}"

        if len(ok) == 1:
            return ok[0], f"{label(ok[0])} as configured"
        best_agree = max(r["top1_agreement"] for r in ok)
        best_cos = max(r["cosine"] for r in ok)
        good = [r for r in ok if r["top1_agreement"] >= best_agree - c.agreement_slack
                and r["cosine"] >= best_cos - c.cosine_slack]
        fastest = min(r["latency_ms_p50"] for r in good)
        tied = [r for r in good if r["latency_ms_p50"] <= fastest * (1 + c.speed_margin)]
        chosen = max(tied, key=lambda r: (r["cosine"], r["per_channel"]))
        others = "; ".join(f"{label(r)}: {r['latency_ms_p50']:.3f} ms, agreement {r['top1_agreement']:.3f}, "
                           f"cosine {r['cosine']:.4f}" for r in ok)
        why = (f"chose {label(chosen)}: the fastest (within {c.speed_margin:.0%}) of the candidates within "
               f"{c.agreement_slack} top-1 agreement and {c.cosine_slack} cosine of the best on the validation split. "
               f"Measured on this host: {others}")
        why += f"; fp32 {fp32_ms:.3f} ms." if fp32_ms is not None else "."
        if fp32_ms is not None and chosen["latency_ms_p50"] > fp32_ms:
            why += " WARNING: the int8 model is slower than fp32 on this host."
        return chosen, why


def _streamed_ranges(src: Path, x: np.ndarray, c: StaticQuantConfig, ctx: PassContext) -> dict:
    """ORT range overrides from edgekit's streaming calibrator `c.calibration` (cached per model and settings:
    quantize.auto and the fallback quantize the same model many times)."""
    from edgekit.quant.onnx_calibrate import calibrate_onnx, range_overrides

    key = ("ranges", str(src), src.stat().st_mtime_ns, c.calibration, c.percentile, len(x))
    if key not in ctx.cache:
        kw = {"percentile": c.percentile} if c.calibration == "percentile" else {}
        with progress(f"calibration ({c.calibration}, samples)", len(x), log=ctx.log) as bar:
            ctx.cache[key] = range_overrides(calibrate_onnx(src, x, c.calibration,
                                                            progress=lambda done, _t, _e: bar.update(done), **kw))
    return ctx.cache[key]


def make_reader_for(path: Path, x: np.ndarray):
    from edgekit.passes.onnx_calibration import make_reader, static_batch

    fixed = static_batch(path)
    return make_reader(_input_name(path), x, batch=fixed, drop_last=True) if fixed else make_reader(_input_name(path), x)


INTEGER_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM", "ConvInteger", "QAttention")
FLOAT_WEIGHT_OPS = ("MatMul", "Gemm", "Conv", "LSTM", "GRU", "Attention")  # with a float weight: left in float


class DynamicQuantize(FilePass):
    name = "quantize.dynamic"
    takes = returns = OnnxFile

    def transform(self, source: OnnxFile, out: Path, ctx: PassContext) -> Written:
        from onnxruntime import quantization as q

        from edgekit.onnx_graph import check_onnx_file, initializer_bytes

        c = self.config
        with tempfile.TemporaryDirectory() as tmp:
            pre, pre_error = preprocess(source.path, Path(tmp) / "pre.onnx", ctx.log)
            q.quantize_dynamic(str(pre), str(out), per_channel=c.per_channel,
                               weight_type=getattr(q.QuantType, _QTYPE[c.weight_type]), op_types_to_quantize=c.op_types)
        proto = check_onnx_file(out)
        nodes = proto.graph.node
        weights = {i.name for i in proto.graph.initializer}
        ops = {n.op_type for n in nodes}
        notes = preprocess_note(pre_error)
        if not ops & set(INTEGER_OPS):
            notes.append(f"no layer of types {c.op_types} was quantized: the model has none (ops: {sorted(ops)})")
        details = {"weight_type": c.weight_type, "op_types": c.op_types,
                   "quantized_nodes": [n.name or n.output[0] for n in nodes if n.op_type in INTEGER_OPS],
                   "float_weight_nodes": [n.name or n.output[0] for n in nodes
                                          if n.op_type in FLOAT_WEIGHT_OPS and weights & set(n.input)],
                   "weight_bytes": initializer_bytes(proto), "preprocessed": pre_error is None}
        return Written(precision="int8-dynamic", details=details, notes=notes)


class Fp16(FilePass):
    name = "quantize.fp16"
    takes = returns = OnnxFile

    def transform(self, source: OnnxFile, out: Path, ctx: PassContext) -> Written:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        from edgekit.model_files import load_onnx
        from edgekit.onnx_graph import toposort

        proto = convert_float_to_float16(load_onnx(source.path), keep_io_types=self.config.keep_io_types)
        toposort(proto.graph)  # the converter appends its input casts after their users
        onnx.save(proto, str(out))
        return Written(precision="fp16", details={"keep_io_types": self.config.keep_io_types},
                       notes=["ONNX Runtime's CPU provider has few fp16 kernels: expect casts and no CPU speedup; "
                              "fp16 is for GPU providers and for halving the file"])
