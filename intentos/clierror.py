"""How every command reports an error a user can act on: one red line on stderr (a JSON object on
stdout with --json) and exit code 2 for bad input, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer
from rich.markup import escape

from intentos import render
from intentos.errors import IntentosError

T = TypeVar("T")
err = render.stderr_console()


def fail(message: str, as_json: bool = False, code: int = 2) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message}))
    else:
        # soft_wrap: never fold the line, so a long path in it stays whole when piped or copied
        # escape: a message is plain text; `states[0]` or `[y/N]` in it must not be read as rich markup
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guard(action: Callable[[], T], as_json: bool = False) -> T:
    """Run a command body; an IntentosError becomes `fail`'s one line."""
    try:
        return action()
    except IntentosError as exc:
        fail(str(exc), as_json)
