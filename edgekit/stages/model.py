"""Data, model, training and the fp32 reference outputs every artifact is compared with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import ArtifactError
from edgekit.handles import ExternalFile, ModelFile, OnnxFile, TorchModel
from edgekit.stages.state import PARITY_THREADS, REFERENCE_OUTPUTS, Run


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
    built = build_model(cfg, run.splits.input_shape, run.splits.num_classes, vocab_size=run.splits.vocab_size)
    info: dict[str, Any] = {"arch": cfg.arch}
    if isinstance(built, ExternalFile):
        info["path"] = str(built.path)
        run.model = _user_onnx(run, built)
    else:
        from edgekit.models.checkpoint import apply_state_dict, load_state_dict
        from edgekit.models.stats import model_stats

        if checkpoint is not None:
            apply_state_dict(built, load_state_dict(checkpoint), checkpoint)
            info["checkpoint"] = str(checkpoint)
        built.eval()
        info.update(model_stats(built, run.splits.input_shape, what=_model_label(cfg)))
        info.update(getattr(built, "edgekit_info", {}))
        run.model = TorchModel(module=built, input=run.input_spec(), lineage=(cfg.arch,))
    run.report.model = info
    run.log(f"model: {cfg.arch}" + (f", {info['params']:,} params" if "params" in info else "")
            + (f", {info['macs']:,} MACs" if "macs" in info else ""))
    run.save("model")


def _user_onnx(run: Run, src: ExternalFile) -> OnnxFile:
    """The user's .onnx as the run's fp32 artifact; external data (checked by check_onnx_file) is embedded so the
    artifact stands alone in the run folder."""
    import shutil

    from onnx.external_data_helper import uses_external_data

    from edgekit.atomic import atomic_path
    from edgekit.export.artifact import artifact_target, describe
    from edgekit.model_files import onnx_header
    from edgekit.onnx_graph import check_onnx_file, op_counts, tensor_specs

    dst = artifact_target(run.run_dir, "onnx-fp32", OnnxFile.suffix)
    proto = check_onnx_file(src.path)
    if not any(uses_external_data(t) for t in onnx_header(src.path).graph.initializer):
        shutil.copyfile(src.path, dst)
    else:
        try:
            with atomic_path(dst) as tmp:
                tmp.write_bytes(proto.SerializeToString())
        except ValueError as e:  # protobuf refuses messages over 2 GB
            raise ArtifactError(f"{src.path}: cannot embed its external data into one run artifact: {e}") from e
    art = describe("onnx-fp32", OnnxFile.format, "fp32", dst, run.run_dir, inputs=tensor_specs(proto.graph.input),
                   outputs=tensor_specs(proto.graph.output), ops=op_counts(proto), details={"user_model": True})
    return OnnxFile(path=dst, artifact=art, input=run.input_spec(), lineage=("onnx-fp32",))


def _model_label(cfg) -> str:
    """The model as the recipe names it, for errors."""
    source = getattr(cfg, "factory", None) or getattr(cfg, "path", None)
    return f"model {cfg.arch}" + (f" '{source}'" if source else "")


def stage_train(run: Run) -> None:
    from edgekit.models.checkpoint import save_checkpoint
    from edgekit.timing import Stopwatch
    from edgekit.train.trainer import Trainer

    cfg = run.recipe.train
    module = run.torch_module
    if cfg is None or module is None or cfg.epochs == 0:
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

            apply_state_dict(module, load_state_dict(ckpt_path), ckpt_path)
            module.eval()
            run.report.training = prev.training
            run.log("train: reused the interrupted run's checkpoint")
            run.save("train")
            return
        why = "does not match the sha256 report.json recorded" if recorded else "has no sha256 in report.json"
        run.log(f"train: model.safetensors {why}: training again, and nothing made from the old weights is reused")
        run.previous = None
    run.log(f"train: {cfg.epochs} epochs, {cfg.optimizer.name} lr {cfg.optimizer.lr}")
    with Stopwatch() as watch:
        trainer = Trainer(cfg, run.splits, seed=run.recipe.seed, on_epoch=run.on_epoch)
        hist = trainer.fit(module)
        test_loss, test_acc = trainer.evaluate(module, run.splits.x_test, run.splits.y_test)
        ckpt = save_checkpoint(module, ckpt_path,
                               {"model": run.recipe.model.model_dump(mode="json"),
                                "input_shape": list(run.splits.input_shape), "num_classes": run.splits.num_classes})
    run.report.training = {**hist.as_dict(), "test_loss": test_loss, "test_accuracy": test_acc,
                           "duration_s": watch.seconds, "checkpoint": ckpt.name, "checkpoint_sha256": file_sha256(ckpt)}
    run.log(f"  test accuracy {test_acc:.4f} ({watch.seconds:.1f} s" + (", stopped early" if hist.stopped_early else "")
            + ")")
    run.save("train")


def predictor(run: Run):
    """A function from inputs to the current model's outputs: the torch module, or the model file in its runtime."""
    module = run.torch_module
    if module is not None:
        from edgekit.train.trainer import predict as torch_predict

        return lambda x: torch_predict(module, x)
    from edgekit.runtimes import runtime_for

    if not isinstance(run.model, ModelFile):
        raise ArtifactError("the run has no model yet")
    return runtime_for(run.model.format).load(run.model.path, threads=PARITY_THREADS).run


def reference_logits(run: Run, splits=("val", "calib", "test")) -> None:
    """The current model's outputs on the held-out splits, as `run.reference_logits`."""
    import numpy as np

    predict = predictor(run)
    s = run.splits
    for split in splits:
        x = getattr(s, f"x_{split}")
        run.reference_logits[split] = predict(x) if len(x) else np.zeros((0, s.num_classes), np.float32)


def stage_reference(run: Run) -> None:
    """fp32 reference outputs on val/calib/test: what every artifact is compared with."""
    from edgekit.names import safe_target
    from edgekit.report.evidence import save_samples

    s = run.splits
    reference_logits(run)
    run.reference_logits["original_test"] = run.reference_logits["test"]  # bench fidelity metrics compare with it
    preds = run.reference_logits["test"].argmax(1)
    acc = float((preds == s.y_test).mean()) if s.labelled else None
    _, digest = save_samples(safe_target(run.run_dir, "samples/reference.npz"), preds, s.y_test)
    outputs_digest = save_outputs(safe_target(run.run_dir, REFERENCE_OUTPUTS), run.reference_logits["test"])
    run.report.reference = {"source": run.reference_name(), "accuracy": acc, "test_samples": int(len(s.y_test)),
                            "samples": "samples/reference.npz", "samples_sha256": digest,
                            "outputs": REFERENCE_OUTPUTS, "outputs_sha256": outputs_digest}
    run.reference_model = run.torch_module
    run.save("reference")


def save_outputs(path: Path, outputs) -> str:
    import numpy as np

    from edgekit.atomic import atomic_path
    from edgekit.export.artifact import file_sha256

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(outputs, dtype=np.float32))
    return file_sha256(path)


def reference_outputs(run: Run):
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
