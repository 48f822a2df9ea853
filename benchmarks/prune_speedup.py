"""MAC reduction vs measured ONNX Runtime speedup of structured (channel) pruning, several ratios side by side.

Builds zoo models (random weights: latency does not depend on their values), prunes copies with edgekit's
prune.structured pass (torch-pruning's dependency graph, L2 importance, per-layer ratio), exports each to ONNX and
times all of them in one ONNX Runtime process, interleaved over short rounds so drift on a shared machine hits every
variant alike. Prints params, MACs, the MAC ratio and the measured p50 speedup per ratio.

    .venv/bin/python benchmarks/prune_speedup.py [--ratios 0.25 0.5 0.75] [--input 3 32 32] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

MODELS = {
    "resnet": {"arch": "resnet", "widths": [32, 64, 128], "blocks": [2, 2, 2]},
    "mobilenet_v2": {"arch": "mobilenet_v2", "width_mult": 1.0},
}


def _splits(shape, classes):
    """Just what the pass's accounting reads: shapes, and a few inputs to measure accuracy on (meaningless here)."""
    from edgekit.data.splits import Splits

    x = np.random.default_rng(0).standard_normal((8, *shape)).astype(np.float32)
    y = np.zeros(8, np.int64)
    return Splits.from_arrays(x_calib=x, x_val=x, x_test=x, y_val=y, y_test=y, num_classes=classes)


def variants(arch: str, ratios: list[float], shape, classes: int = 10):
    import torch

    from edgekit.models import build_model
    from edgekit.models.config import MobilenetV2Config, ResnetConfig
    from edgekit.models.stats import model_stats
    from edgekit.passes.apply import apply_pass
    from edgekit.passes.prune_structured import StructuredPruneConfig

    torch.manual_seed(0)
    cfg = {"resnet": ResnetConfig, "mobilenet_v2": MobilenetV2Config}[arch](**MODELS[arch])
    base = build_model(cfg, shape, classes).eval()
    splits = _splits(shape, classes)
    out = [(0.0, base, model_stats(base, shape))]
    for r in ratios:
        cfg = StructuredPruneConfig(name="prune.structured", ratio=r, latency=False)
        pruned = apply_pass(base, cfg, splits).output.module
        out.append((r, pruned, model_stats(pruned, shape)))
    return out


def main() -> None:
    from edgekit.bench.quick import export_temp_onnx, time_onnx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    ap.add_argument("--input", type=int, nargs=3, default=[3, 32, 32], metavar=("C", "H", "W"))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="ORT intra-op threads; 1 measures compute, more threads "
                    "fight other load on a shared machine")
    ap.add_argument("--budget", type=float, default=6.0, help="seconds of timing per model family")
    args = ap.parse_args()
    shape = tuple(args.input)
    x = np.random.default_rng(0).standard_normal((args.batch, *shape)).astype(np.float32)
    print(f"input {shape}, batch {args.batch}, threads {args.threads or 'ORT default'}; ONNX Runtime p50 over "
          f"interleaved rounds, {args.budget:.0f} s per model family\n")
    header = (f"{'model':<13} {'ratio':>5} {'params':>10} {'MACs':>13} {'MAC ratio':>9} {'p50 ms':>8} {'p90 ms':>8} "
              f"{'speedup':>7}")
    print(header)
    print("-" * len(header))
    for arch in args.models:
        rows = variants(arch, args.ratios, shape)
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i, (_, model, _) in enumerate(rows):
                paths.append(Path(tmp) / f"{i}.onnx")
                export_temp_onnx(model, x, paths[-1])
            times = time_onnx(paths, x, args.threads, budget_s=args.budget, rounds=20)
        base_macs, base_p50 = rows[0][2]["macs"], times[0]["p50"]
        for (ratio, _, st), t in zip(rows, times):
            print(f"{arch:<13} {ratio:>5.2f} {st['params']:>10,} {st['macs']:>13,} {base_macs / st['macs']:>8.2f}x "
                  f"{t['p50']:>8.3f} {t['p90']:>8.3f} {base_p50 / t['p50']:>6.2f}x")
        print()


if __name__ == "__main__":
    main()
