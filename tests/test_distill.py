"""Knowledge distillation: the loss against a hand computation, and the pass's records."""

import math

import pytest
import torch
from helpers import TINY_MODELS

from edgekit.errors import PassError
from edgekit.passes.apply import apply_pass
from edgekit.passes.distill import kd_loss
from edgekit.train.config import TrainConfig


def test_kd_loss_equals_hand_computation():
    s = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 2.0]])
    y = torch.tensor([1, 2])
    T, alpha = 2.0, 0.7

    def softmax(row):
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    kl = 0.0
    for si, ti in zip(s.tolist(), t.tolist()):
        ps, pt = softmax([v / T for v in si]), softmax([v / T for v in ti])
        kl += sum(q * math.log(q / p) for p, q in zip(ps, pt))
    kl /= 2
    ce = -sum(math.log(softmax(si)[yi]) for si, yi in zip(s.tolist(), y.tolist())) / 2
    expected = alpha * T * T * kl + (1 - alpha) * ce
    assert kd_loss(s, t, y, T, alpha).item() == pytest.approx(expected, rel=1e-6)
    assert kd_loss(s, t, y, T, 0.0).item() == pytest.approx(ce, rel=1e-6)
    assert kd_loss(s, s, y, T, 1.0).item() == pytest.approx(0.0, abs=1e-7)


def distill(cfg: dict, model, splits, tmp_path, reference):
    train = TrainConfig(epochs=1, optimizer={"lr": 0.003}, progress=False)
    done = apply_pass(model, {"name": "distill", **cfg}, splits, work_dir=tmp_path, train=train, reference=reference,
                      log=lambda m: None)
    return done.output.module, done.record


def test_distill_records_teacher_baseline_and_kd_accuracies(cnn, splits, tmp_path):
    import copy

    student = copy.deepcopy(cnn)
    with torch.no_grad():
        student.features[1][0].weight.mul_(0.5)  # a damaged student for the teacher to repair
    out, rec = distill({"epochs": 2}, student, splits, tmp_path, reference=cnn)
    acc = rec.after["accuracy"]
    assert set(acc) == {"teacher", "student_start", "student_ce", "student_kd"}
    assert all(0 <= acc[k]["val"] <= 1 and 0 <= acc[k]["test"] <= 1 for k in acc)
    assert acc["student_kd"]["test"] == rec.after["test_accuracy"]
    assert acc["student_start"]["test"] == rec.before["test_accuracy"] < acc["teacher"]["test"]
    assert "with KD" in rec.decision and out is not student


def test_distill_with_hint_and_zoo_student(cnn, splits, tmp_path):
    mlp = {"arch": "mlp", "hidden": [32]}
    out, rec = distill({"student": mlp, "compare_baseline": False, "epochs": 1}, cnn, splits, tmp_path, reference=cnn)
    assert isinstance(out, torch.nn.Sequential) and "student_ce" not in rec.after["accuracy"]
    out, rec = distill({"compare_baseline": False, "hint": {"student": "features.1", "teacher": "features.1"}},
                       cnn, splits, tmp_path, reference=cnn)
    assert not out._forward_hooks and not any(m._forward_hooks for m in out.modules())  # hooks removed
    with pytest.raises(PassError, match="no module 'nope'"):
        distill({"hint": {"student": "nope", "teacher": "features.1"}}, cnn, splits, tmp_path, reference=cnn)


def test_distill_from_a_zoo_teacher(splits, tmp_path, cnn):
    teacher = dict(TINY_MODELS["cnn"])
    _, rec = distill({"teacher": teacher, "compare_baseline": False}, cnn, splits, tmp_path, reference=None)
    assert rec.after["accuracy"]["teacher"]["test"] > 0.3
    _, rec = distill({"compare_baseline": False}, cnn, splits, tmp_path, reference=None)  # the incoming model teaches
    assert rec.after["accuracy"]["teacher"] == rec.after["accuracy"]["student_start"]
