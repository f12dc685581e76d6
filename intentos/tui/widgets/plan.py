"""The workflow as a state machine: one row per state with its call, effect class, arguments,
success and failure transitions and, once running, its live status from the journal."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from intentos.executor import needs_confirmation
from intentos.function import Effect
from intentos.render import call_text, clip
from intentos.table import FunctionTable
from intentos.workflow import DONE, FAILED, Workflow

EFFECT_STYLE = {"read": "green", "write": "yellow", "external": "magenta", "destructive": "bold red"}
STATUS_MARK = {"running": ("◌ running", "cyan"), "ok": ("✓ ok", "green"), "error": ("✗ error", "red"),
               "timeout": ("✗ timeout", "red"), "declined": ("⊘ declined", "yellow"),
               "cancelled": ("⊘ cancelled", "yellow"), "pending": ("· pending", "dim")}
# The arguments come last: they are the widest column, and a long one must not push the transitions or the
# live status out of sight (the full arguments are in the edit dialog).
COLUMNS = ("state", "status", "call", "effect", "on success", "on failure", "arguments")


class PlanTable(DataTable[Any]):
    """A DataTable keyed by state name, so journal records update their row in place."""

    BINDINGS = [Binding("e,enter", "edit", "Edit", tooltip="Edit the arguments of the selected step", show=False)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.workflow: Workflow | None = None
        self.visits: dict[str, int] = {}

    def on_mount(self) -> None:
        for col in COLUMNS:
            self.add_column(col, key=col)

    def show(self, workflow: Workflow, table: FunctionTable) -> None:
        self.clear()
        self.workflow, self.visits = workflow, {}
        for name, state in workflow.states.items():
            fn = table.functions.get(state.call)
            effect = Text(fn.effect.value if fn else "?", style=EFFECT_STYLE.get(fn.effect.value, "") if fn else "red")
            if fn is not None and fn.effect is Effect.DESTRUCTIVE:
                effect.append(" (asks)")
            elif fn is not None and needs_confirmation(fn.effect, assume_yes=False):
                effect.append(" (plan ok)", style="dim")  # confirming the plan confirms write/external steps
            marker = "▶ " if name == workflow.start else "  "
            loop = f" ≤{state.max_visits}×" if state.max_visits else ""
            self.add_row(Text(marker + name + loop, style="bold"), _status("pending"), call_text(state, 40), effect,
                         _target(state.next), _target(state.on_failure), Text(_args(state.args)), key=name)

    def set_status(self, state: str, status: str) -> None:
        if self.workflow is None or state not in self.workflow.states:
            return
        if status not in ("running", "pending"):
            self.visits[state] = self.visits.get(state, 0) + 1
        times = self.visits.get(state, 0)
        self.update_cell(state, "status", _status(status, times if times > 1 else 0))

    def reset_status(self) -> None:
        if self.workflow is not None:
            self.visits = {}
            for name in self.workflow.states:
                self.update_cell(name, "status", _status("pending"))

    def selected_state(self) -> str | None:
        if self.workflow is None or not self.row_count:
            return None
        return list(self.workflow.states)[min(self.cursor_row, self.row_count - 1)]

    async def action_edit(self) -> None:
        await self.screen.run_action("edit_step")


def _status(status: str, times: int = 0) -> Text:
    label, style = STATUS_MARK.get(status, (status, ""))
    return Text(label + (f" ×{times}" if times else ""), style=style)


def _target(name: str) -> Text:
    if name == DONE:
        return Text("→ done", style="green")
    if name == FAILED:
        return Text("→ failed", style="red")
    return Text(f"→ {name}")


def _args(args: dict[str, Any], limit: int = 60) -> str:
    return clip(", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in args.items()), limit)
