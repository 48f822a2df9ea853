"""The cells of report tables and the formatters that fill them. A report.json may come from elsewhere, so every
value is formatted tolerantly: a string where a number belongs is shown as that string, never an exception."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cell:
    text: str
    num: bool = False
    cls: str = ""
    title: str = ""


@dataclass
class Table:
    columns: list[Cell]
    rows: list[list[Cell]] = field(default_factory=list)
    row_cls: list[str] = field(default_factory=list)
    caption: str = ""

    def add(self, cells: list[Cell], cls: str = "") -> None:
        self.rows.append(cells)
        self.row_cls.append(cls)


@dataclass
class Verdict:
    kind: str  # pass, fail, warn, incomplete, none: also the banner's CSS class
    headline: str
    details: list[str] = field(default_factory=list)


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def num(v: Any, fmt: str = ".4g", unit: str = "") -> str:
    if v is None:
        return "-"
    if not is_number(v):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    return format(v, fmt) + ("" if not unit or unit == "×" else " ") + unit


def size(v: Any) -> str:
    """Bytes with a binary unit: 812 B, 12.3 KiB, 1.23 MiB."""
    if not is_number(v):
        return num(v)
    if abs(v) < 1024:
        return f"{v:.0f} B"
    if abs(v) < 1024**2:
        return f"{v / 1024:.1f} KiB"
    return f"{v / 1024**2:.2f} MiB"


def pct(v: Any, digits: int = 2) -> str:
    return num(v * 100, f".{digits}f", "%") if is_number(v) else num(v)


def flag(v: Any) -> str:
    return {True: "yes", False: "no"}.get(v, "-") if v is None or isinstance(v, bool) else str(v)


def text(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list | tuple):
        return ", ".join(text(x) for x in v)
    return str(v)


def first_line(s: str, limit: int = 200) -> str:
    line = s.strip().splitlines()[0] if s.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def quantity(key: str, v: Any) -> str:
    """A pass's before/after value, formatted by what its key names."""
    k = key.lower()
    if "size_bytes" in k or k.endswith("_bytes"):
        return size(v)
    if "latency" in k or k.endswith("_ms"):
        return num(v, ".4g", "ms")
    if "accuracy" in k or "agreement" in k:
        return pct(v)
    if k in ("params", "macs", "parameters") and is_number(v):
        return f"{v:,.0f}"
    return num(v)


def gate_value(name: str, v: Any) -> str:
    if not is_number(v):
        return num(v)
    if "accuracy_drop" in name:
        return num(v * 100, ".2f", "pp")
    if "accuracy" in name:
        return pct(v)
    if "latency_regression" in name:
        return num(v, ".3f", "×")
    if name.endswith("_ms"):
        return num(v, ".4g", "ms")
    if name.endswith("_mb"):
        return num(v, ".4g", "MB")
    if name in ("results_present", "environment_match"):
        return f"{v:.0f}"
    return num(v)


def col(label: str, numeric: bool = False) -> Cell:
    return Cell(label, num=numeric)
