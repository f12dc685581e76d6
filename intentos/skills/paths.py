"""The sandbox paths a skill app reads and writes, checked the same way for every skill.

Messages name the path as the model and the user gave it; writing never reaches into the folders
intentos keeps for itself (journal, trash), and replacing a file moves the old one to the trash.
"""

from __future__ import annotations

from pathlib import Path

from intentos.errors import AppError
from intentos.sandbox import Sandbox


def existing_file(sandbox: Sandbox, raw: str, what: str = "file") -> Path:
    """`raw` inside the sandbox, which must be an existing file (`what` names it in the error)."""
    path = sandbox.resolve(raw)
    if not path.exists():
        raise AppError(f"{raw} does not exist")
    if not path.is_file():
        raise AppError(f"{raw} is a folder, not a {what}")
    return path


def target(sandbox: Sandbox, raw: str, *, folder: bool = False) -> Path:
    """`raw` inside the sandbox as a place to write a file (or, with `folder`, a folder of files)."""
    from intentos.apps.files import INTERNAL

    path = sandbox.resolve(raw)
    internal = [p for p in path.relative_to(sandbox.root).parts if p in INTERNAL]
    if internal:
        raise AppError(f"{raw} is inside {internal[0]}, which intentos keeps for itself")
    if folder and path.exists() and not path.is_dir():
        raise AppError(f"{raw} is a file, not a folder")
    if not folder and path.is_dir():
        raise AppError(f"{raw} is a folder, not a file")
    return path


def make_room(sandbox: Sandbox, path: Path, overwrite: bool, shown: str) -> None:
    """Refuse to replace an existing `path` unless `overwrite`; then the old one goes to the trash."""
    if path.exists():
        if not overwrite:
            raise AppError(f"{shown} already exists; pass overwrite: true to replace it (the old one goes "
                           "to the trash)")
        sandbox.trash(path)
