"""The outcome of a run: its status line and each step's result (rendered for people) or error."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text
from textual.widgets import Static

from intentos.journal import RunView
from intentos.render import STATUS_STYLE
from intentos.tui.results import render_result


def run_outcome(view: RunView, *, show_sandbox: bool = False) -> RenderableType:
    head = Text.assemble(("run ", "dim"), (view.run_id, "bold"), ("  ", ""),
                         (view.status, STATUS_STYLE.get(view.status, "")))
    if view.intent:
        head.append(f"  {view.intent}", style="italic")
    parts: list[RenderableType] = [head]
    if show_sandbox:
        parts.append(Text(f"sandbox {view.sandbox}", style="dim"))
    for i, step in enumerate(view.steps, start=1):
        title = f"{i}. {step.state} · {step.call} · {step.status}"
        if step.duration_s is not None and show_sandbox:
            title += f" · {step.duration_s:.3f} s"
        style = STATUS_STYLE.get(step.status, "")
        if step.error:
            body: RenderableType = Text(step.error, style="red")
        elif step.result is None:
            body = Text("(no result)", style="dim")
        else:
            body = render_result(step.result)
        parts.append(Panel(body, title=title, title_align="left", border_style=style or "dim"))
    if view.status in ("interrupted", "declined", "cancelled") and view.resume_at:
        parts.append(Text(f"can be resumed at {view.resume_at!r} (runs screen: F2, then r)", style="magenta"))
    return Group(*parts)


class RunOutcome(Static):
    def show(self, view: RunView, *, show_sandbox: bool = False) -> None:
        self.update(run_outcome(view, show_sandbox=show_sandbox))
        self.display = True
