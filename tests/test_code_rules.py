"""Rules the code keeps that no linter checks: module length, and config defaults a type checker can read."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
SOURCES = sorted((ROOT / "edgekit").rglob("*.py"))


def test_no_module_over_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in SOURCES
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


def test_field_defaults_are_keywords():
    """pyright reads a pydantic default only from `Field(default=...)`: a positional one makes the key look required."""
    found = []
    for p in SOURCES:
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            name = getattr(node, "func", None) and getattr(node.func, "id", getattr(node.func, "attr", ""))
            if isinstance(node, ast.Call) and node.args and name == "Field":
                found.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"write Field(default=...): {found}"
