"""Build the recipe's model: a zoo architecture or a model the user brings."""

from __future__ import annotations

import importlib
from pathlib import Path

from edgekit.errors import ModelLoadError


def build_model(cfg, input_shape, num_classes):
    """Return an nn.Module (zoo, factory, TorchScript), or the .onnx path for an ONNX model."""
    return BUILDERS[cfg.arch](cfg, tuple(input_shape), num_classes)


def _zoo(cfg, input_shape, num_classes):
    from edgekit.models.zoo import ZOO, initialize

    model = ZOO[cfg.arch](cfg, input_shape, num_classes)
    initialize(model, cfg.init)
    return model


def _factory(cfg, input_shape, num_classes):
    from torch import nn

    from edgekit.models.checkpoint import apply_state_dict, load_state_dict

    mod_name, _, attr = cfg.factory.partition(":")
    try:
        obj = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ModelLoadError(f"model.factory '{cfg.factory}': cannot import: {e}") from e
    try:
        model = obj(**cfg.kwargs)
    except TypeError as e:
        raise ModelLoadError(f"model.factory '{cfg.factory}': bad kwargs {cfg.kwargs}: {e}") from e
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"model.factory '{cfg.factory}' returned {type(model).__name__}, not an nn.Module")
    if cfg.weights is not None:
        apply_state_dict(model, load_state_dict(cfg.weights), cfg.weights)
    return model


def _torchscript(cfg, input_shape, num_classes):
    import torch

    path = Path(cfg.path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: TorchScript file not found")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch raises RuntimeError for anything that is not a TorchScript archive
        raise ModelLoadError(f"{path}: not a valid TorchScript file: {str(e).splitlines()[0]}") from e


def _onnx(cfg, input_shape, num_classes):
    from edgekit.export.onnx_check import check_onnx_file

    check_onnx_file(Path(cfg.path))
    return Path(cfg.path)


BUILDERS = {
    "mlp": _zoo,
    "cnn": _zoo,
    "resnet": _zoo,
    "mobilenet_v2": _zoo,
    "factory": _factory,
    "torchscript": _torchscript,
    "onnx": _onnx,
}
