"""ONNX Runtime vs LiteRT, fp32 vs int8, for one model, measured in one run.

Trains the quickstart CNN briefly on digits, exports ONNX fp32 (+ edgekit's static int8 pass) and TFLite fp32 and
full int8, then times every artifact with the bench agent (a fresh process each, warm-up + many iterations),
interleaving the artifacts over several rounds so that drift on a shared machine hits all of them alike. Prints
median p50/p90 across rounds and the int8/fp32 and LiteRT/ORT ratios.

    .venv/bin/python benchmarks/tflite_vs_onnx.py [--epochs 8] [--batch 1] [--threads N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

ARTIFACTS = [("onnxruntime", "fp32", "onnx-fp32"), ("onnxruntime", "int8", "onnx-int8"),
             ("litert", "fp32", "tflite-fp32"), ("litert", "int8", "tflite-int8")]


def build_recipe(args):
    from edgekit.recipe import Recipe

    return Recipe.model_validate({
        "name": "tflite-vs-onnx", "seed": 0, "data": {"source": "digits"},
        "model": {"arch": "cnn", "channels": args.channels},
        "train": {"epochs": args.epochs, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.003},
                  "progress": False},
        "passes": [{"name": "quantize.static"}],
        "export": [{"format": "onnx"}, {"format": "tflite"}, {"format": "tflite", "precision": "int8"}],
        "bench": {"devices": ["host-cpu"], "batch_size": args.batch, "threads": args.threads, "warmup": 50,
                  "iterations": 500, "min_time_s": args.min_time},
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="default: the host-cpu profile's (all usable cores)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds timed per artifact per round")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from edgekit import pipeline as p
    from edgekit.bench.run import bench_artifact
    from edgekit.devices import load_profile

    out = args.out or Path(tempfile.mkdtemp(prefix="edgekit-tflite-vs-onnx-"))
    run = p.new_run(build_recipe(args), out, log=lambda s: None)
    for stage in (p.stage_data, p.stage_model, p.stage_train, p.stage_reference, p.stage_export, p.stage_onnx_passes,
                  p.stage_cross_parity):
        stage(run)
    if run.report.errors:
        raise SystemExit(f"export failed: {run.report.errors}")
    profile = load_profile("host-cpu")
    arts = {a.name: a for a in run.report.artifacts}
    p50s: dict[str, list[float]] = {n: [] for *_, n in ARTIFACTS}
    p90s: dict[str, list[float]] = {n: [] for *_, n in ARTIFACTS}
    rows = {}
    for _ in range(args.rounds):
        for *_, name in ARTIFACTS:
            row = bench_artifact(arts[name], run.run_dir, run.splits.x_test, run.splits.y_test, profile, run.recipe.bench)
            if row.status != "ok":
                raise SystemExit(f"bench {name}: {row.error}")
            p50s[name].append(row.latency_ms.p50)
            p90s[name].append(row.latency_ms.p90)
            rows[name] = row

    med = {n: (statistics.median(p50s[n]), statistics.median(p90s[n])) for n in p50s}
    r0 = rows["onnx-fp32"]
    print(f"model: cnn {args.channels}, {run.report.model.get('params', 0):,} params; trained {args.epochs} epochs on "
          f"digits, reference test accuracy {run.report.reference['accuracy']:.4f}")
    print(f"batch {r0.batch_size}, {r0.threads} threads, {args.rounds} interleaved rounds of >= {args.min_time} s per "
          f"artifact; median of the rounds' p50/p90 (ms)\n")
    print(f"{'artifact':<13}{'runtime':<13}{'prec':<6}{'p50 ms':>9}{'p90 ms':>9}{'accuracy':>10}{'size KiB':>10}"
          f"{'int8/fp32 p50':>15}")
    for rt, prec, name in ARTIFACTS:
        r = rows[name]
        fp32 = next(n for q, pr, n in ARTIFACTS if q == rt and pr == "fp32")
        ratio = f"{med[name][0] / med[fp32][0]:.2f}x" if prec == "int8" else ""
        print(f"{name:<13}{rt:<13}{prec:<6}{med[name][0]:>9.4f}{med[name][1]:>9.4f}{r.accuracy:>10.4f}"
              f"{r.size_bytes / 1024:>10.1f}{ratio:>15}")
    print()
    for prec in ("fp32", "int8"):
        o, t = med[f"onnx-{prec}"], med[f"tflite-{prec}"]
        print(f"{prec}: LiteRT/ORT p50 {t[0] / o[0]:.2f}x, p90 {t[1] / o[1]:.2f}x "
              f"({'LiteRT' if t[0] < o[0] else 'ORT'} faster at p50)")
    print("\nint8 formats: ONNX " + arts["onnx-int8"].details.get("format", "?").upper() + " "
          + str(arts["onnx-int8"].details.get("activation_type")) + " activations; TFLite "
          + arts["tflite-int8"].details.get("recipe", "?") + " (XNNPACK delegated "
          + f"{arts['tflite-int8'].details['delegation']['delegated']}/{arts['tflite-int8'].details['delegation']['ops']}"
          + " ops)")
    print("\ncross-runtime parity (256 test samples):")
    for r in run.report.cross_parity:
        print(f"  {r['a']:>12} vs {r['b']:<12} cosine {r.get('cosine', float('nan')):.6f} "
              f"top-1 {r.get('top1_agreement', float('nan')):.4f} max_abs {r.get('max_abs', float('nan')):.2e}")
    print(f"\nrun folder: {run.run_dir}")


if __name__ == "__main__":
    main()
