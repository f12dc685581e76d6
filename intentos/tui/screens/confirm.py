"""Asking the person about one step while a run is in flight (destructive steps always ask)."""

from __future__ import annotations

import json
import threading

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from intentos.executor import ConfirmRequest


class ConfirmStepScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes, run this step"),
        Binding("n,escape", "answer(False)", "No, stop the run here"),
    ]

    def __init__(self, request: ConfirmRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        args = json.dumps(self.request.args, ensure_ascii=False, default=str, indent=1)
        with Vertical(id="dialog"):
            calls = f" ({len(self.request.items)} calls)" if len(self.request.items) > 1 else ""
            each = " for each item" if self.request.items else ""  # args as written; a line per item below
            yield Static(Text.assemble(("Run this ", ""), (self.request.effect.value, "bold red"),
                                       (f" step{calls}?", "")))
            yield Static(Text(f"{self.request.state}: {self.request.function.name}{each}\n{args}"))
            if self.request.details:  # what the arguments alone do not show: every recipient, a link's target
                # Scrolls when long (a for_each step's item lines), so the buttons stay on screen.
                with VerticalScroll(id="details-scroll"):
                    yield Static(Text("\n".join(f"• {line}" for line in self.request.details), style="yellow"),
                                 id="details")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def ask_from_thread(app: App[object], request: ConfirmRequest, stop: threading.Event) -> bool:
    """From an executor's worker thread: show the dialog on the UI thread and wait for the answer.

    Gives up (answers no) when `stop` is set, so cancelling a run never leaves a worker waiting forever.
    """
    answered = threading.Event()
    box: dict[str, bool] = {}

    def done(yes: bool | None) -> None:
        box["yes"] = bool(yes)
        answered.set()

    app.call_from_thread(app.push_screen, ConfirmStepScreen(request), done)
    while not answered.wait(0.1):
        if stop.is_set():
            return False
    return box.get("yes", False)
