"""The Function Table browser: every function of the installed apps, filtered as you type."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from intentos.function import Function
from intentos.table import FunctionTable
from intentos.tui.widgets.plan import EFFECT_STYLE


class FunctionsScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, table: FunctionTable) -> None:
        super().__init__()
        self.table = table
        self.count_line = ""

    def compose(self) -> ComposeResult:
        yield Static("[b]Function Table[/b]  type to search name, app, effect or description", classes="title")
        yield Input(placeholder="search functions", id="function-search")
        yield DataTable(id="functions", cursor_type="row", zebra_stripes=True)
        yield Static("", id="function-detail")
        yield Footer()

    def on_mount(self) -> None:
        grid = self.query_one("#functions", DataTable)
        for col in ("function", "effect", "description", "parameters"):  # the full signature is in the detail line
            grid.add_column(col, key=col)
        self.fill("")
        self.query_one("#function-search", Input).focus()

    def matches(self, query: str) -> list[Function]:
        words = query.lower().split()
        return [fn for fn in self.table
                if all(w in f"{fn.name} {fn.effect.value} {fn.description}".lower() for w in words)]

    def fill(self, query: str) -> None:
        grid = self.query_one("#functions", DataTable)
        grid.clear()
        for fn in self.matches(query):
            params = fn.signature().split("(", 1)[1].rsplit(") ->", 1)[0]
            grid.add_row(fn.name, Text(fn.effect.value, style=EFFECT_STYLE.get(fn.effect.value, "")),
                         fn.description, Text(params), key=fn.name)
        self.count_line = f"{grid.row_count} of {len(self.table)} functions"
        self.query_one("#function-detail", Static).update(Text(self.count_line, style="dim"))

    def on_input_changed(self, event: Input.Changed) -> None:
        self.fill(event.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value in self.table:
            fn = self.table.get(str(event.row_key.value))
            detail = Text(self.count_line, style="dim")
            detail.append(f"\n{fn.signature()}\n{fn.description}", style="")
            self.query_one("#function-detail", Static).update(detail)
