"""Models users already have: a local Hugging Face folder made by the test (a small random BERT), loaded with the
network blocked, exported with a dynamic sequence axis, dynamically quantized, and measured without labels."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from edgekit.errors import ModelLoadError
from edgekit.models import build_model
from edgekit.models.config import HfModel

pytest.importorskip("transformers")

VOCAB, SEQ, LABELS = 64, 16, 3


def make_bert_folder(folder, seed: int = 0, tokenizer: bool = True):
    """A BertForSequenceClassification with a small random config, saved as config.json + model.safetensors."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, num_labels=LABELS)
    BertForSequenceClassification(cfg).eval().save_pretrained(folder)
    if tokenizer:
        vocab = folder / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]))
        BertTokenizer(str(vocab)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return make_bert_folder(tmp_path_factory.mktemp("hf") / "tiny-bert")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: loading must be offline."""
    def refuse(*a, **k):
        raise AssertionError(f"network access attempted: {a}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_folder_loads_offline_and_wraps_forward(bert_dir, no_network):
    model = build_model(HfModel(arch="hf", path=bert_dir), (SEQ,), 0, vocab_size=VOCAB)
    ids = torch.randint(0, VOCAB, (2, SEQ))
    out = model(ids)
    assert out.shape == (2, LABELS)
    inner = model.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    torch.testing.assert_close(out, inner)
    info = model.edgekit_info
    assert info["hf_class"] == "BertForSequenceClassification" and info["weights"] == "model.safetensors"
    assert info["tokenizer"]["class"] == "BertTokenizer" and "vocab_size" in info
    assert info["input"]["name"] == "input_ids" and info["input"]["dtype"] == "int64"


def test_onnx_export_has_dynamic_batch_and_sequence(bert_dir, tmp_path):
    from edgekit.export.config import OnnxExport
    from edgekit.export.onnx import OnnxExporter
    from edgekit.runtimes.onnxruntime import OnnxRuntime
    from edgekit.train.trainer import predict

    model = build_model(HfModel(arch="hf", path=bert_dir), (SEQ,), 0, vocab_size=VOCAB)
    x = np.random.default_rng(0).integers(0, VOCAB, (8, SEQ))
    art = OnnxExporter().export(model, x, OnnxExport(format="onnx"), tmp_path / "m.onnx", tmp_path, "m")
    assert art.inputs[0].name == "input_ids" and art.inputs[0].shape == ["batch", "seq"]
    assert art.inputs[0].dtype == "int64"
    sess = OnnxRuntime().load(tmp_path / "m.onnx")
    for seq in (SEQ, 7, 40):  # two other sequence lengths than the export's
        xs = np.random.default_rng(seq).integers(0, VOCAB, (3, seq))
        np.testing.assert_allclose(sess.run(xs), predict(model, xs), atol=1e-4)


def test_feature_extraction_embeddings_keep_their_neighbours(bert_dir, tmp_path):
    from edgekit.bench.metrics import compute_metrics
    from edgekit.data.splits import Splits
    from edgekit.export.config import OnnxExport
    from edgekit.export.onnx import OnnxExporter
    from edgekit.passes.apply import apply_pass
    from edgekit.passes.ort_quantize import DynamicQuantConfig
    from edgekit.runtimes.onnxruntime import OnnxRuntime
    from edgekit.train.trainer import predict

    model = build_model(HfModel(arch="hf", path=bert_dir, task="feature-extraction"), (SEQ,), 0, vocab_size=VOCAB)
    x = np.random.default_rng(1).integers(0, VOCAB, (64, SEQ))
    ref = predict(model, x)
    assert ref.shape == (64, 32)
    (tmp_path / "artifacts").mkdir()
    OnnxExporter().export(model, x, OnnxExport(format="onnx", exporter="legacy"),
                          tmp_path / "artifacts" / "fp32.onnx", tmp_path, "fp32")
    data = Splits.from_arrays(x_calib=x[:8], x_val=x[:8])
    q = apply_pass(tmp_path / "artifacts" / "fp32.onnx", DynamicQuantConfig(name="quantize.dynamic"), data,
                   work_dir=tmp_path, reference=model).output
    assert "MatMulInteger" in q.artifact.ops or "DynamicQuantizeMatMul" in q.artifact.ops
    out = OnnxRuntime().load(q.path).run(x)
    m = compute_metrics(None, outputs=out, reference=ref, top_k=5)
    assert set(m) == {"cosine", "max_abs", "top1_agreement", "top_k_agreement", "nn_agreement"}
    assert m["cosine"] > 0.95 and 0.0 <= m["nn_agreement"] <= 1.0


def test_recipe_run_quantizes_and_reports_fidelity_without_labels(bert_dir, tmp_path):
    """The hf-model recipe on the test's folder: ONNX fp32 + dynamic int8, benchmarked, gated on cosine."""
    from edgekit.pipeline import run_recipe
    from edgekit.recipe import load_recipe

    recipe = load_recipe("recipes/hf-model.yaml", [
        f"model.path={bert_dir}", "data.samples=200", f"data.vocab_size={VOCAB}", f"data.seq_len={SEQ}",
        "bench.iterations=5", "bench.warmup=1", "bench.min_time_s=0", "bench.threads=1",
        "passes.0.tolerance.min_cosine=0.9"])  # an untrained 32-wide BERT has tiny, noise-sensitive logits
    run = run_recipe(recipe, out_dir=tmp_path / "run", log=lambda m: None)
    rep = run.report
    assert not rep.errors, rep.errors
    assert rep.model["hf_class"] == "BertForSequenceClassification" and rep.reference["accuracy"] is None
    assert rep.data["labelled"] is False
    rows = {r.artifact: r for r in rep.results}
    assert set(rows) == {"onnx-fp32", "onnx-int8-dynamic"}
    for r in rows.values():
        assert r.status == "ok" and r.accuracy is None
        assert {"cosine", "top1_agreement", "top_k_agreement", "max_abs"} <= set(r.metrics)
    assert rows["onnx-fp32"].metrics["cosine"] > 0.99999
    art = rep.artifact("onnx-int8-dynamic")
    assert art.inputs[0].shape == ["batch", "seq"] and art.inputs[0].dtype == "int64"
    assert "MatMulInteger" in art.ops or "DynamicQuantizeMatMul" in art.ops
    assert any(g.name == "min_metric.cosine" for g in rep.gates)



def test_feature_extraction_recipe_passes_default_tolerances(bert_dir, tmp_path):
    """Embeddings are judged by cosine, never by the argmax of a vector: quantize.dynamic with its default
    tolerance (which bounds top-1 agreement for classifiers) passes on a feature-extraction model."""
    from edgekit.pipeline import run_recipe
    from edgekit.recipe import load_recipe

    recipe = load_recipe("recipes/hf-model.yaml", [
        f"model.path={bert_dir}", "model.task=feature-extraction", "data.samples=120", f"data.vocab_size={VOCAB}",
        f"data.seq_len={SEQ}", "bench=null"])
    recipe.passes[0].tolerance = type(recipe.passes[0])(name="quantize.dynamic").tolerance  # the pass default
    assert recipe.passes[0].tolerance.min_top1_agreement is not None and recipe.output_task() == "embedding"
    run = run_recipe(recipe, out_dir=tmp_path / "run", log=lambda m: None)
    art = run.report.artifact("onnx-int8-dynamic")
    assert art.status == "ok", run.report.errors
    assert art.parity.passed and art.parity.cosine >= 0.98
    assert art.parity.tolerance["min_top1_agreement"] is None  # not applied to an embedding

def _corrupt(folder, how):
    w = folder / "model.safetensors"
    if how == "missing":
        w.unlink()
    elif how == "garbage":
        w.write_bytes(b"\x00" * 64)
    elif how == "truncated":
        w.write_bytes(w.read_bytes()[:-200])
    elif how == "empty":
        w.write_bytes(b"")
    elif how == "bad-config":
        (folder / "config.json").write_text("{not json")
    elif how == "no-config":
        (folder / "config.json").unlink()


@pytest.mark.parametrize("how,names,message", [
    ("missing", "model.safetensors", "weights file not found"),
    ("garbage", "model.safetensors", "not a valid safetensors file"),
    ("truncated", "model.safetensors", "not a valid safetensors file"),
    ("empty", "model.safetensors", "not a valid safetensors file"),
    ("bad-config", "config.json", "not valid JSON"),
    ("no-config", "config.json", "not found"),
])
def test_broken_folder_names_the_file(how, names, message, tmp_path):
    folder = make_bert_folder(tmp_path / "m", tokenizer=False)
    _corrupt(folder, how)
    with pytest.raises(ModelLoadError, match=message) as e:
        build_model(HfModel(arch="hf", path=folder), (SEQ,), 0, vocab_size=VOCAB)
    assert str(folder / names) in str(e.value)


def test_data_and_model_mismatches_are_named(bert_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    with pytest.raises(ModelLoadError, match="vocabulary is 64"):
        build_model(HfModel(arch="hf", path=bert_dir), (SEQ,), 0, vocab_size=1000)
    with pytest.raises(ModelLoadError, match="at most 64"):
        build_model(HfModel(arch="hf", path=bert_dir), (100,), 0, vocab_size=VOCAB)
    with pytest.raises(ModelLoadError, match="declared int64 but the data is float32"):
        build_model(HfModel(arch="hf", path=bert_dir), (SEQ,), 0, vocab_size=None)
    with pytest.raises(ModelLoadError, match="5 classes but the model has 3 labels"):
        build_model(HfModel(arch="hf", path=bert_dir), (SEQ,), 5, vocab_size=VOCAB)
    folder = make_bert_folder(tmp_path / "headless", tokenizer=False)
    state = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("classifier")}, folder / "model.safetensors")
    with pytest.raises(ModelLoadError, match="missing keys.*classifier"):
        build_model(HfModel(arch="hf", path=folder), (SEQ,), 0, vocab_size=VOCAB)
    model = build_model(HfModel(arch="hf", path=folder, allow_missing_weights=True), (SEQ,), 0, vocab_size=VOCAB)
    assert any("classifier" in k for k in model.edgekit_info["randomly_initialized"])


def test_input_spec_override_and_example_inputs(bert_dir):
    from edgekit.models.config import InputSpec
    from edgekit.models.inputs import example_input

    spec = InputSpec(name="ids", shape=["batch", SEQ], dtype="int64")
    model = build_model(HfModel(arch="hf", path=bert_dir, inputs=[spec]), (SEQ,), 0, vocab_size=VOCAB)
    assert model.edgekit_input.name == "ids"
    x = example_input(spec, batch=3, high=VOCAB)
    assert x.shape == (3, SEQ) and x.dtype == np.int64 and x.max() < VOCAB
    assert model(torch.from_numpy(x)).shape == (3, LABELS)
    with pytest.raises(ModelLoadError, match="axis 1 is declared 16 but the data has 8"):
        build_model(HfModel(arch="hf", path=bert_dir, inputs=[spec]), (8,), 0, vocab_size=VOCAB)
    with pytest.raises(ModelLoadError, match="give a size for its dynamic axis 'seq'"):
        example_input(InputSpec(shape=["batch", "seq"], dtype="int64"))


@pytest.mark.parametrize("task,passes", [("classification", False), ("embedding", True), ("regression", True)])
def test_top1_bound_applies_to_classifiers_only(task, passes):
    from edgekit.config_base import Tolerance
    from edgekit.export.parity import check

    numbers = {"samples": 64, "max_abs": 0.05, "mean_abs": 0.01, "rel_error": 0.01, "cosine": 0.995,
               "top1_agreement": 0.5}
    parity = check("a", numbers, Tolerance(min_cosine=0.98, min_top1=0.9).for_task(task), "torch fp32",
                   raise_on_fail=False)
    assert parity.passed is passes


def test_regression_outputs_are_judged_by_absolute_and_relative_error():
    """One regression output's per-sample cosine is only its sign: relative error decides (5% by default)."""
    from edgekit.config_base import Tolerance
    from edgekit.export.parity import check, compare

    ref = np.linspace(1.0, 2.0, 64)[:, None]
    tol = Tolerance(min_cosine=0.98, min_top1=0.9).for_task("regression")
    assert tol.min_cosine is None and tol.max_rel_error == 0.05
    assert check("a", compare(ref, ref * 1.02), tol, "torch fp32", raise_on_fail=False).passed
    bad = check("a", compare(ref, ref * 1.2), tol, "torch fp32", raise_on_fail=False)
    assert not bad.passed and bad.rel_error > 0.05  # cosine is 1.0 here: it cannot see a 20% error
    assert Tolerance(max_abs=0.5).for_task("regression").max_rel_error is None  # a bound the user set is kept
