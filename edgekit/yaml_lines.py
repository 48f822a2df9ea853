"""Map a pydantic error location (('passes', 0, 'calibration')) to the YAML line it came from."""

from __future__ import annotations

from typing import Any

import yaml


def compose(text: str) -> yaml.Node | None:
    """Parse YAML into its node tree, which keeps line marks."""
    return yaml.compose(text, Loader=yaml.SafeLoader)


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
