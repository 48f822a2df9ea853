"""Knowledge distillation: train the student on the teacher's softened outputs (Hinton et al., 2015), optionally
plus a hint loss that pulls an intermediate student feature (through a learned 1x1 conv) toward the teacher's."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal, Union

from pydantic import Field

from edgekit.config_base import Strict
from edgekit.errors import PassError
from edgekit.models.config import CnnConfig, MlpConfig, MobilenetV2Config, ResnetConfig
from edgekit.passes.base import PassContext, TorchPass, Transformed
from edgekit.passes.torch_config import TorchPassConfig

ZooModel = Annotated[Union[MlpConfig, CnnConfig, ResnetConfig, MobilenetV2Config], Field(discriminator="arch")]


class HintConfig(Strict):
    """Match `student` module's output, projected by a learned 1x1 conv, to `teacher` module's output (MSE)."""

    student: str
    teacher: str
    weight: float = Field(default=1.0, gt=0)


class DistillConfig(TorchPassConfig):
    name: Literal["distill"]
    student: ZooModel | None = Field(default=None, description="a fresh zoo model to train; default: the model in the chain")
    teacher: ZooModel | Literal["reference"] = Field(
        default="reference", description="'reference': the model before any pass (e.g. unpruned); or a zoo model trained "
                                         "first with the recipe's train settings")
    temperature: float = Field(default=4.0, gt=0)
    alpha: float = Field(default=0.9, ge=0, le=1, description="weight of the soft (teacher) term; 1 - alpha on hard labels")
    epochs: int | None = Field(default=None, ge=1, description="default: the recipe's train epochs")
    lr: float | None = Field(default=None, gt=0, description="default: the recipe's lr")
    hint: HintConfig | None = None
    compare_baseline: bool = Field(default=True, description="also fine-tune the same start with plain cross-entropy for "
                                                             "the same epochs, to show what KD adds")


def kd_loss(student_logits, teacher_logits, labels, T: float, alpha: float):
    """alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels), batch-averaged."""
    import torch.nn.functional as F

    soft = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.log_softmax(teacher_logits / T, dim=1),
                    reduction="batchmean", log_target=True)
    if labels is None or alpha >= 1.0:  # pure matching: labels are not needed (label-free QAT)
        return T * T * soft
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


class _Capture:
    """Keeps the output of one named module on each forward."""

    def __init__(self, model, name: str, role: str):
        modules = dict(model.named_modules())
        if name not in modules:
            raise PassError(f"distill.hint.{role}: no module '{name}'; modules are {[n for n in modules if n][:40]}")
        self.value: Any = None  # the module's last output (a tensor for the hint layers distill accepts)
        self.handle = modules[name].register_forward_hook(self._keep)

    def _keep(self, module, inputs, output):
        self.value = output


def _with_projection(student, teacher, hint, shape):
    """Wrap the student with a 1x1 conv that maps its hint feature to the teacher's channels; the Trainer then
    optimizes both, and the wrapper's forward is the student's."""
    import torch
    from torch import nn

    s_cap, t_cap = _Capture(student, hint.student, "student"), _Capture(teacher, hint.teacher, "teacher")
    with torch.no_grad():
        student.eval()(torch.zeros(2, *shape))
        teacher.eval()(torch.zeros(2, *shape))
    s_feat, t_feat = s_cap.value, t_cap.value
    if s_feat.dim() != t_feat.dim() or s_feat.dim() not in (2, 4):
        raise PassError(f"distill.hint: feature shapes {tuple(s_feat.shape)} and {tuple(t_feat.shape)} cannot be matched")

    class Student(nn.Module):
        def __init__(self):
            super().__init__()
            self.student = student
            conv = nn.Conv2d if s_feat.dim() == 4 else nn.Conv1d
            self.proj = conv(s_feat.shape[1], t_feat.shape[1], 1)

        def forward(self, x):
            return self.student(x)

        def detach_hooks(self):
            s_cap.handle.remove()
            t_cap.handle.remove()

        def hint_loss(self):
            s, t = s_cap.value, t_cap.value
            s = self.proj(s if s.dim() == 4 else s.unsqueeze(-1))
            if s.dim() == 4 and s.shape[-2:] != t.shape[-2:]:
                s = nn.functional.adaptive_avg_pool2d(s, t.shape[-2:])
            return nn.functional.mse_loss(s.reshape(t.shape), t)

    return Student()


class Distill(TorchPass):
    name = "distill"

    def teacher(self, ctx: PassContext):
        from edgekit.models import build_model
        from edgekit.passes.finetune import finetune
        from edgekit.train.trainer import seed_everything

        c = self.config
        if c.teacher == "reference":
            if ctx.reference is None:
                raise PassError("distill: teacher 'reference' needs the model before the passes; none was given")
            return copy.deepcopy(ctx.reference).eval()
        seed_everything(ctx.seed)
        teacher = build_model(c.teacher, ctx.splits.input_shape, ctx.splits.num_classes,
                              getattr(ctx.splits, "vocab_size", None))
        ctx.log(f"  training teacher {c.teacher.arch}")
        finetune(teacher, ctx)
        return teacher.eval()

    def student(self, model, ctx: PassContext):
        from edgekit.models import build_model
        from edgekit.train.trainer import seed_everything

        if self.config.student is None:
            return copy.deepcopy(model).eval()
        seed_everything(ctx.seed)
        return build_model(self.config.student, ctx.splits.input_shape, ctx.splits.num_classes,
                           getattr(ctx.splits, "vocab_size", None)).eval()

    measures_itself = True  # "before" is the student at its start, which need not be the incoming model

    def transform(self, module, ctx: PassContext) -> Transformed:
        from edgekit.passes.accounting import measure
        from edgekit.passes.finetune import finetune

        c = self.config
        s = ctx.splits
        teacher = self.teacher(ctx)
        start = self.student(module, ctx)
        before = measure(start, s)
        scores: dict = {"teacher": _scores(teacher, s), "student_start": _scores(start, s)}
        if c.compare_baseline:
            plain = copy.deepcopy(start)
            ctx.log("  baseline: fine-tuning the student with cross-entropy only")
            finetune(plain, ctx, c.epochs, c.lr)
            scores["student_ce"] = _scores(plain, s)
        student = copy.deepcopy(start)
        trained = _with_projection(student, teacher, c.hint, s.input_shape) if c.hint else student
        ctx.log(f"  distilling (T={c.temperature}, alpha={c.alpha}{', hint ' + c.hint.student if c.hint else ''})")
        finetune(trained, ctx, c.epochs, c.lr, loss_fn=self.loss_fn(teacher))
        if c.hint:
            trained.detach_hooks()
        student.eval()
        after = measure(student, s)
        scores["student_kd"] = _scores(student, s)
        after["accuracy"] = scores
        decision = (f"teacher test acc {_f(scores['teacher']['test'])}; student {_f(scores['student_start']['test'])} "
                    f"at the start")
        if "student_ce" in scores:
            decision += f", {_f(scores['student_ce']['test'])} fine-tuned with cross-entropy only"
        decision += f", {_f(scores['student_kd']['test'])} with KD"
        notes = []
        if "student_ce" in scores and (scores["student_kd"]["val"] or 0) < (scores["student_ce"]["val"] or 0):
            notes.append("KD did worse than plain fine-tuning on the validation split: try a lower temperature, "
                         "a lower alpha or more epochs")
        return Transformed(module=student, decision=decision, before=before, after=after, notes=notes)

    def loss_fn(self, teacher):
        import torch

        c = self.config

        def loss(model, xb, yb):
            logits = model(xb)
            with torch.no_grad():
                t_logits = teacher(xb)
            total = kd_loss(logits, t_logits, yb, c.temperature, c.alpha)
            if c.hint:
                total = total + c.hint.weight * model.hint_loss()
            return total

        return loss


def _scores(model, s) -> dict:
    from edgekit.passes.accounting import accuracy

    return {"val": accuracy(model, s.x_val, s.y_val), "test": accuracy(model, s.x_test, s.y_test)}


def _f(v) -> str:
    return "-" if v is None else f"{v:.4f}"
