"""Weight-only INT8/INT4 of Linear layers with Intel Neural Compressor 3.x RTN (round-to-nearest, no calibration).

What each runtime gets: INC packs the int weights into INCWeightOnlyLinear modules, which only PyTorch with INC
runs. That packed model does not go through torch.export (INC unpacks with .numpy() during tracing), so the model
handed on to the exporters is the same network with the int weights dequantized back into plain nn.Linear layers:
the ONNX/TFLite/.pt2 artifacts carry float32 weights holding exactly the int-rounded values. They measure the
accuracy cost of int-N weights, not their size or speed. The packed weights are kept as a safetensors artifact
(its size is the real weight-only footprint) and the pass record lists every quantized layer.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from edgekit.extras import Needs
from edgekit.names import Name
from edgekit.passes.base import PassContext, TorchPass, Transformed
from edgekit.passes.torch_config import TorchPassConfig

PACKED_CLASS = "INCWeightOnlyLinear"


class WeightOnlyConfig(TorchPassConfig):
    """RTN weight-only quantization of nn.Linear weights; activations stay float."""

    needs: ClassVar[Needs] = Needs("compress", ("neural_compressor", "accelerate"))

    name: Literal["quantize.weight_only"]
    bits: Literal[4, 8] = 8
    group_size: int | None = Field(default=None, description="-1: one scale per output channel; N: per group of N input "
                                                             "weights (default: -1 for 8 bits, 32 for 4 bits)")
    scheme: Literal["sym", "asym"] = "sym"
    include_head: bool = Field(default=False, description="also quantize the classifier (the last Linear)")
    skip: list[str] = Field(default_factory=list, description="Linear module names kept in float")
    latency: bool = Field(default=False, description="time the model in ONNX Runtime before and after (off by default: the "
                                                     "exported graphs are identical, only weight values change)")
    artifact: Name = Field(default="torch-weight-only",
                           description="file stem of the packed weights (artifacts/<artifact>.safetensors)")

    @property
    def effective_group_size(self) -> int:
        return self.group_size if self.group_size is not None else (-1 if self.bits == 8 else 32)


@contextlib.contextmanager
def _quiet_inc():
    logger = logging.getLogger("neural_compressor")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def inc_workspace():
    """INC creates ./nc_workspace/<time>/ in the current directory the first time it reads its workspace option:
    point that option at a temporary folder for the duration, and put the previous value back."""
    import tempfile

    from neural_compressor.common import options

    previous = options._workspace  # read without the getter, which would create the folder
    with tempfile.TemporaryDirectory(prefix="edgekit-inc-") as tmp:
        options.workspace = tmp
        try:
            yield tmp
        finally:
            options.workspace = previous


def dequantized_copy(packed):
    """The packed model with every INCWeightOnlyLinear replaced by an nn.Linear holding its recovered weights."""
    import torch
    from torch import nn

    model = copy.deepcopy(packed)
    for name, m in list(model.named_modules()):
        if type(m).__name__ != PACKED_CLASS:
            continue
        lin = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(m.recover().float())
            if m.bias is not None:
                lin.bias.copy_(m.bias.float())
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, lin)
    return model.eval()


class WeightOnly(TorchPass):
    name = "quantize.weight_only"

    def transform(self, model, ctx: PassContext) -> Transformed:
        from torch import nn

        from edgekit.errors import PassError
        from edgekit.export.artifact import artifact_target, file_sha256
        from edgekit.models.checkpoint import save_checkpoint
        from edgekit.models.zoo import head_name

        try:
            from neural_compressor.torch.quantization import RTNConfig, convert, prepare
        except ImportError as e:
            raise PassError(f"quantize.weight_only needs neural-compressor 3.x and accelerate: {e}") from e
        c = self.config
        linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        unknown = sorted(set(c.skip) - set(linears))
        if unknown:
            raise PassError(f"quantize.weight_only: skip names {unknown} are not Linear layers of the model "
                            f"(Linear layers: {sorted(linears)[:10]})")
        head = head_name(model)
        keep = set(c.skip) | ({head} if head is not None and not c.include_head else set())
        gs = c.effective_group_size
        qcfg = RTNConfig(bits=c.bits, group_size=gs, use_sym=c.scheme == "sym")
        for name in sorted(keep):
            qcfg.set_local(name, RTNConfig(dtype="fp32"))
        with _quiet_inc(), inc_workspace():
            packed = convert(prepare(model, qcfg))  # pyright: ignore[reportArgumentType]  (INC types prepare loosely)
        quantized = sorted(n for n, m in packed.named_modules() if type(m).__name__ == PACKED_CLASS)
        if not quantized:
            raise PassError(f"quantize.weight_only: no Linear layer was quantized (Linear layers: {sorted(linears)}, "
                            f"kept float: {sorted(keep)})")
        path = artifact_target(ctx.run_dir, c.artifact, ".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(packed, path, {"pass": "quantize.weight_only", "bits": c.bits, "group_size": gs,
                                       "scheme": c.scheme, "quantized_layers": quantized, "format": "INC RTN packed"})
        fp32_bytes = sum(linears[n].weight.numel() * 4 for n in quantized)
        packed_bytes = sum(t.numel() * t.element_size() for n, m in packed.named_modules() if n in quantized
                           for k, t in m.state_dict().items() if k != "bias")
        exportable, why = _torch_exports(packed, ctx)
        dequant = dequantized_copy(packed)
        after = {"quantized_layers": quantized,
                 "kept_float": sorted(set(linears) - set(quantized)),
                 "quantized_weight_bytes": int(packed_bytes), "fp32_weight_bytes_of_those_layers": int(fp32_bytes),
                 "packed_weights": {"path": str(path.relative_to(Path(ctx.run_dir).resolve())),
                                    "size_bytes": path.stat().st_size,
                                    "sha256": file_sha256(path), "runtime": "PyTorch + neural-compressor "
                                                                           "(INCWeightOnlyLinear)"},
                 "packed_model_torch_export": "ok" if exportable else why}
        decision = (f"RTN weight-only int{c.bits} ({c.scheme}, group size {gs}) on {len(quantized)} of {len(linears)} "
                    f"Linear layers; their weights {fp32_bytes / 1024:.1f} KiB fp32 -> {packed_bytes / 1024:.1f} KiB "
                    f"packed (scales and zero points included), kept in {after['packed_weights']['path']}")
        notes = ["exports (ONNX, TFLite, .pt2) of this model carry float32 weights holding the int-rounded "
                         "values: they measure the accuracy of int weights, not their size or speed (ONNX Runtime's "
                         "MatMulNBits or INC's own PyTorch kernels are the runtimes that use packed weights)"]
        if not exportable:
            notes.append(f"the packed INC model does not export: torch.export fails ({why}); the exporters get "
                         f"the dequantized copy, and the packed weights stay a PyTorch/INC artifact")
        return Transformed(module=dequant, decision=decision, after=after, notes=notes)


def _torch_exports(packed, ctx) -> tuple[bool, str]:
    """Whether the packed INC model goes through torch.export (what every exporter here builds on)."""
    import warnings

    import numpy as np
    import torch

    from edgekit.runtimes.base import as_model_input

    x = torch.from_numpy(np.ascontiguousarray(as_model_input(ctx.splits.x_calib[:2])))
    try:
        with warnings.catch_warnings(), _quiet_inc(), inc_workspace():
            warnings.simplefilter("ignore")
            torch.export.export(packed, (x,))
        return True, ""
    except Exception as e:  # torch.export raises many types for untraceable code
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        return False, f"{type(e).__name__}: {lines[-1] if lines else ''}"[:300]
