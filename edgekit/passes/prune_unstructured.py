"""Unstructured magnitude sparsity: the smallest weights become zero (global or per-layer ranking)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgekit.passes.base import PassContext, TorchPass, Transformed
from edgekit.passes.torch_config import TorchPassConfig


class UnstructuredPruneConfig(TorchPassConfig):
    """Zero the `sparsity` fraction of smallest-magnitude conv/linear weights; masks are folded in at the end."""

    name: Literal["prune.unstructured"]
    sparsity: float = Field(default=0.5, gt=0, lt=1)
    scope: Literal["global", "layer"] = Field(default="global", description="rank weights across layers or within each")
    protect: list[str] = Field(default_factory=list, description="module names left dense")
    include_head: bool = Field(default=False, description="also sparsify the classifier")
    finetune_epochs: int = Field(default=0, ge=0, description="fine-tune with the masks held before folding them")
    finetune_lr: float | None = Field(default=None, gt=0)


class UnstructuredPrune(TorchPass):
    name = "prune.unstructured"

    def transform(self, module, ctx: PassContext) -> Transformed:
        from torch.nn.utils import prune

        from edgekit.passes.finetune import finetune
        from edgekit.passes.sparsity import (
            DENSE_NOTE,
            fold_masks,
            gzip_bytes,
            layer_sparsity,
            overall_sparsity,
            weight_layers,
        )

        c = self.config
        layers = weight_layers(module, c.protect, c.include_head)
        gzip_before = gzip_bytes(module)
        if c.scope == "global":
            prune.global_unstructured([(m, "weight") for m in layers.values()], pruning_method=prune.L1Unstructured,
                                      amount=c.sparsity)
        else:
            for m in layers.values():
                prune.l1_unstructured(m, "weight", amount=c.sparsity)
        if c.finetune_epochs:
            finetune(module, ctx, c.finetune_epochs, c.finetune_lr)
        fold_masks(layers)
        after = {"gzip_bytes": gzip_bytes(module), "sparsity": overall_sparsity(layers),
                 "layer_sparsity": layer_sparsity(layers)}
        decision = (f"{c.scope} magnitude pruning of {len(layers)} layers to {after['sparsity']:.1%} sparsity; "
                    f"gzip size {gzip_before / 1024:.1f} -> {after['gzip_bytes'] / 1024:.1f} KiB")
        return Transformed(module=module, decision=decision, before={"gzip_bytes": gzip_before}, after=after,
                           notes=[DENSE_NOTE])
