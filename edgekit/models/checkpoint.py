"""Safe weight loading and saving: safetensors, or a state_dict through torch.load(weights_only=True)."""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.atomic import atomic_path
from edgekit.errors import ModelLoadError


def load_state_dict(path: Path) -> dict:
    """Read tensors only. Never unpickles arbitrary objects."""
    import torch

    from edgekit.model_files import check_model_file

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: weights file not found")
    check_model_file(path, ModelLoadError)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise ModelLoadError(f"{path}: not a valid safetensors file: {e}") from e
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError or zipfile errors here
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e):
            raise ModelLoadError(
                f"{path}: refused to unpickle: the file holds Python objects, not just tensors "
                f"(edgekit loads checkpoints with weights_only=True). Save a state_dict or use safetensors. ({msg})"
            ) from e
        raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint: {msg}") from e
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{path}: expected a state_dict (a mapping of names to tensors), got {type(obj).__name__}")
    return obj


def apply_state_dict(model, state: dict, path: Path) -> None:
    """Load weights strictly; name missing, unexpected and mis-shaped tensors in the error."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mis = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
           for k in own.keys() & state.keys() if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or mis:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if mis:
            parts.append(f"shape mismatch {mis[:5]}")
        raise ModelLoadError(f"{path}: weights do not match the model: " + "; ".join(parts))
    model.load_state_dict(state)


def save_checkpoint(model, path: Path, metadata: dict | None = None) -> Path:
    """Write the model's state_dict as safetensors, atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"edgekit": json.dumps(metadata or {})}
    with atomic_path(Path(path)) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return Path(path)
