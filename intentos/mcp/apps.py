"""MCP servers as intentos apps: each server under `mcp_servers:` in the config file is an app of the table.

Each server is started (or connected to) once per process when the table is discovered (intentos.mcp.connection),
and its tools are listed; every tool is a function `SERVER.TOOL` whose description is the tool's and whose
argument and result schemas are the tool's (intentos.mcp.schema). The effect class comes from the tool's
annotations (`effect_of`); the app is `outside_sandbox`, so a dry run runs only its read tools. A server keeps
its app, and so its tools as listed first, when it is restarted. A server that cannot be started or listed is a
line in `FunctionTable.problems` and its app is left out; the rest works.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from intentos.app import App
from intentos.configfile import ConfigFile
from intentos.errors import AppError
from intentos.function import Effect, Function
from intentos.mcp.config import SECTION, server_entries
from intentos.mcp.connection import CHILD_ENV, ERROR_CHARS, Server, start_servers
from intentos.mcp.schema import McpText, SchemaProblem, model_name, normalized_schema, schema_model
from intentos.yamlfile import one_line

DESCRIPTION_CHARS = 300  # of a tool's description, as one line in the prompt


@dataclass(frozen=True)
class ToolSpec:
    tool: str  # the tool's name on its server
    function: Function


class McpApp(App):
    """The app of one MCP server (a subclass per server, made by `server_app`)."""

    server: ClassVar[Server]
    specs: ClassVar[dict[str, ToolSpec]] = {}  # verb -> tool
    # Its data is the server's, not in the sandbox: a dry run runs only its read tools, and a write a crash cut
    # short is asked about again on resume (App.changes_outside).
    outside_sandbox: ClassVar[bool] = True

    @classmethod
    def functions(cls) -> list[Function]:
        return [spec.function for _, spec in sorted(cls.specs.items())]

    def bound(self, verb: str) -> Callable[[BaseModel], BaseModel]:
        spec = self.specs.get(verb)
        if spec is None:
            raise KeyError(f"{self.name} has no function {verb!r}")
        return lambda params: self._call(spec, params)

    def preview(self, verb: str, args: BaseModel) -> list[str]:
        spec = self.specs.get(verb)
        tool = spec.tool if spec is not None else verb
        return [f"runs the tool {tool!r} of the MCP server {self.name!r} ({self.server.entry.where()})"]

    def _call(self, spec: ToolSpec, params: BaseModel) -> BaseModel:
        fn = spec.function
        result = self.server.call(spec.tool, params.model_dump(mode="json"), self.ctx.cancelled)
        text = _text_of(getattr(result, "content", None) or [])
        if getattr(result, "is_error", False):
            message = one_line(text) or "the tool reported an error and gave no message"
            raise AppError(f"{fn.name} failed: {message[:ERROR_CHARS]}")
        structured = getattr(result, "structured_content", None)
        if fn.result is McpText:
            if not text and structured is not None:
                text = json.dumps(structured, ensure_ascii=False, default=str)
            return McpText(text=text)
        if structured is None:
            try:
                structured = json.loads(text)
            except ValueError:
                raise AppError(f"{fn.name} returned no structured content") from None
        if not isinstance(structured, dict):
            raise AppError(f"{fn.name} returned {type(structured).__name__}, not an object")
        try:
            return fn.result.model_validate(structured)
        except ValidationError as exc:
            raise AppError(f"{fn.name} returned what its output schema refuses: "
                           f"{one_line(exc.errors()[0]['msg'])[:200]}") from None


def _text_of(content: list[Any]) -> str:
    """The text of a tool result's content: its text blocks, and a note for each block of another kind."""
    parts = []
    for block in content:
        text = getattr(block, "text", None)
        resource = getattr(block, "resource", None)
        if isinstance(text, str):
            parts.append(text)
        elif resource is not None and isinstance(getattr(resource, "text", None), str):
            parts.append(resource.text)
        elif getattr(block, "uri", None) is not None:
            parts.append(f"[{getattr(block, 'name', None) or 'resource'}: {block.uri}]")
        else:
            kind = getattr(block, "mime_type", None) or getattr(block, "type", "content")
            parts.append(f"[{kind}]")
    return "\n".join(parts)


def server_app(server: Server) -> tuple[type[McpApp], list[str]]:
    """The app class of a running server, its functions made from the tools it listed; a line per tool left
    out (a schema that cannot be used, a name that another tool's already stands for)."""
    name = server.name
    specs: dict[str, ToolSpec] = {}
    problems: list[str] = []
    for tool in server.tools:
        verb = re.sub(r"\W", "_", tool.name, flags=re.ASCII)
        if not verb or verb[0].isdigit():
            verb = f"_{verb}"
        if verb in specs:
            problems.append(f"MCP server {name!r}: tool {tool.name!r} is left out: tool {specs[verb].tool!r} "
                            f"is already {name}.{verb}")
            continue
        try:
            params = schema_model(f"{name} {verb} args", normalized_schema(tool.input_schema, "input"))
            result: type[BaseModel] = McpText
            if tool.output_schema is not None:
                output = normalized_schema(tool.output_schema, "output")
                if output["properties"]:
                    result = schema_model(f"{name} {verb} result", output, result=True)
        except SchemaProblem as exc:
            problems.append(f"MCP server {name!r}: tool {tool.name!r} is left out: {exc}")
            continue
        function = Function(name, verb, _description(tool), effect_of(tool.annotations), params, result)
        specs[verb] = ToolSpec(tool.name, function)
    entry = server.entry
    description = entry.description or _first_line(server.instructions or "") or "tools of an MCP server"
    app = type(f"Mcp{model_name(name)}App", (McpApp,), {
        "name": name, "description": one_line(description)[:DESCRIPTION_CHARS], "server": server, "specs": specs,
        "__module__": __name__,
    })
    return app, problems


def _description(tool: Any) -> str:
    text = tool.description or getattr(tool, "title", None) or f"the MCP tool {tool.name}"
    first = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]  # the first paragraph
    line = one_line(first)
    return line if len(line) <= DESCRIPTION_CHARS else line[: DESCRIPTION_CHARS - 1] + "…"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def effect_of(annotations: Any) -> Effect:
    """The effect class of a tool from its annotations: read-only → read; destructive → destructive; else a
    closed world → write; anything else (no annotations, an open world) → external."""
    if annotations is None:
        return Effect.EXTERNAL
    if getattr(annotations, "read_only_hint", None) is True:
        return Effect.READ
    if getattr(annotations, "destructive_hint", None) is True:
        return Effect.DESTRUCTIVE
    if getattr(annotations, "open_world_hint", None) is False:
        return Effect.WRITE
    return Effect.EXTERNAL


# -- the apps of this process ------------------------------------------------------------------------------------

# By server name: the app made of the server running under that name, and its lines. Made once per server, so a
# server that a later discovery reuses keeps its app.
_APPS: dict[str, tuple[type[McpApp], list[str]]] = {}
_APPS_LOCK = threading.Lock()


def discover_servers(config: ConfigFile, taken: set[str] = frozenset()) -> tuple[list[type[App]], list[str]]:
    """The apps of the servers configured under `mcp_servers:`, in the order written, and a line per server
    or tool that is left out. Servers already running for the same entry are reused; the others start
    together, each given its `startup_timeout`."""
    if os.environ.get(CHILD_ENV):
        return [], [f"MCP servers are not started here: this intentos was itself started by an MCP client of "
                    f"intentos (${CHILD_ENV} is set), and servers starting servers could loop"]
    entries, problems = server_entries(config)
    for name in [n for n in entries if n in taken]:
        problems.append(str(config.error(f"MCP server {name!r} is left out: an app is already named {name!r} "
                                         "(give the server another name)", (SECTION, name))))
        del entries[name]
    servers, failed = start_servers(entries)
    problems.extend(failed)
    apps: list[type[App]] = []
    for server in servers.values():
        app, lines = _app_of(server)
        apps.append(app)
        problems.extend(lines)
    return apps, problems


def _app_of(server: Server) -> tuple[type[McpApp], list[str]]:
    """The app of a running server (see `server_app`), made the first time it is asked for."""
    with _APPS_LOCK:
        made = _APPS.get(server.name)
        if made is None or made[0].server is not server:  # none yet, or made of a server since replaced
            made = _APPS[server.name] = server_app(server)
        return made
