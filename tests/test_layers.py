"""edgekit's modules form layers; a module imports only from its own layer or the ones below it.

Every import of an edgekit module counts: at module level or inside a function, `import edgekit.x` or
`from edgekit.x import y` (where `y` may itself be a submodule), absolute or relative. A package's `__init__` is a module
of its own; importing `edgekit.a.b` counts as an import of `edgekit.a.b` only (not of the package `edgekit.a` that
Python runs first). A registry entry written as a string, "edgekit.export.onnx:OnnxExporter", counts as an import
of its module.

The layers, bottom to top (LAYERS below; the most specific prefix wins). A module sits in the lowest layer that
holds what it is about, and a module another layer needs moves down rather than being imported upward:
 0. foundation, general-purpose (nothing here knows a model, runtime or device): errors, limits, names, environment
    variables, extras, the registry base, config and YAML helpers, console output, child processes, bounded
    model/array file reading, atomic writes, ONNX graph facts, significance tests, hardware facts, timing, and the
    report schema (plain data every layer records into).
 1. building blocks: data sources, models, runtimes, device profiles (their schema, fields and the transport
    registry they name), training, and the typed model handles (data over the report schema).
 2. making artifacts: export formats and quantization transforms.
 3. passes, and the bench core that measures one artifact: the agent and its tasks (shipped to devices: numpy and
    the runtime only), stats, metrics, costs, quick/block timing, the evidence files it writes (report.evidence).
 4. device transports: how a profile reaches its device and runs the agent there.
 5. bench orchestration: one artifact on one device (bench.run, bench.profile, cross-ISA checks, device probes).
 6. recipe: the schema that combines every config above.
 7. run folders: reports, gates, comparison, rendering, preflight checks of a recipe, and the bench commands that
    read a run folder and its recipe (bench.profile_report, bench.interleaved).
 8. the pipeline and its stages (one recipe -> one run folder).
 9. search and analysis (many runs; a search trial calls the pipeline).
10. the Python API (api, api_devices, api_reports).
11. the command line.

The test fails on an import cycle between modules, on an import from a lower layer to a higher one, and on a
cross-module use of a `_private` name (`from edgekit.x import _y`, or `x._y` on an imported edgekit module): a name
another module needs is public in its home module.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "edgekit"
REGISTRY_ENTRY = re.compile(r"edgekit(\.\w+)+:\w+")

# (module or package under edgekit/, layer): the most specific prefix wins.
LAYERS: list[tuple[str, int]] = [
    ("edgekit", 0),  # the package's own __init__ (its __version__)
    ("errors", 0),
    ("limits", 0),
    ("names", 0),
    ("environ", 0),
    ("extras", 0),
    ("config_base", 0),
    ("yaml_lines", 0),
    ("yaml_config", 0),
    ("console", 0),
    ("child_python", 0),
    ("model_files", 0),
    ("array_files", 0),
    ("atomic", 0),
    ("onnx_graph", 0),
    ("significance", 0),
    ("hardware", 0),
    ("timing", 0),
    ("registry", 0),
    ("report.schema", 0),
    ("data", 1),
    ("models", 1),
    ("runtimes", 1),
    ("devices.profile", 1),
    ("devices.fields", 1),
    ("devices.transports", 1),
    ("train", 1),
    ("handles", 1),
    ("export", 2),
    ("quant", 2),
    ("passes", 3),
    ("bench", 3),
    ("report.evidence", 3),
    ("devices", 4),
    ("bench.run", 5),
    ("bench.profile", 5),
    ("bench.cross_isa", 5),
    ("devices.probe", 5),
    ("recipe", 6),
    ("report", 7),
    ("preflight", 7),
    ("bench.profile_report", 7),
    ("bench.interleaved", 7),
    ("pipeline", 8),
    ("stages", 8),
    ("search", 9),
    ("analyze", 9),
    ("api", 10),
    ("api_devices", 10),
    ("api_reports", 10),
    ("cli", 11),
    ("__main__", 11),
]

# Offenders in files other people are restructuring right now, each with its owner; `test_pending` lists them
# until they are gone. Never add an offender in a file you own here: fix it.


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The layer of the most specific LAYERS entry that is `module` or a package holding it (None: unplaced)."""
    if module == "edgekit":
        return dict(LAYERS)["edgekit"]
    rel, best = short(module), None
    for prefix, layer in LAYERS:
        if (rel == prefix or rel.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer)
    return None if best is None else best[1]


def short(module: str) -> str:
    return module.removeprefix("edgekit.")


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class Imports(ast.NodeVisitor):
    """The edgekit modules one module imports (with line numbers), and the private names it takes from them."""

    def __init__(self, module: str, is_package: bool, known: set[str]):
        self.module, self.is_package, self.known = module, is_package, known
        self.edges: list[tuple[str, int]] = []
        self.private: list[tuple[str, int]] = []
        self.aliases: dict[str, str] = {}

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name.split(".")[0] != "edgekit":
                continue
            self.edges.append((a.name, node.lineno))
            if a.asname:
                self.aliases[a.asname] = a.name
            else:
                self.aliases["edgekit"] = "edgekit"

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = _absolute(self.module, self.is_package, node)
        if source.split(".")[0] != "edgekit":
            return
        for a in node.names:
            sub = f"{source}.{a.name}"
            if sub in self.known:
                self.edges.append((sub, node.lineno))
                self.aliases[a.asname or a.name] = sub
            else:
                self.edges.append((source, node.lineno))
                if _is_private(a.name) and source != self.module:
                    self.private.append((f"{source}.{a.name}", node.lineno))

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and REGISTRY_ENTRY.fullmatch(node.value):
            self.edges.append((node.value.partition(":")[0], node.lineno))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain, value = [node.attr], node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in self.aliases:
            dotted = self.aliases[value.id]
            for part in reversed(chain):
                if f"{dotted}.{part}" in self.known:
                    dotted = f"{dotted}.{part}"
                    continue
                if _is_private(part) and dotted != self.module:
                    self.private.append((f"{dotted}.{part}", node.lineno))
                break
            return
        self.generic_visit(node)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@functools.cache
def scan() -> tuple[dict[str, dict[str, int]], list[tuple[str, str, int]]]:
    """(module -> {imported module: first line}, [(module, private name, line)]) over every edgekit module."""
    mods = modules()
    known = set(mods)
    graph: dict[str, dict[str, int]] = {}
    private: list[tuple[str, str, int]] = []
    for mod, path in mods.items():
        v = Imports(mod, path.name == "__init__.py", known)
        v.visit(ast.parse(path.read_text(), str(path)))
        graph[mod] = {}
        for target, line in v.edges:
            if target != mod and target in known:
                graph[mod].setdefault(target, line)
        private += [(mod, name, line) for name, line in v.private]
    return graph, private


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def cycle_offenders(graph) -> list[tuple[str, str, str]]:
    """(importer, imported, text) for each import inside a cycle."""
    found = []
    for comp in cycles(graph):
        members = set(comp)
        for m in comp:
            for target, line in graph[m].items():
                if target in members:
                    found.append((m, target, f"{m}:{line} imports {target}  (cycle: {', '.join(comp)})"))
    return found


def upward_offenders(graph) -> list[tuple[str, str, str]]:
    found = []
    for m, targets in graph.items():
        for target, line in targets.items():
            if layer_of(target) is not None and layer_of(m) is not None and layer_of(target) > layer_of(m):
                found.append((m, target, f"{m}:{line} (layer {layer_of(m)}) imports {target} (layer {layer_of(target)})"))
    return found


def private_offenders(private) -> list[tuple[str, str, str]]:
    return [(m, name, f"{m}:{line} uses private {name}") for m, name, line in private]


def _check(found: list[tuple[str, str, str]], what: str) -> None:
    new = sorted(text for _, _, text in found)
    assert not new, f"{len(new)} {what}:\n  " + "\n  ".join(new)


def test_every_module_has_a_layer():
    missing = sorted(m for m in modules() if layer_of(m) is None)
    assert not missing, f"add these modules to LAYERS in {__file__}: {missing}"


def test_no_import_cycles():
    _check(cycle_offenders(scan()[0]), "imports inside a cycle")


def test_no_upward_imports():
    _check(upward_offenders(scan()[0]), "imports from a lower layer to a higher one (the layers: this test's docstring)")


def test_no_private_names_across_modules():
    _check(private_offenders(scan()[1]), "cross-module uses of a private name (make it public in its home module)")


def test_the_scan_sees_lazy_relative_and_submodule_imports(tmp_path):
    src = ("import edgekit.a as A\nfrom . import b\n\ndef f():\n    from edgekit.c import _hidden, shown\n"
           "    return A._x, A.__name__\n")
    v = Imports("edgekit.pkg.m", False, {"edgekit.a", "edgekit.pkg.b", "edgekit.c"})
    v.visit(ast.parse(src))
    assert sorted(t for t, _ in v.edges) == ["edgekit.a", "edgekit.c", "edgekit.c", "edgekit.pkg.b"]
    assert sorted(n for n, _ in v.private) == ["edgekit.a._x", "edgekit.c._hidden"]
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]


if __name__ == "__main__":
    g, p = scan()
    for title, rows in (("cycles", cycle_offenders(g)), ("upward", upward_offenders(g)),
                        ("private", private_offenders(p))):
        print(f"== {title}: {len(rows)}")
        for _, _, text in sorted(rows):
            print("  " + text)
    sys.exit(0)
