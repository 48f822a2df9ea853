"""Fine-tuning inside a pass with the recipe's own train settings (epochs and lr overridable)."""

from __future__ import annotations

from collections.abc import Callable


def train_config(ctx, epochs: int | None = None, lr: float | None = None):
    """The recipe's TrainConfig with pass overrides. Freezing is dropped: a compressed model trains every layer."""
    from edgekit.train.config import FreezeConfig, TrainConfig

    base = ctx.train if ctx.train is not None else TrainConfig(progress=False)
    update: dict = {"freeze": FreezeConfig()}
    if epochs is not None:
        update["epochs"] = epochs
    if lr is not None:
        update["optimizer"] = base.optimizer.model_copy(update={"lr": lr})
    return base.model_copy(update=update)


def finetune(model, ctx, epochs: int | None = None, lr: float | None = None, loss_fn: Callable | None = None):
    """Train `model` in place on the train split; returns the Trainer's History."""
    from edgekit.train.trainer import Trainer

    cfg = train_config(ctx, epochs, lr)
    if cfg.epochs == 0:
        return None
    return Trainer(cfg, ctx.splits, seed=ctx.seed, loss_fn=loss_fn).fit(model)
