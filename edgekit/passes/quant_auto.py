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

from pydantic import Field, model_validator

from edgekit.config_base import Strict, Tolerance
from edgekit.console import progress
from edgekit.errors import PassError
from edgekit.handles import OnnxFile
from edgekit.names import Name
from edgekit.passes.base import FilePass, PassContext, Written
from edgekit.passes.ort_quantize import lift_ort_calibration
from edgekit.passes.quant_run import QuantRun
from edgekit.quant.candidate import Candidate, failed, rows
from edgekit.quant.finetune import FinetuneOptions
from edgekit.quant.mixed_precision import FallbackConfig, mixed_precision
from edgekit.quant.options import DEFAULT_PERCENTILE, Calibration
from edgekit.quant.ort_build import QuantSpec, build_candidate, graph_signature, int8_cost_notes, preprocess, preprocess_note
from edgekit.quant.refine import AdaRoundOptions, adaround, bias_correction
from edgekit.quant.selection import choose_for_target, most_faithful
from edgekit.timing import Stopwatch


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
    calibration: Calibration = Field(default_factory=Calibration, description="calibration samples and ONNX node "
                                     "names always kept in float (the method is each scheme's)")
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

    @model_validator(mode="before")
    @classmethod
    def _flat_calibration_keys(cls, data):
        return lift_ort_calibration(data, {"calibration_size": "samples", "exclude_nodes": "keep_float"})

    @model_validator(mode="after")
    def _method_is_the_schemes(self):
        if self.calibration.method != "minmax" or self.calibration.percentile != DEFAULT_PERCENTILE:
            raise ValueError("calibration: the method and percentile of quantize.auto are each scheme's "
                             "(schemes[].calibration, schemes[].percentile)")
        return self

    @model_validator(mode="after")
    def _finetune_when_needs_finetune(self):
        if self.finetune_when == "always" and self.finetune is None:
            raise ValueError("finetune_when: always needs finetune options (got finetune: null)")
        return self


class AutoQuantize(FilePass):
    """The default ladder: each scheme is a candidate built from edgekit.quant's blocks, then label-free
    fine-tuning and mixed precision when none meets the target, timed side by side and chosen by
    `edgekit.quant.selection.choose_for_target`."""

    name = "quantize.auto"
    takes = returns = OnnxFile

    def spec(self, s: Scheme) -> QuantSpec:
        c = self.config
        return QuantSpec(format=s.format, activation_type=s.activation_type, per_channel=s.per_channel,
                         weight_type="int8", reduce_range=c.reduce_range, calibration=s.calibration,
                         percentile=s.percentile, exclude_nodes=tuple(c.calibration.keep_float),
                         saturation_safe=c.saturation_safe)

    def misses(self, cand: Candidate, ctx: PassContext) -> list[str]:
        """The target's bounds `cand` breaks on the validation split."""
        from edgekit.export.parity import failures

        c = self.config
        out = failures(cand.fidelity, c.target)
        acc = cand.fidelity.get("val_accuracy")
        if c.max_accuracy_drop is not None and acc is not None:
            fp32 = float((ctx.reference_logits["val"].argmax(1) == ctx.splits.y_val).mean())
            if fp32 - acc > c.max_accuracy_drop:
                out.append(f"accuracy drop {fp32 - acc:.4f} > {c.max_accuracy_drop}")
        return out

    def _equalized_source(self, ctx: PassContext, tmp: Path) -> Path:
        """The torch model after BN folding + cross-layer equalization, exported and pre-processed."""
        from edgekit.bench.quick import export_temp_onnx
        from edgekit.passes.equalize import EqualizeConfig, equalize_model

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

    def built(self, s: Scheme, src: Path, dst: Path, run: QuantRun, float_nodes: list[str] | None = None) -> Candidate:
        """The scheme's candidate from `src`: built, then AdaRound and bias correction when the scheme asks."""
        cand = build_candidate(src, dst, self.spec(s), run.calib, run.ev, float_nodes)
        adaround(cand, run.x_calib, run.ev, AdaRoundOptions(keep="always") if s.adaround else None, run.log)
        bias_correction(cand, run.calib.x, run.ev, s.bias_correction)
        return cand

    def _candidate(self, s: Scheme, pre: Path, tmp: Path, ctx: PassContext, run: QuantRun, i: int) -> Candidate:
        try:
            src = self._equalized_source(ctx, tmp) if s.equalize else pre
            return labelled(self.built(s, src, tmp / f"cand-{i}.onnx", run), s.label(), "ladder", s.model_dump())
        except Exception as e:  # one failing scheme must not lose the others
            return failed(labelled(Candidate(), s.label(), "ladder", s.model_dump()), e)

    def transform(self, source: OnnxFile, out: Path, ctx: PassContext) -> Written:
        t_start = Stopwatch()
        c = self.config
        src = source.path
        run = QuantRun.of(ctx, c.calibration.samples)
        with tempfile.TemporaryDirectory(prefix="edgekit-auto-") as tmp:
            tmp = Path(tmp)
            pre, pre_error = preprocess(src, tmp / "pre.onnx", ctx.log)
            cands: list[Candidate] = []
            unit = None
            order = sorted(range(len(c.schemes)), key=lambda k: relative_cost(c.schemes[k]))  # stable: ties keep order
            with progress("candidate", len(order), log=ctx.log) as bar:
                for n, i in enumerate(order):
                    if n:
                        bar.update(n, note=c.schemes[order[n - 1]].label())
                    s = c.schemes[i]
                    if s.adaround and any(r.misses == [] for r in cands if r.built):
                        cands.append(skipped(s, "a cheaper scheme already meets the target; AdaRound could only add "
                                                "fidelity the target does not ask for"))
                        continue
                    left = self._budget_left(t_start)
                    if unit is not None and left is not None and unit * relative_cost(s) > left:
                        cands.append(skipped(s, f"time budget: ~{unit * relative_cost(s):.0f} s estimated, {left:.0f} "
                                                f"s left of time_budget_s"))
                        ctx.log(f"  [{n + 1}/{len(c.schemes)}] {s.label()}: skipped, {cands[-1].skipped}")
                        continue
                    started = Stopwatch()
                    cands.append(self._candidate(s, pre, tmp, ctx, run, i))
                    if cands[-1].built:
                        cands[-1].misses = self.misses(cands[-1], ctx)
                        unit = unit or started.seconds / relative_cost(s)
                    else:
                        ctx.log(f"    failed: {cands[-1].error}")
                bar.update(len(order))
            cands = [r for _, r in sorted(zip(order, cands), key=lambda p: p[0])]  # listed as the recipe has them
            ok = [r for r in cands if r.built]
            if not ok:
                raise PassError(f"quantize.auto: every scheme failed: {[r.error for r in cands]}")
            met = any(not r.misses for r in ok)
            wants_ft = c.finetune is not None and (c.finetune_when == "always" or not met)
            left = self._budget_left(t_start)
            alpha = c.faithful_tie_p or 0.05
            if wants_ft and ctx.model is not None and left is not None and left <= 0:
                cands.append(Candidate(scheme="label-free fine-tuning", stage="finetune",
                                       skipped=f"time budget: spent ({-left:.0f} s over, timing reserve included)"))
                ctx.log(f"  label-free fine-tuning skipped: {cands[-1].skipped}")
            elif wants_ft and ctx.model is not None:
                cands.append(finetuned(self, most_faithful(ok, alpha), tmp, ctx, run, left))
                if cands[-1].built:
                    cands[-1].misses = self.misses(cands[-1], ctx)
                else:
                    ctx.log(f"    failed: {cands[-1].error}")
                ok = [r for r in cands if r.built]
            left = self._budget_left(t_start)
            if c.max_float_layers and not any(not r.misses for r in ok):
                if left is not None and unit is not None and left < 2 * unit:
                    cands.append(Candidate(scheme="mixed precision", stage="fallback",
                                           skipped=f"time budget: {left:.0f} s left of time_budget_s"))
                else:
                    cands += self._mixed_precision(most_faithful(ok, alpha), tmp, ctx, run)
                    ok = [r for r in cands if r.built]
            ctx.log(f"  timing fp32 and {len(ok)} candidates side by side ...")
            lat = run.side_by_side({"fp32": src, **{str(i): r.file for i, r in enumerate(ok)}}, c.time_s)
            fp32 = lat.pop("fp32")
            for i, r in enumerate(ok):
                r.latency = {k: v for k, v in lat[str(i)].items() if k != "runs"}
                r.speedup_vs_fp32 = fp32["p50"] / r.latency["p50"]
                r.meets_target = not r.misses
                r.graph = graph_signature(r.file)
            chosen, decision = choose_for_target(ok, fp32["p50"], c.speed_margin, c.faithful_tie_p)
            out.write_bytes(chosen.file.read_bytes())
        return self._written(chosen, cands, decision, fp32, src, out, ctx, pre_error, wants_ft)

    def _written(self, chosen: Candidate, cands: list[Candidate], decision: str, fp32: dict, src: Path, out: Path,
                 ctx: PassContext, pre_error: str | None, wants_ft: bool) -> Written:
        c = self.config
        slower = chosen.latency["p50"] > fp32["p50"]
        details = {"scheme": chosen.scheme, **(chosen.settings or {}), "weight_type": "int8",
                   "saturation_safe": bool(chosen.saturation_safe),
                   "bias_correction": bool((chosen.bias_correction or {}).get("kept")),
                   "adaround": bool((chosen.adaround or {}).get("kept")),
                   "float_nodes": [*c.calibration.keep_float, *chosen.float_nodes],
                   "meets_target": chosen.meets_target, "slower_than_fp32": slower,
                   "calibration_samples": int(len(c.calibration.subset(ctx.splits.x_calib))),
                   "preprocessed": pre_error is None}
        rec = Written(precision="int8", details=details, decision=decision, candidates=rows(cands, chosen),
                      before={"latency_ms_p50_selection": fp32["p50"], "latency_ms_p90_selection": fp32["p90"]},
                      after={"latency_ms_p50_selection": chosen.latency["p50"],
                             "latency_ms_p90_selection": chosen.latency["p90"]},
                      notes=preprocess_note(pre_error))
        if not chosen.meets_target:
            rec.notes.append("WARNING: no candidate met the target; the artifact is the most faithful one tried, or a "
                             "faster one that paired tests cannot tell less faithful (see the decision)")
        n_val = len(ctx.splits.x_val)
        if n_val:
            rec.notes.append(f"selection on {n_val} validation images: one image is {100 / n_val:.2f} points of top-1 "
                             f"agreement; fidelity is ranked by per-sample cosine (dense), and differences in "
                             f"agreement count only when a paired test shows them")
        skips = [r for r in cands if r.skipped]
        if skips:
            rec.notes.append("skipped: " + "; ".join(f"{r.scheme} ({r.skipped})" for r in skips))
        if wants_ft and ctx.model is None:
            rec.notes.append("label-free fine-tuning skipped: no torch model at hand (the model came in as ONNX)")
        rec.notes += int8_cost_notes(src, out, fp32["p50"], chosen.latency["p50"])
        return rec

    def _budget_left(self, t_start: Stopwatch) -> float | None:
        """Seconds left of time_budget_s, keeping back what the side-by-side timing needs."""
        c = self.config
        if c.time_budget_s is None:
            return None
        return c.time_budget_s - t_start.seconds - 3 * c.time_s

    def _mixed_precision(self, best: Candidate, tmp: Path, ctx: PassContext, run: QuantRun) -> list[Candidate]:
        """Mixed precision (edgekit.quant.mixed_precision) on the most faithful scheme; each step is a candidate."""
        s = Scheme(**(best.settings or {}))
        ctx.log(f"  no scheme met the target: mixed precision on {s.label()}")
        assert best.source is not None
        pre, spec = best.source, self.spec(s)
        _, steps, _ = mixed_precision(
            best, FallbackConfig(max_layers=max(self.config.max_float_layers, 1)), run.ev.x[:32],
            build=lambda nodes, path: self.built(s, pre, path, run, nodes),
            probe=lambda nodes, path: build_candidate(pre, path, spec, run.calib, run.ev, nodes),
            time_ms=lambda path: run.time_ms(path, SELECT_TIME_S), tmp=tmp, log=ctx.log,
            meets=lambda r: not self.misses(r, ctx))
        for r in steps:
            labelled(r, scheme=f"{s.label()} + {len(r.float_nodes)} float", stage="fallback", settings=s.model_dump())
            if r.built:
                r.misses = self.misses(r, ctx)
        return steps


SELECT_TIME_S = 0.5  # timing budget of one mixed-precision step (quantize.static's select_time_s)


def labelled(cand: Candidate, scheme: str, stage: str, settings: dict) -> Candidate:
    cand.scheme, cand.stage, cand.settings = scheme, stage, settings
    return cand


def skipped(s: Scheme, why: str) -> Candidate:
    return Candidate(scheme=s.label(), stage="ladder", settings=s.model_dump(), skipped=why)


def finetuned(p: AutoQuantize, best: Candidate, tmp: Path, ctx: PassContext, run: QuantRun, left: float | None
              ) -> Candidate:
    """The most faithful scheme on the label-free fine-tuned model (no bias correction or AdaRound: the
    fine-tuning has already adapted the weights to their grid)."""
    from edgekit.bench.quick import export_temp_onnx
    from edgekit.quant.finetune import finetune_for_int8
    from edgekit.quant.ort_build import saturation_safe_applies
    from edgekit.timing import now

    c, f = p.config, p.config.finetune
    s = Scheme(**{**(best.settings or {}), "bias_correction": False, "adaround": False, "equalize": False})
    label = f"{s.label()} + label-free fine-tuning"
    why = "finetune_when: always" if c.finetune_when == "always" else "no scheme met the target"
    ctx.log(f"  {why}: label-free fine-tuning for {s.label()}")
    try:
        spec = p.spec(s)
        x = c.calibration.subset(ctx.splits.x_calib)
        ft = finetune_for_int8(ctx.model, x, epochs=f.epochs, lr=f.lr, temperature=f.temperature,
                               mse_weight=f.mse_weight, batch=f.batch, holdout=f.holdout,
                               per_channel=s.per_channel, saturation_safe=saturation_safe_applies(spec),
                               seed=ctx.seed, log=ctx.log, deadline=None if left is None else now() + 0.7 * left)
        export_temp_onnx(ft.model, x[:1], tmp / "finetuned.onnx")
        pre, pre_error = preprocess(tmp / "finetuned.onnx", tmp / "finetuned-pre.onnx", ctx.log)
        cand = build_candidate(pre, tmp / "cand-finetuned.onnx", spec, run.calib, run.ev)
        cand.finetune = {"best_epoch": ft.best_epoch, "history": ft.history, "reused": ft.reused,
                         "stopped_by_deadline": ft.stopped_by_deadline, "holdout_cosine_rounded": ft.cosine_plain,
                         "holdout_cosine_before": ft.cosine_before, "holdout_cosine_after": ft.cosine_after,
                         **f.model_dump()}
        cand.preprocess_error = pre_error
        return labelled(cand, label, "finetune", s.model_dump())
    except Exception as e:  # a model the fine-tuning or its export cannot handle: the other rows stand
        return failed(labelled(Candidate(), label, "finetune", s.model_dump()), e)
