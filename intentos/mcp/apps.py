"""MCP servers as intentos apps: each server under `mcp_servers:` in the config file is an app of the table.

    mcp_servers:
      jot:                                   # the app's name: its functions are jot.TOOL
        command: python                      # stdio: the command that starts the server ...
        args: [-m, jot_server]               # ... its arguments,
        env: {JOT_FILE: ~/jot.json}          # extra environment variables,
        cwd: ~/servers                       # and the folder it starts in (all optional)
      web:
        url: http://127.0.0.1:8000/mcp       # streamable HTTP
        headers: {Authorization: Bearer ...} # optional

Each server is started (or connected to) once per process when the table is discovered, and its tools are
listed; every tool is a function `SERVER.TOOL` whose description is the tool's and whose argument schema is the
tool's input schema, as it is (`McpSchema`): the prompt, `functions --json` and the workflow schema show it, and
an argument is checked against it (with `jsonschema`) before any call. A tool with an output schema returns its
structured content as fields of that schema; any other returns `{text}`. The effect class comes from the tool's
annotations (`effect_of`); the app is `outside_sandbox`, so a dry run runs only its read tools. A server that
cannot be started or listed is a line in `FunctionTable.problems` and its app is left out; the rest works.

The SDK is async: each server has its own event loop in a daemon thread holding the session open, and a call
from the executor's worker thread is handed to that loop and waited for. A server that exits is found out at
the next call, which restarts it (its tools as listed first); a server that dies during a call makes that call
a one-line AppError. `close_all` (also run at exit) ends every session and so every server process.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import copy
import json
import os
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, to_jsonable_python

from intentos.app import App
from intentos.configfile import ConfigFile
from intentos.errors import AppError, IntentosError
from intentos.function import Effect, Function
from intentos.yamlfile import one_line

SECTION = "mcp_servers"
SERVER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an app name: what `${...}` and `app.verb` allow
MAX_TOOL_PAGES = 100  # of a tools/list reply: a server that pages forever is cut off
DESCRIPTION_CHARS = 300  # of a tool's description, as one line in the prompt
ERROR_CHARS = 500  # of a tool's error, as one line in a step's error
# Set for every stdio server: an intentos started that way (as an MCP server, say) starts no servers of its own,
# so a config that names intentos itself cannot start intentos after intentos without end.
CHILD_ENV = "INTENTOS_MCP_CHILD"
STOP_WAIT_S = 10.0  # for a session to close (the SDK waits at most ~6 s for a stdio server to exit)


# -- the config section ------------------------------------------------------------------------------------------


class McpServer(BaseModel):
    """One entry of `mcp_servers:`: a command to start (stdio) or a URL to connect to (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(None, min_length=1, description="the program that starts a stdio server")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="added to a small inherited environment")
    cwd: Path | None = None
    url: str | None = Field(None, description="a streamable HTTP endpoint, http:// or https://")
    headers: dict[str, str] = Field(default_factory=dict)
    description: str | None = Field(None, description="what the app is for, shown to the planner")
    startup_timeout: float = Field(30.0, gt=0, description="seconds to start the server and list its tools")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]", value):
            raise _invalid("url must be an http:// or https:// address")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise _invalid("give either `command` (a stdio server) or `url` (a streamable HTTP server)")
        if self.url is not None and (self.args or self.env or self.cwd is not None):
            raise _invalid("args, env and cwd go with `command`, not `url`")
        if self.command is not None and self.headers:
            raise _invalid("headers go with `url`, not `command`")
        return self

    def where(self) -> str:
        """The server, in a few words: its command line or URL."""
        if self.url is not None:
            return self.url
        return " ".join([self.command or "", *self.args])


def _invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is `message` as it is (no "Value error, " before it)."""
    return PydanticCustomError("mcp", message)


def server_entries(config: ConfigFile) -> tuple[dict[str, McpServer], list[str]]:
    """The valid entries of `mcp_servers:`, and a line (naming the file and line) for each invalid one."""
    entries: dict[str, McpServer] = {}
    problems: list[str] = []
    for name, value in config.section(SECTION).items():
        where = (SECTION, name)
        if not isinstance(name, str) or not SERVER_NAME.fullmatch(name):
            problems.append(str(config.error(f"`{SECTION}.{name}`: a server's name is its app's name: letters, "
                                             "digits and _, not starting with a digit", where)))
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            problems.append(str(config.error(f"`{SECTION}.{name}` must be a mapping with `command` or `url`",
                                             where)))
            continue
        try:
            entries[name] = McpServer.model_validate(value)
        except ValidationError as exc:
            problems.append(str(config.validation_error(exc, where)))
    return entries, problems


# -- schemas -----------------------------------------------------------------------------------------------------


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
    model = create_model(_model_name(title), __base__=McpResult if result else McpSchema, **fields)
    model.source = schema
    model.whole = None if result else kind(schema)
    return model


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


def _model_name(title: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"\W+", title, flags=re.ASCII) if part) or "Tool"


def _rewrite_refs(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: (new + v[len(old):] if k == "$ref" and isinstance(v, str) and v.startswith(old)
                    else _rewrite_refs(v, old, new)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v, old, new) for v in node]
    return node


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


# -- a running server ----------------------------------------------------------------------------------------------


class McpStartError(IntentosError):
    """A server that could not be started, connected to or listed."""


class Connection:
    """One session with one server, held open by an event loop in a daemon thread of its own."""

    def __init__(self, name: str, entry: McpServer) -> None:
        self.name = name
        self.entry = entry
        self.tools: list[Any] = []
        self.instructions: str | None = None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scope: Any = None
        self._closing = False
        self._error: BaseException | None = None
        self._ready = threading.Event()
        # A stdio server's stderr: kept out of the terminal (and the TUI), its last line told when it fails.
        self._errlog = tempfile.TemporaryFile() if entry.command is not None else None
        self._thread = threading.Thread(target=self._serve, name=f"mcp-{name}", daemon=True)

    # -- from the caller's thread

    def begin(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Wait for the server to be up and listed; an McpStartError (and nothing left running) if it is not."""
        if not self._ready.wait(self.entry.startup_timeout):
            said = self._last_words()
            self.close()
            raise McpStartError(f"it did not start and list its tools within {self.entry.startup_timeout:g} s"
                                f"{said}")
        if self._client is None:
            error, said = self._error, self._last_words()
            self.close()
            raise McpStartError(f"{_reason(error) if error else 'it stopped while starting'}{said}")

    @property
    def alive(self) -> bool:
        client = self._client
        if client is None or not self._thread.is_alive():
            return False
        # The SDK closes the dispatcher when the server's stream ends (the process exited, the HTTP session
        # went away); it has no public flag for it, so an SDK without this attribute counts as alive and the
        # call itself reports the closed connection.
        dispatcher = getattr(getattr(client, "_session", None), "_dispatcher", None)
        return not getattr(dispatcher, "_closed", False)

    def call(self, tool: str, arguments: dict[str, Any], cancelled: threading.Event | None = None) -> Any:
        """The tool's CallToolResult; _Stopped when the server is gone, the SDK's error for a protocol error."""
        client, loop = self._client, self._loop
        if client is None or loop is None:
            raise _Stopped("it is not running")
        future = asyncio.run_coroutine_threadsafe(client.call_tool(tool, arguments), loop)
        while not concurrent.futures.wait([future], timeout=0.1).done:
            if cancelled is not None and cancelled.is_set():
                future.cancel()
                raise AppError(f"{self.name}.{tool}: cancelled")
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise _Stopped("its session was closed during the call") from None
        except Exception as exc:
            if _connection_closed(exc):
                raise _Stopped(f"it stopped during the call{self._last_words()}") from None
            raise

    def close(self) -> None:
        """End the session (and with it the server process); waits a bounded time."""
        self._closing = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._cancel)
            except RuntimeError:  # the loop has ended already
                pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(STOP_WAIT_S)
        if self._errlog is not None and not self._thread.is_alive():
            self._errlog.close()

    def _last_words(self) -> str:
        """The last line the server wrote to stderr, if any (a traceback's last line says what went wrong)."""
        if self._errlog is None or self._errlog.closed:
            return ""
        try:  # pread: the server shares the file's offset, which must stay where it writes
            fd = self._errlog.fileno()
            tail = os.pread(fd, 4000, max(0, os.fstat(fd).st_size - 4000)).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        return f" (it said: {one_line(lines[-1])[:200]})" if lines else ""

    # -- in the session's thread

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._client = None
            self._ready.set()

    def _cancel(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def _main(self) -> None:
        import anyio

        with anyio.CancelScope() as scope:
            self._scope = scope
            self._loop = asyncio.get_running_loop()
            if self._closing:
                scope.cancel()
            try:
                async with self._open() as client:
                    tools: list[Any] = []
                    cursor = None
                    for _ in range(MAX_TOOL_PAGES):
                        page = await client.list_tools(cursor=cursor)
                        tools.extend(page.tools)
                        cursor = page.next_cursor
                        if not cursor:
                            break
                    self.tools = tools
                    self.instructions = client.instructions
                    self._client = client
                    self._ready.set()
                    await anyio.sleep_forever()
            except Exception as exc:
                self._error = exc
            finally:
                self._client = None

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[Any]:
        from mcp import Client, Implementation

        from intentos import __version__

        info = Implementation(name="intentos", version=__version__)
        entry = self.entry
        if entry.url is not None:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            if entry.headers:
                async with httpx2.AsyncClient(headers=entry.headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http:
                    async with Client(streamable_http_client(entry.url, http_client=http), client_info=info) as client:
                        yield client
            else:
                async with Client(streamable_http_client(entry.url), client_info=info) as client:
                    yield client
            return
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=os.path.expanduser(entry.command or ""), args=entry.args,
                                       env={**entry.env, CHILD_ENV: "1"},
                                       cwd=entry.cwd.expanduser() if entry.cwd is not None else None)
        async with Client(stdio_client(params, errlog=self._errlog), client_info=info) as client:
            yield client


class _Stopped(Exception):
    """The server is not there for a call (it exited, or the session closed)."""


def _connection_closed(exc: BaseException) -> bool:
    from mcp.shared.exceptions import MCPError
    from mcp_types import CONNECTION_CLOSED

    return isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED


def _reason(exc: BaseException) -> str:
    """One line for what stopped a server from starting."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such command {exc.filename!r}"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"{exc.filename!r} cannot be run (permission denied)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if _connection_closed(exc):
        return "it closed the connection before listing its tools"
    text = one_line(exc)
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


# -- the apps --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    tool: str  # the tool's name on its server
    function: Function


class McpApp(App):
    """The app of one MCP server (a subclass per server, made by `server_app`)."""

    server: ClassVar[Server]
    specs: ClassVar[dict[str, ToolSpec]] = {}  # verb -> tool
    # Its data is the server's, not in the sandbox: a dry run (a scratch copy of the sandbox) must not run its
    # write, destructive or external tools (intentos.dryrun reads this; its read-only tools still run there).
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
    app = type(f"Mcp{_model_name(name)}App", (McpApp,), {
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


# -- the servers of this process -------------------------------------------------------------------------------------


class Server:
    """A configured server: its running connection (restarted when it has exited) and the app made of it."""

    def __init__(self, name: str, entry: McpServer) -> None:
        self.name = name
        self.entry = entry
        self._lock = threading.Lock()
        self._connection = Connection(name, entry)
        self._closed = False  # by close_all or a changed config: never started again
        self._app: tuple[type[McpApp], list[str]] | None = None

    @property
    def tools(self) -> list[Any]:
        return self._connection.tools

    @property
    def instructions(self) -> str | None:
        return self._connection.instructions

    @property
    def alive(self) -> bool:
        return self._connection.alive

    def app(self) -> tuple[type[McpApp], list[str]]:
        if self._app is None:
            self._app = server_app(self)
        return self._app

    def call(self, tool: str, arguments: dict[str, Any], cancelled: threading.Event | None = None) -> Any:
        connection = self._running()
        try:
            return connection.call(tool, arguments, cancelled)
        except _Stopped as exc:
            connection.close()
            raise AppError(f"the MCP server {self.name!r} is not there for {self.name}.{tool}: {exc}") from None
        except AppError:
            raise
        except Exception as exc:  # a protocol error, a result the SDK refused: the call's failure, one line
            raise AppError(f"{self.name}.{tool} failed: {one_line(exc)[:ERROR_CHARS] or type(exc).__name__}") \
                from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._connection.close()

    def _running(self) -> Connection:
        """The live connection; one that has stopped is started again (once per call)."""
        with self._lock:
            if self._closed:
                raise AppError(f"the MCP server {self.name!r} was closed (intentos is stopping, or its entry in "
                               "the config file changed)")
            if not self._connection.alive:
                self._connection.close()
                self._connection = Connection(self.name, self.entry)
                self._connection.begin()
                try:
                    self._connection.finish()
                except McpStartError as exc:
                    raise AppError(f"the MCP server {self.name!r} stopped and did not start again: {exc}") \
                        from None
            return self._connection


_SERVERS: dict[str, Server] = {}
_REGISTRY = threading.Lock()
_AT_EXIT = False


def discover_servers(config: ConfigFile, taken: set[str] = frozenset()) -> tuple[list[type[App]], list[str]]:
    """The apps of the servers configured under `mcp_servers:`, in the order written, and a line per server
    or tool that is left out. Servers already running for the same entry are reused; the others start
    together, each given its `startup_timeout`."""
    global _AT_EXIT
    if os.environ.get(CHILD_ENV):
        return [], [f"MCP servers are not started here: this intentos was itself started by an MCP client of "
                    f"intentos (${CHILD_ENV} is set), and servers starting servers could loop"]
    entries, problems = server_entries(config)
    for name in [n for n in entries if n in taken]:
        problems.append(str(config.error(f"MCP server {name!r} is left out: an app is already named {name!r} "
                                         "(give the server another name)", (SECTION, name))))
        del entries[name]
    with _REGISTRY:
        if not _AT_EXIT:
            atexit.register(close_all)
            _AT_EXIT = True
        for name, server in list(_SERVERS.items()):
            if entries.get(name) != server.entry or not server.alive:
                server.close()
                del _SERVERS[name]
        fresh = {name: Server(name, entry) for name, entry in entries.items() if name not in _SERVERS}
        for server in fresh.values():
            server._connection.begin()
        for name, server in fresh.items():
            try:
                server._connection.finish()
            except McpStartError as exc:
                problems.append(f"MCP server {name!r} ({entry_line(server.entry)}) failed to start: {exc}")
                continue
            _SERVERS[name] = server
        apps: list[type[App]] = []
        for name in entries:
            if name in _SERVERS:
                app, lines = _SERVERS[name].app()
                apps.append(app)
                problems.extend(lines)
    return apps, problems


def entry_line(entry: McpServer) -> str:
    where = entry.where()
    return where if len(where) <= 80 else where[:79] + "…"


def close_all() -> None:
    """End every server's session (run at exit; tests call it to leave no process behind)."""
    with _REGISTRY:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        server.close()

