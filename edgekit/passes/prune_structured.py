"""Structured (channel) pruning with torch-pruning's dependency graph: channels are removed for real, so a
dense runtime runs fewer MACs. Residual adds and depthwise convs are kept consistent by the graph."""

from __future__ import annotations

import copy
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from edgekit.errors import PassError
from edgekit.extras import Needs
from edgekit.passes.base import PassContext, TorchPass, Transformed
from edgekit.passes.torch_config import TorchPassConfig


class StructuredPruneConfig(TorchPassConfig):
    needs: ClassVar[Needs] = Needs("compress", ("torch_pruning",))
    """Remove a fraction of the channels of every prunable group (or enough to reach `target_macs`)."""

    name: Literal["prune.structured"]
    ratio: float = Field(default=0.5, gt=0, lt=1, description="fraction of channels removed per group; the cap when "
                                                               "target_macs is set")
    global_pruning: bool = Field(default=False, description="rank channels across layers instead of per layer")
    max_layer_ratio: float = Field(default=0.9, gt=0, le=1, description="global pruning: never remove more of one layer")
    importance: Literal["l1", "l2", "taylor", "random"] = "l2"
    taylor_batches: int = Field(default=4, ge=1, description="train batches of gradients for taylor importance")
    round_to: int | None = Field(default=None, ge=1, description="keep channel counts multiples of this (SIMD widths)")
    protect: list[str] = Field(default_factory=list, description="module names left unpruned (the classifier "
                                                                 "always is); see `edgekit analyze`")
    target_macs: float | None = Field(default=None, gt=0, lt=1, description="prune until MACs <= this fraction of the "
                                                                             "original")
    search_steps: int = Field(default=20, ge=2, description="target_macs: bisection steps searching the pruning ratio whose "
                                                            "MACs land at, or just under, the target")
    steps: int = Field(default=1, ge=1, description="iterative schedule: prune in this many steps")
    finetune_epochs: int = Field(default=0, ge=0, description="fine-tune after each step with the recipe's train settings")
    finetune_lr: float | None = Field(default=None, gt=0, description="default: the recipe's lr")


def _importance(cfg):
    import torch_pruning as tp

    return {
        "l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
        "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
        "taylor": lambda: tp.importance.GroupTaylorImportance(),
        "random": lambda: tp.importance.RandomImportance(),
    }[cfg.importance]()


def _widths(model) -> dict[str, int]:
    from torch import nn

    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            out[name] = m.out_channels
        elif isinstance(m, nn.Linear):
            out[name] = m.out_features
    return out


def protected_modules(model, names: list[str]) -> list:
    """The classifier plus the named modules; unknown names are an error that lists the real ones."""
    from edgekit.models.zoo import head_name

    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        known = list(_widths(model))
        raise PassError(f"prune.structured: protect names no module {missing}; conv/linear modules are {known}")
    head = head_name(model)
    return [modules[n] for n in dict.fromkeys(([head] if head else []) + list(names))]


def accumulate_gradients(model, splits, batches: int, seed: int, batch_size: int = 64) -> None:
    """Gradients of the cross-entropy on a few train batches (what Taylor importance reads)."""
    import torch

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(splits.y_train))[: batches * batch_size]
    model.zero_grad(set_to_none=True)
    was_training = model.training
    model.eval()
    for i in range(0, len(order), batch_size):
        idx = order[i: i + batch_size]
        xb, yb = torch.from_numpy(splits.x_train[idx]), torch.from_numpy(splits.y_train[idx])
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
    model.train(was_training)


TARGET_TOLERANCE = 0.03  # target_macs: a result further under the target than this is explained in the notes


def _one_shot_fraction(model, ctx, c, ratio: float, base_macs: int) -> float:
    """MAC fraction after pruning a copy of `model` at `ratio` in one step."""
    import torch
    import torch_pruning as tp

    from edgekit.models.stats import count_macs

    m = copy.deepcopy(model).eval()
    shape = ctx.splits.input_shape
    if c.importance == "taylor":
        accumulate_gradients(m, ctx.splits, c.taylor_batches, ctx.seed)
    tp.pruner.MetaPruner(m, torch.zeros(1, *shape), importance=_importance(c), global_pruning=c.global_pruning,
                         pruning_ratio=ratio, max_pruning_ratio=c.max_layer_ratio, iterative_steps=1,
                         ignored_layers=protected_modules(m, c.protect), round_to=c.round_to).step()
    return count_macs(m, shape) / max(base_macs, 1)


def _ratio_for_target(model, ctx, c, base_macs: int) -> tuple[float, list[tuple[float, float]]]:
    """The pruning ratio (at most `ratio`) whose MAC fraction is the largest at or under `target_macs`, by
    bisection; returns it and the (ratio, fraction) pairs tried."""
    tried = [(c.ratio, _one_shot_fraction(model, ctx, c, c.ratio, base_macs))]
    if tried[0][1] > c.target_macs:
        return c.ratio, [(round(r, 4), round(f, 4)) for r, f in tried]  # out of reach under the cap
    lo, hi, best = 0.0, c.ratio, tried[0]
    for _ in range(c.search_steps):
        mid = (lo + hi) / 2
        frac = _one_shot_fraction(model, ctx, c, mid, base_macs)
        tried.append((mid, frac))
        if frac <= c.target_macs + 1e-9:
            hi, best = mid, (mid, frac)
        else:
            lo = mid
        if c.target_macs - best[1] < 0.002 or hi - lo < 1e-3:
            break
    return best[0], [(round(r, 4), round(f, 4)) for r, f in tried]


class StructuredPrune(TorchPass):
    name = "prune.structured"

    def transform(self, module, ctx: PassContext) -> Transformed:
        import torch
        import torch_pruning as tp

        from edgekit.models.stats import count_macs
        from edgekit.passes.finetune import finetune

        c = self.config
        widths_before = _widths(module)
        shape = ctx.splits.input_shape
        example = torch.zeros(1, *shape)
        base_macs = count_macs(module, shape)
        protected_modules(module, c.protect)  # unknown names are an error before any work
        prune_ratio, searched = c.ratio, []
        try:
            if c.target_macs:
                prune_ratio, searched = _ratio_for_target(module, ctx, c, base_macs)
            pruner = tp.pruner.MetaPruner(
                module, example, importance=_importance(c), global_pruning=c.global_pruning, pruning_ratio=prune_ratio,
                max_pruning_ratio=c.max_layer_ratio, iterative_steps=c.steps,
                ignored_layers=protected_modules(module, c.protect), round_to=c.round_to,
            )
        except Exception as e:  # torch-pruning cannot trace every model
            raise PassError(f"prune.structured: torch-pruning could not build the dependency graph: {e}") from e
        trace, finetunes = [], 0
        for step in range(c.steps):
            if c.importance == "taylor":
                accumulate_gradients(module, ctx.splits, c.taylor_batches, ctx.seed + step)
            pruner.step()
            module.zero_grad(set_to_none=True)
            trace.append(round(count_macs(module, shape) / max(base_macs, 1), 4))
            if c.finetune_epochs:
                ctx.log(f"  step {step + 1}: MACs at {trace[-1]:.1%} of the original; fine-tuning {c.finetune_epochs} "
                        f"epochs")
                finetune(module, ctx, c.finetune_epochs, c.finetune_lr)
                finetunes += 1
        module.eval()
        widths_after = _widths(module)
        macs = count_macs(module, shape)
        decision = (f"{c.importance} importance, {'global' if c.global_pruning else 'per-layer'} ranking: "
                    f"MACs {base_macs:,} -> {macs:,} ({base_macs / max(macs, 1):.2f}x fewer) "
                    f"in {len(trace)} step(s), {finetunes} fine-tune round(s)")
        notes = [f"MAC fraction after each pruning step: {trace}"]
        if c.target_macs:
            notes.append(f"target_macs {c.target_macs}: pruning ratio {prune_ratio:.4f}, found by bisection "
                         f"(ratio -> MAC fraction: {searched})")
            if trace[-1] > c.target_macs + 1e-9:
                notes.append(f"target_macs {c.target_macs} NOT met: stopped at {trace[-1]:.3f} of the original "
                             f"with ratio cap {c.ratio}; raise `ratio` or protect fewer layers")
            elif c.target_macs - trace[-1] > TARGET_TOLERANCE:
                notes.append(f"target_macs {c.target_macs} undershot: {trace[-1]:.3f} of the original, the "
                             f"closest the channel granularity allows (whole channels"
                             f"{f', multiples of {c.round_to}' if c.round_to else ''}, coupled groups)")
        unchanged = [n for n in widths_before if widths_before[n] == widths_after.get(n)]
        if unchanged:
            notes.append(f"layers left at full width (protected or coupled to a protected output): {unchanged}")
        return Transformed(module=module, decision=decision, before={"channels": widths_before},
                           after={"channels": widths_after}, notes=notes)
