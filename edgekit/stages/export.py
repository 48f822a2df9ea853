"""Export to every target format, each file stamped with its model card and verified against the reference."""

from __future__ import annotations

from edgekit import __version__
from edgekit.errors import EdgekitError
from edgekit.handles import ModelFile, TorchModel
from edgekit.recipe import default_artifact_name
from edgekit.report.schema import Artifact
from edgekit.stages.state import PARITY_FAILED, PARITY_THREADS, Run, reusable


def stamp_card(run: Run, art: Artifact) -> Artifact:
    """Write the artifact's deployment metadata (in the file for ONNX, a model_card.json beside it for every format),
    then record the stamped file's size and sha256, so the report's hash is that of the file shipped."""
    from edgekit.export.artifact import artifact_path, file_sha256
    from edgekit.export.model_card import build_card, stamp

    path = artifact_path(run.run_dir, art)
    card = build_card(artifact=art, splits=run.splits, recipe_name=run.recipe.name,
                      recipe_sha256=run.report.recipe_sha256, version=__version__)
    stamp(path, art.format, card)
    art.size_bytes, art.sha256 = path.stat().st_size, file_sha256(path)
    return art


def verify(run: Run, art: Artifact, tolerance, samples: int = 256) -> Artifact:
    """Run the artifact on held-out test inputs in its runtime and compare with the fp32 reference."""
    from edgekit.errors import ExportParityError
    from edgekit.export.artifact import artifact_path
    from edgekit.export.parity import check, compare, failures
    from edgekit.runtimes import runtime_for

    x = run.splits.x_test[:samples]
    tolerance = tolerance.for_task(run.recipe.output_task())
    sess = runtime_for(art.format).load(artifact_path(run.run_dir, art), threads=PARITY_THREADS)
    numbers = compare(run.reference_logits["test"][: len(x)], sess.run(x))
    art.parity = check(art.name, numbers, tolerance, run.report.reference.get("source", "torch fp32"),
                       raise_on_fail=False)
    if not art.parity.passed:  # still benchmarked and gated (a failing `parity` gate), never silently dropped
        err = ExportParityError(art.name, numbers, tolerance.model_dump(), failures(numbers, tolerance))
        art.status, art.error = PARITY_FAILED, str(err)
        run.fail(f"parity {art.name}", err)
    return art


def stage_export(run: Run, formats: set[str] | None = None) -> None:
    from edgekit.export import EXPORTERS, get_exporter
    from edgekit.export.artifact import artifact_target
    from edgekit.passes import get_pass
    from edgekit.timing import Stopwatch

    if isinstance(run.model, ModelFile):  # a user's model file: it is the fp32 artifact
        from edgekit.config_base import Tolerance

        art = run.model.artifact
        verify(run, stamp_card(run, art), Tolerance(max_abs=1e-5, min_cosine=0.99999, min_top1_agreement=1.0))
        run.report.artifacts.append(art)
        run.save("export")
        return
    if not isinstance(run.model, TorchModel):
        return
    torch_passes = any(get_pass(p).takes is TorchModel for p in run.recipe.passes)
    for cfg in run.recipe.export:
        if formats and cfg.format not in formats:
            continue
        name = cfg.name or default_artifact_name(cfg)
        prev = None if torch_passes else reusable(run, name)  # compressed models are re-made, not trusted
        if prev is not None:
            run.log(f"export: {name} reused from the interrupted run")
            run.report.artifacts.append(prev)
            continue
        run.log(f"export: {name}")
        try:
            with Stopwatch() as watch:
                path = artifact_target(run.run_dir, name, EXPORTERS[cfg.format].suffix)
                exporter = get_exporter(cfg.format)
                extra = {}
                if getattr(exporter, "static_batch", False):  # static-shaped: the bench batch; int8 calibrates on calib
                    extra = {"calibration": run.splits.x_calib, "log": run.log,
                             "batch_size": cfg.batch_size or (run.recipe.bench.batch_size if run.recipe.bench else 1)}
                art = exporter.export(run.model.module, run.splits.x_test, cfg, path, run.run_dir, name, **extra)
            art.details["export_s"] = round(watch.seconds, 3)
            verify(run, stamp_card(run, art), cfg.tolerance, cfg.parity_samples)
        except EdgekitError as e:
            run.fail(f"export {name}", e)
            art = Artifact(name=name, format=cfg.format, precision=getattr(cfg, "precision", "fp32"), path="",
                           size_bytes=0, status="failed", error=str(e))
        run.report.artifacts.append(art)
        if art.parity:
            run.log(f"  {art.size_bytes / 1024:.1f} KiB, parity max_abs {art.parity.max_abs:.2e} "
                    f"cosine {art.parity.cosine:.6f} top1 {art.parity.top1_agreement:.4f}")
        run.save()
    run.save("export")
