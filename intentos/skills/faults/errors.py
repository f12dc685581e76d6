"""The one error of the faults skill: bad input, naming the file and, where known, the line and field.

`read_input` is the CLI's read of an input file anywhere, failing with that error.
"""

from __future__ import annotations

from pathlib import Path

from intentos.errors import IntentosError
from intentos.skills.kit.files import LocalReadError, read_local


class FaultsInputError(IntentosError):
    """A topology, metrics, ground truth or model file is unusable; says where and why."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.message = message = one_line(message)
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {one_line(field) + ': ' if field else ''}{message}")


def one_line(text: str, limit: int = 400) -> str:
    """A message on one line and of a readable length, whatever a file put into it."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_input(path: Path, what: str, name: str | None = None, limit: int | None = None) -> bytes:
    """The bytes of a `what` anywhere (the CLI); a FaultsInputError names it as `name` (default the path)."""
    try:
        return read_local(path, what=what, limit=limit)
    except LocalReadError as exc:
        raise FaultsInputError(name or str(path), str(exc)) from None
