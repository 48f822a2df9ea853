"""YAML from untrusted files read within bounds, and a pydantic error location (('passes', 0, 'calibration')) mapped
to the YAML line it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgekit.errors import RecipeError
from edgekit.limits import human, limit


def read_yaml_text(path: Path) -> str:
    """A YAML file's text, refused before reading when it is over EDGEKIT_MAX_YAML_BYTES."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError("file not found", path=str(path))
    size, cap = path.stat().st_size, limit("EDGEKIT_MAX_YAML_BYTES")
    if size > cap:
        raise RecipeError(f"file is {human(size)}, over the {human(cap)} limit for YAML (EDGEKIT_MAX_YAML_BYTES)",
                          path=str(path))
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RecipeError(f"not UTF-8 text (byte {e.start})", path=str(path)) from None


def load_yaml(text: str, source: str = "<recipe>") -> tuple[Any, yaml.Node | None]:
    """Parse YAML safely within bounds: (data, node tree with line marks).

    The node tree is composed first (aliases share one node there, so this is linear in the text) and its size is
    counted with every alias expanded; over EDGEKIT_MAX_YAML_NODES, or recursive, it is refused before any Python
    object is built. Errors are RecipeErrors naming `source` and the line."""
    cap = limit("EDGEKIT_MAX_YAML_BYTES")
    if len(text) > cap:
        raise RecipeError(f"YAML text is {human(len(text))}, over the {human(cap)} limit (EDGEKIT_MAX_YAML_BYTES)",
                          path=source)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_expanded_size(root, source)
        return loader.construct_document(root), root
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise RecipeError(f"invalid YAML: {getattr(e, 'problem', None) or e}", path=source,
                          line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise RecipeError("YAML nested too deeply", path=source) from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. an integer of more than 4300 digits
        raise RecipeError(f"invalid YAML value: {str(e).splitlines()[0][:200]}", path=source) from None
    finally:
        loader.dispose()


def _check_expanded_size(root: yaml.Node, source: str) -> None:
    cap = limit("EDGEKIT_MAX_YAML_NODES")
    sizes: dict[int, int | None] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            if sizes[key] is None:
                raise RecipeError("recursive YAML alias (a node that contains itself)", path=source,
                                  line=node.start_mark.line + 1)
            return sizes[key]  # type: ignore[return-value]
        sizes[key] = None
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        sizes[key] = n
        return n

    total = size(root)
    if total > cap:
        shown = f"{total:,}" if total < 10**15 else f"about 10^{len(str(total)) - 1}"
        raise RecipeError(f"YAML expands to {shown} nodes (aliases counted each time they are used), over the "
                          f"{cap:,} limit (EDGEKIT_MAX_YAML_NODES); an alias bomb?", path=source)


def line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node reachable along `loc`.

    Location parts that do not name a node (pydantic adds union tags such as 'quantize.static') are skipped.
    For an unknown key the line of that key itself is returned.
    """
    node = root
    if node is None:
        return None
    best = node.start_mark.line + 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            continue
        node = child
        best = node.start_mark.line + 1
    return best


def _child(node: yaml.Node, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == str(part):
                return value_node if not isinstance(value_node, yaml.ScalarNode) or value_node.value != "" else key_node
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]
    return None


def key_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line of the mapping key named by the last element of `loc` (for 'extra key' errors)."""
    if root is None or not loc:
        return line_of(root, loc)
    parent_loc, last = loc[:-1], loc[-1]
    node: yaml.Node = root
    for part in parent_loc:
        child = _child(node, part)
        if child is not None:
            node = child
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == str(last):
                return key_node.start_mark.line + 1
    return line_of(root, loc)
