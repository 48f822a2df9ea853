"""Search spaces inside a recipe: any value may be `{$choice: [...]}`, `{$int: [lo, hi]}` or `{$float: [lo, hi]}`
(with `log: true` or `step: S`). The `$` keys cannot clash with a config key, so a space is never ambiguous.

A search recipe is a normal recipe plus spaces and a top-level `search:` section. `parse_search_text` finds the
spaces (named by their dotted path, e.g. `passes.0.ratio`), checks each one, and validates the recipe with every
value each space can take at its ends, so a bad range is a clear error naming the key and line before any trial
runs.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from edgekit.errors import RecipeError
from edgekit.yaml_lines import line_of

SPACE_KEYS = ("$choice", "$int", "$float")


@dataclass
class Space:
    """One searched value: `kind` choice/int/float, its `values` or `low`/`high`, and `step` / `log`."""

    path: str
    kind: str
    values: list[Any] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    def suggest(self, trial) -> Any:
        """The value for an Optuna trial. Choices that are not plain scalars (lists, mappings) are offered to
        Optuna as their JSON text, so any sampler and storage can hold them."""
        if self.kind == "choice":
            if all(_scalar(v) for v in self.values):
                return trial.suggest_categorical(self.path, self.values)
            return json.loads(trial.suggest_categorical(self.path, [json.dumps(v) for v in self.values]))
        if self.kind == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        v = trial.suggest_float(self.path, self.low, self.high, step=self.step, log=self.log)
        return round(v, 12) if self.step else v  # 0.30000000000000004 -> 0.3

    def grid(self) -> list[Any]:
        """Every value, for grid search; a continuous float range has none."""
        if self.kind == "choice":
            return self.values if all(_scalar(v) for v in self.values) else [json.dumps(v) for v in self.values]
        if self.kind == "float" and self.step is None:
            raise RecipeError(f"{self.path}: grid search needs `step` on a $float range (or use $choice)",
                              key=self.path)
        n = int(math.floor((self.high - self.low) / (self.step or 1) + 1e-9)) + 1
        vals = [self.low + i * (self.step or 1) for i in range(n)]
        return [int(v) for v in vals] if self.kind == "int" else [round(v, 12) for v in vals]

    def ends(self) -> list[Any]:
        """The values that bound the space, used to validate the recipe before searching."""
        return list(self.values) if self.kind == "choice" else [self.low, self.high]


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


@dataclass
class SearchSpec:
    """A parsed search recipe: the recipe template with spaces, the spaces, and the raw `search:` section."""

    template: dict
    spaces: list[Space]
    search: dict
    source: str = "<recipe>"

    def grid_points(self, seed: int = 0) -> list[dict[str, Any]]:
        """Every combination of the spaces' grid values, in a seeded order."""
        import itertools
        import random

        paths = [s.path for s in self.spaces]
        points = [dict(zip(paths, combo)) for combo in itertools.product(*(s.grid() for s in self.spaces))]
        random.Random(seed).shuffle(points)
        return points

    def resolve(self, values: dict[str, Any]) -> dict:
        """The template with each space's path set to `values[path]`."""
        data = copy.deepcopy(self.template)
        for path, v in values.items():
            _set(data, path.split("."), v)
        return data


def parse_search_text(text: str, source: str = "<recipe>") -> SearchSpec:
    from edgekit.recipe import Recipe
    from edgekit.yaml_config import parse_yaml_mapping, validate_yaml_text

    data, root = parse_yaml_mapping(text, source)
    search = data.pop("search", None)
    if not isinstance(search, dict):
        raise RecipeError("a search recipe needs a `search:` section (objectives, trials, strategy)", path=source,
                          line=1, key="search")
    spaces: list[Space] = []
    _find(data, (), spaces, root, source)
    spec = SearchSpec(data, spaces, search, source)
    base = {s.path: s.ends()[0] for s in spaces}
    for s in spaces:  # every end of every space must make a valid recipe
        for v in s.ends():
            resolved = spec.resolve({**base, s.path: v})
            try:
                validate_yaml_text(yaml.safe_dump(resolved, sort_keys=False), Recipe, source=source)
            except RecipeError as e:
                line = line_of(root, tuple(_loc(s.path)))
                raise RecipeError(f"{s.path} = {v!r} (an end of its search space) makes an invalid recipe: "
                                  f"{e.message}", path=source, line=line, key=s.path) from None
    return spec


def _loc(path: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in path.split(".")]


def _find(node, loc: tuple, out: list[Space], root, source: str) -> None:
    if isinstance(node, dict):
        marks = [k for k in node if isinstance(k, str) and k.startswith("$")]
        if marks:
            out.append(_space(node, loc, root, source))
            return
        for k, v in node.items():
            _find(v, (*loc, k), out, root, source)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _find(v, (*loc, i), out, root, source)


def _space(node: dict, loc: tuple, root, source: str) -> Space:
    path = ".".join(str(p) for p in loc)
    line = line_of(root, loc)

    def bad(msg):
        return RecipeError(f"{path}: {msg}", path=source, line=line, key=path)

    kinds = [k for k in node if k in SPACE_KEYS]
    unknown = [k for k in node if k not in (*SPACE_KEYS, "log", "step")]
    if len(kinds) != 1 or unknown:
        raise bad(f"a search space is one of {', '.join(SPACE_KEYS)} (with optional log/step); got keys {list(node)}")
    kind, arg = kinds[0][1:], node[kinds[0]]
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise bad("$choice needs a non-empty list of values")
        if "log" in node or "step" in node:
            raise bad("$choice takes no log/step")
        return Space(path, "choice", values=arg)
    if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                             for v in arg)):
        raise bad(f"${kind} needs [low, high] numbers, got {arg!r}")
    low, high = arg
    step, log = node.get("step"), bool(node.get("log", False))
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise bad(f"$int bounds must be integers, got {arg!r}")
    if not low < high:
        raise bad(f"low must be below high, got [{low}, {high}]")
    if log and low <= 0:
        raise bad(f"a log range needs low > 0, got {low}")
    if log and step is not None:
        raise bad("log and step cannot be combined")
    if step is not None and (not isinstance(step, (int, float)) or step <= 0 or step > high - low):
        raise bad(f"step must be > 0 and no larger than high - low, got {step!r}")
    if kind == "int" and step is not None and not float(step).is_integer():
        raise bad(f"an $int step must be an integer, got {step!r}")
    return Space(path, kind, low=low, high=high, step=step, log=log)


def _set(data, parts: list[str], value) -> None:
    node = data
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
