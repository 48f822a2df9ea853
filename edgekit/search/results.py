"""What a search leaves behind: a table of trials, the Pareto front (and its plot), and the best recipe per
objective as ready-to-run YAML."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from edgekit.atomic import atomic_path, atomic_write_text
from edgekit.search.config import SearchConfig
from edgekit.search.space import SearchSpec


def trial_rows(study) -> tuple[list[dict], int]:
    """One dict per trial (surplus tickets left out, and counted)."""
    rows, surplus = [], 0
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):
            surplus += 1
            continue
        cons = t.user_attrs.get("constraints", [])
        rows.append({
            "number": t.number, "state": t.state.name.lower(), "params": dict(t.params),
            "values": list(t.values) if t.values is not None else None, "metrics": t.user_attrs.get("metrics", {}),
            "feasible": bool(t.values is not None and all(c <= 0 for c in cons)), "constraints": cons,
            "result": t.user_attrs.get("result"), "run_dir": t.user_attrs.get("run_dir"),
            "error": t.user_attrs.get("error"), "pruned_because": t.user_attrs.get("pruned_because"),
            "retry_of": t.user_attrs.get("retry_of", t.system_attrs.get("failed_trial")),
            "duration_s": (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start else None,
        })
    return rows, surplus


def dominates(a: list[float], b: list[float], signs: list[float]) -> bool:
    """a is no worse than b in every objective and better in one (signs: +1 maximize, -1 minimize)."""
    no_worse = all(s * x >= s * y for x, y, s in zip(a, b, signs))
    return no_worse and any(s * x > s * y for x, y, s in zip(a, b, signs))


def pareto_front(rows: list[dict], cfg: SearchConfig) -> list[dict]:
    signs = [1.0 if o.direction == "maximize" else -1.0 for o in cfg.objectives]
    return [r for r in rows if not any(dominates(o["values"], r["values"], signs) for o in rows if o is not r)]


def best_by(rows: list[dict], cfg: SearchConfig, k: int) -> dict | None:
    """Best row for objective k; ties broken by the other objectives in order."""
    if not rows:
        return None
    signs = [1.0 if o.direction == "maximize" else -1.0 for o in cfg.objectives]
    order = [k] + [i for i in range(len(signs)) if i != k]
    return max(rows, key=lambda r: tuple(signs[i] * r["values"][i] for i in order))


def recipe_of(spec: SearchSpec, params: dict) -> str:
    """The plain recipe a trial ran: what the user wrote, with each space replaced by the trial's value (defaults
    stay implicit), as YAML for `edgekit run`."""
    import yaml

    from edgekit.recipe import Recipe

    values = {}
    for s in spec.spaces:
        v = params[s.path]
        if s.kind == "choice" and not all(isinstance(c, (bool, int, float, str)) or c is None for c in s.values):
            v = json.loads(v)
        values[s.path] = clean_float(v, 12) if isinstance(v, float) else v
    data = spec.resolve(values)
    data.pop("output_dir", None)
    Recipe.model_validate(data)  # the written file must run
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


def clean_float(v: float, digits: int = 6) -> float:
    """`v` to `digits` significant digits: 0.30000000000000004 -> 0.3 (float noise out of tables and files)."""
    return float(f"{v:.{digits}g}")


def _rounded(v):
    return clean_float(v) if isinstance(v, float) else v


def write_summary(study, spec: SearchSpec, cfg: SearchConfig, out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    rows, surplus = trial_rows(study)
    done = [r for r in rows if r["state"] == "complete"]
    feasible = [r for r in done if r["feasible"]]
    pool = feasible or done
    front = pareto_front(pool, cfg)
    best = {}
    for k, o in enumerate(cfg.objectives):
        b = best_by(pool, cfg, k)
        if b is None:
            continue
        best[o.metric] = b["number"]
        text = recipe_of(spec, b["params"])
        header = (f"# best {o.direction[:3]} {o.metric} of search '{study.study_name}': trial {b['number']}, "
                  + ", ".join(f"{m} {v:.4g}" for m, v in sorted(b["metrics"].items()) if m in _SHOWN) + "\n")
        if not b["feasible"]:
            header += "# WARNING: no trial met the constraints; this is the best unconstrained trial\n"
        atomic_write_text(out_dir / f"best-{o.metric}.yaml", header + text)
        if k == 0:
            atomic_write_text(out_dir / "best.yaml", header + text)
    summary = {
        "study": study.study_name, "objectives": [o.model_dump() for o in cfg.objectives],
        "trials_requested": cfg.trials, "trials": len(rows), "complete": len(done), "feasible": len(feasible),
        "pruned": sum(r["state"] == "pruned" for r in rows), "failed": sum(r["state"] == "fail" for r in rows),
        "surplus_tickets": surplus, "pareto_front": [r["number"] for r in front], "best": best,
        "constraints_met": bool(feasible), "folder": str(out_dir), "rows": rows,
    }
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, default=str))
    _write_csv(rows, spec, out_dir / "trials.csv")
    atomic_write_text(out_dir / "summary.md", summary_markdown(summary, spec, cfg))
    try:
        _plot(rows, front, cfg, out_dir / "pareto.png")
    except ImportError:
        pass  # matplotlib is the `report` extra; the tables are written regardless
    return summary


_SHOWN = ("accuracy", "latency_p50_ms", "latency_p90_ms", "size_mb", "macs", "cosine")


def _write_csv(rows: list[dict], spec: SearchSpec, path: Path) -> None:
    import io

    metrics = sorted({m for r in rows for m in r["metrics"]})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["trial", "state", "feasible", *[s.path for s in spec.spaces], *metrics, "error"])
    for r in rows:
        w.writerow([r["number"], r["state"], r["feasible"], *[_rounded(r["params"].get(s.path)) for s in spec.spaces],
                    *[_rounded(r["metrics"].get(m)) for m in metrics], r["error"] or r["pruned_because"] or ""])
    atomic_write_text(path, buf.getvalue())


def summary_markdown(summary: dict, spec: SearchSpec, cfg: SearchConfig) -> str:
    objs = ", ".join(f"{o.direction} {o.metric}" for o in cfg.objectives)
    lines = [f"# Search `{summary['study']}`", "",
             f"Objectives: {objs}. Trials: {summary['complete']} complete ({summary['feasible']} meeting the "
             f"constraints), {summary['pruned']} pruned, {summary['failed']} failed, of {summary['trials_requested']} "
             "requested.", ""]
    if not summary["constraints_met"]:
        lines += ["**No trial met the constraints**; best.yaml is the best unconstrained trial.", ""]
    lines += ["Best per objective: " + ", ".join(f"{m}: trial {n} (`best-{m}.yaml`)"
                                                for m, n in summary["best"].items()), "",
              "![pareto](pareto.png)", ""]
    metrics = [m for m in _SHOWN if any(m in r["metrics"] for r in summary["rows"])]
    head = ["trial", "state", "front", *[s.path for s in spec.spaces], *metrics]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    front = set(summary["pareto_front"])
    for r in summary["rows"]:
        state = r["state"] + ("" if r["feasible"] or r["state"] != "complete" else " (infeasible)")
        cells = [str(r["number"]), state, "*" if r["number"] in front else "",
                 *[_fmt(r["params"].get(s.path)) for s in spec.spaces], *[_fmt(r["metrics"].get(m)) for m in metrics]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_text(summary: dict) -> str:
    """What a person reads at the end of a search: counts, the best trial per objective with its metrics, the front
    and the files to use."""
    rows = {r["number"]: r for r in summary["rows"]}
    lines = [f"search '{summary['study']}': {summary['complete']} of {summary['trials']} trials complete, "
             f"{summary['feasible']} meeting the constraints, {summary['pruned']} pruned, {summary['failed']} failed"]
    if not summary["constraints_met"]:
        lines.append("  no trial met the constraints: the best trials below are unconstrained")
    directions = {o["metric"]: o["direction"] for o in summary["objectives"]}
    folder = Path(summary.get("folder", "."))
    for metric, number in summary["best"].items():
        shown = [f"{m} {_fmt(v)}" for m, v in sorted(rows[number]["metrics"].items()) if m in _SHOWN]
        lines.append(f"  best {metric} ({directions[metric]}): trial {number}: " + ", ".join(shown)
                     + f"  -> {folder / f'best-{metric}.yaml'}")
    front = summary["pareto_front"]
    lines.append("  Pareto front: " + (f"trials {', '.join(str(n) for n in front)}" if front else "empty"))
    if summary["best"]:
        lines.append(f"  edgekit run {folder / 'best.yaml'}   reproduces the best trial; table: {folder / 'summary.md'}")
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return ""
    if not isinstance(v, float):
        return str(v)
    text = f"{v:.4g}"
    return f"{v:.6g}" if text in ("1", "0", "-1") and v != float(text) else text  # a 0.99996 cosine is not 1


def pareto_figure(rows: list[dict], front: list[dict], cfg: SearchConfig, constraints=()):
    """Accuracy (or the first maximized objective) against p90 latency (or the first minimized one); marker area
    follows the artifact size (keyed in the legend); the Pareto front of the configured objectives is outlined and
    joined; constraints on either axis are drawn as lines, the others listed in the legend."""
    from matplotlib.lines import Line2D

    from edgekit.report.plots import draw_front, metric_label, pyplot

    plt = pyplot()
    done = [r for r in rows if r["state"] == "complete"]
    ys = next((o.metric for o in cfg.objectives if o.direction == "maximize"), "accuracy")
    xs = next((o.metric for o in cfg.objectives if o.direction == "minimize"), "latency_p90_ms")
    pts = [r for r in done if xs in r["metrics"] and ys in r["metrics"]]
    sizes = [r["metrics"]["size_mb"] for r in pts if "size_mb" in r["metrics"]]
    biggest = max(sizes, default=0) or 1.0

    def area(mb: float | None) -> float:
        return 30 + 150 * (mb if mb is not None else biggest / 2) / biggest

    fig, ax = plt.subplots(figsize=(7.6, 4.6), dpi=110)
    for feas, color, label in ((True, "tab:blue", "meets constraints"), (False, "tab:gray", "violates constraints")):
        sel = [r for r in pts if r["feasible"] == feas]
        if sel:
            ax.scatter([r["metrics"][xs] for r in sel], [r["metrics"][ys] for r in sel], c=color, alpha=0.75,
                       s=[area(r["metrics"].get("size_mb")) for r in sel], label=label, zorder=3)
    f = sorted((r for r in front if r in pts), key=lambda r: r["metrics"][xs])
    if f:
        ax.scatter([r["metrics"][xs] for r in f], [r["metrics"][ys] for r in f], s=260, facecolors="none",
                   edgecolors="tab:red", lw=1.2, zorder=4, label="on the Pareto front")
        draw_front(ax, [r["metrics"][xs] for r in f], [r["metrics"][ys] for r in f])
    for r in pts:
        ax.annotate(str(r["number"]), (r["metrics"][xs], r["metrics"][ys]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    handles = []
    for c in constraints:
        bound, op = (c.max, "<=") if c.max is not None else (c.min, ">=")
        text = f"constraint: {metric_label(c.metric)} {op} {bound:g}"
        if c.metric in (xs, ys):
            line = ax.axvline if c.metric == xs else ax.axhline
            line(bound, color="tab:orange", ls="-.", lw=1.2, label=text)
        else:
            handles.append(Line2D([], [], ls="none", label=text + " (not on these axes)"))
    if sizes:
        for mb in sorted({min(sizes), biggest}):
            handles.append(Line2D([], [], ls="none", marker="o", ms=area(mb) ** 0.5, mfc="white", mec="black",
                                  label=f"size {mb:.3g} MB"))
    h, _ = ax.get_legend_handles_labels()
    ax.legend(handles=h + handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xlabel(metric_label(xs))
    ax.set_ylabel(metric_label(ys))
    ax.margins(0.12)
    ax.set_title("search trials (number = trial; marker area ~ size)", fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def _plot(rows: list[dict], front: list[dict], cfg: SearchConfig, path: Path) -> None:
    from edgekit.report.plots import png_bytes
    from edgekit.search.study import all_constraints

    png = png_bytes(pareto_figure(rows, front, cfg, all_constraints(cfg)))
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
