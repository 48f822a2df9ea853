"""quantize.auto: try INT8 schemes in a sensible order, measure each one's fidelity and its speed side by side with
fp32 on this host, and keep the fastest that meets the target; when none does, keep the most faithful and say so
(the fastest of those that paired tests on the validation split cannot tell less faithful: `faithful_tie_p`).

The ladder (default `schemes`) runs cheapest first, within `time_budget_s`: per-tensor U8S8, per-tensor after
cross-layer equalization, per-channel U8S8, per-channel S8S8, QOperator, percentile and MSE calibration (edgekit's
streaming calibrators), bias correction, AdaRound + bias correction.
If no scheme meets the target and the torch model is at hand, the most faithful scheme is tried once more on the
model after label-free quantization-aware fine-tuning (edgekit.quant.finetune: no labels, the fp32 model is the
teacher); if still none meets it, the most faithful candidate gets mixed precision: its most sensitive layers are
kept in float, one more at a time (up to `max_float_layers`). Every candidate is a row in the report (scheme, fidelity,
p50/p90/p99, size); an int8 model slower than fp32 is never returned without a warning in the report.
"""

from __future__ import annotations

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
from edgekit.quant.finetune import FinetuneOptions
from edgekit.timing import Stopwatch, now


class Scheme(Strict):
    """One candidate: the quantize.static settings it uses (weights int8)."""

    format: Literal["qdq", "qoperator"] = "qdq"
    activation_type: Literal["uint8", "int8"] = "uint8"
    per_channel: bool = True
    calibration: Literal["minmax", "entropy", "percentile", "mse"] = "minmax"
    percentile: float = Field(99.999, gt=90, le=100)
    bias_correction: bool = False
    adaround: bool = Field(False, description="AdaRound the 8 layers adding the most error (QDQ per-channel)")
    equalize: bool = Field(False, description="cross-layer equalization of the torch model first (needs a torch "
                                              "model; see the `equalize` pass)")

    @model_validator(mode="after")
    def _options_fit_the_format(self):
        needs_qdq = [k for k in ("bias_correction", "adaround") if getattr(self, k)]
        needs_qdq += ["calibration: mse"] * (self.calibration == "mse")
        if self.format == "qoperator" and needs_qdq:
            raise ValueError(f"{', '.join(needs_qdq)}: only with format: qdq (they rewrite or override the QDQ graph)")
        if self.adaround and not self.per_channel:
            raise ValueError("adaround needs per_channel: true (it rounds on per-channel weight grids)")
        return self

    def label(self) -> str:
        act = "U8S8" if self.activation_type == "uint8" else "S8S8"
        parts = [self.format.upper(), act, "per-channel" if self.per_channel else "per-tensor", self.calibration
                 + (f" {self.percentile:g}" if self.calibration == "percentile" else "")]
        parts += ["CLE"] * self.equalize + ["AdaRound"] * self.adaround + ["bias-corrected"] * self.bias_correction
        return " ".join(parts)


def relative_cost(s: Scheme) -> float:
    """Rough cost of building a scheme, in units of a plain min/max candidate (measured orders of magnitude on
    EfficientNet-Lite0: streaming calibrators ~2-3x, bias correction ~1.5x, AdaRound ~10x)."""
    cost = 1.0
    cost += {"minmax": 0.0, "percentile": 1.5, "entropy": 2.0, "mse": 2.0}[s.calibration]
    cost += 1.0 * s.equalize + 0.5 * s.bias_correction + 8.0 * s.adaround
    return cost


def default_schemes() -> list[Scheme]:
    return [Scheme(per_channel=False), Scheme(per_channel=False, equalize=True), Scheme(),
            Scheme(activation_type="int8"), Scheme(format="qoperator"), Scheme(calibration="percentile"),
            Scheme(calibration="mse"), Scheme(bias_correction=True), Scheme(adaround=True, bias_correction=True)]


class AutoQuantConfig(Strict):
    """Measured choice of a static INT8 scheme for the fp32 ONNX model on this host."""

    name: Literal["quantize.auto"]
    artifact: Name = "onnx-int8"
    target: Tolerance = Field(default_factory=lambda: Tolerance(min_cosine=0.99, min_top1=0.95),
                              description="fidelity to fp32 on the validation split a candidate must keep")
    max_accuracy_drop: float | None = Field(None, ge=0, le=1, description="and, with labels, at most this drop "
                                                                          "of validation accuracy from fp32")
    schemes: list[Scheme] = Field(default_factory=default_schemes, min_length=1, description="tried in order")
    max_float_layers: int = Field(3, ge=0, description="when no scheme meets the target: keep up to this many of "
                                                       "the most faithful scheme's most sensitive layers in float")
    finetune: FinetuneOptions | None = Field(default_factory=FinetuneOptions, description="when no scheme meets the "
                                             "target and the torch model is at hand; null: never")
    finetune_when: Literal["miss", "always"] = Field(
        "miss", description="miss: fine-tune only when no scheme meets the target; always: also when one does (the "
                            "fine-tuned model has the same graph, so the same speed: it wins on fidelity, which a "
                            "small validation split may not show)")
    reduce_range: bool = False
    saturation_safe: Literal["auto", True, False] = "auto"
    calibration_size: int | None = Field(None, ge=1)
    exclude_nodes: list[str] = Field(default_factory=list, description="ONNX node names always kept in float")
    speed_margin: float = Field(0.05, ge=0, description="latencies closer than this fraction are a tie, which the "
                                                        "more faithful candidate wins")
    faithful_tie_p: float | None = Field(
        0.05, gt=0, lt=1, description="when no candidate meets the target: those that paired tests on the validation "
                                      "split (McNemar on top-1 agreement and on accuracy where labelled, a paired "
                                      "test on per-sample cosine) cannot tell worse than the most faithful at this "
                                      "level count as equally faithful, and the fastest of them is kept; null: keep "
                                      "the most faithful, however much slower")
    time_s: float = Field(3.0, gt=0, description="seconds of side-by-side timing of fp32 and all candidates")
    time_budget_s: float | None = Field(
        600.0, gt=0, description="wall-clock budget of the whole pass: schemes run cheapest first, a scheme whose "
                                 "estimated cost no longer fits is skipped (and listed), fine-tuning stops its epochs "
                                 "at the budget; null: no limit")
    tolerance: Tolerance = Field(default_factory=Tolerance, description="parity of the chosen artifact on the test "
                                 "split; default: the target (one notion of faithful enough), applied as the task "
                                 "allows (top-1 only for classifiers)")

    @model_validator(mode="before")
    @classmethod
    def _tolerance_is_the_target(cls, data):
        if isinstance(data, dict) and data.get("tolerance") is None:
            target = data.get("target")
            data = {**data, "tolerance": target if target is not None else Tolerance(min_cosine=0.99, min_top1=0.95)}
        return data

    @model_validator(mode="after")
    def _finetune_when_needs_finetune(self):
        if self.finetune_when == "always" and self.finetune is None:
            raise ValueError("finetune_when: always needs finetune options (got finetune: null)")
        return self


def _time_x(ctx: PassContext) -> np.ndarray:
    from edgekit.runtimes.base import fixed_batch

    return fixed_batch(ctx.splits.x_calib, getattr(ctx.bench, "batch_size", 1))


class AutoQuantize(FilePass):
    name = "quantize.auto"
    takes = returns = OnnxFile

    def _static(self, s: Scheme):
        from edgekit.passes.ort_quantize import AdaRoundOptions, FallbackConfig, StaticQuantConfig, StaticQuantize

        c = self.config
        fb = FallbackConfig(max_layers=max(c.max_float_layers, 1))  # bounds: the target, via _misses
        return StaticQuantize(StaticQuantConfig(
            name="quantize.static", artifact=c.artifact, format=s.format, activation_type=s.activation_type,
            weight_type="int8", per_channel=s.per_channel, reduce_range=c.reduce_range, calibration=s.calibration,
            percentile=s.percentile, calibration_size=c.calibration_size, exclude_nodes=c.exclude_nodes,
            saturation_safe=c.saturation_safe, bias_correction=s.bias_correction, fallback=fb,
            adaround=AdaRoundOptions(keep="always") if s.adaround else None))

    def _misses(self, row: dict, ctx: PassContext) -> list[str]:
        from edgekit.export.parity import failures

        c = self.config
        out = failures(row, c.target)
        if c.max_accuracy_drop is not None and "val_accuracy" in row:
            fp32 = float((ctx.reference_logits["val"].argmax(1) == ctx.splits.y_val).mean())
            if fp32 - row["val_accuracy"] > c.max_accuracy_drop:
                out.append(f"accuracy drop {fp32 - row['val_accuracy']:.4f} > {c.max_accuracy_drop}")
        return out

    def _equalized_source(self, ctx: PassContext, tmp: Path) -> Path:
        """The torch model after BN folding + cross-layer equalization, exported and pre-processed."""
        from edgekit.bench.quick import export_temp_onnx
        from edgekit.passes.equalize import EqualizeConfig, equalize_model
        from edgekit.passes.ort_quantize import preprocess

        if ctx.model is None:
            raise PassError("equalize needs the PyTorch model; this recipe's model is an ONNX file")
        cached = tmp / "cle-pre.onnx"
        if not cached.exists():
            _, model, _ = equalize_model(ctx.model, ctx.splits.x_calib, EqualizeConfig(name="equalize"))
            export_temp_onnx(model, ctx.splits.x_calib[:1], tmp / "cle.onnx")
            _, error = preprocess(tmp / "cle.onnx", cached, ctx.log)
            if error is not None:
                cached.write_bytes((tmp / "cle.onnx").read_bytes())
        return cached

    def _candidate(self, s: Scheme, pre: Path, tmp: Path, ctx: PassContext, i: int) -> dict:
        head = {"scheme": s.label(), "stage": "ladder", "settings": s.model_dump()}
        try:
            src = self._equalized_source(ctx, tmp) if s.equalize else pre
            q = self._static(s)
            row = q.build(src, tmp / f"cand-{i}.onnx", s.format, s.activation_type, s.per_channel, ctx)
            q._adaround(row, src, ctx)  # each a no-op unless the scheme asks for it
            q._bias_correct(row, src, ctx)
            return {**head, **row, "_pre": src}
        except Exception as e:  # one failing scheme must not lose the others
            return {**head, "error": f"{type(e).__name__}: {e}"}

    def transform(self, source: OnnxFile, out: Path, ctx: PassContext) -> Written:
        from edgekit.passes.ort_quantize import drop_private, int8_cost_notes, preprocess, preprocess_note
        from edgekit.runtimes.timed import time_onnx_files
        from edgekit.timing import Stopwatch

        t_start = Stopwatch()
        c = self.config
        src = source.path
        threads = getattr(ctx.bench, "threads", None)
        x_time = _time_x(ctx)
        with tempfile.TemporaryDirectory(prefix="edgekit-auto-") as tmp:
            tmp = Path(tmp)
            pre, pre_error = preprocess(src, tmp / "pre.onnx", ctx.log)
            rows, unit = [], None
            order = sorted(range(len(c.schemes)), key=lambda k: relative_cost(c.schemes[k]))  # stable: ties keep order
            with progress("candidate", len(order), log=ctx.log) as bar:
                for n, i in enumerate(order):
                    if n:
                        bar.update(n, note=c.schemes[order[n - 1]].label())
                    s = c.schemes[i]
                    met = any(not r.get("misses", ["?"]) for r in rows if "_path" in r)
                    if s.adaround and met:
                        rows.append(_skipped(s, "a cheaper scheme already meets the target; AdaRound could only add "
                                                "fidelity the target does not ask for"))
                        continue
                    left = self._budget_left(t_start)
                    if unit is not None and left is not None and unit * relative_cost(s) > left:
                        rows.append(_skipped(s, f"time budget: ~{unit * relative_cost(s):.0f} s estimated, {left:.0f} s "
                                                f"left of time_budget_s"))
                        ctx.log(f"  [{n + 1}/{len(c.schemes)}] {s.label()}: skipped, {rows[-1]['skipped']}")
                        continue
                    started = Stopwatch()
                    rows.append(self._candidate(s, pre, tmp, ctx, i))
                    if "_path" in rows[-1]:
                        rows[-1]["misses"] = self._misses(rows[-1], ctx)
                        unit = unit or started.seconds / relative_cost(s)
                    else:
                        ctx.log(f"    failed: {rows[-1]['error']}")
                bar.update(len(order))
            rows = [row for _, row in sorted(zip(order, rows), key=lambda p: p[0])]  # listed as the recipe has them
            ok = [r for r in rows if "_path" in r]
            if not ok:
                raise PassError(f"quantize.auto: every scheme failed: {[r.get('error') for r in rows]}")
            met = any(not r["misses"] for r in ok)
            wants_ft = c.finetune is not None and (c.finetune_when == "always" or not met)
            left = self._budget_left(t_start)
            if wants_ft and ctx.model is not None and left is not None and left <= 0:
                rows.append({"scheme": "label-free fine-tuning", "stage": "finetune",
                             "skipped": f"time budget: spent ({-left:.0f} s over, timing reserve included)"})
                ctx.log(f"  label-free fine-tuning skipped: {rows[-1]['skipped']}")
            elif wants_ft and ctx.model is not None:
                rows.append(self._finetuned(most_faithful(ok, c.faithful_tie_p or 0.05), tmp, ctx, t_start))
                if "_path" in rows[-1]:
                    rows[-1]["misses"] = self._misses(rows[-1], ctx)
                else:
                    ctx.log(f"    failed: {rows[-1]['error']}")
                ok = [r for r in rows if "_path" in r]
            left = self._budget_left(t_start)
            if c.max_float_layers and not any(not r["misses"] for r in ok):
                if left is not None and unit is not None and left < 2 * unit:
                    rows.append({"scheme": "mixed precision", "stage": "fallback",
                                 "skipped": f"time budget: {left:.0f} s left of time_budget_s"})
                else:
                    rows += self._mixed_precision(most_faithful(ok, c.faithful_tie_p or 0.05), tmp, ctx, threads,
                                                  x_time)
                    ok = [r for r in rows if "_path" in r]
            ctx.log(f"  timing fp32 and {len(ok)} candidates side by side ...")
            lat = time_onnx_files({"fp32": src, **{str(i): Path(r["_path"]) for i, r in enumerate(ok)}}, x_time,
                                  threads, min_time_s=c.time_s)
            fp32 = lat.pop("fp32")
            for i, r in enumerate(ok):
                r.update({f"latency_ms_{k}": v for k, v in lat[str(i)].items() if k != "runs"})
                r["speedup_vs_fp32"] = fp32["p50"] / r["latency_ms_p50"]
                r["meets_target"] = not r["misses"]
                r["_graph"] = graph_signature(Path(r["_path"]))
            chosen, decision = self._choose(ok, fp32)
            out.write_bytes(Path(chosen["_path"]).read_bytes())
        drop_private(rows)
        for r in rows:
            r["chosen"] = r is chosen
        slower = chosen["latency_ms_p50"] > fp32["p50"]
        details = {"scheme": chosen["scheme"], **chosen["settings"], "weight_type": "int8",
                   "saturation_safe": bool(chosen.get("saturation_safe")),
                   "bias_correction": bool(chosen.get("bias_correction", {}).get("kept")),
                   "adaround": bool(chosen.get("adaround", {}).get("kept")),
                   "float_nodes": [*c.exclude_nodes, *chosen.get("float_nodes", [])],
                   "meets_target": chosen["meets_target"], "slower_than_fp32": slower,
                   "calibration_samples": int(len(ctx.splits.x_calib[: c.calibration_size])),
                   "preprocessed": pre_error is None}
        rec = Written(precision="int8", details=details, decision=decision, candidates=rows,
                      before={"latency_ms_p50_selection": fp32["p50"], "latency_ms_p90_selection": fp32["p90"]},
                      after={"latency_ms_p50_selection": chosen["latency_ms_p50"],
                             "latency_ms_p90_selection": chosen["latency_ms_p90"]},
                      notes=preprocess_note(pre_error))
        if not chosen["meets_target"]:
            rec.notes.append("WARNING: no candidate met the target; the artifact is the most faithful one tried, or a "
                             "faster one that paired tests cannot tell less faithful (see the decision)")
        n_val = len(ctx.splits.x_val)
        if n_val:
            rec.notes.append(f"selection on {n_val} validation images: one image is {100 / n_val:.2f} points of top-1 "
                             f"agreement; fidelity is ranked by per-sample cosine (dense), and differences in "
                             f"agreement count only when a paired test shows them")
        skipped = [r for r in rows if r.get("skipped")]
        if skipped:
            rec.notes.append("skipped: " + "; ".join(f"{r['scheme']} ({r['skipped']})" for r in skipped))
        if wants_ft and ctx.model is None:
            rec.notes.append("label-free fine-tuning skipped: no torch model at hand (the model came in as ONNX)")
        rec.notes += int8_cost_notes(src, out, fp32["p50"], chosen["latency_ms_p50"])
        return rec

    def _budget_left(self, t_start: Stopwatch) -> float | None:
        """Seconds left of time_budget_s, keeping back what the side-by-side timing needs."""
        c = self.config
        if c.time_budget_s is None:
            return None
        return c.time_budget_s - t_start.seconds - 3 * c.time_s

    def _finetuned(self, best: dict, tmp: Path, ctx: PassContext, t_start: float) -> dict:
        """The most faithful scheme on the label-free fine-tuned model (no bias correction or AdaRound: the
        fine-tuning has already adapted the weights to their grid)."""
        from edgekit.bench.quick import export_temp_onnx
        from edgekit.passes.ort_quantize import preprocess
        from edgekit.quant.finetune import finetune_for_int8
        from edgekit.quant.onnx_rewrite import cpu_saturates_u8s8

        c, f = self.config, self.config.finetune
        s = Scheme(**{**best["settings"], "bias_correction": False, "adaround": False, "equalize": False})
        head = {"scheme": f"{s.label()} + label-free fine-tuning", "stage": "finetune", "settings": s.model_dump()}
        why = "finetune_when: always" if c.finetune_when == "always" else "no scheme met the target"
        ctx.log(f"  {why}: label-free fine-tuning for {s.label()}")
        try:
            sat = (s.format == "qdq" and s.activation_type == "uint8" and s.per_channel and not c.reduce_range
                   and (c.saturation_safe is True or (c.saturation_safe == "auto" and cpu_saturates_u8s8())))
            x = ctx.splits.x_calib[: c.calibration_size]
            left = self._budget_left(t_start)
            ft = finetune_for_int8(ctx.model, x, epochs=f.epochs, lr=f.lr, temperature=f.temperature,
                                   mse_weight=f.mse_weight, batch=f.batch, holdout=f.holdout,
                                   per_channel=s.per_channel, saturation_safe=sat, seed=ctx.seed, log=ctx.log,
                                   deadline=None if left is None else now() + 0.7 * left)
            export_temp_onnx(ft.model, x[:1], tmp / "finetuned.onnx")
            pre, pre_error = preprocess(tmp / "finetuned.onnx", tmp / "finetuned-pre.onnx", ctx.log)
            row = self._static(s).build(pre, tmp / "cand-finetuned.onnx", s.format, s.activation_type,
                                        s.per_channel, ctx)
            row["finetune"] = {"best_epoch": ft.best_epoch, "history": ft.history, "reused": ft.reused,
                               "stopped_by_deadline": ft.stopped_by_deadline,
                               "holdout_cosine_rounded": ft.cosine_plain, "holdout_cosine_before": ft.cosine_before,
                               "holdout_cosine_after": ft.cosine_after,
                               **f.model_dump()}
            if pre_error is not None:
                row["preprocess_error"] = pre_error
            return {**head, **row, "_pre": pre}
        except Exception as e:  # a model the fine-tuning or its export cannot handle: the other rows stand
            return {**head, "error": f"{type(e).__name__}: {e}"}

    def _mixed_precision(self, best: dict, tmp: Path, ctx: PassContext, threads, x_time) -> list[dict]:
        """quantize.static's greedy fallback on the most faithful scheme; each step is a row."""
        s = Scheme(**best["settings"])
        steps: list[dict] = []
        ctx.log(f"  no scheme met the target: mixed precision on {s.label()}")
        q = self._static(s)
        q._fallback(best, best["_pre"], tmp, ctx, steps, threads, x_time, meets=lambda r: not self._misses(r, ctx))
        out = []
        for r in steps:
            row = {"scheme": f"{s.label()} + {len(r.get('float_nodes', []))} float", "stage": "fallback",
                   "settings": s.model_dump(), **r, "_pre": best["_pre"]}
            if "_path" in row:
                row["misses"] = self._misses(row, ctx)
            out.append(row)
        return out

    def _choose(self, ok: list[dict], fp32: dict) -> tuple[dict, str]:
        c = self.config
        meeting = [r for r in ok if r["meets_target"]]
        table = "; ".join(f"{r['scheme']}: cosine {r['cosine']:.4f}, agreement {r['top1_agreement']:.3f}, "
                          f"{r['latency_ms_p50']:.3f} ms ({r['speedup_vs_fp32']:.2f}x)" for r in ok)
        if meeting:
            chosen = self._fastest(meeting)
            why = (f"chose {chosen['scheme']}: the fastest (within {c.speed_margin:.0%}; files with the same graph "
                   f"count as equally fast) of the {len(meeting)} of {len(ok)} candidates meeting the target on the "
                   f"validation split.")
        else:
            best = most_faithful(ok, c.faithful_tie_p or 0.05)
            pool = [best]
            if c.faithful_tie_p is not None:
                for r in ok:
                    r["tied_with_most_faithful"] = r is best or not _worse(r, best, c.faithful_tie_p)
                pool = [r for r in ok if r["tied_with_most_faithful"]]
            chosen = self._fastest(pool)
            why = f"no candidate met the target ({'; '.join(best['misses'])} for the most faithful, {best['scheme']}); "
            if chosen is best:
                why += f"kept the most faithful: {chosen['scheme']}."
            else:
                why += (f"kept {chosen['scheme']}: the fastest (within {c.speed_margin:.0%}) of the {len(pool)} "
                        f"candidates that paired tests on the validation split cannot tell less faithful than it "
                        f"(p >= {c.faithful_tie_p}).")
        why += f" Measured side by side on this host (fp32 {fp32['p50']:.3f} ms p50): {table}."
        if chosen["latency_ms_p50"] > fp32["p50"]:
            why += " WARNING: the chosen int8 model is slower than fp32 on this host."
        return chosen, why

    def _fastest(self, pool: list[dict]) -> dict:
        """The fastest of `pool`, the more faithful winning ties within speed_margin. One graph, one speed:
        candidates whose files differ only in numbers (scales, weights, biases) are timed apart only by the host's
        noise, so each takes its graph's best time."""
        best: dict = {}
        for r in pool:
            best[r["_graph"]] = min(best.get(r["_graph"], float("inf")), r["latency_ms_p50"])
        fastest = min(best.values())
        tied = [r for r in pool if best[r["_graph"]] <= fastest * (1 + self.config.speed_margin)]
        return most_faithful(tied, self.config.faithful_tie_p or 0.05)


def _worse(r: dict, best: dict, alpha: float) -> bool:
    """Whether a paired test on the validation split shows `r` less faithful than `best` (p < alpha, in that
    direction) on top-1 agreement, accuracy (where labelled) or per-sample cosine. Without per-sample values
    nothing can be shown, and `r` counts as worse."""
    from edgekit.significance import mcnemar_exact, paired_mean_test

    a, b = best.get("_per_sample"), r.get("_per_sample")
    if a is None or b is None:
        return True
    for key in ("agree", "correct"):
        if key in a and key in b:
            t = mcnemar_exact(a[key], b[key])
            if t["p_value"] < alpha and t["only_baseline_right"] > t["only_candidate_right"]:
                return True
    t = paired_mean_test(a["cosine"], b["cosine"])
    return t["p_value"] < alpha and t["mean_difference"] < 0


def graph_signature(path: Path) -> tuple:
    """What decides an ONNX file's speed on one host: its ops in order (type, domain, attributes) and the shapes
    and types of its tensors, not the values of its weights and scales."""
    import onnx

    from edgekit.model_files import onnx_header

    m = onnx_header(path)
    ops = tuple((n.op_type, n.domain, tuple(sorted((a.name, str(onnx.helper.get_attribute_value(a)))
                                                    for a in n.attribute))) for n in m.graph.node)
    inits = tuple((i.data_type, tuple(i.dims)) for i in m.graph.initializer)
    return ops, inits


def _skipped(s: Scheme, why: str) -> dict:
    return {"scheme": s.label(), "stage": "ladder", "settings": s.model_dump(), "skipped": why}


def _dense_first(r: dict) -> tuple:
    """Mean per-sample cosine first; the agreement and accuracy point estimates only break exact ties."""
    return r["cosine"], r["top1_agreement"], r.get("val_accuracy", 0.0)


def most_faithful(rows: list[dict], alpha: float) -> dict:
    """The candidate closest to fp32 by mean per-sample cosine on the validation split (a dense signal), unless a
    paired test (McNemar on top-1 agreement, or on accuracy where labelled) shows another one better at level
    `alpha`: agreement counts on a small split move with single images, and ranking by them overfits the split."""
    from edgekit.significance import mcnemar_exact

    ranked = sorted(rows, key=_dense_first, reverse=True)
    best = ranked[0]
    for r in ranked[1:]:
        a, b = best.get("_per_sample"), r.get("_per_sample")
        if a is None or b is None:
            continue
        for key in ("correct", "agree"):
            t = mcnemar_exact(a[key], b[key]) if key in a and key in b else None
            if t and t["p_value"] < alpha and t["only_candidate_right"] > t["only_baseline_right"]:
                best = r
                break
    return best
