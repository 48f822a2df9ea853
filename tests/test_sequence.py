"""Sequence models, synthetic sequence data and integer token inputs, end to end: every new zoo architecture in
every runtime with parity, dynamic sequence axes, learnable data, int64 ids through calibration and the bench."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from edgekit.data import DataConfig, load_data
from edgekit.data.config import CsvData, NpzData
from edgekit.errors import DataError, ModelLoadError
from edgekit.export.config import OnnxExport, TfliteExport, TorchExport
from edgekit.export.parity import check, compare
from edgekit.models import ModelConfig, build_model
from edgekit.models.stats import model_stats
from edgekit.runtimes import get_runtime
from edgekit.train.trainer import predict

ADAPTER = TypeAdapter(ModelConfig)
WAVES = {"source": "waveforms", "samples": 240, "seq_len": 16, "channels": 2}
TOKENS = {"source": "tokens", "samples": 240, "seq_len": 16, "vocab_size": 16, "classes": 3}
TINY_SEQUENCE_MODELS = {
    "lstm": ({"arch": "lstm", "hidden": 12, "bidirectional": True}, WAVES),
    "gru": ({"arch": "gru", "hidden": 12, "layers": 2}, WAVES),
    "transformer": ({"arch": "transformer", "d_model": 16, "heads": 2, "layers": 1, "pool": "cls"}, TOKENS),
    "vit": ({"arch": "vit", "d_model": 16, "heads": 2, "layers": 1, "patch_size": 4}, {"source": "digits"}),
}
BATCH = 4


def _data(spec: dict):
    return load_data(TypeAdapter(DataConfig).validate_python(spec), 0)


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(arch):
        if arch not in cache:
            torch.manual_seed(0)
            cfg, data = TINY_SEQUENCE_MODELS[arch]
            splits = _data(data)
            model = build_model(ADAPTER.validate_python(cfg), splits.input_shape, splits.num_classes,
                                vocab_size=splits.vocab_size).eval()
            cache[arch] = (model, splits)
        return cache[arch]

    return get


def _export(runtime, model, splits, folder):
    from edgekit.export.onnx import OnnxExporter
    from edgekit.export.tflite import TfliteExporter
    from edgekit.export.torch_program import TorchProgramExporter

    x = splits.x_test
    if runtime == "torch":
        cfg = TorchExport(format="torch")
        return TorchProgramExporter().export(model, x, cfg, folder / "m.pt2", folder, "m"), cfg
    if runtime == "onnxruntime":  # the legacy exporter is seconds faster on recurrent layers; dynamo on attention
        legacy = isinstance(getattr(model, "rnn", None), torch.nn.RNNBase)
        cfg = OnnxExport(format="onnx", exporter="legacy" if legacy else "dynamo")
        return OnnxExporter().export(model, x, cfg, folder / "m.onnx", folder, "m"), cfg
    pytest.importorskip("litert_torch")
    cfg = TfliteExport(format="tflite")
    return TfliteExporter().export(model, x, cfg, folder / "m.tflite", folder, "m", calibration=splits.x_calib,
                                   batch_size=BATCH), cfg


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime", "litert"])
@pytest.mark.parametrize("arch", sorted(TINY_SEQUENCE_MODELS))
def test_zoo_model_matches_torch_in_every_runtime(arch, runtime, built, tmp_path):
    model, splits = built(arch)
    art, cfg = _export(runtime, model, splits, tmp_path)
    sess = get_runtime(runtime).load(tmp_path / art.path, threads=1)
    x = splits.x_test[:24]
    numbers = compare(predict(model, x), sess.run(x))
    assert check(art.name, numbers, cfg.tolerance, "torch fp32").passed, numbers
    assert numbers["cosine"] > 0.99999 and numbers["top1_agreement"] == 1.0
    tokens = arch == "transformer"
    want = {"torch": "int64", "onnxruntime": "int64", "litert": "int32"}[runtime] if tokens else "float32"
    assert art.inputs[0].dtype == want
    if runtime == "litert":
        assert art.inputs[0].shape[:2] == [BATCH, splits.input_shape[0]]  # static shapes from the data
        return
    assert art.inputs[0].shape[0] == "batch"
    if arch == "vit":
        return
    short = x[:, : x.shape[1] // 2]  # a different sequence length through the same file
    seq_static = runtime == "torch" and arch in ("lstm", "gru")  # torch.export unrolls recurrent layers
    if seq_static:
        assert art.details["static_axes"] == {"1": "seq"} and art.inputs[0].shape[1] == x.shape[1]
    else:
        assert art.inputs[0].shape[1] == "seq"
        np.testing.assert_allclose(sess.run(short), predict(model, short), atol=1e-4)


def test_macs_and_params_of_sequence_models(built):
    for arch in TINY_SEQUENCE_MODELS:
        model, splits = built(arch)
        stats = model_stats(model, splits.input_shape)
        assert stats["params"] > 0 and stats["macs"] > 0, (arch, stats)
    lstm, splits = built("lstm")
    t, f = splits.input_shape
    h = 12
    assert model_stats(lstm, splits.input_shape)["macs"] == 2 * t * 4 * h * (f + h) + 2 * h * splits.num_classes


@pytest.mark.parametrize("arch,cfg,data,epochs,lr", [
    ("gru", {"arch": "gru", "hidden": 32}, {**WAVES, "samples": 600, "seq_len": 32, "channels": 1}, 12, 0.01),
    ("transformer", {"arch": "transformer", "d_model": 32, "heads": 2, "layers": 1, "dropout": 0.0},
     {**TOKENS, "samples": 900, "classes": 4}, 4, 0.005),
])
def test_synthetic_tasks_are_learnable(arch, cfg, data, epochs, lr):
    from edgekit.train.config import TrainConfig
    from edgekit.train.trainer import Trainer, seed_everything

    splits = _data(data)
    seed_everything(0)
    model = build_model(ADAPTER.validate_python(cfg), splits.input_shape, splits.num_classes,
                        vocab_size=splits.vocab_size)
    Trainer(TrainConfig(epochs=epochs, batch_size=32, optimizer={"lr": lr}, progress=False), splits).fit(model)
    acc = float((predict(model, splits.x_test).argmax(1) == splits.y_test).mean())
    assert acc > 1.0 / splits.num_classes + 0.3, (arch, acc)  # chance is 0.25 on both


def test_synthetic_data_is_seeded_and_shaped():
    w = _data(WAVES)
    assert w.x_train.dtype == np.float32 and w.input_shape == (16, 2) and w.num_classes == 4
    assert w.class_names == ["sine", "square", "sawtooth", "triangle"]
    t = _data(TOKENS)
    assert t.x_train.dtype == np.int64 and t.input_shape == (16,) and t.vocab_size == 16
    assert t.normalization == {"kind": "none (integer token ids)"} and t.x_train.max() < 16
    assert np.array_equal(_data(TOKENS).x_train, t.x_train)
    c = _data({**TOKENS, "task": "contains"})
    assert c.num_classes == 2
    for x, y in ((c.x_train, c.y_train), (c.x_test, c.y_test)):  # every row holds both markers; order decides
        adjacent = ((x[:, :-1] == 0) & (x[:, 1:] == 1)).any(1)
        assert np.array_equal(adjacent, y == 1) and ((x == 0).any(1) & (x == 1).any(1)).all()
    r = _data({**TOKENS, "task": "random"})
    assert not r.labelled and (r.y_test == -1).all() and r.num_classes == 0


def test_npz_and_csv_sequences_and_tokens(tmp_path):
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(60, 10, 3)).astype(np.float32)
    ids = rng.integers(0, 50, size=(60, 12))
    y = np.arange(60) % 3
    np.savez(tmp_path / "seq.npz", x=seq, y=y)
    np.savez(tmp_path / "ids.npz", x=ids, y=y)
    np.savez(tmp_path / "unlabelled.npz", x=ids)
    s = load_data(NpzData(source="npz", path=tmp_path / "seq.npz", layout="sequence"), 0)
    assert s.input_shape == (10, 3) and s.x_train.dtype == np.float32
    assert abs(float(s.x_train.mean())) < 0.1  # standardized per feature over samples and steps
    t = load_data(NpzData(source="npz", path=tmp_path / "ids.npz", layout="tokens", vocab_size=64), 0)
    assert t.x_train.dtype == np.int64 and t.vocab_size == 64 and t.labelled
    assert set(np.concatenate([t.x_train, t.x_val, t.x_test]).ravel()) <= set(ids.ravel())  # not normalized
    u = load_data(NpzData(source="npz", path=tmp_path / "unlabelled.npz", layout="tokens"), 0)
    assert not u.labelled and u.vocab_size == int(ids.max()) + 1
    with pytest.raises(DataError, match="outside the vocabulary"):
        load_data(NpzData(source="npz", path=tmp_path / "ids.npz", layout="tokens", vocab_size=10), 0)
    with pytest.raises(DataError, match="labels is true"):
        load_data(NpzData(source="npz", path=tmp_path / "unlabelled.npz", layout="tokens", labels=True), 0)
    with pytest.raises(DataError, match="layout"):
        load_data(NpzData(source="npz", path=tmp_path / "seq.npz", layout="features"), 0)
    header = ",".join([f"t{i}" for i in range(12)] + ["label"])
    (tmp_path / "ids.csv").write_text(header + "\n" + "\n".join(",".join(map(str, [*r, c])) for r, c in zip(ids, y)))
    c = load_data(CsvData(source="csv", path=tmp_path / "ids.csv", layout="tokens"), 0)
    assert c.x_train.dtype == np.int64 and c.input_shape == (12,) and c.num_classes == 3
    c = load_data(CsvData(source="csv", path=tmp_path / "ids.csv", layout="sequence", label_column=None), 0)
    assert c.input_shape == (13, 1) and not c.labelled


def test_model_errors_name_the_problem(built):
    _, splits = built("transformer")
    with pytest.raises(ModelLoadError, match="smaller than the data's vocabulary"):
        build_model(ADAPTER.validate_python({"arch": "transformer", "vocab_size": 8, "d_model": 16}),
                    splits.input_shape, 3, vocab_size=16)
    with pytest.raises(ModelLoadError, match="sequence input"):
        build_model(ADAPTER.validate_python({"arch": "lstm"}), (1, 8, 8), 3)
    with pytest.raises(ModelLoadError, match="patch"):
        build_model(ADAPTER.validate_python({"arch": "vit", "patch_size": 3, "d_model": 16}), (1, 8, 8), 3)
    with pytest.raises(Exception, match="divisible by heads"):
        ADAPTER.validate_python({"arch": "transformer", "d_model": 30, "heads": 4})


def test_sinusoidal_positions_and_mean_pool_export(tmp_path):
    from edgekit.export.onnx import OnnxExporter

    splits = _data(TOKENS)
    model = build_model(ADAPTER.validate_python({"arch": "transformer", "d_model": 16, "heads": 2, "layers": 1,
                                                 "positional": "sinusoidal", "max_len": 32}),
                        splits.input_shape, splits.num_classes, vocab_size=16).eval()
    assert "pos" not in model.state_dict()  # a fixed table, not a weight
    OnnxExporter().export(model, splits.x_test, OnnxExport(format="onnx", exporter="legacy"), tmp_path / "m.onnx",
                          tmp_path, "m")
    sess = get_runtime("onnxruntime").load(tmp_path / "m.onnx")
    longer = np.concatenate([splits.x_test[:8], splits.x_test[:8]], axis=1)  # 32 tokens, up to max_len
    np.testing.assert_allclose(sess.run(longer), predict(model, longer), atol=1e-4)


def test_token_pipeline_end_to_end_with_int64_calibration_and_metrics(tmp_path):
    """tokens -> transformer -> ONNX -> dynamic and static int8 (calibrated on int64 ids) -> bench -> metric gates."""
    from edgekit.pipeline import run_recipe
    from edgekit.recipe import Recipe

    recipe = Recipe.model_validate({
        "name": "tok", "data": {**TOKENS, "samples": 300},
        "model": {"arch": "transformer", "d_model": 32, "heads": 2, "layers": 1, "dropout": 0.0},
        "train": {"epochs": 4, "batch_size": 32, "optimizer": {"lr": 0.005}, "progress": False},
        "passes": [{"name": "quantize.dynamic"},
                   {"name": "quantize.static", "format": "qdq", "activation_type": "uint8", "per_channel": True,
                    "tolerance": {"min_cosine": 0.9}}],
        "export": [{"format": "onnx", "exporter": "legacy"}],
        "bench": {"warmup": 1, "iterations": 5, "min_time_s": 0.0, "threads": 1, "metrics": ["accuracy", "macro_f1",
                                                                                             "cosine", "top1_agreement"]},
        "gates": {"min_metric": {"cosine": 0.9, "macro_f1": 0.0}, "max_metric": {"max_abs": 1e6}},
    })
    run = run_recipe(recipe, out_dir=tmp_path / "run", log=lambda m: None)
    rep = run.report
    assert not rep.errors, rep.errors
    assert rep.data["input_dtype"] == "int64" and rep.model["macs"] > 0
    assert {a.name: a.inputs[0].dtype for a in rep.artifacts} == {
        "onnx-fp32": "int64", "onnx-int8-dynamic": "int64", "onnx-int8": "int64"}
    dyn = rep.artifact("onnx-int8-dynamic").details
    assert len(dyn["quantized_nodes"]) == 5 and not dyn["float_weight_nodes"]  # all 5 Linear layers, head included
    assert dyn["weight_bytes"]["int8"] > 0
    rows = {r.artifact: r for r in rep.results}
    assert all(r.status == "ok" and r.accuracy is not None for r in rows.values())
    assert rows["onnx-fp32"].metrics["cosine"] > 0.99999
    assert set(rows["onnx-int8"].metrics) == {"accuracy", "macro_f1", "cosine", "top1_agreement"}
    gates = {(g.name, g.target) for g in rep.gates}
    assert ("min_metric.cosine", "onnx-int8@host-cpu") in gates
    max_abs = [g for g in rep.gates if g.name == "max_metric.max_abs"]
    assert max_abs and not any(g.passed for g in max_abs)  # not requested in bench.metrics: not measured
    assert "not measured" in max_abs[0].detail
    assert "## Metrics" in (tmp_path / "run" / "report.md").read_text()
    from edgekit import api

    again = api.bench(tmp_path / "run", log=lambda m: None, iterations=2, warmup=0)  # reference outputs kept on disk
    assert again.report.artifact("onnx-fp32") and not again.report.errors
    assert all(r.metrics["cosine"] > 0.9 for r in again.report.results)


@pytest.mark.parametrize("bits", [8, 4])
def test_weight_only_rtn_lists_quantized_layers_and_keeps_packed_weights(bits, built, tmp_path):
    pytest.importorskip("neural_compressor")
    from edgekit.export.onnx import OnnxExporter
    from edgekit.passes.apply import apply_pass
    from edgekit.passes.weight_only import WeightOnlyConfig

    model, splits = built("transformer")
    cfg = WeightOnlyConfig(name="quantize.weight_only", bits=bits, latency=False)
    done = apply_pass(model, cfg, splits, work_dir=tmp_path)
    out, rec = done.output.module, done.record
    linears = sorted(n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    assert rec.after["quantized_layers"] == [n for n in linears if n != "encoder.fc"]
    assert rec.after["kept_float"] == ["encoder.fc"]  # the classifier head stays float by default
    packed = tmp_path / rec.after["packed_weights"]["path"]
    assert packed.is_file() and rec.after["packed_weights"]["size_bytes"] == packed.stat().st_size
    ratio = rec.after["quantized_weight_bytes"] / rec.after["fp32_weight_bytes_of_those_layers"]
    assert ratio < (0.3 if bits == 8 else 0.2)
    assert rec.after["packed_model_torch_export"] != "ok" and any("does not export" in n for n in rec.notes)
    x = splits.x_test[:64]
    numbers = compare(predict(model, x), predict(out, x))
    assert numbers["cosine"] > (0.999 if bits == 8 else 0.98), numbers
    assert numbers["max_abs"] > 0  # the weights really changed
    art = OnnxExporter().export(out, x, OnnxExport(format="onnx"), tmp_path / "woq.onnx", tmp_path, "woq")
    assert art.inputs[0].dtype == "int64"
    sess = get_runtime("onnxruntime").load(tmp_path / "woq.onnx")
    np.testing.assert_allclose(sess.run(x), predict(out, x), atol=1e-4)
