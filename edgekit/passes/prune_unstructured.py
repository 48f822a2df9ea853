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

        from edgekit.passes.sparsity import DENSE_NOTE, sparsify, weight_layers

        c = self.config
        layers = weight_layers(module, c.protect, c.include_head)

        def masks():
            if c.scope == "global":
                prune.global_unstructured([(m, "weight") for m in layers.values()], pruning_method=prune.L1Unstructured,
                                          amount=c.sparsity)
            else:
                for m in layers.values():
                    prune.l1_unstructured(m, "weight", amount=c.sparsity)

        before, after = sparsify(module, layers, masks, ctx, c.finetune_epochs, c.finetune_lr)
        decision = (f"{c.scope} magnitude pruning of {len(layers)} layers to {after['sparsity']:.1%} sparsity; "
                    f"gzip size {before['gzip_bytes'] / 1024:.1f} -> {after['gzip_bytes'] / 1024:.1f} KiB")
        return Transformed(module=module, decision=decision, before=before, after=after, notes=[DENSE_NOTE])
