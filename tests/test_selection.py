"""edgekit.quant.selection: the rules that choose among measured int8 candidates, on hand-made Candidates (no model,
no runtime), and the Candidate's report row."""

import numpy as np
import pytest

from edgekit.quant.candidate import Candidate, rows
from edgekit.quant.selection import choose_for_target, fastest, fastest_faithful, most_faithful, worse


def cand(name="c", ms=1.0, cosine=0.99, agreement=0.95, per_channel=True, graph=None, **kw):
    return Candidate(scheme=name, format="qdq", activation_type="uint8", weight_type="int8", per_channel=per_channel,
                     latency={"p50": ms}, fidelity={"cosine": cosine, "top1_agreement": agreement}, graph=graph, **kw)


def test_fastest_faithful_takes_the_fastest_within_slack_of_the_best():
    slow_best = cand("best", ms=2.0, cosine=0.999, agreement=0.99)
    fast_close = cand("close", ms=1.0, cosine=0.998, agreement=0.988)
    faster_worse = cand("worse", ms=0.5, cosine=0.99, agreement=0.9)  # outside both slacks
    chosen, why = fastest_faithful([slow_best, fast_close, faster_worse], 3.0, 0.005, 0.002, 0.05)
    assert chosen is fast_close and "fastest" in why and "fp32 3.000 ms" in why and "WARNING" not in why


def test_fastest_faithful_tie_goes_to_the_more_faithful_then_per_channel():
    a = cand("a", ms=1.00, cosine=0.997)
    b = cand("b", ms=1.04, cosine=0.998)  # within 5 %: a tie, the more faithful wins
    assert fastest_faithful([a, b], None, 0.005, 0.002, 0.05)[0] is b
    pt = cand("pt", ms=1.0, cosine=0.998, per_channel=False)
    pc = cand("pc", ms=1.0, cosine=0.998, per_channel=True)
    assert fastest_faithful([pt, pc], None, 0.005, 0.002, 0.05)[0] is pc


def test_fastest_faithful_one_candidate_is_as_configured_and_slower_than_fp32_is_said():
    only = Candidate(format="qoperator", activation_type="int8", per_channel=False,
                     fidelity={"cosine": 0.9, "top1_agreement": 0.8})  # untimed: one candidate needs no timing
    chosen, why = fastest_faithful([only], None, 0.005, 0.002, 0.05)
    assert chosen is only and why == "QOPERATOR S8S8 per-tensor as configured"
    _, why = fastest_faithful([cand(ms=2.0), cand(ms=2.05)], 1.0, 0.005, 0.002, 0.05)
    assert "WARNING: the int8 model is slower than fp32" in why


def test_same_graph_counts_as_equally_fast():
    a = cand("a", ms=1.0, agreement=0.90, graph=1)
    b = cand("b", ms=1.3, agreement=0.95, graph=1)  # same graph as a: its time is a's
    c = cand("c", ms=1.05, agreement=0.99, graph=2)  # another graph, 5 % slower: not a tie at margin 0
    assert fastest([a, b, c], 0.0, 0.05) is b
    assert fastest([a, c], 0.0, 0.05) is a
    assert fastest([a, c], 0.1, 0.05) is c  # within 10 %: a tie, the more faithful (agreement breaks equal cosine)


def test_most_faithful_without_per_sample_values_is_the_dense_ranking():
    a = cand("a", cosine=0.995, agreement=0.99)
    b = cand("b", cosine=0.996, agreement=0.90)
    assert most_faithful([a, b], 0.05) is b
    assert worse(a, b, 0.05) is True  # nothing can be shown without per-sample values: counts as worse


def test_worse_needs_a_paired_test_to_show_it():
    rng = np.random.default_rng(0)
    n = 200
    cos = rng.normal(0.99, 0.003, n)
    agree = np.arange(n) >= 10
    best = cand("best", per_sample={"cosine": cos, "agree": agree})
    same = cand("same", per_sample={"cosine": cos + rng.normal(0, 1e-5, n), "agree": agree & (np.arange(n) != 10)})
    lower = cand("lower", per_sample={"cosine": cos - 0.002, "agree": agree})
    fewer = cand("fewer", per_sample={"cosine": cos, "agree": np.arange(n) >= 40})
    assert not worse(same, best, 0.05)
    assert worse(lower, best, 0.05) and worse(fewer, best, 0.05)


def test_choose_for_target_takes_the_fastest_meeting_it():
    fast_miss = cand("miss", ms=0.5, misses=["cosine 0.9 < 0.99"], meets_target=False, speedup_vs_fp32=4.0)
    meet_slow = cand("slow", ms=1.5, misses=[], meets_target=True, speedup_vs_fp32=1.33, graph=1)
    meet_fast = cand("fast", ms=1.0, misses=[], meets_target=True, speedup_vs_fp32=2.0, graph=2)
    chosen, why = choose_for_target([fast_miss, meet_slow, meet_fast], 2.0, 0.05, 0.05)
    assert chosen is meet_fast and why.startswith("chose fast") and "2 of 3 candidates" in why
    assert all(r.tied_with_most_faithful is None for r in (fast_miss, meet_slow, meet_fast))


def test_candidate_row_has_the_report_keys_and_only_what_it_has():
    built = cand("QDQ U8S8 per-channel minmax", ms=1.2, misses=[], meets_target=True, speedup_vs_fp32=1.5,
                 stage="ladder", settings={"format": "qdq"}, float_nodes=["conv1"], graph=(1,),
                 per_sample={"cosine": np.ones(3)}, path=None)
    built.latency = {"p50": 1.2, "p90": 1.4, "p99": 1.5, "iqr": 0.1}
    built.bias_correction = {"layers_corrected": 2, "kept": True}
    failed = Candidate(scheme="QOPERATOR", stage="ladder", settings={"format": "qoperator"}, error="ValueError: x")
    skipped = Candidate(scheme="mixed precision", stage="fallback", skipped="time budget")
    a, b, c = rows([built, failed, skipped], chosen=built)
    assert a["chosen"] is True and b["chosen"] is False and c["chosen"] is False
    assert {"scheme", "stage", "settings", "format", "activation_type", "weight_type", "per_channel", "float_nodes",
            "cosine", "top1_agreement", "bias_correction", "misses", "latency_ms_p50", "latency_ms_p90",
            "latency_ms_p99", "latency_ms_iqr", "speedup_vs_fp32", "meets_target"} <= set(a)
    assert not {"path", "source", "per_sample", "graph", "fidelity", "latency"} & set(a)  # private to the pass
    assert b == {"scheme": "QOPERATOR", "stage": "ladder", "settings": {"format": "qoperator"},
                 "error": "ValueError: x", "chosen": False}
    assert c == {"scheme": "mixed precision", "stage": "fallback", "skipped": "time budget", "chosen": False}
    assert "saturation_safe" not in a and "adaround" not in a  # not applied: absent, as in older reports


def test_untimed_candidate_cannot_be_chosen_by_speed():
    with pytest.raises(ValueError, match="not timed"):
        fastest_faithful([cand(), Candidate(scheme="x", fidelity={"cosine": 1.0, "top1_agreement": 1.0})],
                         None, 0.005, 0.002, 0.05)
