"""`intentos mcp serve`: the Function Table, and workflows, as the tools of an MCP server.

Every function `APP.VERB` is a tool of that name: its description, its pydantic argument schema as the input
schema, its result schema as the output schema, and annotations from its effect class (`tool_annotations`).
Two more tools work on whole workflows: `resolve` turns an intent into a plan with the planner (nothing runs)
and `run` runs such a plan.

Every call is a run of the Executor, exactly as `intentos call` / `intentos run` make one: the same sandbox,
the same journal (source `mcp`), the same confirmation points. Who says yes is the MCP client
(intentos.mcp.confirmation): a `write` or `external` call runs with `"confirm": true` or a yes through
elicitation, a `destructive` call always asks. A refused or declined call is a tool error (`isError`) of one
line, and the journal shows the step `declined`, as for a `no` at the terminal. Errors are always one line,
never a traceback.

Transports: stdio (`serve`), or streamable HTTP bound to a loopback address only (`check_loopback`).
"""

from __future__ import annotations

import copy
import io
import ipaddress
import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import mcp_types as types
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from rich.console import Console

from intentos import __version__, render
from intentos.app import Context
from intentos.config import load_settings, make_context
from intentos.errors import IntentosError
from intentos.executor import ConfirmRequest, Executor, confirm_timeout
from intentos.function import Effect, Function
from intentos.journal import RunView, run_summary
from intentos.mcp.confirmation import (
    CONFIRM_ARG,
    CONFIRM_SCHEMA,
    Confirmations,
    Question,
    answered_yes,
    can_elicit,
    needs_question,
    question_text,
)
from intentos.references import UnresolvedReference, substitute
from intentos.table import FunctionTable
from intentos.workflow import Workflow
from intentos.yamlfile import one_line

log = logging.getLogger(__name__)

SERVER_NAME = "intentos"
RESOLVE_TOOL = "resolve"
RUN_TOOL = "run"
SOURCE = "mcp"  # the journal's `source` of a run started over MCP
DEFAULT_PORT = 8765
LOOPBACK_NAMES = ("localhost",)
TEXT_CHARS = 300  # of the short line that leads a result
JSON_TEXT_CHARS = 50_000  # of the result's JSON as text, for clients that read no structured content

# The `confirm` argument of the write/external tools and of `run`.
_CONFIRM_PROPERTY: dict[str, Any] = {
    "type": "boolean", "default": False,
    "description": "true confirms this write/external call (taken out before the arguments are checked); "
                   "without it the server asks through elicitation where the client supports it, else refuses",
}


# -- tools ----------------------------------------------------------------------------------------------------


def tool_annotations(effect: Effect) -> types.ToolAnnotations:
    """MCP hints from an effect class: read-only for `read`; destructive only for `destructive`; an open world
    only for `external` (the others stay in the sandbox); idempotent only where that is known, for `read`."""
    read = effect is Effect.READ
    return types.ToolAnnotations(
        read_only_hint=read,
        destructive_hint=None if read else effect is Effect.DESTRUCTIVE,
        idempotent_hint=True if read else None,
        open_world_hint=effect is Effect.EXTERNAL,
    )


def input_schema(fn: Function) -> dict[str, Any]:
    """The function's argument schema; for `write`/`external`, with the optional `confirm` flag."""
    schema = copy.deepcopy(fn.params.model_json_schema())
    schema["type"] = "object"
    if fn.effect in (Effect.WRITE, Effect.EXTERNAL) and CONFIRM_ARG not in fn.params.model_fields:
        schema.setdefault("properties", {})[CONFIRM_ARG] = dict(_CONFIRM_PROPERTY)
    return schema


def output_schema(fn: Function) -> dict[str, Any] | None:
    """The result's schema as the result is serialized (field names, JSON types); None when it is no object."""
    schema = fn.result.model_json_schema(mode="serialization", by_alias=False)
    return schema if schema.get("type") == "object" else None


def function_tool(fn: Function) -> types.Tool:
    return types.Tool(name=fn.name, description=f"{fn.description} [{fn.effect.value}]",
                      input_schema=input_schema(fn), output_schema=output_schema(fn),
                      annotations=tool_annotations(fn.effect))


def workflow_tools() -> list[types.Tool]:
    return [
        types.Tool(
            name=RESOLVE_TOOL,
            description="Plan an intent: the workflow the planner makes of it, as JSON and as a readable plan. "
                        "Nothing runs; pass the workflow to `run` to run it.",
            input_schema={"type": "object", "properties": {
                "intent": {"type": "string", "minLength": 1, "description": "what you want, in plain language"}},
                "required": ["intent"]},
            annotations=types.ToolAnnotations(read_only_hint=True),
        ),
        types.Tool(
            name=RUN_TOOL,
            description="Run a workflow (as `resolve` returns it) in the sandbox, journaled. write/external steps "
                        "run with `confirm: true` or a yes through elicitation; destructive steps always ask.",
            input_schema={"type": "object", "properties": {
                "workflow": {"type": "object", "description": "the workflow: {start?, states: [{name, call, "
                                                              "args, next?, on_failure?, for_each?}]} or states "
                                                              "as a mapping"},
                "intent": {"type": "string", "description": "the intent it was planned for (kept in the journal)"},
                CONFIRM_ARG: {**_CONFIRM_PROPERTY,
                              "description": "true confirms the write/external steps; destructive steps still ask"},
            }, "required": ["workflow"]},
            annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True),
        ),
    ]


# -- the service ----------------------------------------------------------------------------------------------


class ToolFailure(IntentosError):
    """A call that could not run (bad arguments, an unknown tool): the tool's error, one line."""


@dataclass
class IntentosMcp:
    """The MCP face of intentos: the tools, and what each call does. `server()` builds the SDK's server."""

    sandbox: Path | None = None
    model: str | None = None
    table: FunctionTable = field(default_factory=FunctionTable.discover)

    def __post_init__(self) -> None:
        self.settings = load_settings()  # a bad settings file is an error at start, not at the first call
        make_context(self.settings, sandbox=self.sandbox)  # the sandbox exists (and is valid) before serving
        for problem in self.table.problems:
            log.warning(problem)
        self._tools = [function_tool(fn) for fn in self.table] + workflow_tools()
        self._backend: Any = None
        self._planner_lock = threading.Lock()

    # -- what is served ---------------------------------------------------------------------------------------

    def tools(self) -> list[types.Tool]:
        return list(self._tools)

    def context(self) -> Context:
        """A fresh Context per call (its cancel event is the call's own)."""
        return make_context(self.settings, sandbox=self.sandbox)

    def server(self) -> Any:
        from mcp.server.lowlevel import Server

        async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
            return types.ListToolsResult(tools=self.tools())

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult | \
                types.InputRequiredResult:
            return await self.call_tool(ctx, params)

        return Server(SERVER_NAME, version=__version__, title="intentos",
                      instructions="The functions of the intentos apps (files, notes, mail, calendar, tasks, "
                                   "skills ...) in one sandbox, every call journaled. write/external tools need "
                                   "`confirm: true` or a yes through elicitation; destructive ones always ask.",
                      on_list_tools=list_tools, on_call_tool=call_tool)

    # -- a call -----------------------------------------------------------------------------------------------

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult | \
            types.InputRequiredResult:
        """Any tool: never raises; what goes wrong is a tool error of one line."""
        try:
            args = dict(params.arguments or {})
            if params.name == RESOLVE_TOOL:
                return await self._resolve(args)
            if params.name == RUN_TOOL:
                workflow, confirmed, intent = self._run_arguments(args)
                return await self._execute(ctx, params, workflow, confirmed, intent=intent, single=None)
            fn = self.table.get(params.name)  # an unknown one: an error naming the closest
            # taken out of any call (a client may send it to every tool); it confirms write/external only
            confirmed = _pop_confirm(args) if CONFIRM_ARG not in fn.params.model_fields else False
            try:
                workflow = Workflow(start="call", states={"call": {"call": fn.name, "args": args}})
            except ValidationError as exc:
                raise ToolFailure(_validation_text(exc)) from None
            return await self._execute(ctx, params, workflow, confirmed, intent=None, single=fn)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:  # one line to the client; where it happened goes to the server's log
            if not isinstance(exc, (IntentosError, ValueError)):
                log.exception("tool %s failed", params.name)
            return error_result(_error_text(exc))

    def _run_arguments(self, args: dict[str, Any]) -> tuple[Workflow, bool, str | None]:
        confirmed = _pop_confirm(args)
        data, intent = args.pop("workflow", None), args.pop("intent", None)
        if args:
            raise ToolFailure(f"run takes workflow, intent and confirm, not {', '.join(sorted(args))}")
        if not isinstance(data, dict):
            raise ToolFailure("run needs `workflow`: an object, as `resolve` returns it")
        if intent is not None and not isinstance(intent, str):
            raise ToolFailure("`intent` must be text")
        try:
            workflow = Workflow.model_validate(data)
        except ValidationError as exc:
            raise ToolFailure("the workflow is not valid: " + _validation_text(exc)) from None
        return workflow, confirmed, intent

    async def _execute(self, ctx: Any, params: types.CallToolRequestParams, workflow: Workflow, confirmed: bool,
                       *, intent: str | None, single: Function | None) -> types.CallToolResult | \
            types.InputRequiredResult:
        from intentos.validation import WorkflowInvalid, check

        try:
            check(workflow, self.table)  # an invalid plan is refused before anything is asked
        except WorkflowInvalid as exc:
            if single is None:
                raise ToolFailure("the workflow is not valid: " + "; ".join(str(p) for p in exc.problems)) from None
            problems = [(f"{p.field.removeprefix('args.')}: " if p.field else "") + p.message for p in exc.problems]
            raise ToolFailure(f"{single.name}: invalid arguments: " + "; ".join(problems)) from None
        run_ctx = self.context()
        modern = getattr(ctx, "protocol_version", None) in MODERN_PROTOCOL_VERSIONS
        can_ask = can_elicit(ctx, modern)
        confirm = Confirmations(confirmed=confirmed)
        if modern and can_ask:
            questions = self._questions(workflow, confirmed, run_ctx, single is not None)
            if questions:
                given = {q.state: (params.input_responses or {}).get(q.key) for q in questions}
                if not all(isinstance(answer, types.ElicitResult) for answer in given.values()):
                    # asked again whole: a retry carries the answers of one round only
                    return types.InputRequiredResult(input_requests={q.key: q.request() for q in questions})
                confirm.answers = {state: isinstance(answer, types.ElicitResult) and answered_yes(answer)
                                   for state, answer in given.items()}
        elif can_ask:
            confirm.ask = self._asker(ctx, single is not None)
        executor = Executor(self.table, run_ctx, confirm=confirm, step_timeout=self.settings.step_timeout)
        source = SOURCE if single is not None else f"{SOURCE}:{RUN_TOOL}"
        try:
            view = await anyio.to_thread.run_sync(lambda: executor.run(workflow, intent=intent, source=source),
                                                  abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            executor.cancel()  # the run stops at its next step and is journaled `cancelled`
            raise
        return run_result(view, confirm.why, single)

    def _questions(self, workflow: Workflow, confirmed: bool, ctx: Context, single: bool) -> list[Question]:
        """The steps the client must be asked about before the run (2026-07-28): the arguments as written, with
        the app's preview where they are plain values that check."""
        questions = []
        for name, state in workflow.states.items():
            fn = self.table.get(state.call)
            if not needs_question(fn.effect, confirmed):
                continue
            details: tuple[str, ...] = ()
            args: Mapping[str, Any] = state.args
            if state.for_each is None:
                try:
                    params = fn.params.model_validate(substitute(state.args, {}))
                except (UnresolvedReference, ValidationError):
                    pass  # refers to earlier results: shown as written (or the step fails before it is asked)
                else:
                    args = params.model_dump(mode="json")
                    try:
                        details = tuple(self.table.apps[fn.app](ctx).preview(fn.verb, params))
                    except Exception as exc:
                        details = (f"(could not preview: {one_line(exc)})",)
            text = question_text(None if single else name, fn, args, details, state.for_each is not None)
            questions.append(Question(name, fn, text))
        return questions

    def _asker(self, ctx: Any, single: bool) -> Callable[[ConfirmRequest], tuple[bool, str]]:
        """Asks the client from the Executor's worker thread, through elicitation on the request's channel."""
        timeout = confirm_timeout()

        async def elicit(message: str) -> types.ElicitResult:
            with anyio.fail_after(timeout):
                return await ctx.session.elicit_form(message, CONFIRM_SCHEMA, related_request_id=ctx.request_id)

        def ask(request: ConfirmRequest) -> tuple[bool, str]:
            fn = request.function
            message = question_text(None if single else request.state, fn, request.args, request.details,
                                    bool(request.items))
            try:
                result = anyio.from_thread.run(elicit, message)
            except TimeoutError:
                return False, f"{fn.name} ({fn.effect.value}): the client gave no answer within {timeout:g} s"
            except Exception as exc:
                return False, f"{fn.name} ({fn.effect.value}): asking the client failed ({_error_text(exc)})"
            if answered_yes(result):
                return True, ""
            return False, f"{fn.name} ({fn.effect.value}) was declined by the client ({result.action})"

        return ask

    # -- resolve ----------------------------------------------------------------------------------------------

    async def _resolve(self, args: dict[str, Any]) -> types.CallToolResult:
        intent = args.pop("intent", None)
        if args:
            raise ToolFailure(f"resolve takes only `intent`, not {', '.join(sorted(args))}")
        if not isinstance(intent, str) or not intent.strip():
            raise ToolFailure("resolve needs `intent`: what you want, in plain language")
        resolution = await anyio.to_thread.run_sync(lambda: self.plan(intent), abandon_on_cancel=True)
        workflow = resolution.workflow
        plan = plan_text(workflow, self.table)
        data = {"workflow": workflow.to_data(), "plan": plan, "resolution": resolution.trace.summary()}
        return types.CallToolResult(
            content=[types.TextContent(text=plan),
                     types.TextContent(text=json.dumps(workflow.to_data(), ensure_ascii=False))],
            structured_content=json.loads(json.dumps(data, default=str)))

    def plan(self, intent: str) -> Any:
        """The CLI's planner path (`intentos resolve`): the Controller with the configured (or --model) backend;
        the backend is made once, at the first intent, and kept. A failure keeps its trace, as the CLI does."""
        from intentos.backends import make_backend
        from intentos.backends.settings import load_backend_settings
        from intentos.controller import Controller, ResolutionFailed

        with self._planner_lock:  # one model, one intent at a time
            if self._backend is None:
                settings = load_backend_settings(self.model, {})
                self._backend = make_backend(settings.spec, settings)
            try:
                return Controller(self._backend, self.table, self.context()).resolve(intent)
            except ResolutionFailed as exc:
                saved = exc.trace.save()
                raise ToolFailure(f"{exc} (the trace with every raw output is in {saved})") from None


# -- results --------------------------------------------------------------------------------------------------


def error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def run_result(view: RunView, why: str | None, single: Function | None) -> types.CallToolResult:
    """A finished run as a tool result: a function's result, or (for `run`) the run's summary."""
    meta = {"intentos/run_id": view.run_id, "intentos/status": view.status}
    step = view.steps[-1] if view.steps else None
    if view.status != "done":
        if view.status == "declined":
            message = f"not run: {why or (step.error if step else 'not confirmed')}"
        else:
            message = (step.error if step and step.error else view.error) or f"the run ended {view.status}"
            message = f"{single.name} failed: {message}" if single else f"the run ended {view.status}: {message}"
        message = f"{one_line(message)} (run {view.run_id}, {view.status})"
        return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True, meta=meta)
    if single is not None:
        data = step.result if step else None
        line = f"{single.name} done (run {view.run_id})" + (f": {_summary(data)}" if _summary(data) else "")
    else:
        data = json.loads(json.dumps(run_summary(view), default=str))
        line = f"run {view.run_id} done: {len(view.steps)} step(s) ({', '.join(s.call for s in view.steps)})"
    text = json.dumps(data, ensure_ascii=False, default=str)
    if len(text) > JSON_TEXT_CHARS:
        text = text[:JSON_TEXT_CHARS] + f"… ({len(text) - JSON_TEXT_CHARS} more characters in the structured content)"
    return types.CallToolResult(content=[types.TextContent(text=line), types.TextContent(text=text)],
                                structured_content=data if isinstance(data, dict) else {"result": data},
                                meta=meta)


def plan_text(workflow: Workflow, table: FunctionTable) -> str:
    """The plan as `intentos resolve` shows it, as plain text."""
    console = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=False)
    console.print(render.plan(workflow, table))
    return console.file.getvalue().rstrip()  # type: ignore[attr-defined]


def _summary(data: Any) -> str:
    """The result's own `summary` line, where it has one."""
    if not (isinstance(data, dict) and isinstance(data.get("summary"), str)):
        return ""
    text = one_line(data["summary"])
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def _pop_confirm(args: dict[str, Any]) -> bool:
    value = args.pop(CONFIRM_ARG, False)
    if not isinstance(value, bool):
        raise ToolFailure(f"`{CONFIRM_ARG}` must be true or false, not {json.dumps(value, default=str)[:40]}")
    return value


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors())


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return one_line(_validation_text(exc))
    if isinstance(exc, (IntentosError, ValueError)):
        return one_line(str(exc) or type(exc).__name__)
    return one_line(f"{type(exc).__name__}: {exc}")


# -- serving --------------------------------------------------------------------------------------------------


def check_loopback(host: str) -> str:
    """`host` when it is a loopback address (or `localhost`); any other is refused: the server has no
    authentication, so only this machine may reach it."""
    if host in LOOPBACK_NAMES:
        return host
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise IntentosError(f"--host {host!r}: the MCP server binds to a loopback address only (127.0.0.1, ::1 "
                            "or localhost); it has no authentication")
    return host.strip("[]")


def serve(sandbox: Path | None = None, *, http: bool = False, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          model: str | None = None) -> None:
    """Serve until the client goes (stdio) or the process is stopped (HTTP)."""
    host = check_loopback(host)
    if not 0 < port < 65536:
        raise IntentosError(f"--port {port}: give a port from 1 to 65535")
    service = IntentosMcp(sandbox, model)
    server = service.server()
    if not http:
        anyio.run(_serve_stdio, server)
        return
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    shown = f"[{host}]" if ":" in host else host
    security = TransportSecuritySettings(  # DNS rebinding: only this host's names, as Host and as Origin
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{shown}:*", "127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=[f"http://{shown}:*", "http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
    starlette = server.streamable_http_app(host=host, transport_security=security)
    print(f"intentos MCP server on http://{shown}:{port}/mcp (sandbox {service.context().sandbox.root})",
          file=sys.stderr, flush=True)
    uvicorn.run(starlette, host=host, port=port, log_level="warning")


async def _serve_stdio(server: Any) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


__all__ = ["IntentosMcp", "check_loopback", "function_tool", "input_schema", "output_schema", "serve",
           "tool_annotations", "workflow_tools"]
