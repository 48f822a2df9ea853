"""Time and check prebuilt int8 files against their fp32 file on the host that runs this script.

int8 speed depends on the CPU's integer dot-product instructions: without them (AVX2 only, as on the machine where
`int8_mobile_cnn.py` builds its files) ONNX Runtime's U8S8 kernels and XNNPACK's int8 kernels run at about fp32 FMA
throughput. This script takes the files `int8_mobile_cnn.py --out DIR` kept, and a pack of its evaluation photos,
to a target (AVX-512 VNNI / AVX-VNNI / AMX x86, or ARM with dot-product) and measures there, with the same
paired, interleaved timing and the same fidelity metrics against the fp32 file run on the same host.

    # where the files were built (needs what int8_mobile_cnn.py needs): the natural-photo evaluation images, uint8
    python benchmarks/int8_on_host.py pack --n 80 photos.npz
    # on the target (needs numpy, onnxruntime; ai-edge-litert and edgekit for .tflite files)
    python benchmarks/int8_on_host.py run --images photos.npz --fp32 fp32.onnx \\
        --int8 ort-default=ort_default.onnx --int8 "edgekit quantize.auto=edgekit-auto.onnx" \\
        --threads 1,2,4 --iters 200 --rounds 3

.onnx files run in ONNX Runtime's CPU EP, .tflite files in LiteRT (XNNPACK); the int8 files must be of the --fp32
file's kind (one run per kind).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from int8_mobile_cnn import metrics, paired_speedups, print_header, session, speed_cells  # noqa: E402


def cpu_summary() -> str:
    from edgekit.hardware import cpu_info

    c = cpu_info()
    return f"{c['model']}; {os.cpu_count()} logical CPUs; ISA: {', '.join(c['isa']) or 'none listed'}"


def pack(a) -> None:
    """The natural photos that int8_mobile_cnn.py evaluates on (same split), as uint8 NCHW pixels with their source
    and label; with --with-calibration also its calibration and validation images (role 0 and 1; evaluation 2), so
    int8_mobile_cnn.py --images can build and measure on a host without the image packages."""
    from int8_mobile_cnn import NATURAL, check_deps, load_images, split

    check_deps()
    x, src, labels = load_images(a.cache)
    cal, val, ev = split(src, a.calib, a.val, 0)
    ev = [i for i in ev if src[i] in NATURAL][:a.n]
    parts = [(0, cal), (1, val), (2, ev)] if a.with_calibration else [(2, ev)]
    idx = [i for _, ix in parts for i in ix]
    u8 = np.rint(x[idx] * 128.0 + 127.0)
    assert np.abs(u8 - (x[idx] * 128.0 + 127.0)).max() < 1e-3, "images are not (u8 - 127) / 128"
    np.savez_compressed(a.out, x=u8.astype(np.uint8), src=np.array([src[i] for i in idx]), labels=labels[idx],
                        role=np.array([r for r, ix in parts for _ in ix], dtype=np.int8))
    print(f"{len(idx)} images ({', '.join(f'{len(ix)} role {r}' for r, ix in parts)}) -> {a.out} "
          f"({a.out.stat().st_size / 1e6:.1f} MB)")


def loader(path: Path, threads: int):
    if path.suffix == ".tflite":
        from edgekit.runtimes import get_runtime

        return get_runtime("litert").load(path, threads)
    return session(path, threads)


def outputs(path: Path, x: np.ndarray, threads: int) -> np.ndarray:
    s = loader(path, threads)
    if hasattr(s, "run_batch"):
        return np.concatenate([s.run_batch(x[i:i + 1]) for i in range(len(x))])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def versions(paths: list[Path]) -> str:
    out = []
    if any(p.suffix == ".onnx" for p in paths):
        import onnxruntime

        out.append(f"onnxruntime {onnxruntime.__version__}")
    if any(p.suffix == ".tflite" for p in paths):
        from edgekit.runtimes import get_runtime

        out.append(f"LiteRT {get_runtime('litert').version()} (XNNPACK)")
    return ", ".join(out)


def run(a) -> None:
    from int8_mobile_cnn import load_pack

    x, _, _, _, _, ev = load_pack(a.images, 0)
    x = x[ev]  # evaluation images only, also from a pack made --with-calibration
    bad = [kv for kv in a.int8 if "=" not in kv]
    if bad:
        sys.exit(f"--int8 takes NAME=FILE, got {bad}")
    models = {"fp32": a.fp32} | {k: Path(v) for k, v in (kv.split("=", 1) for kv in a.int8)}
    other = [str(p) for p in models.values() if p.suffix != a.fp32.suffix]
    if other:
        sys.exit(f"every --int8 file must be of the --fp32 file's kind ({a.fp32.suffix}): {other}")
    threads = [int(t) for t in a.threads.split(",")]
    print(f"host: {cpu_summary()}\nruntimes: {versions(list(models.values()))}; python {platform.python_version()}")
    outs = {k: outputs(p, x, threads[0]) for k, p in models.items()}
    lat = paired_speedups(models, x[:1], a.iters, threads, load=loader, rounds=a.rounds)
    ref = outs["fp32"]
    m = metrics(ref, ref, np.full(len(x), -1))
    print(f"\n{len(x)} natural photos ({m['n_conf']} where fp32 p>0.5), batch 1; fidelity against {a.fp32.name} on "
          f"this host; latency: each int8 file paired with fp32, {a.iters} runs each in alternating blocks of 10, "
          f"medians over {a.rounds} round(s) (range of the speed-up)\n")
    print_header(["logit cosine", "top-1 agree", "agree (fp32 p>0.5)"], threads)
    for k, p in models.items():
        r = metrics(outs[k], ref, np.full(len(x), -1))
        cells = " | ".join("- | 1.00x" for _ in threads) if k == "fp32" else speed_cells(lat[k], threads)
        print(f"| {k} | {r['cos']:.4f} | {r['agree']:.3f} | {r['agree_conf']:.3f} | {cells} | "
              f"{p.stat().st_size / 1e6:.1f} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="write the natural evaluation photos as a uint8 .npz")
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=80)
    p.add_argument("--calib", type=int, default=100, help="as int8_mobile_cnn.py --calib (the same split)")
    p.add_argument("--val", type=int, default=150, help="as int8_mobile_cnn.py --val")
    p.add_argument("--with-calibration", action="store_true",
                   help="also the calibration and validation images, for int8_mobile_cnn.py --images")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache/edgekit/effnet_lite0_images.npz")
    r = sub.add_parser("run", help="fidelity and paired latency of int8 files against fp32 on this host")
    r.add_argument("--images", type=Path, required=True)
    r.add_argument("--fp32", type=Path, required=True)
    r.add_argument("--int8", action="append", default=[], metavar="NAME=FILE")
    r.add_argument("--threads", default="1,2,4")
    r.add_argument("--iters", type=int, default=200)
    r.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    {"pack": pack, "run": run}[a.cmd](a)


if __name__ == "__main__":
    main()
