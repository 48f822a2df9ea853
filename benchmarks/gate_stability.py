"""Does `edgekit gate` flake? Run a recipe once as the baseline, then N more times unchanged and gate each run
against the baseline; then a deliberately degraded and a deliberately slowed candidate, which must fail.

    .venv/bin/python benchmarks/gate_stability.py [--recipe recipes/quickstart.yaml] [--repeats 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="recipes/quickstart.yaml")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default="runs/gate-stability")
    ap.add_argument("--regression", type=float, default=1.25, help="max_latency_regression threshold")
    args = ap.parse_args()

    from edgekit import api
    from edgekit.recipe import GatesConfig, load_recipe
    from edgekit.report.gates import format_table

    out = Path(args.out)
    gates = GatesConfig(max_accuracy_drop=0.01, max_latency_regression=args.regression)
    common = ["train.progress=false", "bench.batch_size=32"]

    def run(tag, extra):
        api.run(load_recipe(args.recipe, common + extra), out / tag, log=lambda m: None)
        return out / tag

    base = run("baseline", [])
    passed = 0
    for i in range(args.repeats):
        cand = run(f"same-{i}", [])
        res, ok = api.gate(cand, base, gates, log=lambda m: None)
        lat = [g.value or 0 for g in res if g.name == "max_latency_regression"]
        if not lat:  # the run itself failed (see its report.json errors): not a verdict of the gate
            print(f"unchanged run {i + 1}: RUN FAILED, no latency to gate")
            print(format_table(res))
            continue
        passed += ok
        worst = max(lat)
        print(f"unchanged run {i + 1}: {'PASS' if ok else 'FAIL'} (largest latency ratio {worst:.3f})", flush=True)
        if not ok:
            print(format_table(res))
    print(f"unchanged runs passing: {passed}/{args.repeats}")
    degraded = run("degraded", ["train.epochs=1"])
    res, ok = api.gate(degraded, base, gates, log=lambda m: None)
    print(f"degraded (1 training epoch): {'PASS' if ok else 'FAIL'} (expected FAIL)")
    print(format_table([g for g in res if g.name == "max_accuracy_drop"]))
    slowed = run("slowed", ["bench.threads=1", "model.channels=[32,64,128]"])
    res, ok = api.gate(slowed, base, GatesConfig(max_latency_regression=args.regression), log=lambda m: None)
    print(f"slowed (4x the MACs, 1 thread instead of all cores): {'PASS' if ok else 'FAIL'} (expected FAIL)")
    print(format_table([g for g in res if g.name in ("max_latency_regression", "environment_match")]))


if __name__ == "__main__":
    main()
