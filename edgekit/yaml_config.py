"""YAML validated against a pydantic model: `--set key=value` overrides, and errors that name the key and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from edgekit.errors import RecipeError
from edgekit.yaml_lines import key_line, line_of, load_yaml, read_yaml_text

M = TypeVar("M", bound=BaseModel)


def parse_yaml_mapping(text: str, source: str = "<recipe>") -> tuple[dict, Any]:
    """The YAML as data and as a node tree (for line numbers), read within bounds (edgekit.yaml_lines.load_yaml);
    a syntax error or a non-mapping names the line."""
    data, root = load_yaml(text, source)
    if not isinstance(data, dict):
        raise RecipeError(f"expected a mapping at the top level, got {type(data).__name__}", path=source, line=1)
    return data, root


def validate_yaml_text(text: str, model: type[M], source: str = "<recipe>", overrides: list[str] | None = None) -> M:
    """Parse YAML and validate it against `model`; errors name the key path and the line."""
    data, root = parse_yaml_mapping(text, source)
    for item in overrides or []:
        apply_override(data, item, source)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, data, root, source) from None


def validate_yaml_file(path: Path, model: type[M], overrides: list[str] | None = None) -> M:
    path = Path(path)
    return validate_yaml_text(read_yaml_text(path), model, source=str(path), overrides=overrides)


def apply_override(data: dict, item: str, source: str) -> None:
    """Set one 'dotted.key=value' in `data` (the value is parsed as YAML; a digit part indexes a list)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set expects KEY=VALUE, got '{item}'", path=source)
    node: Any = data
    parts = key.split(".")
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise RecipeError(f"--set {key}: '{part}' does not name a mapping or list item", path=source, key=key)
    last = parts[-1]
    value = load_yaml(raw, f"--set {key}")[0] if raw else ""
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise RecipeError(f"--set {key}: cannot set '{last}'", path=source, key=key)


def validation_error(e: ValidationError, data: Any, root, source: str) -> RecipeError:
    """One RecipeError for (up to five of) a ValidationError's problems, each with its key path and line."""
    lines = []
    first_line, first_key = None, None
    for err in e.errors()[:5]:
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in visible_loc(data, loc)) or "(top level)"
        line = key_line(root, loc) if err["type"] == "extra_forbidden" else line_of(root, loc)
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        if err["type"] == "union_tag_invalid":
            msg = err["msg"].replace("Input tag", "value")
        if first_line is None:
            lines.append(f"{key}: {msg}")
            first_line, first_key = line, key
        else:
            lines.append(f"line {line}: {key}: {msg}" if line else f"{key}: {msg}")
    more = len(e.errors()) - 5
    text = "; ".join(lines) + (f"; and {more} more" if more > 0 else "")
    return RecipeError(text, path=source, key=first_key, line=first_line)


def visible_loc(data: Any, loc: tuple) -> tuple:
    """`loc` without the discriminator values pydantic inserts for a tagged union ('quantize.static', 'cnn').

    Walking `data` along `loc`, a part that is no key of the mapping it is read from, but one of that mapping's
    values, is the tag of the union member the mapping was validated as."""
    node, out = data, []
    for part in loc:
        if isinstance(node, dict):
            if part in node:
                node = node[part]
            elif isinstance(part, str) and any(isinstance(v, str) and v == part for v in node.values()):
                continue
            else:
                node = None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
        out.append(part)
    return tuple(out)
