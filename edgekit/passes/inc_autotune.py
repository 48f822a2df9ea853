"""Accuracy-driven quantization with Intel Neural Compressor 3.x: try candidate configs in order, keep the first
within `tolerable_loss` of the fp32 model on the validation split, or the best one when none is."""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

from pydantic import Field

from edgekit.config_base import Strict
from edgekit.errors import PassError
from edgekit.extras import Needs
from edgekit.passes.base import PassContext, TorchPass, Transformed
from edgekit.passes.torch_config import TorchPassConfig

EXPORT_NOTE = ("INC returns a PT2E GraphModule (X86 inductor quantizer: uint8 activations, int8 weights); it "
               "exports to ONNX only with `exporter: dynamo` (legacy has no symbolic for quantized_decomposed ops) "
               "and needs a loosened parity tolerance (e.g. max_abs: null, min_cosine: 0.999, min_top1: 0.98); "
               "the file is a QDQ int8 model whatever the export target's precision label says")


class IncCandidate(Strict):
    """One INC 3.x config tried by the tuner."""

    kind: Literal["static", "dynamic"] = "static"
    w_granularity: Literal["per_channel", "per_tensor"] = "per_channel"
    act_sym: bool = False
    act_algo: Literal["minmax", "kl"] = "minmax"

    def label(self) -> str:
        if self.kind == "dynamic":
            return "dynamic (Linear only)"
        return f"static {self.w_granularity.replace('_', '-')} {'sym' if self.act_sym else 'asym'} {self.act_algo}"

    def build(self):
        from neural_compressor.torch.quantization import DynamicQuantConfig, StaticQuantConfig

        if self.kind == "dynamic":
            return DynamicQuantConfig(act_sym=self.act_sym, act_algo=self.act_algo)
        return StaticQuantConfig(  # pyright: ignore[reportAbstractUsage]  (INC leaves a classmethod abstract)
            w_granularity=self.w_granularity, act_sym=self.act_sym, act_algo=self.act_algo)


def _default_candidates() -> list[IncCandidate]:
    return [IncCandidate(), IncCandidate(w_granularity="per_tensor"), IncCandidate(act_algo="kl")]


class AutotuneConfig(TorchPassConfig):
    needs: ClassVar[Needs] = Needs("compress", ("neural_compressor",))
    name: Literal["quantize.autotune"]
    candidates: list[IncCandidate] = Field(default_factory=_default_candidates, min_length=1,
                                           description="tried in order; the first that meets the target wins")
    tolerable_loss: float = Field(default=0.01, ge=-1, le=1,
                                  description="relative val-accuracy loss accepted (INC's meaning)")
    calibration_batches: int = Field(default=4, ge=1, description="batches of 64 calibration samples")


def _import_inc_quietly() -> None:
    """INC logs every trial at INFO on import and use; keep its own logger to errors (LOGLEVEL is read once)."""
    import os

    prev = os.environ.get("LOGLEVEL")
    os.environ["LOGLEVEL"] = "ERROR"
    try:
        import neural_compressor.torch.quantization  # noqa: F401
    finally:
        if prev is None:
            os.environ.pop("LOGLEVEL", None)
        else:
            os.environ["LOGLEVEL"] = prev
    logging.getLogger("neural_compressor").setLevel(logging.ERROR)


def val_accuracy(model, x, y) -> float:
    """edgekit's evaluation on the validation split, as INC's eval_fn (higher is better)."""
    import torch

    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 512):
            correct += int((model(torch.from_numpy(x[i: i + 512])).argmax(1).numpy() == y[i: i + 512]).sum())
    return correct / max(len(y), 1)


class Autotune(TorchPass):
    name = "quantize.autotune"

    def transform(self, model, ctx: PassContext) -> Transformed:
        _import_inc_quietly()
        import torch
        from neural_compressor.torch.export import export
        from neural_compressor.torch.quantization import TuningConfig, autotune

        from edgekit.passes.qat import allow_train_eval, drop_unused_tensors

        c, s = self.config, ctx.splits
        if len(s.y_val) == 0:
            raise PassError("quantize.autotune: needs a validation split (data.val_fraction > 0) to evaluate candidates")
        scores: list[float] = []

        def eval_fn(m):
            scores.append(val_accuracy(m, s.x_val, s.y_val))
            return scores[-1]

        def calibrate(m):
            with torch.no_grad():
                for i in range(0, min(len(s.x_calib), 64 * c.calibration_batches), 64):
                    m(torch.from_numpy(s.x_calib[i: i + 64]))

        batch = torch.export.Dim("batch", min=1, max=65536)
        try:
            gm = export(model, example_inputs=(torch.from_numpy(s.x_calib[:8]),), dynamic_shapes=({0: batch},))
            tuning = TuningConfig(config_set=[k.build() for k in c.candidates], tolerable_loss=c.tolerable_loss)
            from edgekit.passes.weight_only import inc_workspace

            with inc_workspace():  # keep INC's nc_workspace/ out of the user's working directory
                q = autotune(gm, tuning, eval_fn=eval_fn, run_fn=calibrate)  # pyright: ignore[reportArgumentType]
        except Exception as e:  # INC and torch.export raise many types
            raise PassError(f"quantize.autotune: INC failed: {type(e).__name__}: {str(e).strip().splitlines()[0]}") from e
        if q is None:
            raise PassError(f"quantize.autotune: INC returned no model after {len(scores) - 1} trial(s)")
        drop_unused_tensors(q)
        allow_train_eval(q)
        baseline, trials = scores[0], scores[1:]
        needed = baseline * (1 - c.tolerable_loss)
        rows = [{"candidate": k.label(), "config": k.model_dump(), "val_accuracy": acc, "meets_target": acc >= needed}
                for k, acc in zip(c.candidates, trials)]
        met = [r for r in rows if r["meets_target"]]
        chosen = met[0] if met else max(rows, key=lambda r: r["val_accuracy"])
        for r in rows:
            r["chosen"] = r is chosen
        if met:
            decision = (f"{chosen['candidate']}: val accuracy {chosen['val_accuracy']:.4f} vs fp32 {baseline:.4f} "
                        f"(target >= {needed:.4f}), trial {rows.index(chosen) + 1} of {len(c.candidates)}")
        else:
            decision = (f"no candidate met the target (val accuracy >= {needed:.4f}, fp32 {baseline:.4f}, "
                        f"tolerable_loss {c.tolerable_loss}); kept the best: {chosen['candidate']} at "
                        f"{chosen['val_accuracy']:.4f}")
        notes = [EXPORT_NOTE, "INC's qdq graph keeps float weights and quantizes them inside the graph, so the torch "
                              "state dict does not shrink; the int8 saving appears once an exporter or runtime folds them"]
        return Transformed(module=q, decision=decision, candidates=rows, before={"val_accuracy": baseline},
                           after={"val_accuracy": val_accuracy(q, s.x_val, s.y_val)}, notes=notes)
