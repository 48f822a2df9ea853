"""Label-free fine-tuning for int8: its simulation computes what ONNX Runtime's QDQ model and LiteRT's int8 model
compute, and the fine-tuning lowers the simulated int8 model's distance to the fp32 logits without reading a label."""

import numpy as np
import pytest
import torch
from helpers import cosine

from edgekit.bench.quick import export_temp_onnx
from edgekit.export.parity import compare
from edgekit.passes.apply import as_handle, pass_context
from edgekit.passes.ort_quantize import StaticQuantConfig, StaticQuantize, preprocess
from edgekit.quant.bias_correction import quant_layers
from edgekit.quant.calibrate import calibrate_modules
from edgekit.quant.finetune import finetune_for_int8, simulated_int8, unfused_layers
from edgekit.quant.fold import fold_batchnorm
from edgekit.runtimes import get_runtime
from edgekit.train.trainer import predict


def _onnxruntime_int8(cnn, splits, tmp_path):
    export_temp_onnx(cnn, splits.x_calib[:1], tmp_path / "m.onnx")
    ctx = pass_context(as_handle(tmp_path / "m.onnx", splits, tmp_path), splits, tmp_path, reference=cnn)
    pre, _ = preprocess(tmp_path / "m.onnx", tmp_path / "pre.onnx")
    q = StaticQuantize(StaticQuantConfig(name="quantize.static", format="qdq", activation_type="uint8",
                                         per_channel=True, saturation_safe=True, bias_correction=False))
    q.build(pre, tmp_path / "q.onnx", "qdq", "uint8", True, ctx)
    return get_runtime("onnxruntime").load(tmp_path / "q.onnx").run(splits.x_test)


def _litert_int8(cnn, splits, tmp_path):
    pytest.importorskip("litert_torch")
    from edgekit.export.config import TfliteExport
    from edgekit.export.tflite import TfliteExporter

    cfg = TfliteExport(format="tflite", precision="int8")
    TfliteExporter().export(cnn, splits.x_test, cfg, tmp_path / "q.tflite", tmp_path, "q",
                            calibration=splits.x_calib, batch_size=8)
    return get_runtime("litert").load(tmp_path / "q.tflite").run(splits.x_test)


# runtime -> (its int8 model's outputs, weight grid the runtime needs: saturation-safe for ORT's AVX2 U8S8 kernel)
INT8 = {"onnxruntime": (_onnxruntime_int8, True), "litert": (_litert_int8, False)}


def _simulated_int8(model, splits, saturation_safe: bool = False):
    """(`model` BN-folded, its outputs on the test images under simulated int8 calibrated on the calibration images:
    what the ONNX pass does with a fine-tuned float model)."""
    m = fold_batchnorm(model)
    batches = [torch.from_numpy(splits.x_calib[i: i + 32]) for i in range(0, len(splits.x_calib), 32)]
    layers = quant_layers(m)
    out = predict(model, splits.x_calib)
    ranges = calibrate_modules(m, batches, layers, "minmax", inputs=True)
    with simulated_int8(m, ranges, (float(out.min()), float(out.max())), True, saturation_safe,
                        output_ranges=calibrate_modules(m, batches, unfused_layers(m, layers), "minmax")):
        return m, predict(m, splits.x_test)


@pytest.mark.parametrize("runtime", sorted(INT8))
def test_simulation_matches_the_runtimes_int8(runtime, cnn, splits, tmp_path):
    build, saturation_safe = INT8[runtime]
    real_int8 = build(cnn, splits, tmp_path)
    m, sim = _simulated_int8(cnn, splits, saturation_safe)
    fp32 = predict(fold_batchnorm(cnn), splits.x_test)
    # closer to the runtime's int8 than fp32 is
    assert compare(real_int8, sim)["mean_abs"] < 0.5 * compare(real_int8, fp32)["mean_abs"]
    assert np.allclose(predict(m, splits.x_test), fp32)  # leaving the context restores the float model


def test_finetuning_brings_the_simulated_int8_model_closer_to_fp32_without_labels(cnn, splits):
    """An outcome on images the fine-tuning never saw, with a margin (measured about 0.65-0.71 of plain rounding's
    cosine distance over four seeds); not a loss trajectory, which differs between CPUs' kernels."""
    res = finetune_for_int8(cnn, splits.x_calib, epochs=4, lr=1e-4, log=lambda m: None)
    fp32 = predict(cnn, splits.x_test)
    plain = 1 - cosine(_simulated_int8(cnn, splits)[1], fp32)
    tuned = 1 - cosine(_simulated_int8(res.model, splits)[1], fp32)
    assert tuned < 0.85 * plain, (tuned, plain)
    assert res.cosine_after >= res.cosine_before and res.best_epoch in range(0, 5) and len(res.history) == 4
    before = dict(fold_batchnorm(cnn).named_parameters())
    after = dict(res.model.named_parameters())
    assert after.keys() == before.keys()  # a plain float model again: no parametrization left behind
    assert all(after[k].dtype == torch.float32 and after[k].shape == before[k].shape for k in before)


def test_without_holdout_every_image_trains_and_the_last_epoch_is_kept(cnn, splits):
    res = finetune_for_int8(cnn, splits.x_calib[:64], epochs=2, lr=1e-4, holdout=0, log=lambda m: None)
    assert res.best_epoch == 2 and len(res.history) == 2


def test_finetuning_is_reused_for_the_same_inputs_and_stops_at_its_deadline(cnn, splits):
    """ONNX QDQ per-channel and TFLite int8 share one simulated grid: the second format reuses the first's work
    (same weights); a deadline already past lets one epoch run, then stops."""
    from edgekit.timing import now

    x = splits.x_calib[:40]
    kw = dict(epochs=2, lr=1e-5, batch=10, per_channel=True, saturation_safe=False, log=lambda m: None)
    first = finetune_for_int8(cnn, x, **kw)
    again = finetune_for_int8(cnn, x, **kw)
    assert not first.reused and again.reused and again.best_epoch == first.best_epoch
    a, b = first.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = finetune_for_int8(cnn, x, **{**kw, "saturation_safe": True})  # another grid: fine-tuned anew
    assert not other.reused
    hurried = finetune_for_int8(cnn, x[:30], **{**kw, "epochs": 5}, deadline=now())
    assert hurried.stopped_by_deadline and len(hurried.history) == 1
