"""The one error policy of the skill apps: what a user can act on becomes one AppError line.

Inside a skill app's function, `skill_errors(sandbox)` turns an AppError, any IntentosError a
skill's own code raises (a bad history, a model file that does not fit) and a ValueError (pydantic's
ValidationError among them) into one AppError line whose paths are sandbox-relative, as the model
and the user know them. A SandboxError passes through unchanged: a path argument that leads out is
the sandbox's to report, as for every app. Anything else is a bug and stays a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from intentos.errors import AppError, IntentosError, SandboxError
from intentos.sandbox import Sandbox


def one_line(message: str, sandbox: Sandbox | None = None) -> str:
    """`message` on one line, without the sandbox's own location in front of the paths it names."""
    if sandbox is not None:
        message = message.replace(f"{sandbox.root}{os.sep}", "")
    return " ".join(message.split())


@contextmanager
def skill_errors(sandbox: Sandbox) -> Iterator[None]:
    """Errors a user can act on, as one AppError line naming sandbox-relative paths."""
    try:
        yield
    except SandboxError:
        raise
    except (IntentosError, ValueError) as exc:
        message = one_line(str(exc), sandbox)
        if isinstance(exc, AppError) and message == str(exc):
            raise
        raise AppError(message) from None
