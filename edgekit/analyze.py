"""Per-layer sensitivity: the accuracy a model loses when only one conv/linear layer is int8-quantized, or only
one layer is channel-pruned. Ranked, deterministic under the recipe's seed, with the layers to protect from
pruning (`protect:` of prune.structured) and to keep in float (`exclude_nodes:` of quantize.static)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit.console import logger
from edgekit.errors import EdgekitError

_log = logger("analyze")

SQNR_CAP_DB = 200.0


def analyze(recipe, checkpoint: Path | None = None, prune_ratio: float = 0.5, threshold: float = 0.01,
            log: Callable[[str], None] = _log.info) -> dict:
    """Build (and train, unless `checkpoint` is given) the recipe's model, then measure `sensitivity`."""
    from edgekit.data import load_data
    from edgekit.models import build_model
    from edgekit.recipe import Recipe, load_recipe
    from edgekit.train.trainer import Trainer, seed_everything

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    splits = load_data(recipe.data, recipe.seed)
    seed_everything(recipe.seed)
    model = build_model(recipe.model, splits.input_shape, splits.num_classes, getattr(splits, "vocab_size", None))
    from edgekit.handles import ExternalFile

    if isinstance(model, ExternalFile):
        raise EdgekitError("analyze needs a PyTorch model; the recipe's model is an .onnx file")
    if checkpoint is not None:
        from edgekit.models.checkpoint import apply_state_dict, load_state_dict

        apply_state_dict(model, load_state_dict(checkpoint), checkpoint)
    elif recipe.train is not None and recipe.train.epochs:
        log(f"analyze: training {recipe.model.arch} for {recipe.train.epochs} epochs (pass --checkpoint to skip)")
        Trainer(recipe.train, splits, seed=recipe.seed).fit(model)
    out = sensitivity(model.eval(), splits, prune_ratio, threshold)
    out["recipe"], out["seed"], out["model"] = recipe.name, recipe.seed, recipe.model.arch
    return out


def _layers(model) -> dict:
    from torch import nn

    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))}


def _input_ranges(model, layers: dict, x: np.ndarray) -> dict[str, tuple[float, float]]:
    """Min/max of every layer's input over the calibration split (range of its int8 input)."""
    import torch

    ranges: dict[str, list[float]] = {n: [np.inf, -np.inf] for n in layers}

    def hook(name):
        def keep(module, inputs):
            r = ranges[name]
            r[0], r[1] = min(r[0], float(inputs[0].min())), max(r[1], float(inputs[0].max()))
        return keep

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in layers.items()]
    with torch.no_grad():
        for i in range(0, len(x), 256):
            model(torch.from_numpy(x[i: i + 256]))
    for h in handles:
        h.remove()
    return {n: (min(r[0], 0.0), max(r[1], 0.0)) for n, r in ranges.items()}


def fake_quantize_layer(module, lo: float, hi: float) -> None:
    """int8 per-channel symmetric weights (in place) and uint8 per-tensor input (a pre-hook), as ORT's U8S8."""
    import torch

    w = module.weight.data
    scale = w.abs().flatten(1).amax(1).clamp(min=1e-12) / 127
    shape = (-1,) + (1,) * (w.dim() - 1)
    module.weight.data = (w / scale.view(shape)).round().clamp(-127, 127) * scale.view(shape)
    s = max(hi - lo, 1e-12) / 255
    zp = round(-lo / s)

    def quant_input(mod, inputs):
        q = ((torch.round(inputs[0] / s) + zp).clamp(0, 255) - zp) * s
        return (q,)

    module.register_forward_pre_hook(quant_input)


def prune_layer(model, name: str, ratio: float, example) -> list[str]:
    """Remove the lowest-L1 `ratio` of `name`'s output channels, with everything the dependency graph couples to
    them (what prune.structured would do to this layer alone). Returns the coupled layer names."""
    import torch_pruning as tp
    from torch import nn

    layers = _layers(model)
    layer = layers[name]
    w = layer.weight.detach()
    n_out = w.shape[0]
    k = int(n_out * ratio)
    if k < 1 or k >= n_out:
        raise ValueError(f"{n_out} channels: nothing to prune at ratio {ratio}")
    idxs = w.abs().flatten(1).sum(1).argsort()[:k].tolist()
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    fn = tp.prune_linear_out_channels if isinstance(layer, nn.Linear) else tp.prune_conv_out_channels
    group = dg.get_pruning_group(layer, fn, idxs=idxs)
    if not dg.check_pruning_group(group):
        raise ValueError("the dependency graph refuses (it would empty a layer)")
    by_module = {id(m): n for n, m in layers.items()}
    coupled = sorted({by_module[id(dep.target.module)] for dep, _ in group if id(dep.target.module) in by_module} - {name})
    group.prune()
    return coupled


def _sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    noise = float(((ref - out) ** 2).sum())
    return SQNR_CAP_DB if noise == 0 else min(SQNR_CAP_DB, 10 * np.log10(float((ref**2).sum()) / noise))


def legacy_onnx_node(module_name: str, op: str) -> str:
    """The node name the legacy ONNX exporter gives a module's op: '/features/features.1/conv/conv.0/Conv'."""
    segments: list[str] = []
    for part in module_name.split("."):
        segments.append(f"{segments[-1]}.{part}" if part.isdigit() and segments else part)
    return "/" + "/".join(segments) + "/" + op


def _exclude_nodes(model, names: list[str], example) -> list[str]:
    """ONNX node names (legacy exporter) of the given modules, checked against a real export."""
    import tempfile

    from torch import nn

    from edgekit.export.onnx import export_onnx
    from edgekit.model_files import onnx_header

    layers = _layers(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(model, example, path, exporter="legacy")
        nodes = {n.name for n in onnx_header(path).graph.node}
    out = []
    for n in names:
        for op in (("Gemm", "MatMul") if isinstance(layers[n], nn.Linear) else ("Conv",)):
            if legacy_onnx_node(n, op) in nodes:
                out.append(legacy_onnx_node(n, op))
    return out


def sensitivity(model, splits, prune_ratio: float = 0.5, threshold: float = 0.01) -> dict:
    """Per layer: val accuracy and logit SQNR with only that layer int8; val accuracy with only it pruned."""
    import torch

    from edgekit.models.zoo import head_name
    from edgekit.train.trainer import predict

    x, y, split = splits.x_val, splits.y_val, "val"
    if len(y) == 0:
        x, y, split = splits.x_test, splits.y_test, "test"
    ref = predict(model, x)
    base = float((ref.argmax(1) == y).mean())
    layers = _layers(model)
    ranges = _input_ranges(model, layers, splits.x_calib)
    head = head_name(model)
    example = torch.zeros(1, *splits.input_shape)
    rows = []
    for name, layer in layers.items():
        q = copy.deepcopy(model)
        fake_quantize_layer(_layers(q)[name], *ranges[name])
        out = predict(q, x)
        acc = float((out.argmax(1) == y).mean())
        row = {"name": name, "type": type(layer).__name__, "params": int(sum(p.numel() for p in layer.parameters())),
               "quant": {"accuracy": acc, "drop": base - acc, "sqnr_db": _sqnr_db(ref, out)}}
        if name == head:
            row["prune"] = {"skipped": "the classifier (its outputs are the classes)"}
        else:
            p = copy.deepcopy(model)
            try:
                coupled = prune_layer(p, name, prune_ratio, example)
                acc = float((predict(p, x).argmax(1) == y).mean())
                row["prune"] = {"accuracy": acc, "drop": base - acc, "coupled": coupled}
            except Exception as e:  # torch-pruning refuses some groups; the layer is then reported unprunable
                row["prune"] = {"skipped": f"{type(e).__name__}: {e}"}
        rows.append(row)
    by_quant = sorted(rows, key=lambda r: (-r["quant"]["drop"], r["quant"]["sqnr_db"], r["name"]))
    prunable = [r for r in rows if "drop" in r["prune"]]
    by_prune = sorted(prunable, key=lambda r: (-r["prune"]["drop"], r["name"]))
    keep_float = [r["name"] for r in by_quant if r["quant"]["drop"] > threshold]
    protect = [r["name"] for r in by_prune if r["prune"]["drop"] > threshold]
    return {
        "split": split, "samples": int(len(y)), "baseline_accuracy": base, "prune_ratio": prune_ratio,
        "threshold": threshold, "layers": rows,
        "ranking": {"quantization": [r["name"] for r in by_quant], "pruning": [r["name"] for r in by_prune]},
        "suggest": {
            "protect": protect, "keep_float": keep_float,
            "recipe": {"prune.structured": {"protect": protect},
                       "quantize.static": {"exclude_nodes": _exclude_nodes(model, keep_float, example)}},
            "why": f"layers whose accuracy drop on the {split} split exceeds {threshold} when treated alone "
                   f"(pruning at ratio {prune_ratio}; int8 per-channel weights and uint8 input); exclude_nodes "
                   f"are node names from the legacy ONNX exporter (`exporter: legacy`)",
        },
    }


def format_table(result: dict) -> str:
    """The layers most sensitive first (by quantization), with pruning alongside."""
    rows = [("layer", "type", "params", "int8 drop", "SQNR dB", f"prune@{result['prune_ratio']} drop", "also changed")]
    by_name = {r["name"]: r for r in result["layers"]}
    for name in result["ranking"]["quantization"]:
        r = by_name[name]
        p = r["prune"]
        rows.append((name, r["type"], f"{r['params']:,}", f"{r['quant']['drop']:+.4f}", f"{r['quant']['sqnr_db']:.1f}",
                     f"{p['drop']:+.4f}" if "drop" in p else "-", ", ".join(p.get("coupled", [])) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    s = result["suggest"]
    lines += ["", f"baseline {result['split']} accuracy {result['baseline_accuracy']:.4f} on {result['samples']} samples",
              f"protect from pruning: {s['protect'] or 'none'}", f"keep in float: {s['keep_float'] or 'none'}"]
    if s["recipe"]["quantize.static"]["exclude_nodes"]:
        lines.append(f"quantize.static exclude_nodes (legacy exporter): {s['recipe']['quantize.static']['exclude_nodes']}")
    return "\n".join(lines)
