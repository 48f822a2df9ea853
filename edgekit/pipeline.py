"""The recipe pipeline: data -> model -> train -> torch passes -> export + parity -> onnx passes -> bench -> gates.

Each stage appends to the report and saves it, so a killed run keeps what it finished; one failing target is
recorded and the others go on.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.console import logger, progress
from edgekit.errors import ArtifactError, EdgekitError
from edgekit.recipe import Recipe, default_artifact_name
from edgekit.report.schema import Artifact, Report

PARITY_THREADS = 2
PARITY_FAILED = "parity_failed"  # the file is sound but outside its tolerance: benchmarked and gated, marked failing
MEASURABLE = ("ok", PARITY_FAILED)
_log = logger("pipeline")


@dataclass
class Run:
    recipe: Recipe
    run_dir: Path
    report: Report
    log: Callable[[str], None] = _log.info
    splits: Any = None
    model: Any = None  # nn.Module, or Path of a user .onnx
    reference_model: Any = None
    reference_logits: dict[str, Any] = field(default_factory=dict)
    previous: Report | None = None  # the report of an interrupted run being resumed
    reused: set[str] = field(default_factory=set)  # artifact names taken over from `previous`
    on_epoch: Callable[[int, float], None] | None = None  # training progress hook (search pruning)
    mlflow_run_id: str | None = None  # set when the run was logged to MLflow
    stage: str = ""  # the stage running now, named when the run fails or is interrupted

    def save(self, stage: str | None = None) -> None:
        from edgekit.report.io import save_report

        if stage and stage not in self.report.stages_done:
            self.report.stages_done.append(stage)
        save_report(self.report, self.run_dir)

    def fail(self, where: str, err: Exception) -> None:
        msg = f"{where}: {err}"
        self.report.errors.append(msg)
        (_log.error if self.log == _log.info else self.log)(f"  FAILED {msg}")


def _fresh_report(recipe: Recipe) -> Report:
    from edgekit.bench.environment import fingerprint

    return Report(
        edgekit_version=__version__, recipe_name=recipe.name, created=_dt.datetime.now().isoformat(timespec="seconds"),
        recipe=recipe.model_dump(mode="json"), recipe_sha256=recipe.sha256(), seed=recipe.seed,
        environment=fingerprint(threads=recipe.bench.threads if recipe.bench else None),
    )


def new_run(recipe: Recipe, out_dir: Path | None = None, log: Callable[[str], None] = _log.info,
            force: bool = False) -> Run:
    """A new run folder: `out_dir` must be absent or empty (or, with `force`, a run folder that is replaced)."""
    from edgekit.atomic import atomic_write_text, make_dir
    from edgekit.names import safe_target
    from edgekit.report.run_folder import prepare_new

    if out_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = Path(recipe.output_dir) / f"{recipe.name}-{stamp}"
        n = 1
        while out_dir.exists():  # two runs started in the same second
            n += 1
            out_dir = Path(recipe.output_dir) / f"{recipe.name}-{stamp}-{n}"
    run_dir = prepare_new(Path(out_dir), force)
    make_dir(run_dir / "artifacts")
    atomic_write_text(safe_target(run_dir, "recipe.yaml"), recipe.to_yaml())
    run = Run(recipe, run_dir, _fresh_report(recipe), log)
    run.save()
    return run


def resume_run(run_dir: Path, recipe: Recipe | None = None, log: Callable[[str], None] = _log.info) -> Run:
    """Reopen an interrupted run folder: finished stages whose inputs are unchanged are reused (the data by its
    content fingerprint, the checkpoint and every artifact by their sha256), the rest runs again."""
    from edgekit.errors import RecipeError, RunFolderError
    from edgekit.recipe import load_recipe
    from edgekit.report.io import load_report
    from edgekit.report.run_folder import remove_symlinks

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"--resume {run_dir}: not a folder")
    if (run_dir / "recipe.yaml").is_symlink():
        raise RunFolderError(f"--resume {run_dir}: recipe.yaml is a symlink; edgekit never writes one")
    remove_symlinks(run_dir, log)
    stored = load_recipe(run_dir / "recipe.yaml")
    if recipe is not None and recipe.sha256() != stored.sha256():
        raise RecipeError("differs from the recipe this run was started with; start a new run instead",
                          path=str(run_dir / "recipe.yaml"))
    try:
        previous = load_report(run_dir)
    except EdgekitError:
        previous = None  # killed before the first report was written: nothing to reuse
    for leftover in list(run_dir.rglob(".*.tmp")):  # half-written files of the killed run
        leftover.unlink()
    (run_dir / "artifacts").mkdir(exist_ok=True)
    run = Run(stored, run_dir, _fresh_report(stored), log, previous=previous)
    run.save()
    return run


def _reusable(run: Run, name: str) -> Artifact | None:
    """The previous run's artifact `name`, if it finished and its file, inside the run folder, still has the
    sha256 the report recorded; otherwise it is made again."""
    from edgekit.export.artifact import mismatch

    prev = run.previous.artifact(name) if run.previous else None
    if prev is None or prev.status != "ok" or not prev.path:
        return None
    try:
        why = mismatch(run.run_dir, prev)
    except EdgekitError as e:
        why = str(e)
    if why:
        run.log(f"  {name} is not reused: {why}")
        return None
    run.reused.add(name)
    return prev


def stage_data(run: Run) -> None:
    from edgekit.data import load_data

    run.log(f"data: {run.recipe.data.source}")
    run.splits = load_data(run.recipe.data, run.recipe.seed)
    run.report.data = run.splits.summary()
    if run.previous is not None and run.previous.data.get("fingerprint") != run.report.data["fingerprint"]:
        run.log("  data differ from the interrupted run's: nothing is reused")
        run.previous = None
    s = run.report.data
    run.log(f"  {s['train']} train / {s['val']} val / {s['test']} test, input {tuple(s['input_shape'])} "
            f"{s['input_dtype']}, " + (f"{s['num_classes']} classes" if run.splits.labelled else "unlabelled"))
    run.save("data")


def stage_model(run: Run, checkpoint: Path | None = None) -> None:
    from edgekit.models import build_model
    from edgekit.train.trainer import seed_everything

    cfg = run.recipe.model
    seed_everything(run.recipe.seed)  # weight init is part of what the seed fixes
    run.model = build_model(cfg, run.splits.input_shape, run.splits.num_classes, vocab_size=run.splits.vocab_size)
    info: dict[str, Any] = {"arch": cfg.arch}
    if isinstance(run.model, Path):
        info["path"] = str(run.model)
    else:
        from edgekit.models.checkpoint import apply_state_dict, load_state_dict
        from edgekit.models.stats import model_stats

        if checkpoint is not None:
            apply_state_dict(run.model, load_state_dict(checkpoint), checkpoint)
            info["checkpoint"] = str(checkpoint)
        run.model.eval()
        info.update(model_stats(run.model, run.splits.input_shape, what=_model_label(cfg)))
        info.update(getattr(run.model, "edgekit_info", {}))
    run.report.model = info
    run.log(f"model: {cfg.arch}" + (f", {info['params']:,} params" if "params" in info else "")
            + (f", {info['macs']:,} MACs" if "macs" in info else ""))
    run.save("model")


def _model_label(cfg) -> str:
    """The model as the recipe names it, for errors."""
    source = getattr(cfg, "factory", None) or getattr(cfg, "path", None)
    return f"model {cfg.arch}" + (f" '{source}'" if source else "")


def stage_train(run: Run) -> None:
    from edgekit.models.checkpoint import save_checkpoint
    from edgekit.train.trainer import Trainer

    cfg = run.recipe.train
    if cfg is None or isinstance(run.model, Path) or cfg.epochs == 0:
        return
    if not run.splits.labelled:
        from edgekit.errors import DataError

        raise DataError(f"{run.splits.source}: the data has no labels to train on; remove `train` (or set "
                        f"train.epochs: 0) to measure the model's fidelity only")
    from edgekit.export.artifact import file_sha256
    from edgekit.names import safe_target

    ckpt_path = safe_target(run.run_dir, "model.safetensors", what="checkpoint")
    prev = run.previous
    if prev is not None and "train" in prev.stages_done and prev.training and ckpt_path.is_file():
        recorded = prev.training.get("checkpoint_sha256")
        if recorded and file_sha256(ckpt_path) == recorded:
            from edgekit.models.checkpoint import apply_state_dict, load_state_dict

            apply_state_dict(run.model, load_state_dict(ckpt_path), ckpt_path)
            run.model.eval()
            run.report.training = prev.training
            run.log("train: reused the interrupted run's checkpoint")
            run.save("train")
            return
        why = "does not match the sha256 report.json recorded" if recorded else "has no sha256 in report.json"
        run.log(f"train: model.safetensors {why}: training again, and nothing made from the old weights is reused")
        run.previous = None
    run.log(f"train: {cfg.epochs} epochs, {cfg.optimizer.name} lr {cfg.optimizer.lr}")
    t0 = time.perf_counter()
    trainer = Trainer(cfg, run.splits, seed=run.recipe.seed, on_epoch=run.on_epoch)
    hist = trainer.fit(run.model)
    test_loss, test_acc = trainer.evaluate(run.model, run.splits.x_test, run.splits.y_test)
    ckpt = save_checkpoint(run.model, ckpt_path,
                           {"model": run.recipe.model.model_dump(mode="json"), "input_shape": list(run.splits.input_shape),
                            "num_classes": run.splits.num_classes})
    run.report.training = {**hist.as_dict(), "test_loss": test_loss, "test_accuracy": test_acc,
                           "duration_s": time.perf_counter() - t0, "checkpoint": ckpt.name,
                           "checkpoint_sha256": file_sha256(ckpt)}
    run.log(f"  test accuracy {test_acc:.4f} ({time.perf_counter() - t0:.1f} s"
            + (", stopped early" if hist.stopped_early else "") + ")")
    run.save("train")


def stage_reference(run: Run) -> None:
    """fp32 reference outputs on val/calib/test: what every artifact is compared with."""
    import numpy as np

    s = run.splits
    if isinstance(run.model, Path):
        from edgekit.runtimes.onnxruntime import OnnxRuntime

        sess = OnnxRuntime().load(run.model, threads=PARITY_THREADS)
        predict = sess.run
        source = "onnx fp32 (user model)"
    else:
        from edgekit.train.trainer import predict as torch_predict

        def predict(x):
            return torch_predict(run.model, x)

        source = "torch fp32"
    for split, x in (("val", s.x_val), ("calib", s.x_calib), ("test", s.x_test)):
        run.reference_logits[split] = predict(x) if len(x) else np.zeros((0, s.num_classes), np.float32)
    from edgekit.report.evidence import save_samples

    run.reference_logits["original_test"] = run.reference_logits["test"]  # bench fidelity metrics compare with it
    preds = run.reference_logits["test"].argmax(1)
    acc = float((preds == s.y_test).mean()) if s.labelled else None
    from edgekit.names import safe_target

    _, digest = save_samples(safe_target(run.run_dir, "samples/reference.npz"), preds, s.y_test)
    outputs_digest = _save_outputs(safe_target(run.run_dir, REFERENCE_OUTPUTS), run.reference_logits["test"])
    run.report.reference = {"source": source, "accuracy": acc, "test_samples": int(len(s.y_test)),
                            "samples": "samples/reference.npz", "samples_sha256": digest,
                            "outputs": REFERENCE_OUTPUTS, "outputs_sha256": outputs_digest}
    run.reference_model = run.model
    run.save("reference")


REFERENCE_OUTPUTS = "samples/reference_outputs.npy"


def _save_outputs(path: Path, outputs) -> str:
    import numpy as np

    from edgekit.atomic import atomic_path
    from edgekit.export.artifact import file_sha256

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(outputs, dtype=np.float32))
    return file_sha256(path)


def _reference_outputs(run: Run):
    """The fp32 reference's test outputs: in memory, else the copy kept in the run folder (`edgekit bench`)."""
    import numpy as np

    from edgekit.array_files import check_array_file
    from edgekit.export.artifact import file_sha256
    from edgekit.names import contained

    if "original_test" in run.reference_logits:
        return run.reference_logits["original_test"]
    ref = run.report.reference
    path = contained(run.run_dir, ref.get("outputs") or REFERENCE_OUTPUTS, what="reference.outputs",
                     where=str(run.run_dir / "report.json"))
    if not path.is_file() or (ref.get("outputs_sha256") and file_sha256(path) != ref["outputs_sha256"]):
        return None
    check_array_file(path, ArtifactError)
    return np.load(path, allow_pickle=False)


def _context(run: Run):
    from edgekit.passes.base import PassContext

    return PassContext(splits=run.splits, run_dir=run.run_dir, seed=run.recipe.seed, train=run.recipe.train,
                       bench=run.recipe.bench, reference=run.reference_model, reference_logits=run.reference_logits,
                       model=None if isinstance(run.model, Path) else run.model, log=run.log)


def stage_torch_passes(run: Run) -> None:
    """Torch passes in recipe order. Unless a pass says `latency: false`, the model is also timed in ONNX Runtime
    before and after it. Afterwards the reference outputs are those of the compressed model, so export parity checks
    the exporter, not the compression; the reference accuracy (what gates compare with) stays the original's."""
    from edgekit.bench.quick import pass_latency
    from edgekit.passes import get_pass
    from edgekit.passes.accounting import summary

    done = []
    for cfg in run.recipe.passes:
        p = get_pass(cfg)
        if p.stage != "torch":
            continue
        if isinstance(run.model, Path):
            run.fail(f"pass {cfg.name}", EdgekitError("needs a PyTorch model; the recipe's model is an .onnx file"))
            continue
        run.log(f"pass: {cfg.name}")
        try:
            model, rec = p.apply(run.model, _context(run))
        except Exception as e:  # a library crash (torch-pruning, INC, torch.export) must not lose the other passes
            err = e if isinstance(e, EdgekitError) else EdgekitError(f"{type(e).__name__}: {e}")
            run.fail(f"pass {cfg.name}", err)
            run.report.passes.append(p.record(status="failed", error=str(err)))
            run.save()
            continue
        if getattr(cfg, "latency", False):
            rec.before["onnx_latency_ms"], rec.after["onnx_latency_ms"] = pass_latency(
                run.model, model, run.splits, run.recipe.bench)
        run.model = model
        done.append(cfg.name)
        line = summary(rec.before, rec.after)
        if line:
            rec.notes.insert(0, line)
        run.log("\n".join(f"  {t}" for t in [rec.decision, line] if t))
        run.report.passes.append(rec)
        run.save()
    if done:
        from edgekit.train.trainer import predict

        s = run.splits
        for split, x in (("val", s.x_val), ("calib", s.x_calib), ("test", s.x_test)):
            if len(x):
                run.reference_logits[split] = predict(run.model, x)
        ref = run.report.reference
        ref["source"] = f"torch fp32 original model; artifacts are compared with it after {' -> '.join(done)}"
        if s.labelled:
            ref["accuracy_after_torch_passes"] = float((run.reference_logits["test"].argmax(1) == s.y_test).mean())
    run.save("torch_passes")


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


def _copy_user_onnx(src: Path, proto, dst: Path) -> None:
    """The user's .onnx as the run's fp32 artifact; external data (checked by check_onnx_file) is embedded so the
    artifact stands alone in the run folder."""
    from onnx.external_data_helper import uses_external_data

    from edgekit.atomic import atomic_path
    from edgekit.model_files import onnx_header

    if not any(uses_external_data(t) for t in onnx_header(src).graph.initializer):
        shutil.copyfile(src, dst)
        return
    try:
        with atomic_path(dst) as tmp:
            tmp.write_bytes(proto.SerializeToString())
    except ValueError as e:  # protobuf refuses messages over 2 GB
        raise ArtifactError(f"{src}: cannot embed its external data into one run artifact: {e}") from e


def stage_export(run: Run, formats: set[str] | None = None) -> None:
    from edgekit.export import SUFFIX, get_exporter
    from edgekit.export.artifact import artifact_target, describe
    from edgekit.onnx_graph import check_onnx_file, op_counts, tensor_specs
    from edgekit.passes import get_pass

    if isinstance(run.model, Path):  # a user .onnx: it is the fp32 artifact
        dst = artifact_target(run.run_dir, "onnx-fp32", ".onnx")
        proto = check_onnx_file(run.model)
        _copy_user_onnx(run.model, proto, dst)
        art = describe("onnx-fp32", "onnx", "fp32", dst, run.run_dir, inputs=tensor_specs(proto.graph.input),
                       outputs=tensor_specs(proto.graph.output), ops=op_counts(proto), details={"user_model": True})
        from edgekit.config_base import Tolerance

        verify(run, stamp_card(run, art), Tolerance(max_abs=1e-5, min_cosine=0.99999, min_top1=1.0))
        run.report.artifacts.append(art)
        run.save("export")
        return
    for cfg in run.recipe.export:
        if formats and cfg.format not in formats:
            continue
        name = cfg.name or default_artifact_name(cfg)
        torch_passes = any(get_pass(p).stage == "torch" for p in run.recipe.passes)
        prev = None if torch_passes else _reusable(run, name)  # compressed models are re-made, not trusted
        if prev is not None:
            run.log(f"export: {name} reused from the interrupted run")
            run.report.artifacts.append(prev)
            continue
        run.log(f"export: {name}")
        t0 = time.perf_counter()
        try:
            path = artifact_target(run.run_dir, name, SUFFIX[cfg.format])
            extra = {}
            if cfg.format in ("tflite", "executorch"):  # static-shaped: the bench batch; int8 calibrates on calib
                extra = {"calibration": run.splits.x_calib, "log": run.log,
                         "batch_size": cfg.batch_size or (run.recipe.bench.batch_size if run.recipe.bench else 1)}
            art = get_exporter(cfg.format).export(run.model, run.splits.x_test, cfg, path, run.run_dir, name, **extra)
            art.details["export_s"] = round(time.perf_counter() - t0, 3)
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


def stage_onnx_passes(run: Run) -> None:
    from edgekit.passes import get_pass

    source = next((a for a in run.report.artifacts if a.format == "onnx" and a.precision == "fp32" and a.status == "ok"),
                  None)
    for cfg in run.recipe.passes:
        p = get_pass(cfg)
        if p.stage != "onnx":
            continue
        if source is None:
            run.fail(f"pass {cfg.name}", EdgekitError("needs an fp32 ONNX artifact: add `- format: onnx` to export"))
            run.report.passes.append(p.record(status="failed", error="no fp32 ONNX artifact"))
            continue
        prev_rec = next((r for r in (run.previous.passes if run.previous else []) if r.status == "ok"
                         and r.name == cfg.name and r.produced == cfg.artifact), None)
        if source.name in run.reused and prev_rec is not None and _reusable(run, cfg.artifact) is not None:
            run.log(f"pass: {cfg.name} reused from the interrupted run")
            run.report.passes.append(prev_rec)
            run.report.artifacts.append(run.previous.artifact(cfg.artifact))
            continue
        run.log(f"pass: {cfg.name} on {source.name}")
        try:
            art, rec = p.apply(source, _context(run))
            unstamped = art.size_bytes
            stamp_card(run, art)
            if rec.after.get("size_bytes") == unstamped:
                rec.after["size_bytes"] = art.size_bytes
            verify(run, art, cfg.tolerance)
        except EdgekitError as e:
            run.fail(f"pass {cfg.name}", e)
            run.report.passes.append(p.record(status="failed", error=str(e)))
            run.save()
            continue
        except Exception as e:  # a quantizer crash (ORT raises plain exceptions) must not lose the other targets
            run.fail(f"pass {cfg.name}", EdgekitError(f"{type(e).__name__}: {e}"))
            run.report.passes.append(p.record(status="failed", error=f"{type(e).__name__}: {e}"))
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


def cross_parity_pairs(artifacts: list[Artifact]) -> list[tuple[str | None, str, str]]:
    """(a, b, relation) pairs that should agree; a None `a` is the fp32 reference."""
    ok = [a for a in artifacts if a.status in MEASURABLE]
    fp32 = [a for a in ok if a.precision == "fp32"]
    pairs: list[tuple[str | None, str, str]] = [(None, a.name, "reference vs fp32") for a in fp32]
    pairs += [(a.name, b.name, "fp32 across formats") for i, a in enumerate(fp32) for b in fp32[i + 1:]
              if a.format != b.format]
    for q in (a for a in ok if a.precision != "fp32"):
        src = next((a for a in fp32 if a.name == q.source), None) or next((a for a in fp32 if a.format == q.format), None)
        if src is not None:
            pairs.append((src.name, q.name, "quantized vs its fp32"))
    return pairs


def stage_cross_parity(run: Run, samples: int = 256) -> None:
    """Agreement between artifacts that should match, each run in its own runtime on the same held-out inputs."""
    from edgekit.export.artifact import artifact_path
    from edgekit.export.parity import compare
    from edgekit.runtimes import runtime_for

    x = run.splits.x_test[:samples]
    if not len(x) or not run.reference_logits:
        return
    outputs = {None: run.reference_logits["test"][: len(x)]}
    by_name = {a.name: a for a in run.report.artifacts}
    ref_name = "onnx fp32 (user model)" if isinstance(run.model, Path) else "torch fp32"
    rows = []
    for a, b, relation in cross_parity_pairs(run.report.artifacts):
        row = {"a": a or ref_name, "b": b, "relation": relation}
        try:
            for n in (a, b):
                if n not in outputs:
                    art = by_name[n]
                    sess = runtime_for(art.format).load(artifact_path(run.run_dir, art), threads=PARITY_THREADS)
                    outputs[n] = sess.run(x)
            row.update(compare(outputs[a], outputs[b]))
        except EdgekitError as e:
            row["error"] = str(e)
        rows.append(row)
    run.report.cross_parity = rows
    run.save("cross_parity")


def stage_bench(run: Run, devices: list[str] | None = None) -> None:
    """Every ok artifact on every device. A device that cannot be reached (or drops mid-run) gets `skipped` rows
    naming the reason; results already measured are saved as they come and the other devices still run."""
    from edgekit.bench.cross_isa import add_cross_isa

    cfg = run.recipe.bench
    if cfg is None:
        return
    outputs: dict = {}

    def record(row) -> None:
        run.report.results = [r for r in run.report.results if (r.artifact, r.device) != (row.artifact, row.device)]
        run.report.results.append(row)
        run.save()

    names = devices or cfg.devices
    arts = [a for a in run.report.artifacts if a.status in MEASURABLE]
    with progress("bench", len(names) * len(arts), log=run.log) as bar:
        for dev in names:
            _bench_device(run, dev, arts, cfg, record, bar, outputs)
    add_cross_isa(run.report.results, outputs)
    run.save("bench")


def _bench_device(run: Run, dev: str, arts: list[Artifact], cfg, record, bar, outputs: dict) -> None:
    from edgekit.bench.run import bench_artifact
    from edgekit.devices import load_profile, reachable, transport_entry
    from edgekit.report.schema import Result

    try:
        profile = load_profile(dev)
    except EdgekitError as e:
        run.fail(f"device {dev}", e)
        bar.update(bar.done + len(arts))
        return
    why = reachable(profile) if arts else None
    if why:
        run.fail(f"device {profile.name}", EdgekitError(f"unreachable, its benches are skipped: {why}"))
    for i, art in enumerate(arts):
        if why:
            run.log(f"bench: {art.name} on {profile.name} skipped: device unreachable: {why}")
            record(Result(artifact=art.name, device=profile.name, runtime="?", status="skipped",
                          error=f"device unreachable: {why}", size_bytes=art.size_bytes))
            bar.update(note=f"{art.name}@{profile.name} skipped")
            continue
        prev_row = _reusable_result(run, art.name, profile.name)
        if prev_row is not None:
            run.log(f"bench: {art.name} on {profile.name} reused from the interrupted run")
            record(prev_row)
            bar.update(note=f"{art.name}@{profile.name} reused")
            continue
        run.log(f"bench: {art.name} on {profile.name}")
        row = bench_artifact(art, run.run_dir, run.splits.x_test, run.splits.y_test if run.splits.labelled else None,
                             profile, cfg, keep_samples_dir=run.run_dir / "samples", reference=_reference_outputs(run),
                             outputs_into=outputs)
        record(row)
        bar.update(note=f"{art.name}@{profile.name}")
        if row.status == "ok":
            acc = f"acc {row.accuracy:.4f} " if row.accuracy is not None else ""
            if row.metrics and row.metrics.get("cosine") is not None:
                acc += f"cosine {row.metrics['cosine']:.5f} "
            lat = row.latency_ms
            timing = (f"p50 {lat.p50:.3f} ms p90 {lat.p90:.3f} ms ({lat.samples} runs" if lat is not None else
                      f"avg {row.latency_summary['avg']:.3f} ms ({int(row.latency_summary['count'])} runs")
            energy = f", {row.energy_mj:.3f} mJ/inference" if row.energy_mj is not None else ""
            run.log(f"  {acc}{timing}, {row.threads} threads{energy})")
        else:
            run.fail(f"bench {art.name}@{profile.name}", EdgekitError(row.error or row.status))
            if row.status == "failed" and transport_entry(profile).remote and i + 1 < len(arts):
                why = reachable(profile)  # a device that dropped: skip the rest rather than time out on each


def _reusable_result(run: Run, artifact: str, device: str):
    """A finished bench row of the interrupted run, for an artifact that was reused, with intact evidence."""
    from edgekit.export.artifact import file_sha256
    from edgekit.names import contained

    if run.previous is None or artifact not in run.reused:
        return None
    row = next((r for r in run.previous.results if (r.artifact, r.device) == (artifact, device) and r.status == "ok"),
               None)
    if row is None or not row.samples:
        return row
    try:
        path = contained(run.run_dir, row.samples, what=f"results[{artifact}@{device}].samples")
    except EdgekitError:
        return None
    return row if path.is_file() and file_sha256(path) == row.samples_sha256 else None


def stage_gates(run: Run) -> bool:
    from edgekit.report.gates import evaluate_gates, gates_passed

    run.report.gates = evaluate_gates(run.report, run.recipe.gates, run_dir=run.run_dir)
    run.save("gates")
    return gates_passed(run.report.gates)


def finish(run: Run) -> None:
    from edgekit.report.html import write_reports

    run.report.status = "completed" if not run.report.errors else "completed_with_errors"
    run.save()
    write_reports(run.report, run.run_dir)


@contextlib.contextmanager
def recording(run: Run):
    """Whatever stops the run is written to report.json: an error marks it `failed` with the error in `errors`,
    Ctrl-C marks it `interrupted` and says how to resume. The exception goes on to the caller."""
    try:
        yield run
    except KeyboardInterrupt:
        _close(run, "interrupted", "interrupted")
        run.log(f"interrupted; finish it with: edgekit run --resume {run.run_dir}")
        raise
    except Exception as e:
        _close(run, "failed", str(e) if isinstance(e, EdgekitError) else f"{type(e).__name__}: {e}")
        raise


def _close(run: Run, status: str, error: str) -> None:
    where = run.stage or (f"after {run.report.stages_done[-1]}" if run.report.stages_done else "setup")
    run.report.status = status
    run.report.errors.append(f"{where}: {error}")
    with contextlib.suppress(OSError, EdgekitError):  # a full disk must not hide the error that stopped the run
        run.save()


def run_recipe(recipe: Recipe, out_dir: Path | None = None, log: Callable[[str], None] = _log.info,
               checkpoint: Path | None = None) -> Run:
    """Run every stage of a recipe; returns the Run (report, run folder)."""
    return run_stages(new_run(recipe, out_dir, log), checkpoint)


def run_stages(run: Run, checkpoint: Path | None = None) -> Run:
    stages: list[tuple[str, Callable[[Run], Any]]] = [
        ("data", stage_data), ("model", lambda r: stage_model(r, checkpoint)),
        *([("train", stage_train)] if checkpoint is None else []),
        ("reference", stage_reference), ("torch_passes", stage_torch_passes), ("export", stage_export),
        ("onnx_passes", stage_onnx_passes), ("cross_parity", stage_cross_parity), ("bench", stage_bench),
        ("gates", stage_gates), ("report", finish)]
    with recording(run):
        for name, stage in stages:
            run.stage = name
            stage(run)
    return run
