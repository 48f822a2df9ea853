"""Cheap checks before anything expensive: every device profile loads, every export format asked for is known
and in the recipe, and the optional packages the model, the passes, the exporters and the runtimes need can be
imported (looked up, never imported). All problems are raised together, before any data is loaded or any
training starts; what only degrades the output (no plots) comes back as notes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from edgekit.errors import EdgekitError, PreflightError
from edgekit.extras import Needs, missing_extras
from edgekit.recipe import Recipe


def _runtime_needs(fmt: str) -> Needs | None:
    from edgekit.runtimes import default_runtime, get_runtime

    name = default_runtime(fmt)
    return get_runtime(name).needs if name else None


def _formats(recipe: Recipe, formats: Iterable[str] | None, problems: list[str]) -> list[str]:
    """The recipe's export formats, limited to `formats` when given (each of which must be known and exported)."""
    from edgekit.export import EXPORTERS

    exported = list(dict.fromkeys(e.format for e in recipe.export))
    if formats is None:
        return exported
    asked = list(dict.fromkeys(formats))
    unknown = [f for f in asked if f not in EXPORTERS]
    if unknown:
        problems.append(f"unknown export format {', '.join(map(repr, unknown))} (known: {', '.join(sorted(EXPORTERS))})")
    absent = [f for f in asked if f in EXPORTERS and f not in exported]
    if absent:
        problems.append(f"the recipe has no {', '.join(map(repr, absent))} export target (it exports: "
                        f"{', '.join(exported) or 'nothing'})")
    return [f for f in exported if f in asked]


def _devices(names: Iterable[str], formats: list[str], checked: set[str], problems: list[str],
             needs: list[tuple[str, Needs | None]]) -> None:
    """Each profile loads and names known runtimes; a local device's runtimes for these formats are installed."""
    from edgekit.devices import load_profile, transport_entry
    from edgekit.runtimes import RUNTIMES, default_runtime, runtime_class, runtime_name_for

    for name in dict.fromkeys(names):
        try:
            profile = load_profile(name)
        except EdgekitError as e:
            problems.append(str(e))
            continue
        unknown = [r for r in profile.runtimes if r not in RUNTIMES]
        if unknown:
            problems.append(f"device '{profile.name}': unknown runtime {', '.join(map(repr, unknown))} "
                            f"(known: {', '.join(sorted(RUNTIMES))})")
        if not transport_entry(profile).remote:  # a remote device brings its own runtime
            known = [r for r in profile.runtimes if r in RUNTIMES]
            for fmt in formats:  # the export already checked each format's default runtime
                rt = runtime_name_for(fmt, known)
                if rt in profile.runtimes and (fmt not in checked or rt != default_runtime(fmt)):
                    needs.append((f"{fmt} bench on '{profile.name}'", runtime_class(rt).needs))


def collect(recipe: Recipe, *, model: bool = True, passes: bool = True, export: bool = True,
            formats: Iterable[str] | None = None, bench: bool = True, devices: list[str] | None = None,
            report: bool = True) -> tuple[list[str], list[str]]:
    """(problems, notes) for the stages asked for: `formats` limits (and checks) the export targets, `devices`
    replaces the recipe's bench devices."""
    problems: list[str] = []
    needs: list[tuple[str, Needs | None]] = []
    if model:
        needs.append((f"model arch '{recipe.model.arch}'", getattr(recipe.model, "needs", None)))
    if passes:
        needs += [(f"pass {p.name}", getattr(p, "needs", None)) for p in recipe.passes]
    fmts = _formats(recipe, formats, problems)
    if export:  # an exported file is checked against PyTorch in its runtime: that runtime is needed here too
        needs += [(f"{e.format} export", n) for e in recipe.export if e.format in fmts
                  for n in (getattr(e, "needs", None), _runtime_needs(e.format))]
    if bench and recipe.bench is not None:
        _devices(devices or recipe.bench.devices, fmts, set(fmts) if export else set(), problems, needs)
    problems += missing_extras(needs)
    notes = []
    if report:
        from edgekit.report.plots import NEEDS

        notes = [f"{line}: reports are written without plots" for line in missing_extras([("report plots", NEEDS)])]
    return problems, notes


def check_recipe(recipe: Recipe, log: Callable[[str], None] | None = None, source: str | None = None,
                 **scope) -> list[str]:
    """Raise PreflightError listing every problem `collect` finds; log and return the notes."""
    problems, notes = collect(recipe, **scope)
    if problems:
        raise PreflightError(problems, source)
    for n in notes if log is not None else []:
        log(f"note: {n}")
    return notes
