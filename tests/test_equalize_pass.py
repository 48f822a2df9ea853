"""The `equalize` torch pass: BN folded, conv pairs equalized, the fp32 function kept."""

import numpy as np
import torch

from edgekit.models import build_model
from edgekit.models.config import MobilenetV2Config
from edgekit.passes.apply import apply_pass
from edgekit.passes.equalize import EqualizeConfig
from tests.helpers import TINY_MODELS


def test_equalize_pass_keeps_the_function_and_folds_batchnorm(splits, tmp_path):
    torch.manual_seed(0)
    model = build_model(MobilenetV2Config(**TINY_MODELS["mobilenet_v2"]), splits.input_shape, splits.num_classes).eval()
    with torch.no_grad():  # give the BN layers non-trivial statistics, as training would
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.2, 3.0)
    x = torch.from_numpy(np.ascontiguousarray(splits.x_test[:128]))
    with torch.no_grad():
        ref = model(x)
    cfg = EqualizeConfig(name="equalize", latency=False, relu6="skip", high_bias_absorption=False)
    done = apply_pass(model, cfg, splits, work_dir=tmp_path)
    exact, rec = done.output.module, done.record
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in exact.modules())
    with torch.no_grad():
        assert (exact(x) - ref).abs().max() < 1e-4  # no ReLU6 scaling, no bias moved: exact everywhere
    assert rec.before["pairs"] >= 1 and rec.after["ratio_spread"] <= rec.before["ratio_spread"] + 1e-6
    done = apply_pass(model, EqualizeConfig(name="equalize", latency=False), splits, work_dir=tmp_path)
    calibrated, rec = done.output.module, done.record
    with torch.no_grad():  # exact inside the calibrated ranges, close beyond them
        assert (calibrated(x) - ref).abs().max() < 0.02 * ref.abs().max()
    assert rec.after["ratio_spread"] < rec.before["ratio_spread"] and "equalized" in rec.decision
    assert rec.after["max_abs_change"] < 0.02 * ref.abs().max()
