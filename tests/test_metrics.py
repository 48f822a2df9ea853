"""Quality metrics with and without labels, checked against values worked out by hand; metric gates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import tiny_recipe_dict

from edgekit.bench.metrics import (
    compute_metrics,
    cosine,
    macro_f1,
    nearest_neighbours,
    nn_agreement,
    top_k_accuracy,
    top_k_agreement,
)
from edgekit.errors import RecipeError
from edgekit.recipe import GatesConfig, Recipe
from edgekit.report.gates import evaluate_gates
from edgekit.report.schema import Report, Result
from edgekit.yaml_config import validate_yaml_text


def test_cosine_by_hand():
    ref = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    out = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]])  # same direction; 45 degrees; both zero
    assert cosine(ref, out) == pytest.approx((1 + 1 / math.sqrt(2) + 1) / 3)


def test_top_k_agreement_and_accuracy_by_hand():
    ref = np.array([[3.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
    out = np.array([[3.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    assert top_k_agreement(ref, out, 1) == 1.0  # both argmaxes agree
    assert top_k_agreement(ref, out, 2) == pytest.approx((1 / 2 + 2 / 2) / 2)  # {0,1} vs {0,2}; {2,1} vs {2,1}
    assert top_k_agreement(ref, out, 9) == 1.0  # k clipped to the 3 outputs
    y = np.array([1, 0])
    assert top_k_accuracy(out, y, 1) == 0.0
    assert top_k_accuracy(out, y, 2) == 0.0  # label 1 is third in row 0, label 0 is third in row 1
    assert top_k_accuracy(out, y, 3) == 1.0


def test_macro_f1_by_hand_and_against_sklearn():
    from sklearn.metrics import f1_score

    pred, y = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])
    # class 0: tp 1 fp 1 fn 0 -> 2/3; class 1: tp 1 fp 0 fn 1 -> 2/3; class 2: tp 1 -> 1
    assert macro_f1(pred, y) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    rng = np.random.default_rng(0)
    pred, y = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert macro_f1(pred, y) == pytest.approx(f1_score(y, pred, average="macro"))


def test_nearest_neighbour_ranking_agreement_by_hand():
    ref = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])  # pairs: a-b, c-d
    assert nearest_neighbours(ref, 1)[:, 0].tolist() == [1, 0, 3, 2]
    out = np.array([[1.0, 0.0], [0.9, 0.1], [0.7, 0.3], [0.1, 0.9]])  # c moved next to b: c's neighbour is now b
    assert nearest_neighbours(out, 1)[:, 0].tolist() == [1, 0, 1, 2]
    assert nn_agreement(ref, out, 1) == pytest.approx(3 / 4)
    assert nn_agreement(ref, ref * 3.0, 2) == 1.0  # scale does not change cosine neighbours


def test_compute_metrics_picks_what_the_evidence_allows():
    ref = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.1, 0.0]])
    out = ref + np.array([[0.0, 0.1, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    y = np.array([0, 1, 2, 0])
    labelled = compute_metrics(None, outputs=out, labels=y, reference=ref, top_k=2)
    assert set(labelled) == {"accuracy", "top_k_accuracy", "macro_f1", "cosine", "max_abs", "top1_agreement"}
    assert labelled["accuracy"] == 0.75 and labelled["top1_agreement"] == 0.75 and labelled["max_abs"] == 2.0
    unlabelled = compute_metrics(None, outputs=out, labels=None, reference=ref, top_k=2)
    assert set(unlabelled) == {"cosine", "max_abs", "top1_agreement", "top_k_agreement", "nn_agreement"}
    assert compute_metrics(None, outputs=out, labels=np.full(4, -1), reference=ref).keys() == unlabelled.keys()
    preds_only = compute_metrics(["accuracy", "macro_f1", "cosine", "top1_agreement"], predictions=out.argmax(1),
                                 labels=y, reference=ref)  # a remote device that sends back predictions only
    assert preds_only == {"accuracy": 0.75, "macro_f1": pytest.approx(macro_f1(out.argmax(1), y)),
                          "top1_agreement": 0.75}
    reg = compute_metrics(["mse", "mae", "accuracy"], outputs=np.array([[1.0], [2.0], [4.0]]),
                          labels=np.array([1, 2, 2]))
    assert reg["mse"] == pytest.approx(4 / 3) and reg["mae"] == pytest.approx(2 / 3)


def _report(metrics: dict) -> Report:
    return Report(edgekit_version="0", recipe_name="r", created="now", reference={},
                  results=[Result(artifact="a", device="host-cpu", runtime="onnxruntime", metrics=metrics,
                                  test_samples=10)])


def test_metric_gates():
    gates = GatesConfig(min_metric={"cosine": 0.99, "nn_agreement": 0.9}, max_metric={"max_abs": 0.1},
                        device_budgets=False)
    out = {g.name: g for g in evaluate_gates(_report({"cosine": 0.995, "max_abs": 0.2}), gates)}
    assert out["min_metric.cosine"].passed and out["min_metric.cosine"].value == 0.995
    assert not out["max_metric.max_abs"].passed
    assert not out["min_metric.nn_agreement"].passed and "not measured" in out["min_metric.nn_agreement"].detail


@pytest.mark.parametrize("n,warns", [(44, True), (5000, False)])
def test_proportion_gates_carry_an_interval_and_warn_when_the_split_cannot_resolve_them(n, warns):
    """On 44 photos one photo is 2.3 points: 0.93 against a 0.9 bound is not resolved; on 5000 it is."""
    from edgekit.significance import proportion_interval

    gates = GatesConfig(min_metric={"top1_agreement": 0.9}, device_budgets=False)
    rep = _report({"top1_agreement": 41 / 44 if n == 44 else 0.93})
    rep.results[0].test_samples = n
    g = next(g for g in evaluate_gates(rep, gates) if g.name == "min_metric.top1_agreement")
    assert g.passed and g.ci[0] < g.value < g.ci[1]
    assert ("too few samples" in g.detail) is warns
    lo, hi = proportion_interval(0.5, 100)
    assert 0.39 < lo < 0.41 and 0.59 < hi < 0.61  # Wilson, by hand: 0.5 -+ 0.098


def test_metric_names_are_checked_in_recipes():
    with pytest.raises(RecipeError, match="min_metric"):
        validate_yaml_text("name: x\nmodel: {arch: mlp}\ndata: {source: digits}\ngates:\n  min_metric: {cosin: 0.9}\n",
                           Recipe)
    with pytest.raises(RecipeError, match="bench.metrics"):
        validate_yaml_text("name: x\nmodel: {arch: mlp}\ndata: {source: digits}\nbench: {metrics: [acc]}\n", Recipe)
    with pytest.raises(Exception, match="unlabelled"):
        Recipe.model_validate(tiny_recipe_dict(data={"source": "tokens", "task": "random"}))
