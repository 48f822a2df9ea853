"""Quantization-aware training with PT2E: torch.export, fake-quantize with the XNNPACK-style quantizer (int8
per-channel weights, int8 activations), fine-tune, convert. The result is a GraphModule with explicit
quantize/dequantize ops, which the dynamo ONNX exporter turns into a QDQ model."""

from __future__ import annotations

import copy
import warnings
from typing import ClassVar, Literal

from pydantic import Field

from edgekit.errors import PassError
from edgekit.extras import Needs
from edgekit.passes.base import PassContext, TorchPass, Transformed
from edgekit.passes.torch_config import TorchPassConfig

EXPORT_NOTE = ("export this model with `exporter: dynamo` (the legacy exporter has no symbolic for the "
               "quantized_decomposed ops) and a loosened parity tolerance (e.g. max_abs: null, min_cosine: 0.999, "
               "min_top1: 0.98): ONNX Runtime's int8 kernels round differently from torch's fake-quant reference. The "
               "file is a QDQ int8 model whatever the export target's precision label says: give the target a `name` "
               "such as onnx-qat-int8")


class QatConfig(TorchPassConfig):
    needs: ClassVar[Needs] = Needs("compress", ("torchao|executorch",))
    name: Literal["quantize.qat"]
    epochs: int = Field(default=3, ge=1, description="fine-tuning epochs with fake quantization")
    lr: float | None = Field(default=None, gt=0, description="default: the recipe's lr (a tenth of it is a common choice)")
    per_channel: bool = True
    simplify: bool = Field(default=True, description="fold batch-norm into the preceding conv and remove dropout before "
                                                     "QAT (the fine-tune then runs without dropout). Otherwise torchao "
                                                     "re-traces ~100 op patterns in convert and some on every train/eval "
                                                     "switch: minutes on 2 cores")
    reduce_range: bool = Field(default=True, description="7-bit weights (-63..63). ONNX Runtime's x86 int8 conv kernels "
                                                         "saturated with full-range weights here (wrong outputs); turn off "
                                                         "for TFLite/XNNPACK targets")
    label_free: bool = Field(default=False, description="fine-tune to match the fp32 model's outputs (KL divergence at "
                                                        "`temperature`, the fp32 model as teacher) instead of the labels: "
                                                        "for users who have inputs but no labels")
    temperature: float = Field(default=2.0, gt=0, description="label_free: softmax temperature of the matching loss")


def xnnpack_quantizer(per_channel: bool, reduce_range: bool, is_qat: bool = True):
    """The XNNPACK-style PT2E quantizer: ExecuTorch's when installed, else the copy torchao 0.18 keeps in
    torchao.testing (deprecated there, moved to ExecuTorch; litert-torch's PT2EQuantizer fails to annotate
    conv-bn for QAT against torchao 0.18)."""
    import dataclasses

    try:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config
    qconfig = get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=is_qat)
    if reduce_range:
        weight = dataclasses.replace(qconfig.weight, quant_min=-63, quant_max=63)  # pyright: ignore[reportArgumentType]
        qconfig = dataclasses.replace(qconfig, weight=weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return XNNPACKQuantizer().set_global(qconfig)  # pyright: ignore[reportArgumentType]  (executorch's or torchao's)


def export_for_quantization(model, x):
    """torch.export with a dynamic batch axis; the example needs two or more samples."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=65536)
    return torch.export.export(model.eval(), (x,), dynamic_shapes=({0: batch},)).module()


def simplify_graph(gm):
    """Fold eval-mode batch-norm into the preceding conv (what PT2E PTQ does) and remove dropout nodes."""
    import torch

    try:
        from torchao.quantization.pt2e.utils import _fuse_conv_bn_

        _fuse_conv_bn_(gm)
    except ImportError:  # moved in a later torchao: QAT then trains conv-bn unfolded (slower, same result)
        pass
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target in (torch.ops.aten.dropout.default, torch.ops.aten.dropout_.default):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def allow_train_eval(gm):
    """Let the Trainer call train()/eval() on an exported graph. torchao's switch re-traces dropout and batch-norm
    patterns on every call; a graph that has neither gets a free switch."""
    import types

    from torchao.quantization.pt2e import allow_exported_model_train_eval

    modal = any(n.op == "call_function" and ("dropout" in str(n.target) or "batch_norm" in str(n.target))
                for n in gm.graph.nodes)
    if modal:
        return allow_exported_model_train_eval(gm)
    gm.train = types.MethodType(lambda self, mode=True: self, gm)
    gm.eval = types.MethodType(lambda self: self, gm)
    return gm


def drop_unused_tensors(gm) -> None:
    """Delete parameters and buffers no graph node reads (convert_pt2e leaves the float weights behind)."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    for name in list(gm.state_dict()):
        if name not in used:
            owner, _, attr = name.rpartition(".")
            module = gm.get_submodule(owner) if owner else gm
            if hasattr(module, attr):
                delattr(module, attr)


def _match_teacher(fp32_model, temperature: float):
    """Loss for label-free QAT: KL(student || fp32 teacher) at `temperature`; the labels are never read."""
    import torch

    from edgekit.passes.distill import kd_loss

    teacher = copy.deepcopy(fp32_model).eval()

    def loss(model, xb, yb):
        with torch.no_grad():
            target = teacher(xb)
        return kd_loss(model(xb), target, None, temperature, alpha=1.0)

    return loss


class Qat(TorchPass):
    name = "quantize.qat"
    measures_itself = True  # before/after add validation accuracy, which the decision quotes

    def transform(self, model, ctx: PassContext) -> Transformed:
        import torch
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

        from edgekit.passes.accounting import accuracy, measure
        from edgekit.passes.finetune import finetune

        c, s = self.config, ctx.splits
        before = measure(model, s)
        before["val_accuracy"] = accuracy(model, s.x_val, s.y_val)
        x = torch.from_numpy(s.x_train[:8])
        try:
            graph = export_for_quantization(model, x)
            if c.simplify:
                simplify_graph(graph)
            prepared = prepare_qat_pt2e(graph, xnnpack_quantizer(c.per_channel, c.reduce_range))
        except Exception as e:  # torch.export and the quantizer raise many types
            raise PassError(f"quantize.qat: PT2E prepare failed: {str(e).strip().splitlines()[0]}") from e
        allow_train_eval(prepared)
        ctx.log(f"  QAT fine-tuning {c.epochs} epochs" + (" matching the fp32 outputs" if c.label_free else ""))
        finetune(prepared, ctx, c.epochs, c.lr, loss_fn=_match_teacher(model, c.temperature) if c.label_free else None)
        try:
            converted = convert_pt2e(prepared)
        except Exception as e:
            raise PassError(f"quantize.qat: PT2E convert failed: {str(e).strip().splitlines()[0]}") from e
        drop_unused_tensors(converted)
        allow_train_eval(converted)
        converted.eval()
        after = measure(converted, s)
        after["val_accuracy"] = accuracy(converted, s.x_val, s.y_val)
        decision = (f"PT2E QAT{' (batch-norm folded, dropout off)' if c.simplify else ''}"
                    f"{', label-free (fp32 model as teacher)' if c.label_free else ''}, int8 "
                    f"{'per-channel' if c.per_channel else 'per-tensor'} weights"
                    f"{' (7-bit range)' if c.reduce_range else ''}, int8 activations, {c.epochs} epochs: test accuracy "
                    f"{before['test_accuracy']:.4f} (fp32) -> {after['test_accuracy']:.4f} (int8 simulated)")
        return Transformed(module=converted, decision=decision, before=before, after=after, notes=[EXPORT_NOTE])
