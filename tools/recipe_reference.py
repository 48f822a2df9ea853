"""docs/recipe-reference.md, generated from the recipe schema: the pydantic models, and the registries behind
its unions, as they are at run time."""

from __future__ import annotations

import enum
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

SECTION_TITLES = {"model": "Model", "data": "Data", "train": "Training", "passes": "Passes", "export": "Export",
                  "bench": "Benchmark", "gates": "Gates"}
BOUNDS = [("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")]


def schema_type(annotation: Any, metadata: typing.Iterable[Any] = ()) -> Any:
    """The type a field documents: a value validated by a function (a registry's union) names the type its schema
    shows, `json_schema_input_type`; any other annotation is itself."""
    inner, *extra = typing.get_args(annotation) if typing.get_origin(annotation) is typing.Annotated else [annotation]
    for meta in [*extra, *metadata]:
        shown = getattr(meta, "json_schema_input_type", Any)
        if inner is Any and shown is not Any:
            return shown
    return annotation


def shown(field: FieldInfo) -> Any:
    return schema_type(field.annotation, field.metadata)


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (inside Optional, list, dict, Annotated and unions), in order."""
    annotation = schema_type(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += [m for m in models_in(arg) if m not in out]
    return out


def type_text(annotation: Any, link: typing.Callable[[type[BaseModel]], str]) -> str:
    """A short, readable spelling of a type: `int`, `"a" | "b"`, `list[float]`, a link for a shared model."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is typing.Annotated:
        shown = schema_type(annotation)
        return type_text(args[0] if shown is annotation else shown, link)
    if origin is Literal:
        return " | ".join(f'`"{a}"`' if isinstance(a, str) else f"`{value_text(a)}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(a, link) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        inner = ", ".join("..." if a is Ellipsis else type_text(a, link) for a in args)
        return f"{name}[{inner}]" if args else name
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return link(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(f'`"{m.value}"`' for m in annotation)
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def bounds_text(field: FieldInfo) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sign in BOUNDS:
            if getattr(meta, attr, None) is not None:
                parts.append(f"{sign} {getattr(meta, attr)}")
        if getattr(meta, "min_length", None):
            parts.append(f"at least {meta.min_length} item{'s' if meta.min_length > 1 else ''}")
    return ", ".join(parts)


def value_text(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, enum.Enum):
        return value_text(v.value)
    if isinstance(v, BaseModel):
        return "{}" if not v.model_fields_set else value_text(v.model_dump(mode="json", exclude_unset=True))
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {value_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Path):
        return str(v)
    return str(v)


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return f"`{value_text(field.default_factory())}`"  # type: ignore[call-arg]
    if field.default is PydanticUndefined:
        return "required"
    return f"`{value_text(field.default)}`"


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def docstring(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    inherited = any(doc == (b.__doc__ or "") for b in model.__mro__[1:])
    return "" if inherited or doc.startswith(f"{model.__name__}(") else " ".join(doc.split())


class Reference:
    """Walks the Recipe: each section, one sub-section per union member, nested models inline or shared."""

    def __init__(self, recipe: type[BaseModel]):
        self.recipe = recipe
        self.owners: dict[type[BaseModel], set[str]] = {}
        self._count_owners(recipe, "recipe")
        self.anchors: dict[type[BaseModel], str] = {}
        for name, f in recipe.model_fields.items():
            members = models_in(shown(f))
            if len(members) > 1:
                tag = _tag_name(f)
                self.anchors.update({m: _slug(f"{name} {_tag_value(m, tag)}") for m in members})
        self.shared = [m for m, owners in self.owners.items()
                       if m not in self.anchors and m is not recipe and (len(owners) > 1 or self._in_union(m))]
        self.anchors.update({m: _slug(m.__name__) for m in self.shared})

    def _in_union(self, model: type[BaseModel]) -> bool:
        """A model that shares a field with other models (a union below the top level) gets its own section."""
        for owner in self.owners:
            for f in owner.model_fields.values():
                found = models_in(shown(f))
                if model in found and len(found) > 1 and owner is not self.recipe:
                    return True
        return False

    def _count_owners(self, model: type[BaseModel], owner: str) -> None:
        first = model not in self.owners
        self.owners.setdefault(model, set()).add(owner)
        if first:
            for name, f in model.model_fields.items():
                for m in models_in(shown(f)):
                    self._count_owners(m, f"{model.__name__}.{name}" if model is not self.recipe else name)

    def link(self, model: type[BaseModel]) -> str:
        return f"[{model.__name__}](#{self.anchors[model]})" if model in self.anchors else model.__name__

    def rows(self, model: type[BaseModel], prefix: str = "") -> list[str]:
        out = []
        for name, f in model.model_fields.items():
            key = f"{prefix}{f.alias or name}"
            nested = [m for m in models_in(shown(f)) if m not in self.anchors]
            bounds = bounds_text(f)
            kind = type_text(shown(f), self.link) + (f" ({bounds})" if bounds else "")
            out.append(f"| `{key}` | {cell(kind)} | {cell(default_text(f))} | {cell(f.description or '')} |")
            if len(nested) == 1 and nested[0] is not model:
                many = typing.get_origin(shown(f)) is list or any(
                    typing.get_origin(a) is list for a in typing.get_args(shown(f)))
                out += self.rows(nested[0], f"{key}[]." if many else f"{key}.")
        return out

    def table(self, model: type[BaseModel]) -> list[str]:
        doc = docstring(model)
        needs = getattr(model, "needs", None)
        lines = [doc, ""] if doc else []
        if needs is not None and getattr(needs, "extra", None):
            lines += [f"Needs `{needs.install}`.", ""]
        rows = self.rows(model)
        if not rows:
            return [*lines, "No settings.", ""]
        return [*lines, "| key | type | default | description |", "|:--|:--|:--|:--|", *rows, ""]

    def section(self, name: str, f: FieldInfo) -> list[str]:
        members = models_in(shown(f))
        title = SECTION_TITLES.get(name, name.replace("_", " ").capitalize())
        lines = [f"## {title}: `{name}`", ""]
        if f.description:
            lines += [" ".join(f.description.split()), ""]
        listed = typing.get_origin(shown(f)) is list
        if len(members) == 1:
            optional = "Optional: omit the section (or set it to null) to skip it." if f.default is None else ""
            return [*lines, *([optional, ""] if optional else []), *self.table(members[0])]
        tag = _tag_name(f)
        values = [_tag_value(m, tag) for m in members]
        lines += [f"{'A list of entries' if listed else 'One of'}, told apart by `{tag}`: "
                  + ", ".join(f"[`{v}`](#{_slug(f'{name} {v}')})" for v in values) + ".", ""]
        for m, v in zip(members, values):
            lines += [f"### {name}: {v}", "", *_handles(name, v), *self.table(m)]
        return lines

    def render(self) -> str:
        top = [(n, f) for n, f in self.recipe.model_fields.items() if not models_in(shown(f))]
        lines = ["# Recipe reference", "",
                 "<!-- Generated from the recipe schema by tools/gen_docs.py: do not edit; run `make docs`. -->",
                 "", "Every key a recipe accepts, with its type, default and meaning, generated from the pydantic "
                 "models (see [recipes.md](recipes.md) for a guided tour). Unknown keys are errors. Bounds such as "
                 "`>= 0` are checked when the recipe loads.", "", "## Top level", "",
                 "| key | type | default | description |", "|:--|:--|:--|:--|"]
        for name, f in top:
            bounds = bounds_text(f)
            kind = type_text(shown(f), self.link) + (f" ({bounds})" if bounds else "")
            lines.append(f"| `{name}` | {cell(kind)} | {cell(default_text(f))} | {cell(f.description or '')} |")
        lines.append("")
        for name, f in self.recipe.model_fields.items():
            if models_in(shown(f)):
                lines += self.section(name, f)
        if self.shared:
            lines += ["## Shared settings", "", "Settings that several sections use.", ""]
            for m in self.shared:
                lines += [f"### {m.__name__}", "", *self.table(m)]
        return "\n".join(lines).rstrip() + "\n"


def _discriminator(annotation: Any) -> str:
    annotation = schema_type(annotation)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        tags = [m.discriminator for m in args[1:] if isinstance(m, FieldInfo) and isinstance(m.discriminator, str)]
        return tags[0] if tags else _discriminator(args[0])
    return next((tag for tag in map(_discriminator, args) if tag), "")


def _handles(section: str, name: str) -> list[str]:
    """For a pass: the model handle it takes and the one it returns (its implementation's `takes`/`returns`)."""
    if section != "passes":
        return []
    from edgekit.passes import PASSES
    from edgekit.registry import load_object

    impl = load_object(PASSES[name].impl)
    takes, returns = getattr(impl, "takes", None), getattr(impl, "returns", None)
    if takes is None or returns is None:
        return []
    return [f"Model handle: `{takes.__name__}` in, `{returns.__name__}` out.", ""]


def _tag_name(field: FieldInfo) -> str:
    return field.discriminator if isinstance(field.discriminator, str) else _discriminator(shown(field))


def _tag_value(model: type[BaseModel], tag: str) -> str:
    field = model.model_fields.get(tag)
    args = typing.get_args(field.annotation) if field is not None else ()
    return str(args[0]) if args else model.__name__


def _slug(text: str) -> str:
    return "".join(c for c in text.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def render() -> str:
    from edgekit.recipe import Recipe

    return Reference(Recipe).render()
