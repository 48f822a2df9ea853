"""Helpers shared by the device tests: small ONNX artifacts, a pipeline Run to bench, profile files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import yaml


def resnet_onnx(path: Path, widths=(32, 64), blocks=(2, 2), size: int = 32, seed: int = 0) -> Path:
    """A small ResNet on 3 x size x size inputs, exported to ONNX (legacy exporter, dynamic batch)."""
    import warnings

    import torch

    from edgekit.models import build_model
    from edgekit.models.config import ResnetConfig

    torch.manual_seed(seed)
    model = build_model(ResnetConfig(arch="resnet", widths=list(widths), blocks=list(blocks)), (3, size, size), 10).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, size, size),), str(path), dynamo=False, opset_version=18,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return Path(path)


def write_profile(folder: Path, name: str, **fields) -> Path:
    data = {"name": name, **fields}
    path = Path(folder) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def bench_run(tmp_path: Path, splits, onnx_path: Path, names: list[str], devices: list[str], **bench):
    """A pipeline Run whose report holds `names` copies of one ONNX artifact, ready for stage_bench."""
    from helpers import tiny_recipe

    from edgekit import __version__
    from edgekit.export.artifact import describe
    from edgekit.pipeline import Run
    from edgekit.report.schema import Report

    run_dir = tmp_path / "run"
    (run_dir / "artifacts").mkdir(parents=True)
    recipe = tiny_recipe(bench={"devices": devices, "warmup": 2, "iterations": 10, "min_time_s": 0.05, **bench})
    report = Report(edgekit_version=__version__, recipe_name=recipe.name, created="now")
    for name in names:
        dst = run_dir / "artifacts" / f"{name}.onnx"
        shutil.copyfile(onnx_path, dst)
        report.artifacts.append(describe(name, "onnx", "fp32", dst, run_dir))
    return Run(recipe, run_dir, report, log=lambda m: None, splits=splits)


def digits_onnx(cnn, splits, folder: Path) -> Path:
    from edgekit.export.config import OnnxExport
    from edgekit.export.onnx import OnnxExporter

    path = Path(folder) / "cnn.onnx"
    OnnxExporter().export(cnn, splits.x_test, OnnxExport(format="onnx", exporter="legacy"), path, Path(folder), "cnn")
    return path


def save_inputs(folder: Path, x: np.ndarray) -> str:
    path = Path(folder) / "x.npy"
    np.save(path, np.ascontiguousarray(x, dtype=np.float32))
    return str(path)
