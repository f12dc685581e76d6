"""The known-models table of `intentos models` (the rows come from `ModelStatus.row()`)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def _size(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def known_models_table(rows: list[dict[str, Any]]) -> Table:
    grid = Table(show_header=True, header_style="bold", box=None, title="known models", title_justify="left")
    for col in ("spec", "pulled", "size", "path / how to pull"):
        grid.add_column(col, overflow="fold")
    for row in rows:
        if row["pulled"]:
            mark, where = "[green]yes[/]", escape(row["path"]) + (" (embedded)" if row["embedded"] else "")
        else:
            mark = "[red]no[/]"
            where = f"[bold]{escape(row['pull'])}[/]" if row.get("pull") else escape(row["detail"])
            if row.get("pull") and row["detail"] != "not pulled":
                where += f" ({escape(row['detail'])})"
        grid.add_row(escape(row["spec"]), mark, _size(row["size"]), where)
    return grid
