"""Tiny models, data and recipes shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from edgekit.data.config import DigitsData
from edgekit.recipe import Recipe

TINY_MODELS = {
    "mlp": {"arch": "mlp", "hidden": [32]},
    "cnn": {"arch": "cnn", "channels": [8, 16]},
    "resnet": {"arch": "resnet", "widths": [8, 16], "blocks": [1, 1]},
    "mobilenet_v2": {"arch": "mobilenet_v2", "width_mult": 0.5, "stages": [[1, 8, 1, 1], [4, 16, 2, 2]],
                     "stem_channels": 8, "last_channels": 32},
}


def tiny_recipe_dict(**over) -> dict:
    """A fast recipe: digits, tiny CNN, 3 epochs, fp32 ONNX + static int8, short bench."""
    d = {
        "name": "tiny",
        "seed": 0,
        "data": {"source": "digits"},
        "model": dict(TINY_MODELS["cnn"]),
        "train": {"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}, "progress": False},
        "passes": [{"name": "quantize.static", "format": "qdq", "activation_type": "uint8", "per_channel": True,
                    "tolerance": {"min_cosine": 0.9, "min_top1": 0.7}}],  # a 3-epoch model has thin margins
        "export": [{"format": "onnx", "exporter": "legacy"}],
        "bench": {"devices": ["host-cpu"], "warmup": 2, "iterations": 20, "min_time_s": 0.05},
        "gates": {"max_accuracy_drop": 0.2, "max_latency_p90_ms": 1000},
    }
    d.update(over)
    return d


def tiny_recipe(**over) -> Recipe:
    return Recipe.model_validate(tiny_recipe_dict(**over))


def write_recipe(path: Path, **over) -> Path:
    path.write_text(yaml.safe_dump(tiny_recipe_dict(**over), sort_keys=False))
    return path


def digits_splits(seed: int = 0, **cfg):
    from edgekit.data import load_data

    return load_data(DigitsData(source="digits", **cfg), seed)


def trained_cnn(splits, epochs: int = 4):
    """A quickly trained tiny CNN (deterministic under seed 0)."""
    from edgekit.models import build_model
    from edgekit.models.config import CnnConfig
    from edgekit.train.config import TrainConfig
    from edgekit.train.trainer import Trainer, seed_everything

    seed_everything(0)
    model = build_model(CnnConfig(**TINY_MODELS["cnn"]), splits.input_shape, splits.num_classes)
    Trainer(TrainConfig(epochs=epochs, optimizer={"lr": 0.01}, progress=False), splits).fit(model)
    return model.eval()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).mean())


def tiny_factory(num_classes: int = 10):
    """A user-style factory (module:callable) returning the tiny CNN."""
    from edgekit.models import build_model
    from edgekit.models.config import CnnConfig

    return build_model(CnnConfig(**TINY_MODELS["cnn"]), (1, 8, 8), num_classes)


def onnx_pass_setup(model, splits, run_dir: Path):
    """The fp32 ONNX file of `model` in `run_dir/artifacts` (an OnnxFile handle) and the context passes on it see."""
    from edgekit.export.config import OnnxExport
    from edgekit.export.onnx import OnnxExporter
    from edgekit.passes.apply import as_handle, pass_context

    (run_dir / "artifacts").mkdir(exist_ok=True)
    path = run_dir / "artifacts" / "onnx-fp32.onnx"
    OnnxExporter().export(model, splits.x_test, OnnxExport(format="onnx", exporter="legacy"), path, run_dir, "onnx-fp32")
    src = as_handle(path, splits, run_dir)
    return src, pass_context(src, splits, run_dir, reference=model, log=lambda m: None)
