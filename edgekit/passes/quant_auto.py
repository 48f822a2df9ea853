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

from edgekit.console import progress
from edgekit.errors import PassError
from edgekit.handles import OnnxFile
from edgekit.passes.base import FilePass, PassContext, Written
from edgekit.passes.quant_run import QuantRun
from edgekit.passes.quant_schemes import Scheme, relative_cost
from edgekit.quant.candidate import Candidate, failed, rows
from edgekit.quant.mixed_precision import FallbackConfig, mixed_precision
from edgekit.quant.ort_build import QuantSpec, build_candidate, graph_signature, int8_cost_notes, preprocess, preprocess_note
from edgekit.quant.refine import AdaRoundOptions, adaround, bias_correction
from edgekit.quant.selection import choose_for_target, most_faithful
from edgekit.timing import Stopwatch


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
        run = QuantRun.of(ctx, c.calibration.samples, c.timing_runtime)
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
            ctx.log(f"  timing fp32 and {len(ok)} candidates side by side in {run.timed_on()} ...")
            lat = run.side_by_side({"fp32": src, **{str(i): r.file for i, r in enumerate(ok)}}, c.time_s)
            fp32 = lat.pop("fp32")
            for i, r in enumerate(ok):
                r.latency = {k: v for k, v in lat[str(i)].items() if k != "runs"}
                r.speedup_vs_fp32 = fp32["p50"] / r.latency["p50"]
                r.meets_target = not r.misses
                r.graph = graph_signature(r.file)
            chosen, decision = choose_for_target(ok, fp32["p50"], c.speed_margin, c.faithful_tie_p)
            out.write_bytes(chosen.file.read_bytes())
        return self._written(chosen, cands, f"{decision} (timed in {run.timed_on()})", fp32, src, out, ctx, pre_error,
                             wants_ft, run.timed_on())

    def _written(self, chosen: Candidate, cands: list[Candidate], decision: str, fp32: dict, src: Path, out: Path,
                 ctx: PassContext, pre_error: str | None, wants_ft: bool, timed_on: str) -> Written:
        c = self.config
        slower = chosen.latency["p50"] > fp32["p50"]
        details = {"scheme": chosen.scheme, **(chosen.settings or {}), "weight_type": "int8",
                   "saturation_safe": bool(chosen.saturation_safe),
                   "bias_correction": bool((chosen.bias_correction or {}).get("kept")),
                   "adaround": bool((chosen.adaround or {}).get("kept")),
                   "float_nodes": [*c.calibration.keep_float, *chosen.float_nodes],
                   "meets_target": chosen.meets_target, "slower_than_fp32": slower,
                   "calibration_samples": int(len(c.calibration.subset(ctx.splits.x_calib))),
                   "preprocessed": pre_error is None, "timed_on": timed_on}
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
