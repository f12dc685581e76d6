"""Every key binding of the TUI, read from the classes that define them (so the list cannot go stale).

A place's keys are the bindings its intentos classes declare; "anywhere" adds the keys textual
itself gives every app (quit, the command palette, focus movement). Text boxes and tables also
take textual's usual editing and cursor keys, which the help names once rather than row by row.
"""

from __future__ import annotations

from rich.table import Table
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

KEY_NAMES = {"escape": "esc", "question_mark": "?"}
# Words for textual's own actions that come without a description.
TEXTUAL_ACTIONS = {"help_quit": "Says how to quit (ctrl+q)"}


def as_binding(item: BindingType) -> Binding:
    return item if isinstance(item, Binding) else Binding(*item)


def declared_bindings(cls: type) -> list[Binding]:
    """The bindings `cls` and its intentos base classes declare (a subclass's win, by key).

    For the app, textual's own app-wide keys follow: quit, the command palette and focus movement.
    """
    seen: dict[str, Binding] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("intentos."):
            for item in klass.__dict__.get("BINDINGS", []):
                binding = as_binding(item)
                seen[binding.key] = binding
    if issubclass(cls, App):
        palette = cls.COMMAND_PALETTE_BINDING  # bound by textual outside BINDINGS
        textual_keys = [*App.BINDINGS, Binding(palette, "command_palette", "Command palette"), *Screen.BINDINGS]
        for item in textual_keys:
            binding = as_binding(item)
            seen.setdefault(binding.key, binding)
    return list(seen.values())


def key_label(key: str) -> str:
    """`escape,q` → `esc, q`: the keys as the footer names them."""
    return ", ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in key.split(","))


def binding_rows(places: list[tuple[str, type]]) -> list[tuple[str, str, str]]:
    """(where, keys, what it does) for every binding of every place, in the order declared."""
    rows = []
    for where, cls in places:
        for binding in declared_bindings(cls):
            what = binding.tooltip or binding.description or TEXTUAL_ACTIONS.get(binding.action, binding.action)
            rows.append((where, key_label(binding.key), what))
    return rows


def bindings_table(places: list[tuple[str, type]]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, expand=True)
    table.add_column("where", style="bold")
    table.add_column("key", style="cyan")
    table.add_column("what it does")
    previous = None
    for where, keys, what in binding_rows(places):
        table.add_row(where if where != previous else "", keys, what)  # each place named once, on its first row
        previous = where
    return table


class HelpScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", tooltip="Close this help")]

    def __init__(self, places: list[tuple[str, type]]) -> None:
        super().__init__()
        self.places = places

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("[b]Key bindings[/b]  text boxes and tables also take the usual editing and cursor keys",
                         classes="title")
            yield Static(bindings_table(self.places))
        yield Footer()
