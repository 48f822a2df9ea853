"""Deployment metadata that travels with every artifact: how to prepare an input (normalization, layout, dtype),
what the outputs mean (class names), and what made the file (recipe sha256, edgekit version).

It is written into an ONNX file's `metadata_props` (keys `edgekit.*`) and, for every format, into a sidecar
`<artifact>.model_card.json` beside the file. Both are written before the artifact is hashed."""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.errors import ArtifactError

CARD_SUFFIX = ".model_card.json"
PREFIX = "edgekit."
MAX_CARD_BYTES = 1 << 20  # a sidecar or metadata value larger than this is not ours


def input_layout(shape: tuple[int, ...], integer_inputs: bool) -> str:
    """Axis order of one batch: NCHW images, NTF sequences, NT token ids, NF feature vectors."""
    if integer_inputs:
        return "NT (token ids)"
    return {3: "NCHW", 2: "NTF", 1: "NF"}.get(len(shape), f"N + {len(shape)} axes")


def build_card(*, artifact, splits, recipe_name: str, recipe_sha256: str, version: str) -> dict:
    """The card of one artifact (a report Artifact) of a run whose data are `splits`."""
    integer = splits.x_train.dtype.kind in "iu"
    spec = artifact.inputs[0] if artifact.inputs else None
    return {
        "edgekit_version": version,
        "recipe_name": recipe_name,
        "recipe_sha256": recipe_sha256,
        "artifact": artifact.name,
        "format": artifact.format,
        "precision": artifact.precision,
        "source": artifact.source,
        "input_name": spec.name if spec else None,
        "input_shape": spec.shape if spec else ["N", *splits.input_shape],
        "input_dtype": spec.dtype if spec else str(splits.x_train.dtype),
        "input_layout": input_layout(splits.input_shape, integer),
        "preprocess": splits.preprocess or None,
        "normalization": splits.normalization,
        "class_names": list(splits.class_names),
        "outputs": [o.model_dump() for o in artifact.outputs],
    }


def card_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + CARD_SUFFIX)


def stamp(path: Path, fmt: str, card: dict) -> None:
    """Write `card` into the artifact (ONNX metadata_props) and beside it (the sidecar), atomically."""
    from edgekit.atomic import atomic_write_text

    path = Path(path)
    if fmt == "onnx":
        _stamp_onnx(path, card)
    atomic_write_text(card_path(path), json.dumps(card, indent=2) + "\n")


def _stamp_onnx(path: Path, card: dict) -> None:
    """Replace the model's `edgekit.*` metadata_props; weights kept in external data files stay where they are."""
    import onnx

    from edgekit.atomic import atomic_path
    from edgekit.model_files import onnx_header

    model = onnx_header(path)
    keep = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in keep + [(PREFIX + k, _text(v)) for k, v in card.items() if v is not None]:
        model.metadata_props.add(key=key, value=value)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def _text(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def read_card(path: Path) -> dict:
    """What an artifact file says about itself: format, I/O spec, its edgekit metadata (from the file where the
    format holds it, else from the sidecar) and any other metadata the file carries. Values are data, never run."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    out: dict = {"file": str(path), "size_bytes": path.stat().st_size}
    fmt = {".onnx": "onnx", ".tflite": "tflite", ".pt2": "torch"}.get(path.suffix.lower())
    out["format"] = fmt or "unknown"
    embedded: dict = {}
    if fmt == "onnx":
        embedded, other, inputs, outputs = _read_onnx(path)
        out.update(inputs=inputs, outputs=outputs)
        if other:
            out["other_metadata"] = other
    elif fmt == "tflite":
        from edgekit.export.tflite_convert import inspect_tflite

        info = inspect_tflite(path)
        out.update(inputs=info["inputs"], outputs=info["outputs"])
    sidecar = card_path(path)
    card: dict = {}
    if sidecar.is_file():
        if sidecar.stat().st_size > MAX_CARD_BYTES:
            raise ArtifactError(f"{sidecar}: larger than {MAX_CARD_BYTES} bytes; not a model card")
        try:
            card = json.loads(sidecar.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ArtifactError(f"{sidecar}: not a JSON model card ({e})") from None
        if not isinstance(card, dict):
            raise ArtifactError(f"{sidecar}: not a JSON model card (a {type(card).__name__}, not an object)")
        out["sidecar"] = str(sidecar)
    out["metadata"] = {**card, **embedded}
    out["metadata_source"] = ("file" if embedded else "") + (" + sidecar" if card and embedded else
                                                            "sidecar" if card else "")
    return out


def _read_onnx(path: Path) -> tuple[dict, dict, list, list]:
    from edgekit.model_files import onnx_header
    from edgekit.onnx_graph import tensor_specs

    model = onnx_header(path)
    ours, other = {}, {}
    for p in model.metadata_props:
        if p.key.startswith(PREFIX):
            try:
                ours[p.key[len(PREFIX):]] = json.loads(p.value)
            except json.JSONDecodeError:
                ours[p.key[len(PREFIX):]] = p.value
        else:
            other[p.key] = p.value
    return ours, other, tensor_specs(model.graph.input), tensor_specs(model.graph.output)


def format_card(info: dict) -> str:
    """`edgekit inspect`'s text: the I/O spec, then each metadata entry on its own line."""
    lines = [f"{info['file']}: {info['format']}, {info['size_bytes']:,} bytes"]
    for kind in ("inputs", "outputs"):
        for s in info.get(kind, []):
            lines.append(f"  {kind[:-1]:<7} {_safe(s.get('name'))}  shape {_safe(s.get('shape'))}  {_safe(s.get('dtype'))}")
    meta = info.get("metadata") or {}
    if not meta:
        lines.append("  no edgekit metadata (not made by edgekit, or made before it wrote model cards)")
    else:
        lines.append(f"  edgekit metadata (from {info['metadata_source']}):")
        width = max(len(k) for k in meta)
        for k, v in meta.items():
            lines.append(f"    {_safe(k).ljust(width)}  {_safe(v if isinstance(v, str) else json.dumps(v))}")
    for k, v in (info.get("other_metadata") or {}).items():
        lines.append(f"  other metadata {_safe(k)}: {_safe(v)}")
    return "\n".join(lines)


def _safe(v, limit: int = 2000) -> str:
    """One printable line: a file's text must not drive the terminal."""
    from edgekit.names import printable

    return printable(v, limit)
