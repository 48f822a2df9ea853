"""What every registry shares. A registry maps a name to a small frozen entry (its config class, where its
implementation lives, its capabilities); unions, discriminator tags, CLI choices and checks are generated from it.

Validation dispatches through the registry when it runs, so a name registered later (a plugin, a test fake) is
accepted without rebuilding any model; the JSON schema lists the names registered when the type was made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, PlainValidator
from pydantic_core import PydanticCustomError


def load_object(path: str) -> Any:
    """The object at 'package.module:attr.attr'."""
    module, _, attr = path.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def registry_union(registry: Mapping[str, Any], tag: str, config: Callable[[Any], type[BaseModel]] | None = None):
    """A pydantic type: a mapping validated by the config class that its `tag` value names in `registry`.

    `config(entry)` is the entry's config class (default `entry.config`). Errors inside the config keep their
    location (`passes.0.calibration`): no union tag appears in it."""
    config_of = config or (lambda entry: entry.config)

    def validate(value: Any) -> BaseModel:
        configs = {name: config_of(entry) for name, entry in registry.items()}
        if isinstance(value, BaseModel) and type(value) in configs.values():
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump()
        if not isinstance(value, dict):
            raise PydanticCustomError("model_type", "Input should be a mapping with a `{tag}` key", {"tag": tag})
        if tag not in value:
            raise PydanticCustomError("union_tag_not_found", "Unable to extract tag using discriminator '{tag}'",
                                      {"tag": tag})
        name = value[tag]
        if not isinstance(name, str) or name not in configs:
            raise PydanticCustomError(
                "union_tag_invalid",
                "Input tag '{tag}' found using '{discriminator}' does not match any of the expected tags: {expected}",
                {"tag": str(name), "discriminator": tag, "expected": ", ".join(repr(n) for n in configs)})
        return configs[name].model_validate(value)

    known = tuple(dict.fromkeys(config_of(e) for e in registry.values()))
    schema = Annotated[Union[known], Field(discriminator=tag)] if len(known) > 1 else known[0]  # noqa: UP007
    return Annotated[Any, PlainValidator(validate, json_schema_input_type=schema)]

