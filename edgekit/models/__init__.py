"""Build the recipe's model: a zoo architecture or a model the user brings."""

from __future__ import annotations

import importlib
from pathlib import Path

from edgekit.errors import ModelLoadError


def build_model(cfg, input_shape, num_classes, vocab_size: int | None = None):
    """Return an nn.Module (zoo, factory, TorchScript, Hugging Face), or the .onnx path for an ONNX model.

    `vocab_size` is the data's (largest token id + 1) for integer token inputs."""
    return BUILDERS[cfg.arch](cfg, tuple(input_shape), num_classes, vocab_size)


def _zoo(cfg, input_shape, num_classes, vocab_size=None):
    from edgekit.models.zoo import ZOO, initialize

    if num_classes < 1:
        raise ModelLoadError(f"{cfg.arch}: the data has no labels to size the classifier head (num_classes 0)")
    if hasattr(cfg, "vocab_size") and vocab_size is not None:
        if cfg.vocab_size is None:
            cfg = cfg.model_copy(update={"vocab_size": vocab_size})
        elif cfg.vocab_size < vocab_size:
            raise ModelLoadError(f"{cfg.arch}: model.vocab_size {cfg.vocab_size} is smaller than the data's vocabulary "
                                 f"(token ids up to {vocab_size - 1})")
    model = ZOO[cfg.arch](cfg, input_shape, num_classes)
    initialize(model, cfg.init)
    return model


def _factory(cfg, input_shape, num_classes, vocab_size=None):
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
    if cfg.inputs:
        from edgekit.models.inputs import attach_input_spec

        attach_input_spec(model, cfg.inputs[0])
    return model


def _torchscript(cfg, input_shape, num_classes, vocab_size=None):
    import torch

    from edgekit.model_files import check_model_file

    path = Path(cfg.path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: TorchScript file not found")
    check_model_file(path, ModelLoadError)
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch raises RuntimeError for anything that is not a TorchScript archive
        raise ModelLoadError(f"{path}: not a valid TorchScript file: {str(e).splitlines()[0]}") from e


def _onnx(cfg, input_shape, num_classes, vocab_size=None):
    from edgekit.onnx_graph import check_onnx_file

    check_onnx_file(Path(cfg.path))
    return Path(cfg.path)


def _hf(cfg, input_shape, num_classes, vocab_size=None):
    from edgekit.models.hf import load_hf

    return load_hf(cfg, input_shape, num_classes, vocab_size)


BUILDERS = {
    "mlp": _zoo,
    "cnn": _zoo,
    "resnet": _zoo,
    "mobilenet_v2": _zoo,
    "lstm": _zoo,
    "gru": _zoo,
    "transformer": _zoo,
    "vit": _zoo,
    "factory": _factory,
    "torchscript": _torchscript,
    "onnx": _onnx,
    "hf": _hf,
}
