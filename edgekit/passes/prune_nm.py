"""N:M semi-structured sparsity (2:4 by default): in every group of M consecutive weights along a layer's input
dimension, only the N largest survive. Sparse tensor cores (and some NPUs) run such layers at up to M/N speed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edgekit.errors import PassError
from edgekit.passes.base import PassContext, TorchPass, Transformed
from edgekit.passes.torch_config import TorchPassConfig


class NMPruneConfig(TorchPassConfig):
    name: Literal["prune.nm"]
    n: int = Field(default=2, ge=1, description="weights kept per group")
    m: int = Field(default=4, ge=2, description="group size along the input dimension")
    protect: list[str] = Field(default_factory=list, description="module names left dense")
    include_head: bool = Field(default=False, description="also sparsify the classifier")
    finetune_epochs: int = Field(default=0, ge=0, description="fine-tune with the pattern held before folding it")
    finetune_lr: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _n_below_m(self):
        if self.n >= self.m:
            raise ValueError(f"n ({self.n}) must be smaller than m ({self.m})")
        return self


def _groups(w):
    """View of `w` with the input dimension last, cut into rows of consecutive input weights.
    Linear [out, in] -> rows along in; Conv [out, in, *k] -> permuted to [out, *k, in] (channel-last, as sparse
    tensor cores read it)."""
    return w.movedim(1, -1) if w.dim() > 2 else w


def nm_mask(w, n: int, m: int):
    """Keep the n largest |w| in each group of m consecutive input weights."""
    import torch

    v = _groups(w.detach())
    shape = v.shape
    flat = v.reshape(-1, m)
    keep = flat.abs().topk(n, dim=1).indices
    mask = torch.zeros_like(flat).scatter_(1, keep, 1.0).reshape(shape)
    return mask.movedim(-1, 1) if w.dim() > 2 else mask


def nm_supported(module, m: int) -> bool:
    return module.weight.shape[1] % m == 0


def nm_holds(w, n: int, m: int) -> bool:
    """True when every group of m consecutive input weights has at most n non-zeros."""
    v = _groups(w.detach())
    if v.shape[-1] % m:
        return False
    return bool(((v.reshape(-1, m) != 0).sum(1) <= n).all())


def check_nm(layers: dict, n: int, m: int) -> list[str]:
    """Names of layers whose weights break the n:m pattern (empty when it holds everywhere)."""
    return [name for name, mod in layers.items() if not nm_holds(mod.weight, n, m)]


class NMPrune(TorchPass):
    name = "prune.nm"

    def transform(self, module, ctx: PassContext) -> Transformed:
        from torch.nn.utils import prune

        from edgekit.passes.sparsity import DENSE_NOTE, sparsify, weight_layers

        c = self.config
        candidates = weight_layers(module, c.protect, c.include_head)
        layers = {k: v for k, v in candidates.items() if nm_supported(v, c.m)}
        skipped = sorted(set(candidates) - set(layers))
        if not layers:
            raise PassError(f"prune.nm: no layer has an input dimension divisible by m={c.m} (checked {list(candidates)})")
        def masks():
            for mod in layers.values():
                prune.custom_from_mask(mod, "weight", nm_mask(mod.weight, c.n, c.m))

        before, after = sparsify(module, layers, masks, ctx, c.finetune_epochs, c.finetune_lr)
        broken = check_nm(layers, c.n, c.m)
        if broken:
            raise PassError(f"prune.nm: the {c.n}:{c.m} pattern does not hold after folding in {broken}")
        after.update(pattern=f"{c.n}:{c.m}", pattern_holds=True)
        decision = (f"{c.n}:{c.m} sparsity along the input dimension of {len(layers)} layers "
                    f"({after['sparsity']:.1%} of their weights zero); pattern verified")
        notes = [f"left dense (input dimension not divisible by {c.m}, e.g. depthwise or the stem): {skipped}"]
        notes = notes if skipped else []
        return Transformed(module=module, decision=decision, before=before, after=after, notes=[*notes, DENSE_NOTE])
