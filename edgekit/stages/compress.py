"""Passes: torch passes chain on the model in recipe order before export; each file pass starts from the fp32 file
of the format it takes, after export."""

from __future__ import annotations

from edgekit.errors import EdgekitError
from edgekit.handles import TorchModel
from edgekit.passes.base import PassContext
from edgekit.stages.state import Run, reusable


def context(run: Run) -> PassContext:
    """What a pass sees of the run."""
    return PassContext(splits=run.splits, run_dir=run.run_dir, seed=run.recipe.seed, train=run.recipe.train,
                       bench=run.recipe.bench, reference=run.reference_model, reference_logits=run.reference_logits,
                       model=run.torch_module, log=run.log, cache=run.pass_cache)


def _crash(e: Exception) -> EdgekitError:
    """A library crash (torch-pruning, INC, torch.export, ORT's quantizer) as an error of this pass only."""
    return e if isinstance(e, EdgekitError) else EdgekitError(f"{type(e).__name__}: {e}")


def stage_torch_passes(run: Run) -> None:
    """Torch passes in recipe order. Unless a pass says `latency: false`, the model is also timed in ONNX Runtime
    before and after it. Afterwards the reference outputs are those of the compressed model, so export parity checks
    the exporter, not the compression; the reference accuracy (what gates compare with) stays the original's."""
    from edgekit.bench.quick import pass_latency
    from edgekit.passes import get_pass
    from edgekit.passes.accounting import summary
    from edgekit.stages.model import reference_logits

    done = []
    for cfg in run.recipe.passes:
        p = get_pass(cfg)
        if p.takes is not TorchModel:
            continue
        if not isinstance(run.model, TorchModel):
            run.fail(f"pass {cfg.name}", EdgekitError("needs a PyTorch model; the recipe's model is an .onnx file"))
            continue
        run.log(f"pass: {cfg.name}")
        try:
            model, rec = p.apply(run.model, context(run))
        except Exception as e:
            run.fail(f"pass {cfg.name}", _crash(e))
            run.report.passes.append(p.record(status="failed", error=str(_crash(e))))
            run.save()
            continue
        if getattr(cfg, "latency", False):
            rec.before["onnx_latency_ms"], rec.after["onnx_latency_ms"] = pass_latency(
                run.model.module, model.module, run.splits, run.recipe.bench)
        run.model = model
        done.append(cfg.name)
        line = summary(rec.before, rec.after)
        if line:
            rec.notes.insert(0, line)
        run.log("\n".join(f"  {t}" for t in [rec.decision, line] if t))
        run.report.passes.append(rec)
        run.save()
    if done:
        s = run.splits
        reference_logits(run, [k for k in ("val", "calib", "test") if len(getattr(s, f"x_{k}"))])
        ref = run.report.reference
        ref["source"] = f"torch fp32 original model; artifacts are compared with it after {' -> '.join(done)}"
        if s.labelled:
            ref["accuracy_after_torch_passes"] = float((run.reference_logits["test"].argmax(1) == s.y_test).mean())
    run.save("torch_passes")


def stage_file_passes(run: Run) -> None:
    """Each file pass on the fp32 artifact of the format it takes (e.g. quantize.static on the fp32 .onnx)."""
    from edgekit.passes import get_pass
    from edgekit.stages.export import stamp_card, verify

    for cfg in run.recipe.passes:
        p = get_pass(cfg)
        if p.takes is TorchModel:
            continue
        fmt = p.takes.format
        source = next((a for a in run.report.artifacts if a.format == fmt and a.precision == "fp32" and a.status == "ok"),
                      None)
        if source is None:
            run.fail(f"pass {cfg.name}", EdgekitError(f"needs an fp32 {fmt} artifact: add `- format: {fmt}` to export"))
            run.report.passes.append(p.record(status="failed", error=f"no fp32 {fmt} artifact"))
            continue
        prev_rec = next((r for r in (run.previous.passes if run.previous else []) if r.status == "ok"
                         and r.name == cfg.name and r.produced == cfg.artifact), None)
        prev_art = reusable(run, cfg.artifact) if source.name in run.reused and prev_rec is not None else None
        if prev_rec is not None and prev_art is not None:
            run.log(f"pass: {cfg.name} reused from the interrupted run")
            run.report.passes.append(prev_rec)
            run.report.artifacts.append(prev_art)
            continue
        run.log(f"pass: {cfg.name} on {source.name}")
        try:
            out, rec = p.apply(run.handle(source), context(run))
            art = out.artifact
            unstamped = art.size_bytes
            stamp_card(run, art)
            if rec.after.get("size_bytes") == unstamped:
                rec.after["size_bytes"] = art.size_bytes
            verify(run, art, cfg.tolerance)
        except Exception as e:
            run.fail(f"pass {cfg.name}", _crash(e))
            run.report.passes.append(p.record(status="failed", error=str(_crash(e))))
            run.save()
            continue
        run.report.passes.append(rec)
        run.report.artifacts.append(art)
        if rec.decision:
            run.log(f"  {rec.decision}")
        if art.parity:
            run.log(f"  {art.size_bytes / 1024:.1f} KiB, parity cosine {art.parity.cosine:.5f} "
                    f"top1 {art.parity.top1_agreement:.4f}")
        run.save()
    run.save("onnx_passes")
