"""What every command is built from, so that all of them behave alike.

- `guard`: the one error policy. An error a user can act on (IntentosError, pydantic's
  ValidationError, ValueError) is one red line on stderr, or `{"error": ...}` on stdout with
  --json, and exit code 2; Ctrl-C is exit code 130. Never a traceback.
- `emit`: a result as JSON (--json) or rendered for a person.
- `JsonOpt`: the one --json option.
- `command_groups`: command groups found through the entry-point group `intentos.commands`, the
  way apps are found through `intentos.apps`, so a plugin can add commands. An entry point's name is
  where the group goes: `skills.logs` is `intentos skills logs`, `mytool` is `intentos mytool`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.markup import escape

from intentos import render
from intentos.errors import IntentosError

T = TypeVar("T")
log = logging.getLogger(__name__)
err = render.stderr_console()

BAD_INPUT = 2
INTERRUPTED = 130  # the shell's code for a command ended by SIGINT
COMMANDS_GROUP = "intentos.commands"

JsonOpt = typer.Option(False, "--json", help="machine-readable output on stdout")


def fail(message: str, as_json: bool = False, code: int = BAD_INPUT) -> NoReturn:
    """Report one error line (or a JSON error object) and end the command with `code`."""
    if as_json:
        print(json.dumps({"error": message}))
    else:
        # soft_wrap: never fold the line, so a long path in it stays whole when piped or copied
        # escape: a message is plain text; `states[0]` or `[y/N]` in it must not be read as rich markup
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guard(action: Callable[[], T], as_json: bool = False) -> T:
    """Run a command body under the one error policy (see the module's docstring)."""
    try:
        return action()
    except IntentosError as exc:
        fail(str(exc), as_json)
    except ValidationError as exc:
        fail("; ".join(e["msg"] for e in exc.errors()), as_json)
    except ValueError as exc:
        fail(" ".join(str(exc).split()), as_json)
    except KeyboardInterrupt:
        fail("interrupted", as_json, code=INTERRUPTED)


def emit(result: BaseModel, as_json: bool, show: Callable[[Any], None]) -> None:
    """A command's result: one JSON object on stdout with --json, else `show(result)` for a person."""
    if as_json:
        print(result.model_dump_json())
    else:
        show(result)


@dataclass(frozen=True)
class CommandGroup:
    path: tuple[str, ...]  # where it goes under `intentos`: ("skills", "logs")
    app: typer.Typer


def command_groups() -> tuple[list[CommandGroup], list[str]]:
    """The command groups registered under `intentos.commands`, and a line per plugin that failed to load."""
    groups, problems = [], []
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            found = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the command line down
            problems.append(f"command plugin {ep.name!r} ({ep.value}) failed to load: {exc}")
            log.debug(problems[-1])
            continue
        if not isinstance(found, typer.Typer):
            problems.append(f"command plugin {ep.name!r} ({ep.value}) is not a typer.Typer")
            continue
        groups.append(CommandGroup(tuple(ep.name.split(".")), found))
    return groups, problems
