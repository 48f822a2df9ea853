"""Cross-architecture parity of model files: each file's outputs on an arm64 device (the emulated board of
lab/arm64-qemu.sh, or a real one) against the same file's outputs on this host and against the host's fp32 file.

    python benchmarks/arm64_parity.py --inputs images.npz --reference fp32.onnx a.onnx b.tflite ... [--device arm64-emulated]

Both sides run through edgekit's bench agent and transports (local here, ssh there), one pass over the inputs; timings
are not reported (under emulation they mean nothing). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def outputs_on(profile, model: Path, x_path: Path, tmp: Path) -> tuple[np.ndarray, str]:
    from edgekit.devices import transport
    from edgekit.runtimes import default_runtime

    out_path = tmp / f"{profile.name}-{model.name}.npy"
    job = {"runtime": default_runtime(model.suffix.lstrip(".")), "model": str(model), "threads": profile.threads or 1,
           "providers": profile.providers, "affinity": profile.affinity, "batch_size": 1, "warmup": 0, "iterations": 1,
           "min_time_s": 0.0, "max_time_s": 1.0, "inputs": str(x_path), "accuracy": True, "outputs_path": str(out_path)}
    res = transport(profile)(job, 3600)
    return np.load(out_path, allow_pickle=False), res.get("machine", "?")


def main() -> None:
    from edgekit.bench.cross_isa import vs_host_metrics
    from edgekit.bench.metrics import cosine
    from edgekit.devices import load_profile

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--inputs", type=Path, required=True, help=".npz with an array `x` (NCHW float32) or a .npy")
    ap.add_argument("--last", type=int, default=24, help="use the last N inputs")
    ap.add_argument("--reference", type=Path, required=True, help="the fp32 file, run on this host")
    ap.add_argument("--device", default="arm64-emulated")
    ap.add_argument("--host", default="host-cpu")
    a = ap.parse_args()
    data = np.load(a.inputs, allow_pickle=False)
    x = np.ascontiguousarray((data["x"] if hasattr(data, "files") else data)[-a.last:], dtype=np.float32)
    host, dev = load_profile(a.host), load_profile(a.device)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        np.save(tmp / "x.npy", x)
        ref, host_machine = outputs_on(host, a.reference, tmp / "x.npy", tmp)
        print(f"{len(x)} inputs; host {host.name} ({host_machine}), device {dev.name}\n")
        print("| file | top-1 agree vs fp32 (x86 / ARM) | cosine vs fp32 (x86 / ARM) | ARM vs x86, same file: max-abs "
              "| cosine | top-1 flips |")
        print("| --- | --- | --- | --- | --- | --- |")
        for f in a.files:
            on_host, _ = outputs_on(host, f, tmp / "x.npy", tmp)
            on_dev, machine = outputs_on(dev, f, tmp / "x.npy", tmp)
            m = vs_host_metrics(on_host, on_dev)
            agree = [float((o.reshape(len(x), -1).argmax(1) == ref.reshape(len(x), -1).argmax(1)).mean())
                     for o in (on_host, on_dev)]
            print(f"| `{f.name}` ({machine}) | {agree[0]:.3f} / {agree[1]:.3f} | {cosine(ref, on_host):.5f} / "
                  f"{cosine(ref, on_dev):.5f} | {m['vs_host_max_abs']:.3g} | {m['vs_host_cosine']:.6f} | "
                  f"{int(m['vs_host_top1_flips'])} / {len(x)} |", flush=True)


if __name__ == "__main__":
    main()
