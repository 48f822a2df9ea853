"""Choosing among measured int8 candidates: pure functions over `Candidate`s (no files, no runtime).

- `fastest_faithful` (quantize.static): the fastest of the candidates within slack of the best fidelity; latencies
  within `speed_margin` are a tie, which the more faithful wins.
- `choose_for_target` (quantize.auto): the fastest of the candidates meeting the target; when none does, the
  most faithful (`most_faithful`), or the fastest of those that paired tests cannot tell less faithful than it
  (`worse`: McNemar on top-1 agreement and accuracy, a paired test on per-sample cosine).
- `fastest`: candidates with the same graph (`Candidate.graph`) count as equally fast: they differ only in numbers,
  so the host's noise would pick between them.
"""

from __future__ import annotations

from edgekit.quant.candidate import Candidate


def static_label(c: Candidate) -> str:
    act = "U8S8" if c.activation_type == "uint8" else "S8S8"
    safe = ", saturation-safe weights" if c.saturation_safe else ""
    return f"{(c.format or '').upper()} {act} {'per-channel' if c.per_channel else 'per-tensor'}{safe}"


def fastest_faithful(ok: list[Candidate], fp32_ms: float | None, agreement_slack: float, cosine_slack: float,
                     speed_margin: float) -> tuple[Candidate, str]:
    """Fastest candidate among the faithful ones (within the slacks of the best); near-equal speeds go to the more
    faithful, then to per-channel weights. One candidate is chosen as configured."""
    if len(ok) == 1:
        return ok[0], f"{static_label(ok[0])} as configured"
    best_agree = max(r.top1_agreement for r in ok)
    best_cos = max(r.cosine for r in ok)
    good = [r for r in ok if r.top1_agreement >= best_agree - agreement_slack and r.cosine >= best_cos - cosine_slack]
    fastest_ms = min(_ms(r) for r in good)
    tied = [r for r in good if _ms(r) <= fastest_ms * (1 + speed_margin)]
    chosen = max(tied, key=lambda r: (r.cosine, bool(r.per_channel)))
    others = "; ".join(f"{static_label(r)}: {_ms(r):.3f} ms, agreement {r.top1_agreement:.3f}, "
                       f"cosine {r.cosine:.4f}" for r in ok)
    why = (f"chose {static_label(chosen)}: the fastest (within {speed_margin:.0%}) of the candidates within "
           f"{agreement_slack} top-1 agreement and {cosine_slack} cosine of the best on the validation split. "
           f"Measured on this host: {others}")
    why += f"; fp32 {fp32_ms:.3f} ms." if fp32_ms is not None else "."
    if fp32_ms is not None and _ms(chosen) > fp32_ms:
        why += " WARNING: the int8 model is slower than fp32 on this host."
    return chosen, why


def _ms(c: Candidate) -> float:
    ms = c.latency_ms_p50
    if ms is None:
        raise ValueError(f"candidate {c.scheme or static_label(c)} was not timed")
    return ms


def dense_first(c: Candidate) -> tuple:
    """Mean per-sample cosine first; the agreement and accuracy point estimates only break exact ties."""
    return c.cosine, c.top1_agreement, c.fidelity.get("val_accuracy", 0.0)


def most_faithful(cands: list[Candidate], alpha: float) -> Candidate:
    """The candidate closest to fp32 by mean per-sample cosine on the validation split (a dense signal), unless a
    paired test (McNemar on top-1 agreement, or on accuracy where labelled) shows another one better at level
    `alpha`: agreement counts on a small split move with single images, and ranking by them overfits the split."""
    from edgekit.significance import mcnemar_exact

    ranked = sorted(cands, key=dense_first, reverse=True)
    best = ranked[0]
    for r in ranked[1:]:
        a, b = best.per_sample, r.per_sample
        if a is None or b is None:
            continue
        for key in ("correct", "agree"):
            t = mcnemar_exact(a[key], b[key]) if key in a and key in b else None
            if t and t["p_value"] < alpha and t["only_candidate_right"] > t["only_baseline_right"]:
                best = r
                break
    return best


def worse(r: Candidate, best: Candidate, alpha: float) -> bool:
    """Whether a paired test on the validation split shows `r` less faithful than `best` (p < alpha, in that
    direction) on top-1 agreement, accuracy (where labelled) or per-sample cosine. Without per-sample values
    nothing can be shown, and `r` counts as worse."""
    from edgekit.significance import mcnemar_exact, paired_mean_test

    a, b = best.per_sample, r.per_sample
    if a is None or b is None:
        return True
    for key in ("agree", "correct"):
        if key in a and key in b:
            t = mcnemar_exact(a[key], b[key])
            if t["p_value"] < alpha and t["only_baseline_right"] > t["only_candidate_right"]:
                return True
    t = paired_mean_test(a["cosine"], b["cosine"])
    return t["p_value"] < alpha and t["mean_difference"] < 0


def fastest(pool: list[Candidate], speed_margin: float, alpha: float) -> Candidate:
    """The fastest of `pool`, the most faithful winning ties within `speed_margin`. One graph, one speed:
    candidates whose files differ only in numbers (scales, weights, biases) are timed apart only by the host's
    noise, so each takes its graph's best time."""
    best: dict = {}
    for r in pool:
        best[r.graph] = min(best.get(r.graph, float("inf")), _ms(r))
    quickest = min(best.values())
    tied = [r for r in pool if best[r.graph] <= quickest * (1 + speed_margin)]
    return most_faithful(tied, alpha)


def choose_for_target(ok: list[Candidate], fp32_ms: float, speed_margin: float,
                      faithful_tie_p: float | None) -> tuple[Candidate, str]:
    """The fastest candidate meeting the target (`meets_target`); when none does, the most faithful, or with
    `faithful_tie_p` the fastest of those paired tests cannot tell less faithful (each then records
    `tied_with_most_faithful`). Returns it and the decision's text."""
    alpha = faithful_tie_p or 0.05
    meeting = [r for r in ok if r.meets_target]
    table = "; ".join(f"{r.scheme}: cosine {r.cosine:.4f}, agreement {r.top1_agreement:.3f}, "
                      f"{_ms(r):.3f} ms ({r.speedup_vs_fp32:.2f}x)" for r in ok)
    if meeting:
        chosen = fastest(meeting, speed_margin, alpha)
        why = (f"chose {chosen.scheme}: the fastest (within {speed_margin:.0%}; files with the same graph "
               f"count as equally fast) of the {len(meeting)} of {len(ok)} candidates meeting the target on the "
               f"validation split.")
    else:
        best = most_faithful(ok, alpha)
        pool = [best]
        if faithful_tie_p is not None:
            for r in ok:
                r.tied_with_most_faithful = r is best or not worse(r, best, faithful_tie_p)
            pool = [r for r in ok if r.tied_with_most_faithful]
        chosen = fastest(pool, speed_margin, alpha)
        why = f"no candidate met the target ({'; '.join(best.misses or [])} for the most faithful, {best.scheme}); "
        if chosen is best:
            why += f"kept the most faithful: {chosen.scheme}."
        else:
            why += (f"kept {chosen.scheme}: the fastest (within {speed_margin:.0%}) of the {len(pool)} "
                    f"candidates that paired tests on the validation split cannot tell less faithful than it "
                    f"(p >= {faithful_tie_p}).")
    why += f" Measured side by side on this host (fp32 {fp32_ms:.3f} ms p50): {table}."
    if _ms(chosen) > fp32_ms:
        why += " WARNING: the chosen int8 model is slower than fp32 on this host."
    return chosen, why
