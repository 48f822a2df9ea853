"""PT2E quantization-aware training and Intel Neural Compressor autotuning as torch passes."""

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from edgekit.bench.quick import pass_latency
from edgekit.passes.apply import apply_pass
from edgekit.train.config import TrainConfig


def run_pass(cfg: dict, model, splits, tmp_path):
    train = TrainConfig(epochs=1, optimizer={"lr": 0.001}, progress=False)
    done = apply_pass(model, cfg, splits, work_dir=tmp_path, train=train, log=lambda m: None)
    return done.output.module, done.record


def dynamo_onnx_outputs(model, x, path):
    import onnxruntime as ort

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x[:2]),), str(path), dynamo=True, input_names=["input"],
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},), verbose=False)
    return ort.InferenceSession(str(path)).run(None, {"input": x})[0]


def test_qat_converts_and_exports_to_onnx(cnn, splits, tmp_path):
    few = dataclasses.replace(splits, x_train=splits.x_train[:256], y_train=splits.y_train[:256])  # keep it fast
    q, rec = run_pass({"name": "quantize.qat", "epochs": 1}, cnn, few, tmp_path)
    assert isinstance(q, torch.fx.GraphModule)
    targets = {str(n.target) for n in q.graph.nodes if n.op == "call_function"}
    assert any("quantize_per_tensor" in t for t in targets) and any("dequantize_per_channel" in t for t in targets)
    int8 = [v for v in q.state_dict().values() if v.dtype == torch.int8]
    assert int8 and all(int(v.abs().max()) <= 63 for v in int8)  # reduce_range: 7-bit weights
    assert rec.after["size_bytes"] < rec.before["size_bytes"] and rec.after["macs"] == rec.before["macs"]
    assert rec.after["test_accuracy"] > rec.before["test_accuracy"] - 0.1
    assert any("exporter: dynamo" in n for n in rec.notes)
    x = splits.x_test
    with torch.no_grad():
        ref = q(torch.from_numpy(x)).numpy()
    out = dynamo_onnx_outputs(q, x, tmp_path / "qat.onnx")
    assert (out.argmax(1) == ref.argmax(1)).mean() > 0.98
    assert np.abs(out - ref).max() < 0.2
    before, after = pass_latency(cnn, q, splits, None)  # the pipeline's per-pass timing handles PT2E graphs
    assert before["exporter"] == "legacy" and after["exporter"] == "dynamo" and after["p50"] > 0


def test_autotune_returns_best_candidate_when_target_unreachable(cnn, splits, tmp_path):
    q, rec = run_pass({"name": "quantize.autotune", "tolerable_loss": -1.0,
                       "candidates": [{"w_granularity": "per_channel"}, {"w_granularity": "per_tensor"}]},
                      cnn, splits, tmp_path)
    assert "no candidate met the target" in rec.decision
    assert len(rec.candidates) == 2 and not any(r["meets_target"] for r in rec.candidates)
    best = max(rec.candidates, key=lambda r: r["val_accuracy"])
    assert best["chosen"] and sum(r["chosen"] for r in rec.candidates) == 1
    assert rec.after["val_accuracy"] == pytest.approx(best["val_accuracy"])
    assert isinstance(q, torch.fx.GraphModule) and any("exporter: dynamo" in n for n in rec.notes)


def test_autotune_stops_at_first_candidate_meeting_target(cnn, splits, tmp_path):
    _, rec = run_pass({"name": "quantize.autotune", "tolerable_loss": 0.5}, cnn, splits, tmp_path)
    assert len(rec.candidates) == 1 and rec.candidates[0]["chosen"] and rec.candidates[0]["meets_target"]


def test_label_free_qat_matches_the_fp32_model_without_reading_labels(cnn, splits, tmp_path):
    """Wrong labels everywhere: label-free QAT still tracks the fp32 model, because it only learns from it."""
    rng = np.random.default_rng(0)
    few = dataclasses.replace(splits, x_train=splits.x_train[:256], y_train=rng.permutation(splits.y_train[:256]))
    q, rec = run_pass({"name": "quantize.qat", "epochs": 1, "label_free": True}, cnn, few, tmp_path)
    x = torch.from_numpy(splits.x_test)
    with torch.no_grad():
        agree = (q(x).argmax(1) == cnn(x).argmax(1)).float().mean().item()
    assert agree > 0.95 and "label-free" in rec.decision
