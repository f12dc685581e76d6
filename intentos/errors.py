"""Errors a user can act on. Each names the thing that is wrong."""

from __future__ import annotations


class IntentosError(Exception):
    """Base of every error intentos raises on purpose."""


class SandboxError(IntentosError):
    """A path would leave the sandbox, or the sandbox itself is unusable."""


class AppError(IntentosError):
    """A function of an app could not do what was asked (missing file, bad date...)."""


class WorkflowFileError(IntentosError):
    """A workflow or intent file could not be read; names the file and, where known, the line."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class UnknownFunctionError(IntentosError):
    """A call names a function that no installed app provides."""


class JournalError(IntentosError):
    """A run's journal is missing or cannot be resumed."""


class BackendError(IntentosError):
    """A model spec, a model setting or a model server is wrong or unreachable."""
