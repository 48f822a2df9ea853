"""Fit and evaluate a classifier on numpy splits. Used by training, fine-tuning, distillation and QAT."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from edgekit.console import progress
from edgekit.errors import EdgekitError


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def make_loss(cfg, num_classes: int, y_train: np.ndarray) -> nn.Module:
    weights = None
    if cfg.class_weights == "balanced":
        counts = np.bincount(y_train, minlength=num_classes).astype(np.float64)
        weights = torch.tensor(len(y_train) / (num_classes * np.maximum(counts, 1)), dtype=torch.float32)
    elif isinstance(cfg.class_weights, list):
        if len(cfg.class_weights) != num_classes:
            raise EdgekitError(f"train.class_weights has {len(cfg.class_weights)} entries for {num_classes} classes")
        weights = torch.tensor(cfg.class_weights, dtype=torch.float32)
    if cfg.loss == "cross_entropy":
        return nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.label_smoothing)
    if cfg.loss == "bce":
        return _OneHot(nn.BCEWithLogitsLoss(pos_weight=weights), num_classes)
    return _OneHot(nn.MSELoss(), num_classes)


class _OneHot(nn.Module):
    """Adapts integer class labels to losses that want one target per output."""

    def __init__(self, inner: nn.Module, num_classes: int):
        super().__init__()
        self.inner, self.num_classes = inner, num_classes

    def forward(self, logits, y):
        return self.inner(logits, nn.functional.one_hot(y, self.num_classes).float())


def make_optimizer(params, cfg) -> torch.optim.Optimizer:
    o = cfg.optimizer
    factories = {
        "sgd": lambda: torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0,
                                       weight_decay=o.weight_decay),
        "adam": lambda: torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay),
        "adamw": lambda: torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay),
        "rmsprop": lambda: torch.optim.RMSprop(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay),
    }
    return factories[o.name]()


def make_scheduler(opt, cfg, steps_per_epoch: int):
    """Return (scheduler, step_per_batch)."""
    s, lr = cfg.schedule, cfg.optimizer.lr
    peak = s.max_lr or lr * 10
    total = max(1, cfg.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler
    factories = {
        "none": lambda: (None, False),
        "step": lambda: (sched.StepLR(opt, s.step_size, s.gamma), False),
        "exponential": lambda: (sched.ExponentialLR(opt, s.gamma), False),
        "cosine": lambda: (sched.CosineAnnealingLR(opt, max(1, cfg.epochs), eta_min=s.min_lr), False),
        "cyclic": lambda: (sched.CyclicLR(opt, base_lr=s.min_lr or lr / 10, max_lr=peak,
                                          step_size_up=max(1, steps_per_epoch * s.step_size // 2),
                                          cycle_momentum=cfg.optimizer.name in ("sgd", "rmsprop")), True),
        "onecycle": lambda: (sched.OneCycleLR(opt, max_lr=peak, total_steps=total), True),
    }
    return factories[s.name]()


def _frozen(name: str, freeze, head: str | None) -> bool:
    if freeze.layers == "all_but_head":
        return head is not None and not name.startswith(head + ".") and name != head
    return any(name == p or name.startswith(p + ".") for p in freeze.layers)


def apply_freeze(model: nn.Module, freeze) -> list[str]:
    """Freeze parameters by name prefix; returns the frozen names."""
    from edgekit.models.zoo import head_name

    head = head_name(model)
    frozen = []
    for name, p in model.named_parameters():
        if _frozen(name, freeze, head):
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def _dropped(_line: str) -> None:
    """Progress lines of a run with `train.progress: false`."""


class Trainer:
    """Minibatch training with validation, early stopping (best weights restored) and LR schedules.

    `loss_fn(model, xb, yb) -> loss` can be replaced (distillation, QAT) while keeping the loop.
    """

    def __init__(self, cfg, splits, seed: int = 0, loss_fn: Callable | None = None, log: Callable | None = None,
                 on_epoch: Callable[[int, float], None] | None = None):
        self.cfg, self.splits, self.seed = cfg, splits, seed
        self.on_epoch = on_epoch  # (epoch, val_accuracy) after each epoch; may raise to stop (a search pruning)
        self.criterion = make_loss(cfg, splits.num_classes, splits.y_train)
        self.loss_fn = loss_fn or (lambda model, xb, yb: self.criterion(model(xb), yb))
        self.log = log or (lambda msg: None)

    def _batches(self, rng: np.random.Generator):
        x, y, bs = self.splits.x_train, self.splits.y_train, self.cfg.batch_size
        if self.cfg.oversample:
            counts = np.bincount(y, minlength=self.splits.num_classes).astype(np.float64)
            p = (1.0 / np.maximum(counts, 1))[y]
            order = rng.choice(len(y), len(y), replace=True, p=p / p.sum())
        else:
            order = rng.permutation(len(y))
        for i in range(0, len(order), bs):
            idx = order[i: i + bs]
            xb = torch.from_numpy(self._augment(x[idx], rng))
            yield xb, torch.from_numpy(y[idx])

    def _augment(self, xb: np.ndarray, rng) -> np.ndarray:
        from edgekit.data.augment import augment_batch

        return augment_batch(xb, self.splits.augment, rng)

    def fit(self, model: nn.Module) -> History:
        cfg = self.cfg
        seed_everything(self.seed)
        rng = np.random.default_rng(self.seed)
        frozen = apply_freeze(model, cfg.freeze)
        opt = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg)
        steps = math.ceil(len(self.splits.y_train) / cfg.batch_size)
        sched, per_batch = make_scheduler(opt, cfg, steps)
        hist = History()
        best_loss, best_state, bad_epochs = math.inf, None, 0
        with progress("epoch", cfg.epochs, log=None if cfg.progress else _dropped) as bar:
            for epoch in range(cfg.epochs):
                if frozen and cfg.freeze.unfreeze_after is not None and epoch == cfg.freeze.unfreeze_after:
                    for p in model.parameters():
                        p.requires_grad_(True)
                    opt = make_optimizer(model.parameters(), cfg)
                    for g in opt.param_groups:
                        g["lr"] = g["lr"] * cfg.freeze.finetune_lr_factor
                    sched, per_batch = None, False
                    frozen = []
                model.train()
                total, n = 0.0, 0
                for xb, yb in self._batches(rng):
                    opt.zero_grad(set_to_none=True)
                    loss = self.loss_fn(model, xb, yb)
                    if not torch.isfinite(loss):
                        raise EdgekitError(f"training diverged at epoch {epoch + 1}: loss is {loss.item()}; lower the lr")
                    loss.backward()
                    if cfg.grad_clip:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    opt.step()
                    if sched is not None and per_batch:
                        sched.step()
                    total += loss.item() * len(yb)
                    n += len(yb)
                if sched is not None and not per_batch:
                    sched.step()
                hist.train_loss.append(total / max(n, 1))
                hist.lr.append(opt.param_groups[0]["lr"])
                val_loss, val_acc = self.evaluate(model, self.splits.x_val, self.splits.y_val)
                hist.val_loss.append(val_loss)
                hist.val_accuracy.append(val_acc)
                bar.update(epoch + 1, f"loss {hist.train_loss[-1]:.4f} val_loss {val_loss:.4f} val_acc {val_acc:.4f}")
                if self.on_epoch is not None:
                    self.on_epoch(epoch, val_acc)
                if cfg.early_stopping is not None and len(self.splits.y_val):
                    if val_loss < best_loss - cfg.early_stopping.min_delta:
                        best_loss, bad_epochs, hist.best_epoch = val_loss, 0, epoch
                        best_state = copy.deepcopy(model.state_dict())
                    else:
                        bad_epochs += 1
                        if bad_epochs >= cfg.early_stopping.patience:
                            hist.stopped_early = True
                            break
        if best_state is not None:
            model.load_state_dict(best_state)
        for p in model.parameters():
            p.requires_grad_(True)
        model.eval()
        return hist

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        if len(y) == 0:
            return float("nan"), float("nan")
        was_training = model.training
        model.eval()
        losses, correct = 0.0, 0
        for i in range(0, len(y), 512):
            xb, yb = torch.from_numpy(x[i: i + 512]), torch.from_numpy(y[i: i + 512])
            out = model(xb)
            losses += self.criterion(out, yb).item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
        model.train(was_training)
        return losses / len(y), correct / len(y)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Logits of a torch model on a numpy array."""
    model.eval()
    outs = [model(torch.from_numpy(x[i: i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,))
