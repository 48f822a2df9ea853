import numpy as np
import pytest
import torch
from helpers import TINY_MODELS

from edgekit.models import build_model
from edgekit.models.config import CnnConfig, MlpConfig
from edgekit.train.config import TrainConfig
from edgekit.train.trainer import Trainer, apply_freeze, seed_everything


def _cnn(splits):
    seed_everything(0)
    return build_model(CnnConfig(**TINY_MODELS["cnn"]), splits.input_shape, splits.num_classes)


@pytest.mark.parametrize("opt,sched", [("sgd", "step"), ("adam", "cosine"), ("adamw", "onecycle"),
                                       ("rmsprop", "exponential"), ("sgd", "cyclic")])
def test_training_reduces_loss(splits, opt, sched):
    lr = {"sgd": 0.05, "rmsprop": 0.003}.get(opt, 0.01)
    cfg = TrainConfig(epochs=3, optimizer={"name": opt, "lr": lr}, schedule={"name": sched, "step_size": 1, "gamma": 0.9},
                      grad_clip=5.0, progress=False)
    model = _cnn(splits)
    hist = Trainer(cfg, splits).fit(model)
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.val_accuracy[-1] > 0.3


def test_early_stopping_triggers_and_restores_best(splits):
    # a huge learning rate makes validation loss stop improving quickly
    cfg = TrainConfig(epochs=40, optimizer={"name": "sgd", "lr": 2.0, "momentum": 0.9}, grad_clip=100.0,
                      early_stopping={"patience": 2}, progress=False)
    model = _cnn(splits)
    trainer = Trainer(cfg, splits)
    hist = trainer.fit(model)
    assert hist.stopped_early and len(hist.val_loss) < 40
    best = min(hist.val_loss)
    assert hist.val_loss[hist.best_epoch] == best
    loss, _ = trainer.evaluate(model, splits.x_val, splits.y_val)
    assert loss == pytest.approx(best, rel=1e-4)


def test_seeded_training_is_deterministic(splits):
    cfg = TrainConfig(epochs=2, progress=False)
    a, b = _cnn(splits), _cnn(splits)
    Trainer(cfg, splits, seed=3).fit(a)
    Trainer(cfg, splits, seed=3).fit(b)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k


def test_freeze_all_but_head_then_unfreeze(splits):
    model = _cnn(splits)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(epochs=2, freeze={"layers": "all_but_head"}, progress=False)
    Trainer(cfg, splits).fit(model)
    after = model.state_dict()
    assert torch.equal(before["features.0.0.weight"], after["features.0.0.weight"])
    assert not torch.equal(before["head.fc.weight"], after["head.fc.weight"])
    model2 = _cnn(splits)
    cfg2 = TrainConfig(epochs=2, freeze={"layers": ["features.0"], "unfreeze_after": 1}, progress=False)
    Trainer(cfg2, splits).fit(model2)
    assert not torch.equal(before["features.0.0.weight"], model2.state_dict()["features.0.0.weight"])
    assert all(p.requires_grad for p in model2.parameters())


def test_imbalance_options_and_losses(splits):
    keep = np.concatenate([np.flatnonzero(splits.y_train == 0)[:5], np.flatnonzero(splits.y_train != 0)])
    import dataclasses

    imb = dataclasses.replace(splits, x_train=splits.x_train[keep], y_train=splits.y_train[keep])
    for loss in ("cross_entropy", "bce", "mse"):
        cfg = TrainConfig(epochs=1, loss=loss, class_weights="balanced" if loss != "mse" else "none", oversample=True,
                          progress=False)
        model = build_model(MlpConfig(arch="mlp", hidden=[16]), splits.input_shape, 10)
        hist = Trainer(cfg, imb).fit(model)
        assert np.isfinite(hist.train_loss[-1])


def test_apply_freeze_by_prefix(splits):
    model = _cnn(splits)
    frozen = apply_freeze(model, TrainConfig(freeze={"layers": ["head"]}).freeze)
    assert frozen == ["head.fc.weight", "head.fc.bias"]
