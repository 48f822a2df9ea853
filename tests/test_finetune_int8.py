"""Label-free fine-tuning for int8: its simulation computes what ONNX Runtime's QDQ model computes, and the
fine-tuning lowers the simulated int8 model's distance to the fp32 logits without reading a label."""

import numpy as np
import torch

from edgekit.bench.quick import export_temp_onnx
from edgekit.export.parity import compare
from edgekit.passes.base import PassContext
from edgekit.passes.ort_quantize import StaticQuantConfig, StaticQuantize, _preprocess
from edgekit.quant.bias_correction import quant_layers
from edgekit.quant.calibrate import calibrate_modules
from edgekit.quant.finetune import finetune_for_int8, simulated_int8
from edgekit.quant.fold import fold_batchnorm
from edgekit.runtimes import get_runtime
from edgekit.train.trainer import predict


def test_simulation_matches_onnxruntime_int8(cnn, splits, tmp_path):
    refs = {"val": predict(cnn, splits.x_val), "calib": predict(cnn, splits.x_calib)}
    ctx = PassContext(splits=splits, run_dir=tmp_path, reference_logits=refs, log=lambda m: None)
    export_temp_onnx(cnn, splits.x_calib[:1], tmp_path / "m.onnx")
    pre = _preprocess(tmp_path / "m.onnx", tmp_path / "pre.onnx")
    q = StaticQuantize(StaticQuantConfig(name="quantize.static", format="qdq", activation_type="uint8",
                                         per_channel=True, saturation_safe=True, bias_correction=False))
    q.build(pre, tmp_path / "q.onnx", "qdq", "uint8", True, ctx)
    ort_int8 = get_runtime("onnxruntime").load(tmp_path / "q.onnx").run(splits.x_test)

    m = fold_batchnorm(cnn)
    batches = [torch.from_numpy(splits.x_calib[i: i + 32]) for i in range(0, len(splits.x_calib), 32)]
    ranges = calibrate_modules(m, batches, quant_layers(m), "minmax", inputs=True)
    fp32 = predict(m, splits.x_test)
    with simulated_int8(m, ranges, (float(refs["calib"].min()), float(refs["calib"].max())), True, True):
        sim = predict(m, splits.x_test)
    assert compare(ort_int8, sim)["mean_abs"] < 0.5 * compare(ort_int8, fp32)["mean_abs"]  # closer to ORT than fp32
    assert np.allclose(predict(m, splits.x_test), fp32)  # leaving the context restores the float model


def test_finetuning_lowers_the_simulated_loss_without_labels(cnn, splits):
    x = splits.x_calib
    res = finetune_for_int8(cnn, x, epochs=4, lr=1e-4, log=lambda m: None)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0], losses
    assert res.best_epoch in range(0, 5) and res.cosine_plain is not None
    before = dict(fold_batchnorm(cnn).named_parameters())
    after = dict(res.model.named_parameters())
    assert after.keys() == before.keys()  # a plain float model again: no parametrization left behind
    assert all(after[k].dtype == torch.float32 and after[k].shape == before[k].shape for k in before)


def test_without_holdout_every_image_trains_and_the_last_epoch_is_kept(cnn, splits):
    res = finetune_for_int8(cnn, splits.x_calib[:64], epochs=2, lr=1e-4, holdout=0, log=lambda m: None)
    assert res.best_epoch == 2 and len(res.history) == 2
