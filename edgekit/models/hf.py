"""Models users already have: a local Hugging Face folder (config.json + model.safetensors [+ tokenizer files]),
loaded with transformers strictly offline and wrapped so that forward(input_ids) returns logits or embeddings."""

from __future__ import annotations

import contextlib
from pathlib import Path

from edgekit.errors import ModelLoadError
from edgekit.limits import read_json
from edgekit.model_files import check_safetensors
from edgekit.models.config import InputSpec
from edgekit.names import contained

TASK_CLASSES = {"sequence-classification": "AutoModelForSequenceClassification", "feature-extraction": "AutoModel"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model", "merges.txt", "vocab.json")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


@contextlib.contextmanager
def offline():
    """Hub access off for the duration (every load also passes local_files_only=True), transformers quiet."""
    from edgekit.environ import patched_environ

    with patched_environ(OFFLINE_ENV):
        from transformers.utils import logging as hf_logging

        level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(level)
            if bars:
                hf_logging.enable_progress_bar()


def check_folder(path: Path) -> Path:
    """Validate the folder before transformers sees it; return the weights file. Errors name the file at fault."""
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"{path}: Hugging Face model folder not found")
    config = path / "config.json"
    if not config.is_file():
        raise ModelLoadError(f"{config}: not found (a Hugging Face model folder needs config.json)")
    read_json(config, ModelLoadError)
    single, index = path / "model.safetensors", path / "model.safetensors.index.json"
    if single.is_file():
        check_safetensors(single)
        return single
    if index.is_file():
        try:
            shards = sorted(set(read_json(index, ModelLoadError)["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelLoadError(f"{index}: not a valid safetensors index (needs a 'weight_map'): {e}") from e
        for shard in shards:
            if not isinstance(shard, str):
                raise ModelLoadError(f"{index}: weight_map values must be file names, got {shard!r}")
            check_safetensors(contained(path, shard, "weight_map shard", where=str(index)))
        return index
    if (path / "pytorch_model.bin").is_file():
        raise ModelLoadError(f"{path / 'pytorch_model.bin'}: pickled PyTorch weights are not loaded; convert them to "
                             f"model.safetensors (transformers: model.save_pretrained(folder, safe_serialization=True))")
    raise ModelLoadError(f"{single}: weights file not found (expected model.safetensors or a sharded "
                         f"model.safetensors.index.json in {path})")


def _wrapper_class():
    import torch
    from torch import nn

    class HfWrapper(nn.Module):
        """forward(input_ids) -> logits (sequence-classification) or pooled embeddings (feature-extraction); the
        attention mask is all ones (every position is a real token)."""

        def __init__(self, model, task: str, pooling: str):
            super().__init__()
            self.model, self.task, self.pooling = model, task, pooling

        def forward(self, input_ids):
            out = self.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
            if self.task == "sequence-classification":
                return out.logits
            h = out.last_hidden_state
            return h[:, 0] if self.pooling == "cls" else h.mean(1)

    return HfWrapper


def default_spec(max_len: int | None) -> InputSpec:
    return InputSpec(name="input_ids", shape=["batch", "seq"], dtype="int64",
                     dynamic_axes={0: ("batch", 1, 65536), 1: ("seq", 1, max_len or 65536)})


def load_hf(cfg, input_shape: tuple[int, ...], num_classes: int = 0, vocab_size: int | None = None):
    """Load the folder offline, check it against the data, and return the wrapped nn.Module."""
    import torch

    from edgekit.models.inputs import attach_input_spec, check_data_against_spec

    weights = check_folder(cfg.path)
    with offline():
        import transformers

        auto = getattr(transformers, TASK_CLASSES[cfg.task])
        try:
            model, info = auto.from_pretrained(str(cfg.path), local_files_only=True, output_loading_info=True)
        except Exception as e:  # transformers raises OSError/ValueError/KeyError for unknown or broken configs
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelLoadError(f"{cfg.path}: transformers cannot load it as {TASK_CLASSES[cfg.task]}: {first}") from e
        tokenizer = _tokenizer_info(cfg.path)
    bad = {k: info.get(k) or [] for k in ("missing_keys", "mismatched_keys")}
    if any(bad.values()) and not cfg.allow_missing_weights:
        parts = [f"{k.replace('_', ' ')} {[str(v) for v in vals][:5]}" for k, vals in bad.items() if vals]
        raise ModelLoadError(f"{weights}: weights do not match config.json ({type(model).__name__}): "
                             + "; ".join(parts) + " (set model.allow_missing_weights: true to accept them randomly "
                                                  "initialized, e.g. a new classification head)")
    conf = model.config
    max_len = getattr(conf, "max_position_embeddings", None)
    spec = cfg.inputs[0] if cfg.inputs else default_spec(max_len)
    where = f"model {cfg.path}"
    check_data_against_spec(spec, input_shape, "int64" if vocab_size is not None else "float32", where)
    model_vocab = getattr(conf, "vocab_size", None)
    if vocab_size is not None and model_vocab is not None and vocab_size > model_vocab:
        raise ModelLoadError(f"{where}: the data has token ids up to {vocab_size - 1} but the model's vocabulary is "
                             f"{model_vocab} (config.json vocab_size)")
    if max_len is not None and input_shape and input_shape[0] > max_len:
        raise ModelLoadError(f"{where}: the data's sequences have {input_shape[0]} tokens, the model takes at most "
                             f"{max_len} (config.json max_position_embeddings)")
    labels = getattr(conf, "num_labels", None)
    if cfg.task == "sequence-classification" and num_classes and labels is not None and num_classes != labels:
        raise ModelLoadError(f"{where}: the data has {num_classes} classes but the model has {labels} labels")
    wrapped = _wrapper_class()(model.eval(), cfg.task, cfg.pooling).eval()
    attach_input_spec(wrapped, spec)
    x = _smoke_input(spec, input_shape, min([v for v in (vocab_size, model_vocab) if v] or [2]))
    try:
        with torch.no_grad():
            wrapped(torch.from_numpy(x))
    except Exception as e:  # the model's own forward failing on the data's shape
        raise ModelLoadError(f"{where}: forward on a {tuple(x.shape)} {x.dtype} input failed: "
                             f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from e
    wrapped.edgekit_info = {
        "hf_class": type(model).__name__, "model_type": getattr(conf, "model_type", None), "path": str(cfg.path),
        "weights": weights.name, "task": cfg.task, "vocab_size": model_vocab, "max_position_embeddings": max_len,
        "input": spec.model_dump(mode="json"), **({"tokenizer": tokenizer} if tokenizer else {}),
        **({"randomly_initialized": sorted(map(str, bad["missing_keys"]))[:20]} if bad["missing_keys"] else {}),
    }
    return wrapped


def _smoke_input(spec: InputSpec, input_shape: tuple[int, ...], high: int):
    """One sample generated from the declared spec, its dynamic axes sized like the data."""
    import numpy as np

    from edgekit.models.inputs import example_input

    if not spec.shape:
        return np.zeros((1, *input_shape), dtype=np.int64)
    sizes = {name: int(input_shape[i - 1]) for i, (name, _, _) in spec.axes().items() if 1 <= i <= len(input_shape)}
    return example_input(spec, batch=1, sizes=sizes, high=high)


def _tokenizer_info(path: Path) -> dict | None:
    """Which tokenizer files the folder has and, if transformers loads them offline, the tokenizer's class."""
    files = [f for f in TOKENIZER_FILES if (Path(path) / f).is_file()]
    if not files:
        return None
    out: dict = {"files": files}
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        out.update({"class": type(tok).__name__, "vocab_size": int(len(tok))})
    except Exception as e:  # a tokenizer that does not load is recorded, not fatal: edgekit feeds token ids
        out["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return out
