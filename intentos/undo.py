"""The undo log of one workflow step: what it changed, noted before each change is made.

A run killed inside a step leaves the step's effect half applied, and a step killed
just after its effect but before its journal record looks unfinished. Both are told
apart from "not done" the same way: every change the Sandbox makes while a step runs
is first noted here (write-ahead), with the old version of a replaced file kept as a
hard link. Resuming such a step rolls the notes back, newest first, which returns the
sandbox to exactly what it was before the step, and then runs the step once more.
When the step's outcome is journaled the log is discarded.

Layout: `<sandbox>/.intentos/undo/<run id>.<seq>/` with `log.jsonl` (one note a line)
and the kept versions `before-N` and removed items `removed-N` beside it.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol

from intentos.errors import SandboxError

UNDO_DIR = ".intentos/undo"
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class Place(Protocol):
    """A resolved location in a sandbox: an open descriptor of its folder and its name there."""

    dir_fd: int
    name: str

    @property
    def rel(self) -> str: ...


class Entry(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def is_dir(self) -> bool: ...


class LoggedSandbox(Protocol):
    """What the log needs of the sandbox it serves (`intentos.sandbox.Sandbox`, which makes its logs): its
    reading, and the hooks that put things back. `_undo` is the running step's log, switched off while the
    log itself writes or rolls back."""

    _undo: UndoLog | None

    def lstat(self, path: str) -> os.stat_result | None: ...
    def is_dir(self, path: str) -> bool: ...
    def scandir(self, path: str) -> Sequence[Entry]: ...
    def mkdir(self, path: str) -> bool: ...
    def read_bytes(self, path: str) -> bytes: ...
    def open_read(self, path: str) -> AbstractContextManager[BinaryIO]: ...
    def _place(self, path: str) -> AbstractContextManager[Place]: ...
    def _unlink_quietly(self, path: str) -> None: ...
    def _rmdir_quietly(self, path: str) -> None: ...
    def _rmtree_quietly(self, path: str) -> None: ...
    def _rename_back(self, source: str, destination: str, *, replace: bool = False) -> None: ...


class UndoLog:
    """The log of one running step. Its folder is made at the first change, so a step that only reads
    leaves nothing behind."""

    def __init__(self, sandbox: LoggedSandbox, key: str) -> None:
        _check_key(key)
        self.sandbox, self.key = sandbox, key
        self.rel = f"{UNDO_DIR}/{key}"
        self._dir_fd: int | None = None
        self._log_fd: int | None = None
        self._count = 0

    @classmethod
    def create(cls, sandbox: LoggedSandbox, key: str) -> UndoLog:
        if sandbox.lstat(f"{UNDO_DIR}/{key}") is not None:  # left by an earlier try of this step: undo it first
            rollback(sandbox, key)
        return cls(sandbox, key)

    def _open(self) -> int:
        if self._dir_fd is None:
            saved, self.sandbox._undo = self.sandbox._undo, None  # making the log is not itself logged
            try:
                self.sandbox.mkdir(self.rel)
                with self.sandbox._place(self.rel) as place:
                    self._dir_fd = os.open(place.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                           dir_fd=place.dir_fd)
                self._log_fd = os.open("log.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                                       | os.O_CLOEXEC, 0o600, dir_fd=self._dir_fd)
            finally:
                self.sandbox._undo = saved
        return self._dir_fd

    def note(self, op: dict[str, str]) -> None:
        """Append one note and make it durable before the change it describes is made."""
        self._open()
        os.write(self._log_fd, (json.dumps(op, separators=(",", ":")) + "\n").encode("utf-8"))
        os.fsync(self._log_fd)

    def keep(self, place: Place) -> str:
        """Keep the file at `place` as it is now (a hard link: no copy); returns its sandbox-relative name."""
        self._count += 1
        name = f"before-{self._count}"
        try:
            os.link(place.name, name, src_dir_fd=place.dir_fd, dst_dir_fd=self._open(), follow_symlinks=False)
        except OSError:  # a file system without hard links: a copy does the same job
            with self.sandbox.open_read(place.rel) as fh:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=self._open())
                with os.fdopen(fd, "wb") as out:
                    out.write(fh.read())
        return f"{self.rel}/{name}"

    def spare_name(self) -> str:
        """A place in the log to move an item instead of deleting it, so a rollback can bring it back."""
        self._open()
        self._count += 1
        return f"{self.rel}/removed-{self._count}"

    def close(self) -> None:
        for fd in (self._log_fd, self._dir_fd):
            if fd is not None:
                os.close(fd)
        self._log_fd = self._dir_fd = None

    def discard(self) -> None:
        opened = self._dir_fd is not None
        self.close()
        if opened:
            discard(self.sandbox, self.key)


def pending(sandbox: LoggedSandbox) -> list[str]:
    """Keys of the undo logs left in a sandbox (steps whose outcome was never journaled, or just not cleaned)."""
    if not sandbox.is_dir(UNDO_DIR):
        return []
    return [e.name for e in sandbox.scandir(UNDO_DIR) if e.is_dir and _KEY.fullmatch(e.name)]


def discard(sandbox: LoggedSandbox, key: str) -> None:
    """Drop a step's log, and the folders above it once they are empty (a sandbox is left as it was)."""
    _check_key(key)
    sandbox._rmtree_quietly(f"{UNDO_DIR}/{key}")
    sandbox._rmdir_quietly(UNDO_DIR)
    sandbox._rmdir_quietly(UNDO_DIR.split("/")[0])


def rollback(sandbox: LoggedSandbox, key: str) -> int:
    """Undo every noted change of step `key`, newest first, then drop the log. Returns how many notes."""
    _check_key(key)
    rel = f"{UNDO_DIR}/{key}"
    saved, sandbox._undo = sandbox._undo, None  # putting things back is not itself noted
    try:
        notes = _read_notes(sandbox, f"{rel}/log.jsonl")
        for op in reversed(notes):
            _undo_one(sandbox, op, rel)
        discard(sandbox, key)
        return len(notes)
    finally:
        sandbox._undo = saved


def _read_notes(sandbox: LoggedSandbox, path: str) -> list[dict[str, str]]:
    try:
        raw = sandbox.read_bytes(path)
    except FileNotFoundError:
        return []
    notes = []
    for line in raw.split(b"\n"):
        try:
            op = json.loads(line)
        except ValueError:
            continue  # the torn last note of a killed write: its change was never made
        if isinstance(op, dict) and all(isinstance(v, str) for v in op.values()):
            notes.append(op)
    return notes


def _undo_one(sandbox: LoggedSandbox, op: dict[str, str], log_rel: str) -> None:
    kind = op.get("op")
    try:
        if kind == "temp":
            sandbox._unlink_quietly(op["path"])
        elif kind == "tree":
            sandbox._rmtree_quietly(op["path"])
        elif kind == "mkdir":
            sandbox._rmdir_quietly(op["path"])
        elif kind == "replace":
            before = op.get("before", "")
            if before:
                if not before.startswith(log_rel + "/"):
                    return  # a kept version lives in its own log; anything else is not trusted
                st = sandbox.lstat(before)
                if st is not None and stat.S_ISREG(st.st_mode):
                    sandbox._rename_back(before, op["path"], replace=True)
            else:
                sandbox._unlink_quietly(op["path"])
        elif kind == "move":
            sandbox._rename_back(op["dst"], op["src"])
    except (KeyError, OSError, SandboxError):
        pass  # one note that cannot be undone must not stop the others


def _check_key(key: str) -> None:
    if not _KEY.fullmatch(key) or key in (".", ".."):
        raise SandboxError(f"bad undo-log key {key!r}")
