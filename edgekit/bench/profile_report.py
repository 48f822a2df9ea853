"""Profiles of a whole run folder (stored in report.json) and the text table `edgekit profile` prints."""

from __future__ import annotations

from pathlib import Path

from edgekit.console import logger
from edgekit.errors import EdgekitError

_log = logger("bench")


def _fmt(v, spec: str) -> str:
    if isinstance(v, (int, float)):
        return format(v, spec)
    width = spec.split(".")[0]
    return "-".rjust(int(width)) if width.isdigit() else "-"


def render_table(prof: dict, top: int | None = None) -> str:
    """Per-layer table, slowest first when `top` is given, then the model line, notes and flags."""
    layers = prof["layers"]
    if top:
        layers = sorted(layers, key=lambda lay: -(lay.get("time_ms") or 0))[:top]
    head = f"{'layer':<44} {'op':<18} {'where':<10} {'ms':>8} {'%':>6} {'MFLOP':>9} {'KB':>8} {'F/B':>7} " \
           f"{'bound':>7} {'roof ms':>8} {'achv':>6}"
    lines = [f"{prof['artifact']} on {prof['device']} ({prof.get('runtime')}, {prof.get('threads')} threads)", head,
             "-" * len(head)]
    for lay in layers:
        where = str(lay.get("provider", "")).replace("ExecutionProvider", "")[:10]
        kb = ((lay.get("param_bytes") or 0) + (lay.get("act_bytes") or 0)) / 1024
        flag = " !" if lay.get("off_accelerator") else ""
        lines.append(f"{lay['name'][-44:]:<44} {str(lay.get('op'))[:18]:<18} {where:<10} "
                     f"{_fmt(lay.get('time_ms'), '8.3f')} {_fmt(100 * lay['share'] if 'share' in lay else None, '6.1f')} "
                     f"{_fmt((lay.get('flops') or 0) / 1e6, '9.2f')} {_fmt(kb, '8.1f')} "
                     f"{_fmt(lay.get('intensity'), '7.1f')} "
                     f"{str(lay.get('bound_by', '-'))[:7]:>7} {_fmt(lay.get('bound_ms'), '8.4f')} "
                     f"{_fmt(100 * lay['achieved'] if 'achieved' in lay else None, '5.0f')}%{flag}")
    e2e = prof.get("e2e_ms") or {}
    lines.append("-" * len(head))
    lines.append(f"end-to-end p50 {_fmt(e2e.get('p50'), '.3f')} ms (min {_fmt(e2e.get('min'), '.3f')}); "
                 f"sum of layers {_fmt(prof.get('sum_ops_ms'), '.3f')} ms "
                 f"(coverage {_fmt(prof.get('coverage'), '.2f')}, best runs {_fmt(prof.get('coverage_best'), '.2f')}); "
                 f"roofline {_fmt(prof.get('roofline_ms'), '.4f')} ms, achieved "
                 f"{_fmt(100 * prof['achieved_fraction'] if prof.get('achieved_fraction') else None, '.1f')}%")
    basis = {k: v for k, v in (prof.get("peaks") or {}).get("basis", {}).items() if v}
    if basis:
        lines.append("peaks: " + ", ".join(f"{k}={prof['peaks'][k]} ({v})" for k, v in basis.items()))
    lines += [f"note: {n}" for n in prof.get("notes", [])]
    lines += [f"FLAG {f['kind']}: {f['detail']}" for f in prof.get("flags", [])]
    return "\n".join(lines)


def profile_run_dir(run_dir: Path, profile, runs: int = 50, warmup: int = 10, threads: int | None = None,
                    log=_log.info) -> list[dict]:
    """Profile every ok artifact of a run folder whose format has a profiler (bench.profile.PROFILERS) on one device;
    flag int8 artifacts slower than their fp32 source; store the profiles in report.json (replacing earlier ones for
    the same artifact and device)."""
    from edgekit.bench.profile import PROFILERS, compare_pair, profile_artifact
    from edgekit.export.artifact import verified_path
    from edgekit.report.io import load_report, save_report

    run_dir = Path(run_dir)
    report = load_report(run_dir)
    x = None
    try:
        from edgekit.data import load_data
        from edgekit.recipe import load_recipe

        splits = load_data(load_recipe(run_dir / "recipe.yaml").data, report.seed)
        x = splits.x_test
    except EdgekitError:
        pass  # no data here: random inputs of the model's shape
    profiles: dict[str, dict] = {}
    for art in [a for a in report.artifacts if a.status == "ok" and a.format in PROFILERS]:
        log(f"profile: {art.name} on {profile.name}")
        try:
            batch = x[:1] if x is not None else None
            profiles[art.name] = profile_artifact(verified_path(run_dir, art), profile, name=art.name, runs=runs,
                                                  warmup=warmup, threads=threads, x=batch)
        except EdgekitError as e:
            log(f"  FAILED {e}")
            profiles[art.name] = {"artifact": art.name, "device": profile.name, "error": str(e), "layers": [],
                                  "flags": []}
    by_name = {a.name: a for a in report.artifacts}
    for name, prof in profiles.items():
        art = by_name[name]
        if "error" in prof or art.precision == "fp32":
            continue
        src = art.source if art.source in profiles else next(
            (n for n, p in profiles.items() if by_name[n].precision == "fp32" and by_name[n].format == art.format), None)
        prof_src = profiles.get(src) if src else None
        if prof_src and "error" not in prof_src:
            prof["baseline"] = src
            flag = compare_pair(prof, prof_src)
            if flag:
                prof["flags"].append(flag)
    report.profiles = [p for p in report.profiles if (p.get("artifact"), p.get("device")) not in
                       {(n, profile.name) for n in profiles}] + list(profiles.values())
    save_report(report, run_dir)
    return list(profiles.values())
