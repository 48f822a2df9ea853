"""Build the recipe's model: a zoo architecture or a model the user brings. One entry per `arch` holds its config
and where its builder lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ModelLoadError
from edgekit.handles import ModelHandle, OnnxFile, TorchModel
from edgekit.models.config import (
    CnnConfig,
    FactoryModel,
    GruConfig,
    HfModel,
    LstmConfig,
    MlpConfig,
    MobilenetV2Config,
    OnnxModel,
    ResnetConfig,
    TorchScriptModel,
    TransformerConfig,
    VitConfig,
)
from edgekit.registry import load_object, registry_union


@dataclass(frozen=True)
class Arch:
    """`config`: the `model:` config class (its `arch` field names the entry); `impl`: 'module:callable'.

    A zoo arch (`zoo=True`) is built untrained as `impl(cfg, input_shape, num_classes)`, then initialized by
    `cfg.init` when the config has one; a loader (`zoo=False`) is `impl(cfg, input_shape, num_classes, vocab_size)`
    and returns what the user brought. `handle`: the handle type the model becomes, a TorchModel or the file handle
    of the file it arrives as (then nothing is exported but that file's format)."""

    config: type
    impl: str
    zoo: bool = True
    handle: type[ModelHandle] = TorchModel


def build_model(cfg, input_shape, num_classes, vocab_size: int | None = None):
    """Return an nn.Module (zoo, factory, TorchScript, Hugging Face), or the ExternalFile of an ONNX model.

    `vocab_size` is the data's (largest token id + 1) for integer token inputs."""
    arch = ARCHS[cfg.arch]
    if arch.zoo:
        return _zoo(arch, cfg, tuple(input_shape), num_classes, vocab_size)
    return load_object(arch.impl)(cfg, tuple(input_shape), num_classes, vocab_size)


def _zoo(arch: Arch, cfg, input_shape, num_classes, vocab_size=None):
    from edgekit.models.zoo import initialize

    if num_classes < 1:
        raise ModelLoadError(f"{cfg.arch}: the data has no labels to size the classifier head (num_classes 0)")
    if hasattr(cfg, "vocab_size") and vocab_size is not None:
        if cfg.vocab_size is None:
            cfg = cfg.model_copy(update={"vocab_size": vocab_size})
        elif cfg.vocab_size < vocab_size:
            raise ModelLoadError(f"{cfg.arch}: model.vocab_size {cfg.vocab_size} is smaller than the data's vocabulary "
                                 f"(token ids up to {vocab_size - 1})")
    model = load_object(arch.impl)(cfg, input_shape, num_classes)
    initialize(model, getattr(cfg, "init", "default"))
    return model


def load_factory(cfg, input_shape, num_classes, vocab_size=None):
    from torch import nn

    from edgekit.models.checkpoint import apply_state_dict, load_state_dict

    try:
        obj = load_object(cfg.factory)
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


def load_torchscript(cfg, input_shape, num_classes, vocab_size=None):
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


def load_onnx(cfg, input_shape, num_classes, vocab_size=None):
    from edgekit.handles import ExternalFile
    from edgekit.onnx_graph import check_onnx_file

    check_onnx_file(Path(cfg.path))
    return ExternalFile(Path(cfg.path), OnnxFile.format)


ARCHS: dict[str, Arch] = {
    "mlp": Arch(MlpConfig, "edgekit.models.zoo:build_mlp"),
    "cnn": Arch(CnnConfig, "edgekit.models.zoo:Cnn"),
    "resnet": Arch(ResnetConfig, "edgekit.models.zoo:Resnet"),
    "mobilenet_v2": Arch(MobilenetV2Config, "edgekit.models.zoo:MobilenetV2"),
    "lstm": Arch(LstmConfig, "edgekit.models.sequence:build_recurrent"),
    "gru": Arch(GruConfig, "edgekit.models.sequence:build_recurrent"),
    "transformer": Arch(TransformerConfig, "edgekit.models.sequence:TokenTransformer"),
    "vit": Arch(VitConfig, "edgekit.models.sequence:TinyVit"),
    "factory": Arch(FactoryModel, "edgekit.models:load_factory", zoo=False),
    "torchscript": Arch(TorchScriptModel, "edgekit.models:load_torchscript", zoo=False),
    "onnx": Arch(OnnxModel, "edgekit.models:load_onnx", zoo=False, handle=OnnxFile),
    "hf": Arch(HfModel, "edgekit.models.hf:load_hf", zoo=False),
}

ModelConfig = registry_union(ARCHS, "arch")

__all__ = ["ARCHS", "Arch", "ModelConfig", "build_model"]
