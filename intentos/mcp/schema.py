"""A tool's JSON schemas as pydantic models: its input schema, as it is, is the argument schema of its function.

`normalized_schema` checks a tool's schema (a valid JSON schema of an object) and tidies it; `schema_model`
makes the model (`McpSchema`): the prompt, `functions --json` and the workflow schema show the tool's own
schema, and an argument is checked against it (with `jsonschema`) before any call. A tool with an output schema
returns its structured content as fields of that schema (`McpResult`); any other returns `{text}` (`McpText`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError, to_jsonable_python

from intentos.yamlfile import one_line


class McpSchema(BaseModel):
    """A model whose JSON schema is a tool's own (`source`), not one pydantic derives from its fields.

    Every top-level property is a field (typed `Any`, checked against the property's schema, under its own
    name as the alias), so the table, validation and the executor use it as any app's model. Only the
    arguments given are dumped: what is left out is the tool's default, never a null the tool may refuse.
    """

    model_config = ConfigDict(extra="forbid")

    source: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
    whole: ClassVar[Any] = None  # a jsonschema validator of `source`, for what no single property says

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(cls.source)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("by_alias", True)
        kwargs.setdefault("exclude_unset", True)
        return super().model_dump(**kwargs)

    @model_validator(mode="after")
    def _whole_schema(self) -> McpSchema:
        if self.whole is not None:
            # `required` is pydantic's to report (per argument, so a reference may fill a missing one).
            errors = [e for e in self.whole.iter_errors(self.model_dump(mode="json")) if e.validator != "required"]
            if errors:
                raise _invalid(_schema_error(errors))
        return self


class McpResult(McpSchema):
    """A result with the fields of a tool's output schema (the server sends more: they are kept)."""

    model_config = ConfigDict(extra="allow")


class McpText(BaseModel):
    """What a tool without an output schema returns: its text."""

    text: str = Field(description="the tool's text output")


class SchemaProblem(ValueError):
    """A tool's schema that cannot be used."""


def normalized_schema(schema: Any, what: str) -> dict[str, Any]:
    """A tool's object schema as the table shows it: `$defs` for `definitions`, no title; a SchemaProblem when
    it is not a valid JSON schema of an object."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict):
        raise SchemaProblem(f"its {what} schema is not a JSON object")
    schema = copy.deepcopy(schema)
    if "definitions" in schema and "$defs" not in schema:
        schema["$defs"] = schema.pop("definitions")
        schema = _rewrite_refs(schema, "#/definitions/", "#/$defs/")
    schema.pop("title", None)
    if schema.get("type", "object") != "object":
        raise SchemaProblem(f"its {what} schema is of type {schema.get('type')!r}, not an object")
    schema["type"] = "object"
    if not isinstance(schema.get("properties", {}), dict):
        raise SchemaProblem(f"the properties of its {what} schema are not a mapping")
    schema.setdefault("properties", {})
    try:
        validator_for(schema, default=_default_validator()).check_schema(schema)
    except SchemaError as exc:
        raise SchemaProblem(f"its {what} schema is not valid: {one_line(exc.message)[:200]}") from None
    return schema


def schema_model(title: str, schema: dict[str, Any], *, result: bool = False) -> type[McpSchema]:
    """A model for a normalized object schema (see McpSchema); for a result, every field is optional."""
    from jsonschema.validators import validator_for

    kind = validator_for(schema, default=_default_validator())
    defs = {key: schema[key] for key in ("$defs", "definitions") if key in schema}
    required = set(schema.get("required") or ()) if not result else set()
    fields: dict[str, Any] = {}
    for index, (prop, sub) in enumerate(schema["properties"].items()):
        name = prop if _plain_field_name(prop) else f"field_{index}"
        checker = kind({**sub, **defs} if isinstance(sub, dict) else sub)
        annotation = Annotated[Any, AfterValidator(_checked(checker))]
        default = ... if prop in required else None
        fields[name] = (annotation, Field(default, alias=prop))
    model = create_model(model_name(title), __base__=McpResult if result else McpSchema, **fields)
    model.source = schema
    model.whole = None if result else kind(schema)
    return model


def model_name(title: str) -> str:
    """A class name made of the words of `title` ("notes add args" -> NotesAddArgs)."""
    return "".join(part.capitalize() for part in re.split(r"\W+", title, flags=re.ASCII) if part) or "Tool"


def _default_validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator


def _checked(checker: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        value = to_jsonable_python(value)  # a date YAML read is its ISO text, as it goes over the wire
        try:
            errors = list(checker.iter_errors(value))
        except Exception:  # a reference the property cannot resolve alone: the whole schema's check decides
            return value
        if errors:
            raise _invalid(_schema_error(errors))
        return value

    return check


def _invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is `message` as it is (no "Value error, " before it)."""
    return PydanticCustomError("mcp", message)


def _schema_error(errors: list[Any]) -> str:
    """The most telling of jsonschema's errors, on one line, with where it is below the argument."""
    from jsonschema.exceptions import best_match

    error = best_match(errors)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path).lstrip(".")
    message = one_line(error.message)
    if len(message) > 200:
        message = message[:199] + "…"
    return f"{where}: {message}" if where else message


def _plain_field_name(name: str) -> bool:
    return (name.isidentifier() and not name.startswith(("_", "model_")) and not hasattr(BaseModel, name)
            and name not in ("source", "whole"))


def _rewrite_refs(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: (new + v[len(old):] if k == "$ref" and isinstance(v, str) and v.startswith(old)
                    else _rewrite_refs(v, old, new)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v, old, new) for v in node]
    return node
