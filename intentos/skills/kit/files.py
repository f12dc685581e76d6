"""The sandbox paths a skill app reads and writes, checked the same way for every skill.

Messages name the path as the model and the user gave it; writing never reaches into the folders
intentos keeps for itself (journal, trash), and replacing a file moves the old one to the trash.

Every read and write goes through the Sandbox's own methods (`read_file`, `folder_entries`,
`write_target` + `write_file` below), which walk each path from the sandbox root without following a
link out, refuse files hard-linked from outside, and write atomically under an unguessable temporary
name. Reads are bounded (`MAX_DATA_BYTES`): a bigger file is refused with one line, never read whole.
A path argument that leads out of the sandbox stays the sandbox's SandboxError; everything else a
user can act on is one AppError line naming the path.

The skills' command lines work on any file, outside a sandbox: `read_local` and `write_local` are
their bounded read and atomic write.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from intentos.atomicfile import write_atomically
from intentos.errors import AppError, SandboxError
from intentos.sandbox import INTERNAL, DirEntry, Sandbox
from intentos.skills.kit.errors import one_line

MAX_DATA_BYTES = 200 * 1024 * 1024  # the most of one data file (history, log, metrics, truth, model) that is read


def existing_file(sandbox: Sandbox, raw: str, what: str = "file") -> Path:
    """`raw` inside the sandbox, which must be an existing file (`what` names it in the error).

    The Path is for showing; read the file with `read_file` (or the Sandbox's methods), never through it.
    """
    path = sandbox.resolve(raw)
    st = sandbox.stat(raw)
    if st is None:
        raise AppError(sandbox.missing(raw))
    if stat.S_ISDIR(st.st_mode):
        raise AppError(f"{raw} is a folder, not a {what}")
    return path


def target(sandbox: Sandbox, raw: str, *, folder: bool = False) -> Path:
    """`raw` inside the sandbox as a place to write a file (or, with `folder`, a folder of files)."""
    path = sandbox.resolve(raw)
    _not_internal(sandbox.relative(raw), raw)
    st = sandbox.stat(raw)
    if folder and st is not None and not stat.S_ISDIR(st.st_mode):
        raise AppError(f"{raw} is a file, not a folder")
    if not folder and st is not None and stat.S_ISDIR(st.st_mode):
        raise AppError(f"{raw} is a folder, not a file")
    return path


def make_room(sandbox: Sandbox, path: str | os.PathLike[str], overwrite: bool, shown: str) -> None:
    """Refuse to replace an existing `path` unless `overwrite`; then the old one goes to the trash.

    Anything at the name counts, a link too (even a dangling one): it is trashed as the link itself.
    """
    if sandbox.lstat(path) is not None:
        if not overwrite:
            raise AppError(f"{shown} already exists; pass overwrite: true to replace it (the old one goes "
                           "to the trash)")
        sandbox.trash(path)


# -- reading ---------------------------------------------------------------------------------------------------


def read_file(sandbox: Sandbox, raw: str, what: str = "file", *, limit: int | None = None) -> bytes:
    """The bytes of the sandbox file `raw`, at most `limit` (default MAX_DATA_BYTES) of them.

    Missing, a folder, not a regular file (a FIFO, a device), hard-linked from outside, reached through
    a link leading out, or too big: one AppError line naming `raw`. An argument that itself leads out
    of the sandbox is the sandbox's SandboxError, as for every app.
    """
    sandbox.relative(raw)  # SandboxError for a path argument leading out
    try:
        with sandbox.open_read(raw) as fh:
            return _bounded(fh, raw, what, MAX_DATA_BYTES if limit is None else limit)
    except FileNotFoundError:
        raise AppError(sandbox.missing(raw)) from None
    except IsADirectoryError:
        raise AppError(f"{raw} is a folder, not a {what}") from None
    except NotADirectoryError:
        raise AppError(f"{raw}: a folder on the way is a file") from None
    except SandboxError as exc:
        raise AppError(_sandbox_message(sandbox, raw, exc)) from None
    except OSError as exc:
        raise AppError(f"{raw} cannot be read ({exc.strerror or exc})") from None


def folder_entries(sandbox: Sandbox, raw: str) -> list[DirEntry] | None:
    """The entries of the sandbox folder `raw` (sorted; links are entries of kind "link", never
    followed), or None when `raw` is a file."""
    st = sandbox.stat(raw)  # SandboxError for a path argument leading out
    if st is None:
        raise AppError(sandbox.missing(raw))
    if not stat.S_ISDIR(st.st_mode):
        return None
    try:
        return sandbox.scandir(raw)
    except SandboxError as exc:
        raise AppError(_sandbox_message(sandbox, raw, exc)) from None
    except OSError as exc:
        raise AppError(f"the folder {raw} cannot be read ({exc.strerror or exc})") from None


def _bounded(fh: BinaryIO, shown: str, what: str, limit: int) -> bytes:
    size = os.fstat(fh.fileno()).st_size
    if size > limit:
        raise AppError(too_large(shown, size, limit, what))
    data = fh.read(limit + 1)  # never more, even if the file grew since its size was looked at
    if len(data) > limit:
        raise AppError(too_large(shown, len(data), limit, what))
    return data


def too_large(shown: str, size: int, limit: int, what: str = "file") -> str:
    return f"{shown} is {size_text(size)}; {what}s over {size_text(limit)} are not read"


def size_text(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def _sandbox_message(sandbox: Sandbox, shown: str, exc: SandboxError) -> str:
    """The sandbox's refusal as one line naming the path, without the sandbox's own location."""
    message = one_line(str(exc), sandbox).replace(f" {sandbox.root}", "")
    return message if shown in message else f"{shown}: {message}"


# -- writing ---------------------------------------------------------------------------------------------------


def write_target(sandbox: Sandbox, raw: str, *, overwrite: bool = False) -> str:
    """Where the file `raw` will be written (sandbox-relative), checked before any work is done.

    Folders on the way may be links inside the sandbox; the name itself is never followed: whatever
    is there (a file, a link, even a dangling one) is refused unless `overwrite`, and then replaced
    (see `write_file`), never written through. Not inside intentos' own folders, not a folder.
    """
    head, name = os.path.split(raw)
    if name in ("", ".", ".."):
        raise AppError(f"{raw} is a folder, not a file")
    parent = sandbox.relative(head or ".")  # SandboxError for a path argument leading out
    rel = name if parent == "." else f"{parent}/{name}"
    _not_internal(rel, raw)
    _check_free(sandbox, rel, raw, overwrite)
    return rel


def folder_target(sandbox: Sandbox, raw: str) -> str:
    """The sandbox folder `raw` (sandbox-relative; it may not exist yet) to write files into."""
    rel = sandbox.relative(raw)  # SandboxError for a path argument leading out
    _not_internal(rel, raw)
    st = sandbox.stat(rel)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise AppError(f"{raw} is a file, not a folder")
    return rel


def write_file(sandbox: Sandbox, rel: str, data: bytes, *, overwrite: bool = False, shown: str | None = None) -> str:
    """Write `data` to `rel` (from `write_target`) atomically through the sandbox; returns `rel`.

    What is at the name now goes to the trash first (a link as the link itself) if `overwrite`, else
    the write is refused; the Sandbox writes an exclusive temporary file with an unguessable name and
    renames it into place, so nothing planted next to the target can redirect the write.
    """
    shown = shown or rel
    _check_free(sandbox, rel, shown, overwrite)  # again: something may have appeared while we worked
    st = sandbox.lstat(rel)
    if st is not None:
        try:
            sandbox.trash(rel)
        except SandboxError as exc:
            if not stat.S_ISLNK(st.st_mode):
                raise AppError(_sandbox_message(sandbox, shown, exc)) from None
            raise AppError(_LINK_OUT.format(shown)) from None
    try:
        sandbox.write_bytes(rel, data)
    except SandboxError as exc:
        raise AppError(_sandbox_message(sandbox, shown, exc)) from None
    except OSError as exc:
        raise AppError(f"{shown} cannot be written ({exc.strerror or exc})") from None
    return rel


_LINK_OUT = "{} is a link that cannot be moved to the trash; it is never written through: remove it, or write elsewhere"


def _check_free(sandbox: Sandbox, rel: str, shown: str, overwrite: bool) -> None:
    st = sandbox.lstat(rel)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        raise AppError(f"{shown} is a folder, not a file")
    if not overwrite:
        link = " as a link, which is never written through" if stat.S_ISLNK(st.st_mode) else ""
        raise AppError(f"{shown} already exists{link}; pass overwrite: true to replace it (the old one goes "
                       "to the trash)")


def _not_internal(rel: str, raw: str) -> None:
    internal = [p for p in rel.split("/") if p in INTERNAL]
    if internal:
        raise AppError(f"{raw} is inside {internal[0]}, which intentos keeps for itself")


# -- outside a sandbox (the skills' command lines) -----------------------------------------------------------


class LocalReadError(Exception):
    """Why a local file could not be read (no such file, a folder, too big...); the caller names the file."""


def read_local(path: str | os.PathLike[str], *, what: str = "file", limit: int | None = None) -> bytes:
    """A file anywhere (the CLIs take any path), read as `read_file` reads a sandbox file: a regular
    file only (a FIFO never blocks), at most `limit` (default MAX_DATA_BYTES) bytes."""
    limit = MAX_DATA_BYTES if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise LocalReadError("no such file") from None
    except IsADirectoryError:
        raise LocalReadError(f"is a folder, not a {what}") from None
    except OSError as exc:
        raise LocalReadError(f"cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise LocalReadError(f"is a folder, not a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise LocalReadError("not a regular file")
        os.set_blocking(fd, True)
        if st.st_size > limit:
            raise LocalReadError(f"is {size_text(st.st_size)}; {what}s over {size_text(limit)} are not read")
        data = fh.read(limit + 1)
        if len(data) > limit:
            raise LocalReadError(f"is over {size_text(limit)}; larger {what}s are not read")
        return data


def write_local(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write a file anywhere (the CLIs; apps write with `write_file`) atomically: `mkstemp` creates an
    exclusive temporary file with a random name next to it, then a rename, so a link planted at a
    guessable temporary name cannot redirect the write and a crash never leaves half a file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    return write_atomically(path, [data])


class TextProblem(Exception):
    """Why bytes are not the text a skill's file should be, and on which line; each skill says it its own way."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message, self.line = message, line


def decode_text(data: bytes, what: str | None = None) -> str:
    """UTF-8 text (a BOM dropped); with `what`, a NUL byte means binary data, which is no `what`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TextProblem(f"not UTF-8 text ({exc.reason} at byte {exc.start})", line) from None
    if what is not None and "\x00" in text:
        raise TextProblem(f"binary data (a NUL byte): not a {what}", text.count("\n", 0, text.index("\x00")) + 1)
    return text
