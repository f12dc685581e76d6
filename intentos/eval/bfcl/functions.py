"""BFCL function documents → intentos Functions: parameter models, names, apps.

BFCL describes parameters in a JSON-schema dialect with its own type names (`dict`,
`float`, `tuple`, `any`); they become pydantic models so the Controller's prompt,
the workflow JSON schema (constrained decoding) and validation all work unchanged.
A parameter whose name is not a usable Python attribute keeps its BFCL name as the
field's alias, which is what the schema, the prompt and validation show.

Names: BFCL names such as `math.factorial` or `spotify.play` already read as
`app.verb`; a name without a dot goes to the app `tools`. The mapping is kept per case
in a `NameMap` both ways and checked to be one-to-one, so every call the model makes
maps back to exactly one BFCL function.
"""

from __future__ import annotations

import keyword
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from intentos.app import App
from intentos.errors import AppError
from intentos.function import Effect, function

UNDOTTED_APP = "tools"
RESERVED_APPS = {"agent"}  # the agent app's say/ask/refuse sit beside BFCL's functions
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class NameMap(BaseModel):
    """intentos `app.verb` ↔ BFCL function name, one to one, for one case."""

    to_bfcl: dict[str, str] = {}

    @property
    def to_intentos(self) -> dict[str, str]:
        return {b: i for i, b in self.to_bfcl.items()}

    @classmethod
    def build(cls, bfcl_names: list[str]) -> NameMap:
        mapping: dict[str, str] = {}
        for name in bfcl_names:
            ours = intentos_name(name)
            if ours in mapping and mapping[ours] != name:
                raise ValueError(f"BFCL functions {mapping[ours]!r} and {name!r} both map to {ours!r}")
            mapping[ours] = name
        return cls(to_bfcl=mapping)


def intentos_name(bfcl_name: str) -> str:
    """`math.factorial` stays; `get_weather` → `tools.get_weather`; an app named like a built-in gets `x_`."""
    app, dot, verb = bfcl_name.partition(".")
    if not dot:
        app, verb = UNDOTTED_APP, bfcl_name
    app = re.sub(r"[^A-Za-z0-9_]", "_", app) or UNDOTTED_APP
    if app in RESERVED_APPS:
        app = f"x_{app}"
    return f"{app}.{verb}"


# -- types -----------------------------------------------------------------------------------------


def _field_type(schema: dict[str, Any], owner: str) -> Any:
    kind = schema.get("type", "any")
    enum = schema.get("enum")
    if kind == "string":
        if enum and all(isinstance(v, str) for v in enum):
            return Literal[tuple(enum)]
        return str
    if kind == "integer":
        return int
    if kind == "float" or kind == "number":
        return float
    if kind == "boolean":
        return bool
    if kind in ("array", "tuple"):
        items = schema.get("items")
        return list[_field_type(items, owner)] if isinstance(items, dict) else list[Any]
    if kind in ("dict", "object"):
        if schema.get("properties"):
            return params_model(f"{owner}_item", schema)
        return dict[str, Any]
    return Any  # "any" and anything BFCL adds later


def _usable(name: str) -> bool:
    return bool(_IDENT.match(name)) and not keyword.iskeyword(name) and not hasattr(BaseModel, name) and not (
        name.startswith("model_"))


def params_model(model_name: str, schema: dict[str, Any], *, result: bool = False) -> type[BaseModel]:
    """A pydantic model for a BFCL `{"type": "dict", "properties": ..., "required": [...]}` schema.

    `result=True` builds a result model from a `response` document: every field
    optional and untyped, extra fields kept, because the document describes what comes
    back rather than promising it (a message id documented as int comes back as a dict).
    """
    all_optional, extra = result, "allow" if result else "ignore"
    required = set(schema.get("required", [])) if not all_optional else set()
    fields: dict[str, Any] = {}
    for i, (name, prop) in enumerate((schema.get("properties") or {}).items()):
        prop = prop if isinstance(prop, dict) else {}
        kind = Any if result else _field_type(prop, f"{model_name}_{i}")
        description = " ".join(str(prop.get("description", "")).split()) or None
        # An optional field keeps its own type with a None default (not `T | None`): the schema then does not
        # invite the model to write null, which BFCL's type check would reject.
        default = ... if name in required else None
        field = Field(default, description=description, alias=None if _usable(name) else name)
        fields[name if _usable(name) else f"p{i}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"] = (kind, field)
    config = ConfigDict(extra=extra, protected_namespaces=(), populate_by_name=True)
    safe = re.sub(r"[^A-Za-z0-9_]", "_", model_name)
    return create_model(safe, __config__=config, **fields)


def describe(doc: dict[str, Any], limit: int = 160) -> str:
    """One line: the function's description and, briefly, what each parameter means.

    The prompt shows signatures (names and types) only; BFCL shows models the full
    document, so the parameter descriptions, defaults and allowed values go here.
    """
    text = " ".join(str(doc.get("description", "")).split())
    text = text.split("Tool description: ", 1)[-1]  # multi-turn docs repeat the API's blurb first
    notes = []
    for name, prop in (doc.get("parameters", {}).get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        bit = " ".join(str(prop.get("description", "")).split())[:limit]
        if "default" in prop:
            bit += f" (default {prop['default']!r})"
        if bit:
            notes.append(f"{name}: {bit}")
    return text + (" Args: " + "; ".join(notes) if notes else "")


class AnyResult(BaseModel):
    """What a single-turn function would return: BFCL never runs them, so nothing is promised."""

    model_config = ConfigDict(extra="allow")


def single_turn_apps(docs: list[dict[str, Any]], names: NameMap) -> list[type[App]]:
    """One App class per app name, each function a method that refuses to run (AST categories are not executed)."""
    by_app: dict[str, dict[str, Any]] = {}
    back = names.to_intentos
    for i, doc in enumerate(docs):
        app, _, verb = back[doc["name"]].partition(".")
        by_app.setdefault(app, {})[f"fn_{i}"] = _not_executable(
            verb, describe(doc), params_model(f"{app}_{verb}_args", doc.get("parameters", {})))
    return [type(f"Bfcl_{app}", (App,), {"name": app, "description": "", **methods})
            for app, methods in by_app.items()]


def _not_executable(verb: str, description: str, params: type[BaseModel]) -> Any:
    def call(self: App, args: BaseModel) -> BaseModel:
        raise AppError("BFCL single-turn functions are scored by their call, not executed")

    call.__annotations__ = {"args": params, "return": AnyResult}
    call.__doc__ = description or verb
    call.__name__ = call.__qualname__ = re.sub(r"\W", "_", verb)
    return function(Effect.EXTERNAL, verb=verb)(call)
