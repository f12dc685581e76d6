"""The Function Table: every function of the installed apps, in one registry.

It is what the model is shown (compact prompt text) and what constrains it (the JSON
schema of a whole workflow, where each state's call is a union member carrying that
function's own argument schema, so constrained decoding can only produce well-typed
calls). Apps are found through the entry-point group `intentos.apps`, and each MCP server
under `mcp_servers:` in the config file is an app too (intentos.mcp.apps).
"""

from __future__ import annotations

import copy
import difflib
import logging
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

from intentos.app import App
from intentos.configfile import read_config
from intentos.errors import UnknownFunctionError, WorkflowFileError
from intentos.function import Function
from intentos.references import ARGUMENT_REFERENCE_PATTERN, REFERENCE_PATTERN
from intentos.workflow import MAX_FOR_EACH_ITEMS, WRITTEN_STATE_NAME

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "intentos.apps"


def discover_apps() -> tuple[list[type[App]], list[str]]:
    """App classes registered under the entry-point group, and a line per plugin that failed to load."""
    apps, problems = [], []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the agent down
            problems.append(f"app plugin {ep.name!r} ({ep.value}) failed to load: {exc}")
            log.debug(problems[-1])
            continue
        if not (isinstance(cls, type) and issubclass(cls, App)):
            problems.append(f"app plugin {ep.name!r} ({ep.value}) is not an intentos App class")
            continue
        apps.append(cls)
    return apps, problems


def discover_mcp_apps(taken: set[str] = frozenset()) -> tuple[list[type[App]], list[str]]:
    """The apps of the MCP servers under `mcp_servers:` in the config file (intentos.mcp.apps), and a line per
    server left out. Without that section nothing is started and the MCP SDK is not even imported."""
    try:
        config = read_config()
    except WorkflowFileError as exc:  # the config file itself is broken: its owners say so where it matters
        return [], [f"MCP servers not read: {exc}"]
    if config is None or not config.section("mcp_servers"):
        return [], []
    from intentos.mcp.apps import discover_servers

    return discover_servers(config, taken)


class FunctionTable:
    def __init__(self, apps: Iterable[type[App]], *, only: Iterable[str] | None = None) -> None:
        self.apps: dict[str, type[App]] = {}
        self.functions: dict[str, Function] = {}
        self.problems: list[str] = []
        keep = set(only) if only is not None else None
        for app in apps:
            if app.name in self.apps:
                raise ValueError(f"two apps are named {app.name!r}")
            self.apps[app.name] = app
            for fn in app.functions():
                if keep is None or fn.name in keep:
                    self.functions[fn.name] = fn

    @classmethod
    def discover(cls) -> FunctionTable:
        """The installed apps and the apps of the MCP servers in the config file, with what failed to load."""
        apps, problems = discover_apps()
        served, unserved = discover_mcp_apps({app.name for app in apps})
        table = cls([*apps, *served])
        table.problems = [*problems, *unserved]
        return table

    def subset(self, names: Iterable[str]) -> FunctionTable:
        """The same apps, showing only the named functions (for relevance-ranked prompts)."""
        names = list(names)
        for name in names:
            self.get(name)
        table = FunctionTable(self.apps.values(), only=names)
        table.problems = self.problems
        return table

    # -- lookup ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Function]:
        return iter(self.functions.values())

    def __len__(self) -> int:
        return len(self.functions)

    def __contains__(self, name: object) -> bool:
        return name in self.functions

    def get(self, name: str) -> Function:
        try:
            return self.functions[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.functions), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownFunctionError(f"unknown function {name!r}{hint}") from None

    # -- rendering ---------------------------------------------------------------------------

    def prompt_text(self, last: tuple[str, ...] = ()) -> str:
        """Compact text for a prompt: one heading per app, one line per function; the apps in `last` last."""
        lines = []
        order = [*(a for a in self.apps if a not in last), *(a for a in last if a in self.apps)]
        for app_name in order:
            app = self.apps[app_name]
            fns = [f for f in self.functions.values() if f.app == app_name]
            if not fns:
                continue
            lines.append(f"## {app_name}: {app.description}".rstrip(": "))
            for fn in fns:
                lines.append(f"- {fn.signature()} [{fn.effect.value}] {fn.description}")
        return "\n".join(lines)

    def describe(self) -> list[dict[str, Any]]:
        """Every function with its full argument and result schemas (for `functions --json`)."""
        return [
            {
                "name": fn.name,
                "app": fn.app,
                "description": fn.description,
                "effect": fn.effect.value,
                "params": fn.params.model_json_schema(),
                "result": fn.result.model_json_schema(),
            }
            for fn in self.functions.values()
        ]

    def workflow_schema(self, call_first: bool = False, references: bool = True) -> dict[str, Any]:
        """JSON schema of a whole workflow in list form (the form models emit), calls a union over the functions;
        each state's keys in STATE_KEYS order, or with the call first (`call_first`). Without `references` (a
        table whose functions return nothing to refer to) an argument is only a value and there is no for_each:
        allowed a reference where a boolean goes, Qwen2.5-Coder-1.5B wrote `"${trueleddled...` for `true`."""
        defs: dict[str, Any] = {}
        members = []
        # A list (any JSON items: no `items`, so grammar converters use their generic array) or one reference;
        # one shared definition, so a grammar gets one rule for it, not one per function.
        if references:
            defs["for_each"] = {"anyOf": [{"type": "array", "maxItems": MAX_FOR_EACH_ITEMS},
                                          {"type": "string", "pattern": REFERENCE_PATTERN}]}
        each = {"for_each": {"$ref": "#/$defs/for_each"}} if references else {}
        for fn in self.functions.values():
            args = _hoist_defs(fn.params.model_json_schema(), fn.name.replace(".", "_"), defs)
            # In STATE_KEYS order (the name, the call, its arguments) unless the call goes first.
            properties = {
                "name": {"type": "string", "pattern": WRITTEN_STATE_NAME},
                "call": {"const": fn.name},
                "args": _argument_schema(args, references),
                **each,
                "next": {"type": "string", "pattern": WRITTEN_STATE_NAME},
                "on_failure": {"type": "string", "pattern": WRITTEN_STATE_NAME},
            }
            if call_first:
                properties = {"call": properties.pop("call"), **properties}
            members.append(
                {
                    "type": "object",
                    "properties": properties,
                    # next/on_failure may be left out: a state then goes on to the following one; for_each
                    # is optional (the call then runs once).
                    "required": [key for key in properties if key in ("name", "call", "args")],
                    "additionalProperties": False,
                }
            )
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "start": {"type": "string", "pattern": WRITTEN_STATE_NAME},
                "states": {"type": "array", "minItems": 1, "items": {"oneOf": members}},
            },
            "required": ["states"],  # start defaults to the first state
            "additionalProperties": False,
        }
        schema["$defs"] = defs
        return schema


def _hoist_defs(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """Move a model's `$defs` into the shared pool under unique names, rewriting its refs."""
    schema = copy.deepcopy(schema)
    local = schema.pop("$defs", {})
    renamed = {name: f"{prefix}__{name}" for name in local}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/$defs/"):
                node["$ref"] = "#/$defs/" + renamed[node["$ref"].rsplit("/", 1)[-1]]
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)
        return node

    for name, body in local.items():
        defs[renamed[name]] = rewrite(body)
    schema.pop("title", None)
    return rewrite(schema)


_TYPED = {"type", "anyOf", "oneOf", "allOf", "$ref", "enum", "const"}


def _argument_schema(args: dict[str, Any], references: bool = True) -> dict[str, Any]:
    """A function's parameters as a state's args: with `references`, each non-string argument may also be a whole
    `${state.result...}` reference, or a whole `${item...}` (the current item of a for_each state; validation
    refuses it elsewhere), and a string argument takes either anywhere."""
    ref = {"type": "string", "pattern": ARGUMENT_REFERENCE_PATTERN}
    props = {}
    for name, prop in args.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        if not _TYPED.intersection(prop):  # an `Any` field: spell out "any JSON value" for grammar converters
            prop = {**prop, "anyOf": [{"type": t} for t in ("string", "number", "boolean", "array", "object", "null")]}
            props[name] = prop
            continue
        prop = _bounded(prop)
        props[name] = prop if prop.get("type") == "string" or not references else {"anyOf": [prop, ref]}
    return {**args, "properties": props, "additionalProperties": False}


MAX_LIST_ITEMS = 32  # items of a list argument a reply may write


def _bounded(schema: Any) -> Any:
    """A property's schema with every list in it bounded to MAX_LIST_ITEMS items. Unbounded, a repair of
    Qwen2.5-Coder-1.5B counted 1, 2, 3 ... 164 into agent.sum's values until the token cap cut the reply off."""
    if isinstance(schema, list):
        return [_bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _bounded(v) if k in ("anyOf", "oneOf", "allOf", "items") else v for k, v in schema.items()}
    if out.get("type") == "array" and "maxItems" not in out:
        out["maxItems"] = MAX_LIST_ITEMS
    return out
