"""Results rendered for people: tables for lists, sparklines for numeric series, key/value grids otherwise.

A step's result is whatever JSON its function returned. Lists of records become tables; a
list of numbers (anomaly scores, a training loss, sizes) becomes a sparkline with its range,
so a trend is visible at a glance; everything else is a compact key/value grid.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from intentos.render import clip

BARS = "▁▂▃▄▅▆▇█"
MAX_ROWS = 20
MAX_SPARK = 60


def render_result(value: Any, depth: int = 0) -> RenderableType:
    """A readable rendering of one JSON value."""
    if isinstance(value, dict):
        return _mapping(value, depth)
    if isinstance(value, list):
        if numeric_series(value):
            return sparkline(value)
        if value and all(isinstance(v, dict) for v in value):
            return records_table(value)
        if depth > 1:
            return Text(_short(value))
        return Group(*(Text(f"• {_short(v)}") for v in value[:MAX_ROWS]), *_more(value))
    return Text(_short(value))


def numeric_series(value: Any) -> bool:
    """A list of two or more finite numbers (booleans are not numbers here)."""
    return (isinstance(value, list) and len(value) >= 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value))


def sparkline(values: list[float], width: int = MAX_SPARK) -> Text:
    """`▁▃▇█▅ min 0.1 · max 3.2 · last 2.0 (n=40)`; long series are averaged into `width` buckets."""
    if len(values) > width:
        size = len(values) / width
        values = [sum(chunk) / len(chunk) for i in range(width)
                  if (chunk := values[int(i * size): max(int((i + 1) * size), int(i * size) + 1)])]
    lo, hi = min(values), max(values)
    span = hi - lo
    bars = "".join(BARS[int((v - lo) / span * (len(BARS) - 1))] if span else BARS[len(BARS) // 2] for v in values)
    text = Text(bars, style="cyan")
    text.append(f"  min {_num(lo)} · max {_num(hi)} · last {_num(values[-1])}", style="dim")
    return text


def records_table(rows: list[dict[str, Any]]) -> Table:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in columns[:8]:
        table.add_column(col, overflow="fold")
    for row in rows[:MAX_ROWS]:
        cells: list[RenderableType] = []
        for col in columns[:8]:
            cell = row.get(col)
            cells.append(sparkline(cell, 20) if numeric_series(cell) else Text(_short(cell, 60)))
        table.add_row(*cells)
    if len(rows) > MAX_ROWS:
        table.caption = f"… {len(rows) - MAX_ROWS} more"
    return table


def _mapping(value: dict[str, Any], depth: int) -> RenderableType:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold")
    grid.add_column()
    for key, item in value.items():
        nested = isinstance(item, dict | list) and item and depth < 2
        grid.add_row(str(key), render_result(item, depth + 1) if nested else Text(_short(item)))
    return grid


def _more(value: list[Any]) -> list[Text]:
    return [Text(f"… {len(value) - MAX_ROWS} more", style="dim")] if len(value) > MAX_ROWS else []


def _num(value: float) -> str:
    return f"{value:.4g}"


def _short(value: Any, limit: int = 200) -> str:
    return clip(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str), limit)
