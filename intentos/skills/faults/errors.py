"""The one error of the faults skill: bad input, naming the file and, where known, the line and field."""

from __future__ import annotations

from intentos.errors import IntentosError


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
