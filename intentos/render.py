"""How plans and runs look in a terminal (rich). The CLI prints these; --json bypasses them."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from intentos.controller import Trace
from intentos.executor import needs_confirmation
from intentos.journal import RunView
from intentos.table import FunctionTable
from intentos.workflow import State, Workflow

STATUS_STYLE = {"ok": "green", "done": "bold green", "error": "red", "failed": "bold red", "timeout": "red",
                "declined": "yellow", "cancelled": "yellow", "running": "cyan", "interrupted": "magenta"}


def plan(workflow: Workflow, table: FunctionTable, *, assume_yes: bool = False) -> Panel:
    """The workflow as a state machine: each state's call, arguments and transitions."""
    grid = Table(show_header=True, header_style="bold", expand=True, box=None)
    for col in ("state", "call", "effect", "arguments", "on success", "on failure"):
        grid.add_column(col, overflow="fold")
    for name, state in workflow.states.items():
        fn = table.functions.get(state.call)
        effect = fn.effect.value if fn else "?"
        if fn and needs_confirmation(fn.effect, assume_yes):
            effect += " (asks)"
        marker = "▶ " if name == workflow.start else "  "
        loop = f" ≤{state.max_visits}×" if state.max_visits else ""
        grid.add_row(marker + name + loop, call_text(state), effect, Text(_compact(state.args)), state.next,
                     state.on_failure)
    title = f"Plan: {workflow.intent}" if workflow.intent else "Plan"
    return Panel(grid, title=title, title_align="left")


def run_view(view: RunView) -> Panel:
    steps = Table(show_header=True, header_style="bold", expand=True, box=None)
    for col in ("#", "state", "call", "status", "result / error", "s"):
        steps.add_column(col, overflow="fold")
    for i, step in enumerate(view.steps, start=1):
        outcome = step.error if step.error else _compact(step.result)
        duration = f"{step.duration_s:.3f}" if step.duration_s is not None else ""
        call = f"{step.call} ×{len(step.items)}" if step.items is not None else step.call
        steps.add_row(str(i), step.state, call, Text(step.status, style=STATUS_STYLE.get(step.status, "")),
                      Text(outcome or ""), duration)
    head = Text.assemble(("run ", "dim"), (view.run_id, "bold"), ("  status ", "dim"),
                         (view.status, STATUS_STYLE.get(view.status, "")), ("  sandbox ", "dim"), view.sandbox)
    parts: list[Any] = [head]
    if view.intent:
        parts.append(Text(f"intent: {view.intent}", style="italic"))
    parts.append(steps)
    if view.status in ("interrupted", "declined", "cancelled") and view.resume_at:
        parts.append(Text(f"resume with: intentos runs resume {view.run_id}  (continues at {view.resume_at!r})",
                          style="magenta"))
    return Panel(Group(*parts), title="Run", title_align="left")


def runs_table(views: list[RunView]) -> Table:
    table = Table(show_header=True, header_style="bold")
    for col in ("run", "started", "status", "steps", "intent / source"):
        table.add_column(col, overflow="fold")
    for v in views:
        table.add_row(v.run_id, v.started[:19].replace("T", " "), Text(v.status, style=STATUS_STYLE.get(v.status, "")),
                      str(len(v.steps)), v.intent or v.source or "")
    return table


def functions_table(table: FunctionTable) -> Table:
    out = Table(show_header=True, header_style="bold")
    for col in ("function", "effect", "signature", "description"):
        out.add_column(col, overflow="fold")
    for fn in table:
        params = fn.signature().split("(", 1)[1].rsplit(") ->", 1)[0]
        out.add_row(fn.name, fn.effect.value, Text(params), fn.description)
    return out


def clip(text: str, limit: int) -> str:
    """At most `limit` characters; a cut shows as a trailing ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call_text(state: State, limit: int = 60) -> str:
    """A state's call as a person reads it: `notes.create`, or `for each <list>: notes.create`."""
    if state.for_each is None:
        return state.call
    return f"for each {for_each_text(state.for_each, limit)}: {state.call}"


def for_each_text(for_each: list[Any] | str, limit: int = 60) -> str:
    """The list of a for_each state: its reference as written, or the literal list (clipped) and its length."""
    if isinstance(for_each, str):
        return for_each
    count = f"{len(for_each)} item{'s' if len(for_each) != 1 else ''}"
    return f"{_compact(for_each, limit)} ({count})" if for_each else "[] (no items)"


def _compact(value: Any, limit: int = 160) -> str:
    if value is None:
        return ""
    return clip(json.dumps(value, ensure_ascii=False, default=str), limit)


def resolution_line(trace: Trace) -> str:
    """One line on how the plan came to be: model, attempts, tokens, time."""
    repairs = f", {trace.repairs} repair(s)" if trace.repairs else ""
    return (f"{trace.model}: {len(trace.shown)} functions shown, {trace.prompt_tokens} prompt + "
            f"{trace.completion_tokens} generated tokens, {trace.wall_s:.1f} s{repairs}")


def planning_notes(trace: Trace) -> list[str]:
    """What the person confirming a plan should know about how it was checked: its stages (read steps
    that ran in a scratch copy so the model could see their results) and its dry run."""
    notes = []
    for i, stage in enumerate(trace.stages, 1):
        names = ", ".join(str(s.get("name")) for s in stage.states)
        notes.append(f"stage {i}: read {names} in a scratch copy, then planned on with the results")
    if trace.dry_run is not None:
        notes.append(trace.dry_run.summary())
    return notes


def models_table(rows: list[dict[str, Any]]) -> Table:
    grid = Table(show_header=True, header_style="bold", box=None)
    for col in ("model", "reachable", "detail"):
        grid.add_column(col, overflow="fold")
    for row in rows:
        mark = "[green]yes[/]" if row["reachable"] else "[red]no[/]"
        grid.add_row(row["spec"], mark, row["detail"])
    return grid


def stderr_console() -> Console:
    return Console(stderr=True)
