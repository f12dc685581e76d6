"""The intent box: a one-line input with shell-like history on up/down."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input

from intentos.tui.history import IntentHistory


class IntentBox(Input):
    BINDINGS = [
        Binding("up", "history_previous", "Previous intent", show=False),
        Binding("down", "history_next", "Next intent", show=False),
    ]

    def __init__(self, history: IntentHistory, **kwargs: object) -> None:
        super().__init__(placeholder="What do you want to do? (Enter resolves it)", **kwargs)  # type: ignore[arg-type]
        self.history = history

    def action_history_previous(self) -> None:
        if (entry := self.history.previous()) is not None:
            self.value = entry
            self.cursor_position = len(entry)

    def action_history_next(self) -> None:
        self.value = self.history.next()
        self.cursor_position = len(self.value)
