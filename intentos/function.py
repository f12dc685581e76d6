"""A Function: `app.verb`, a description, typed parameters and result, an effect class.

Apps declare functions by decorating methods::

    class Notes(App):
        name = "notes"

        @function(Effect.WRITE)
        def create(self, args: CreateArgs) -> NoteRef:
            "Create a markdown note with optional tags."

The parameter model comes from the annotation of the single argument, the result model
from the return annotation and the description from the first line of the docstring,
so the signature the model sees is the signature the code has.
"""

from __future__ import annotations

import enum
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


class Effect(enum.StrEnum):
    """What a call may do to the world; decides whether it needs confirmation."""

    READ = "read"  # looks only
    WRITE = "write"  # changes local data in the sandbox
    EXTERNAL = "external"  # reaches outside the sandbox (sends mail, starts a job)
    DESTRUCTIVE = "destructive"  # removes or overwrites data

    @property
    def needs_confirmation(self) -> bool:
        return self is not Effect.READ


_MARK = "__intentos_function__"
# A result field's other names, as models write them (`${m.result.messages[0].from}` for `sender_email`):
# `Field(json_schema_extra={AKA: ["from"]})`. The planner rewrites a reference by such a name to the field.
AKA = "aka"


def field_named(model: type[BaseModel], name: str) -> str | None:
    """The field of `model` called `name`, or the one that goes by it (`AKA`); None when none does."""
    if name in model.model_fields:
        return name
    return next((field for field, info in model.model_fields.items()
                 if isinstance(info.json_schema_extra, dict) and name in (info.json_schema_extra.get(AKA) or ())),
                None)


@dataclass(frozen=True)
class FunctionMeta:
    """What the decorator records on a method; bound to an app name by the App class."""

    verb: str
    effect: Effect
    params: type[BaseModel]
    result: type[BaseModel]
    description: str


def function(effect: Effect, *, verb: str | None = None) -> Callable[[Callable], Callable]:
    """Mark an App method as a function of the Function Table."""

    def mark(method: Callable) -> Callable:
        hints = typing.get_type_hints(method)
        names = [n for n in inspect.signature(method).parameters if n != "self"]
        if len(names) != 1:
            raise TypeError(f"{method.__qualname__}: a function takes exactly one pydantic argument")
        params, result = hints.get(names[0]), hints.get("return")
        for what, model in (("parameter", params), ("result", result)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"{method.__qualname__}: the {what} annotation must be a pydantic model")
        doc = inspect.getdoc(method) or ""
        description = doc.strip().splitlines()[0] if doc.strip() else ""
        if not description:
            raise TypeError(f"{method.__qualname__}: a function needs a one-line docstring")
        setattr(method, _MARK, FunctionMeta(verb or method.__name__, effect, params, result, description))
        return method

    return mark


def function_meta(obj: Any) -> FunctionMeta | None:
    return getattr(obj, _MARK, None)


@dataclass(frozen=True)
class Function:
    """One entry of the Function Table."""

    app: str
    verb: str
    description: str
    effect: Effect
    params: type[BaseModel]
    result: type[BaseModel]

    @property
    def name(self) -> str:
        return f"{self.app}.{self.verb}"

    def signature(self) -> str:
        """Compact one-line signature for prompts: `files.find(pattern: str, under?: str) -> {paths}`."""
        schema = self.params.model_json_schema()
        required = set(schema.get("required", []))
        parts = []
        for name, prop in schema.get("properties", {}).items():
            opt = "" if name in required else "?"
            parts.append(f"{name}{opt}: {_type_name(prop, schema)}")
        fields = ", ".join(self.result.model_fields)
        return f"{self.name}({', '.join(parts)}) -> {{{fields}}}"


def _type_name(prop: dict[str, Any], root: dict[str, Any]) -> str:
    """A short human type for a JSON-schema property (enough for a prompt, not a checker)."""
    if "$ref" in prop:
        target = root.get("$defs", {}).get(prop["$ref"].rsplit("/", 1)[-1], {})
        if "enum" in target:
            return "|".join(repr(v) for v in target["enum"])
        return prop["$ref"].rsplit("/", 1)[-1]
    if "enum" in prop:
        return "|".join(repr(v) for v in prop["enum"])
    if "anyOf" in prop:
        names = [_type_name(p, root) for p in prop["anyOf"] if p.get("type") != "null"]
        return "|".join(names) or "null"
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list[{_type_name(prop.get('items', {}), root)}]"
    if kind == "object":
        return "dict"
    fmt = prop.get("format")
    return {"string": fmt or "str", "integer": "int", "number": "float", "boolean": "bool"}.get(kind, kind)
