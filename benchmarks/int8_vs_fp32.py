"""fp32 vs int8 ONNX Runtime latency for one recipe, measured side by side in one run.

    .venv/bin/python benchmarks/int8_vs_fp32.py [--recipe recipes/quickstart.yaml] [--batch-size 1 32] [--rounds 3]

Trains/exports/quantizes with the recipe (no bench), then benchmarks the fp32 and int8 artifacts alternately,
each round in a fresh bench process, and prints median p50/p90 per artifact and the int8/fp32 ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="recipes/quickstart.yaml")
    ap.add_argument("--batch-size", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--out", default="runs/bench-int8-vs-fp32")
    args = ap.parse_args()

    from edgekit import api
    from edgekit.bench.config import BenchConfig
    from edgekit.bench.environment import fingerprint
    from edgekit.bench.run import bench_artifact
    from edgekit.devices import load_profile
    from edgekit.recipe import load_recipe

    recipe = load_recipe(args.recipe, ["bench=null", "train.progress=false"])
    run = api.run(recipe, Path(args.out), log=lambda m: None)
    arts = {a.name: a for a in run.report.artifacts if a.status == "ok" and a.format == "onnx"}
    fp32 = next(a for a in arts.values() if a.precision == "fp32")
    int8 = next(a for a in arts.values() if a.precision.startswith("int8"))  # static or dynamic int8
    profile = load_profile("host-cpu")
    env = fingerprint()
    print(f"# {recipe.name}: {run.report.model.get('arch')} {run.report.model.get('params'):,} params; "
          f"CPU {env['cpu']['model']} ({', '.join(env['cpu']['isa'])}), {env['usable_cores']} cores")
    int8_pass = next((p for p in run.report.passes if p.produced == int8.name), None)
    if int8_pass and int8_pass.decision:
        print(f"# int8 scheme: {int8.details.get('format')} act={int8.details.get('activation_type')} "
              f"per_channel={int8.details.get('per_channel')}")
    print(f"{'batch':>5} {'artifact':<12} {'p50 ms':>9} {'p90 ms':>9} {'accuracy':>9}   ratio p50 int8/fp32")
    for bs in args.batch_size:
        cfg = BenchConfig(batch_size=bs, warmup=20, iterations=100, min_time_s=args.min_time, accuracy=True)
        p50s = {fp32.name: [], int8.name: []}
        p90s = {fp32.name: [], int8.name: []}
        acc = {}
        for _ in range(args.rounds):
            for art in (fp32, int8):  # alternate so drift on a shared machine hits both
                row = bench_artifact(art, run.run_dir, run.splits.x_test, run.splits.y_test, profile, cfg)
                if row.status != "ok":
                    sys.exit(f"bench failed: {row.error}")
                p50s[art.name].append(row.latency_ms.p50)
                p90s[art.name].append(row.latency_ms.p90)
                acc[art.name] = row.accuracy
        med = {k: statistics.median(v) for k, v in p50s.items()}
        for art in (fp32, int8):
            print(f"{bs:>5} {art.name:<12} {med[art.name]:9.4f} {statistics.median(p90s[art.name]):9.4f} "
                  f"{acc[art.name]:9.4f}")
        spread = [i / f for i, f in zip(p50s[int8.name], p50s[fp32.name])]
        print(f"{'':>5} {'':<12} ratio {med[int8.name] / med[fp32.name]:.3f} (per round: "
              f"{', '.join(f'{r:.3f}' for r in spread)}; <1 means int8 is faster)")


if __name__ == "__main__":
    main()
