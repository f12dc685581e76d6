"""Editing the arguments of one step before the plan runs.

Each argument is one input. A value that was text stays text; any other value is read as
JSON (so `3`, `true`, `["a", "b"]` keep their types), falling back to text when it is not.
"""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from intentos.workflow import State


class EditArgsScreen(ModalScreen[dict[str, Any] | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save the arguments"),
        Binding("escape", "cancel", "Close without changes"),
    ]

    def __init__(self, name: str, state: State) -> None:
        super().__init__()
        self.state_name = name
        self.state = state

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(f"[b]{self.state_name}[/b]: {self.state.call}  (ctrl+s saves, esc cancels)")
            if not self.state.args:
                yield Static("[dim]this step takes no arguments[/dim]")
            for i, (key, value) in enumerate(self.state.args.items()):
                yield Label(key)
                yield Input(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False),
                            id=f"arg-{i}", name=key)
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if boxes := self.query(Input):
            boxes.first().focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def on_input_submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        args: dict[str, Any] = {}
        for box in self.query(Input):
            key = box.name or ""
            args[key] = parse_value(box.value, self.state.args.get(key))
        self.dismiss(args)

    def action_cancel(self) -> None:
        self.dismiss(None)


def parse_value(text: str, original: Any) -> Any:
    if isinstance(original, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
