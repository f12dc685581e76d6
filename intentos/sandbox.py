"""The Sandbox: one root folder, and the only way apps read and write files.

Nothing outside the root is read or written, whatever route a path takes. Paths given
by a model or a user are taken relative to the root. Every operation walks the path
one component at a time from a descriptor of the root (`openat` with `O_NOFOLLOW`), so
a folder swapped for a link between a check and a use cannot lead out: there is no
check-then-use. A link met on the way is followed only by reading its target as text
and walking that again from the root; a target that leaves the root is refused with a
SandboxError naming the path. A regular file with hard links is read only when every
one of its names is inside the sandbox.

Writes are atomic: a temporary file with an unguessable name, created exclusively
next to the target, then renamed over it, so a planted link at the temporary name
cannot redirect the write and a crash never leaves half a file; a link at the target itself
is written through only when it leads inside, else refused. Removal never
destroys: items go to `.trash/` with a record of where they came from.

While a workflow step runs, every change is recorded first in the step's undo log
(see `intentos.undo`); a step killed half-way is rolled back before it runs again, so
a resumed run applies each step's effect exactly once.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pydantic import BaseModel, ValidationError

from intentos.errors import SandboxError
from intentos.undo import UndoLog

TRASH = ".trash"
INTERNAL_DIR = ".intentos"  # intentos' own state inside a sandbox (undo logs)
INTERNAL = frozenset({TRASH, INTERNAL_DIR})  # folders intentos keeps for itself, at any depth: no app writes there
MAX_LINK_HOPS = 40  # as the kernel's own limit on links in one lookup
MAX_LINK_SCAN = 200_000  # entries looked at when checking where a hard-linked file's other names are

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a planted FIFO must not hang; it is refused as "not a regular file" right after.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class TrashEntry(BaseModel):
    id: str
    original: str  # sandbox-relative path it had
    trashed_at: str


@dataclass(frozen=True)
class DirEntry:
    """One entry of a folder, as lstat sees it: a link is a link, never what it points at."""

    name: str
    path: str  # sandbox-relative, POSIX
    kind: str  # "file", "folder", "link" or "other"
    size: int
    mtime: float

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    @property
    def is_dir(self) -> bool:
        return self.kind == "folder"


class _Place:
    """A resolved location: an open descriptor of its folder, its name there, its sandbox-relative parts."""

    def __init__(self, dir_fd: int, name: str, parts: list[str], st: os.stat_result | None) -> None:
        self.dir_fd, self.name, self.parts, self.st = dir_fd, name, parts, st

    @property
    def rel(self) -> str:
        return "/".join(self.parts) or "."

    def close(self) -> None:
        os.close(self.dir_fd)


class Sandbox:
    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        root = Path(root).expanduser()
        if create:
            root.mkdir(parents=True, exist_ok=True)
        if not root.is_dir():
            raise SandboxError(f"sandbox root {root} is not a folder")
        self.root = root.resolve()
        self._undo: UndoLog | None = None  # the running step's undo log, set by begin_step

    def __repr__(self) -> str:
        return f"Sandbox({str(self.root)!r})"

    # -- where a path leads ----------------------------------------------------------------------

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """The real location of `path` inside the sandbox, or SandboxError if it would leave it.

        A Path is for showing and for libraries that want one; read and write through the
        Sandbox's own methods, which do not trust a path between a check and a use.
        """
        parts, missing = self._resolve_parts(path)
        return self.root.joinpath(*parts, *missing)

    def relative(self, path: str | os.PathLike[str]) -> str:
        """A sandbox-relative POSIX path for results shown to models and people."""
        parts, missing = self._resolve_parts(path)
        return "/".join(parts + missing) or "."

    def _resolve_parts(self, path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
        """Existing resolved components, then the missing tail (normalized lexically)."""
        with self._root_fd() as root_fd:
            place, missing = self._walk(root_fd, path, follow_last=True, create=False, lenient=True)
            try:
                return place.parts, missing
            finally:
                place.close()

    def _parts_of(self, raw: str | os.PathLike[str]) -> list[str]:
        text = os.fspath(raw)
        if isinstance(text, bytes):
            raise SandboxError(f"path {text!r} is not text")
        if "\x00" in text:
            raise SandboxError(f"path {text!r} contains a NUL byte")
        if text.startswith("~"):
            text = os.path.expanduser(text)
        if os.path.isabs(text):
            # An absolute path is accepted only when it already names a place in the sandbox.
            root = str(self.root)
            lexical = os.path.abspath(text)
            if not (lexical == root or lexical.startswith(root + os.sep)):
                raise SandboxError(f"path {os.fspath(raw)!r} is absolute and outside the sandbox {self.root}")
            text = text[len(root):] if text.startswith(root + os.sep) or text == root else lexical[len(root):]
        return [p for p in text.split("/") if p not in ("", ".")]

    @contextmanager
    def _root_fd(self) -> Iterator[int]:
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except OSError as exc:
            raise SandboxError(f"sandbox root {self.root} cannot be opened: {exc.strerror}") from None
        try:
            yield fd
        finally:
            os.close(fd)

    def _walk(self, root_fd: int, raw: str | os.PathLike[str], *, follow_last: bool, create: bool,
              lenient: bool = False) -> tuple[_Place, list[str]]:
        """Walk `raw` from the root one component at a time, never following a link blindly.

        Returns the place (its parent folder open) and, with `lenient`, the components that
        do not exist yet (normalized; the place is then the deepest existing folder with
        name ""). Without `lenient` a missing folder on the way is created (`create`) or
        raises FileNotFoundError.
        """
        todo = self._parts_of(raw)
        shown = os.fspath(raw)
        done: list[str] = []
        fds = [os.dup(root_fd)]
        hops = 0
        try:
            while todo:
                name = todo.pop(0)
                if name == "..":
                    if not done:
                        raise SandboxError(f"path {shown!r} leads outside the sandbox {self.root}")
                    done.pop()
                    os.close(fds.pop())
                    continue
                last = not todo
                try:
                    st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                except NotADirectoryError:
                    raise SandboxError(f"path {shown!r}: {'/'.join(done)} is a file, not a folder") from None
                if st is None:
                    if last:
                        return _Place(fds.pop(), name, done + [name], None), []
                    if lenient:
                        missing = _normalize([name, *todo], shown, self.root)
                        return _Place(fds.pop(), "", done, None), missing
                    if not create:
                        raise FileNotFoundError(errno.ENOENT, "no such folder", "/".join(done + [name]))
                    self._mkdir_at(fds[-1], name, done + [name])
                    st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        raise SandboxError(f"path {shown!r} goes through too many links")
                    target = os.readlink(name, dir_fd=fds[-1])
                    if os.path.isabs(target):
                        root = str(self.root)
                        lexical = os.path.abspath(target)
                        if not (lexical == root or lexical.startswith(root + os.sep)):
                            raise SandboxError(f"path {shown!r} goes through a symlink that leads outside "
                                               f"the sandbox {self.root}")
                        for fd in fds[1:]:
                            os.close(fd)
                        del fds[1:]
                        done = []
                        target = target[len(root):] if target.startswith(root) else lexical[len(root):]
                    todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                    try:
                        self._check_link_target(done, todo, shown)
                    except SandboxError:
                        raise SandboxError(f"path {shown!r} goes through a symlink that leads outside "
                                           f"the sandbox {self.root}") from None
                    continue
                if last:
                    return _Place(fds.pop(), name, done + [name], st), []
                if not stat.S_ISDIR(st.st_mode):
                    raise SandboxError(f"path {shown!r}: {'/'.join(done + [name])} is a file, not a folder")
                try:
                    fd = os.open(name, _DIR_FLAGS, dir_fd=fds[-1])
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):  # swapped under us: look again
                        hops += 1
                        if hops > MAX_LINK_HOPS:
                            raise SandboxError(f"path {shown!r} keeps changing while it is walked") from None
                        todo.insert(0, name)
                        continue
                    raise
                fds.append(fd)
                done.append(name)
            # The root itself.
            fd = fds.pop()
            return _Place(fd, "", done, os.fstat(fd)), []
        finally:
            for fd in fds:
                os.close(fd)

    def _check_link_target(self, done: list[str], todo: list[str], shown: str) -> None:
        """A link's target, taken lexically from where the link is, must not climb above the root."""
        depth = len(done)
        for part in todo:
            depth += -1 if part == ".." else 1
            if depth < 0:
                raise SandboxError(shown)

    @contextmanager
    def _place(self, path: str | os.PathLike[str], *, follow_last: bool = True,
               create: bool = False) -> Iterator[_Place]:
        with self._root_fd() as root_fd:
            place, _ = self._walk(root_fd, path, follow_last=follow_last, create=create)
        try:
            yield place
        finally:
            place.close()

    # -- looking ---------------------------------------------------------------------------------

    def lstat(self, path: str | os.PathLike[str]) -> os.stat_result | None:
        """The item's own stat (a link is a link), or None if nothing is there."""
        try:
            with self._place(path, follow_last=False) as place:
                return place.st
        except FileNotFoundError:
            return None

    def stat(self, path: str | os.PathLike[str]) -> os.stat_result | None:
        """The stat of what the path leads to inside the sandbox, or None if nothing is there."""
        try:
            with self._place(path) as place:
                return place.st
        except FileNotFoundError:
            return None

    def exists(self, path: str | os.PathLike[str]) -> bool:
        return self.stat(path) is not None

    def missing(self, raw: str) -> str:
        """"RAW does not exist", with the deepest folder on its way that does when a folder under it is
        missing too (a plan that guessed a path below a real folder learns where to look:
        "Projects/shop/logs/web.log does not exist; Projects/shop exists")."""
        parts = [p for p in str(raw).strip().split("/") if p not in ("", ".")]
        for end in range(len(parts) - 1, 0, -1):
            folder = "/".join(parts[:end])
            try:
                if self.is_dir(folder):
                    return f"{raw} does not exist" + (f"; {folder} exists" if end < len(parts) - 1 else "")
            except (OSError, SandboxError):
                break
        return f"{raw} does not exist"

    def is_dir(self, path: str | os.PathLike[str]) -> bool:
        st = self.stat(path)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_file(self, path: str | os.PathLike[str]) -> bool:
        st = self.stat(path)
        return st is not None and stat.S_ISREG(st.st_mode)

    def scandir(self, path: str | os.PathLike[str] = ".") -> list[DirEntry]:
        """A folder's entries, sorted by name; links are reported as links, not followed."""
        with self._place(path) as place:
            if place.st is None:
                raise FileNotFoundError(errno.ENOENT, "no such folder", place.rel)
            fd = _open_dir(place)
        try:
            return _entries(fd, place.parts)
        finally:
            os.close(fd)

    def walk(self, path: str | os.PathLike[str] = ".", *, skip: frozenset[str] = frozenset(),
             limit: int | None = None) -> Iterator[DirEntry]:
        """Every entry below a folder, depth first, sorted; never enters a link. `skip` names folders left out."""
        with self._place(path) as place:
            if place.st is None:
                raise FileNotFoundError(errno.ENOENT, "no such folder", place.rel)
            fd = _open_dir(place)
        count = 0
        stack = [(fd, place.parts)]
        try:
            while stack:
                dir_fd, parts = stack.pop()
                try:
                    entries = _entries(dir_fd, parts)
                finally:
                    os.close(dir_fd)
                subdirs = []
                for entry in entries:
                    if entry.name in skip:
                        continue
                    count += 1
                    if limit is not None and count > limit:
                        return
                    yield entry
                    if entry.is_dir:
                        subdirs.append(entry)
                for sub in reversed(subdirs):
                    try:
                        with self._place(sub.path, follow_last=False) as sp:
                            stack.append((_open_dir(sp), sp.parts))
                    except (OSError, SandboxError):
                        continue  # gone or swapped for a link since it was listed: not entered
        finally:
            for dir_fd, _ in stack:
                os.close(dir_fd)

    # -- reading ---------------------------------------------------------------------------------

    @contextmanager
    def open_read(self, path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
        """A regular file inside the sandbox, opened for reading without following a link."""
        fd = self._open_file(path)
        fh = os.fdopen(fd, "rb")
        with fh:
            yield fh

    def read_bytes(self, path: str | os.PathLike[str], *, limit: int | None = None) -> bytes:
        """The file's bytes; with `limit`, a larger file is refused rather than read whole."""
        with self.open_read(path) as fh:
            if limit is None:
                return fh.read()
            data = fh.read(limit + 1)  # not the size stat gives: a file may grow while it is read
            if len(data) > limit:
                raise SandboxError(f"{self.relative(path)} is larger than the {limit}-byte limit")
            return data

    def read_text(self, path: str | os.PathLike[str], encoding: str = "utf-8", *, limit: int | None = None) -> str:
        return self.read_bytes(path, limit=limit).decode(encoding)

    def _open_file(self, path: str | os.PathLike[str]) -> int:
        for _ in range(MAX_LINK_HOPS):
            with self._place(path) as place:
                if place.st is None:
                    raise FileNotFoundError(errno.ENOENT, "no such file", place.rel)
                if stat.S_ISDIR(place.st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", place.rel)
                try:
                    fd = os.open(place.name, _READ_FLAGS, dir_fd=place.dir_fd)
                except OSError as exc:
                    if exc.errno == errno.ELOOP:  # swapped for a link since the walk: walk again
                        continue
                    raise
                rel = place.rel
            st = os.fstat(fd)
            try:
                if not stat.S_ISREG(st.st_mode):
                    raise SandboxError(f"{rel} is not a regular file")
                if st.st_nlink > 1 and not self._all_links_inside(st):
                    raise SandboxError(f"{rel} has hard links outside the sandbox; it is not read")
                os.set_blocking(fd, True)
            except BaseException:
                os.close(fd)
                raise
            return fd
        raise SandboxError(f"path {os.fspath(path)!r} keeps changing while it is opened")

    def _all_links_inside(self, st: os.stat_result) -> bool:
        """Whether all `st_nlink` names of this inode are in the sandbox (a hard link can't be told apart)."""
        found = 0
        for entry in self.walk(".", limit=MAX_LINK_SCAN):
            if entry.is_file:
                est = self.lstat(entry.path)
                if est is not None and (est.st_dev, est.st_ino) == (st.st_dev, st.st_ino):
                    found += 1
                    if found >= st.st_nlink:
                        return True
        return False

    # -- writing without losing anything ---------------------------------------------------------

    def write_bytes(self, path: str | os.PathLike[str], data: bytes) -> Path:
        """Write atomically: an exclusive temp file with an unguessable name, then a rename over the target."""
        with self._place(path, create=True) as place:
            if not place.name:
                raise SandboxError("the sandbox root is a folder, not a file")
            if place.st is not None and stat.S_ISDIR(place.st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", place.rel)
            tmp = f".{place.name[:80]}.{secrets.token_hex(8)}.tmp"
            self._note({"op": "temp", "path": _join(place.parts[:-1], tmp)})
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                         dir_fd=place.dir_fd)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                self._note_replace(place)
                os.replace(tmp, place.name, src_dir_fd=place.dir_fd, dst_dir_fd=place.dir_fd)
            except BaseException:
                with _quiet():
                    os.unlink(tmp, dir_fd=place.dir_fd)
                raise
            os.fsync(place.dir_fd)
            return self.root.joinpath(*place.parts)

    def write_text(self, path: str | os.PathLike[str], text: str) -> Path:
        return self.write_bytes(path, text.encode("utf-8"))

    def mkdir(self, path: str | os.PathLike[str]) -> bool:
        """Create a folder and any missing parents; False if it was there already."""
        with self._place(path, create=True) as place:
            if place.st is not None:
                if not stat.S_ISDIR(place.st.st_mode):
                    raise FileExistsError(errno.EEXIST, "exists and is a file, not a folder", place.rel)
                return False
            if not place.name:
                return False
            self._mkdir_at(place.dir_fd, place.name, place.parts)
            return True

    def _mkdir_at(self, dir_fd: int, name: str, parts: list[str]) -> None:
        self._note({"op": "mkdir", "path": "/".join(parts)})
        os.mkdir(name, 0o755, dir_fd=dir_fd)

    def move(self, source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
        """Rename an item (a link is moved as itself) to a place that must not exist yet."""
        return self._move(source, destination, check_links=True)

    def _move(self, source: str | os.PathLike[str], destination: str | os.PathLike[str], *,
              check_links: bool) -> Path:
        # The trash keeps things as they were, links included, and gives them back to the same place:
        # a link that would point elsewhere from inside the trash is never followed out (every walk checks).
        with self._place(source, follow_last=False) as src, self._place(destination, create=True) as dst:
            if src.st is None:
                raise FileNotFoundError(errno.ENOENT, "no such file or folder", src.rel)
            if dst.st is not None:
                raise FileExistsError(errno.EEXIST, "already exists", dst.rel)
            if not src.name or not dst.name:
                raise SandboxError("the sandbox root cannot be moved or replaced")
            if dst.parts[: len(src.parts)] == src.parts:
                raise SandboxError(f"cannot move {src.rel} into itself")
            if check_links:
                self._check_links_stay_inside(src, dst)
            self._note({"op": "move", "src": src.rel, "dst": dst.rel})
            os.rename(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd)
            os.fsync(dst.dir_fd)
            return self.root.joinpath(*dst.parts)

    def copy(self, source: str | os.PathLike[str], destination: str | os.PathLike[str], *,
             skip: frozenset[str] = frozenset()) -> Path:
        """Copy a file or a folder (links inside it are copied as links) to a place that must not exist yet."""
        with self._place(source) as src, self._place(destination, create=True) as dst:
            if src.st is None:
                raise FileNotFoundError(errno.ENOENT, "no such file or folder", src.rel)
            if dst.st is not None:
                raise FileExistsError(errno.EEXIST, "already exists", dst.rel)
            if not dst.name:
                raise SandboxError("the sandbox root cannot be replaced")
            if not stat.S_ISDIR(src.st.st_mode):
                data = self.read_bytes(src.rel)
                dst_path = dst.rel
        if not stat.S_ISDIR(src.st.st_mode):
            return self.write_bytes(dst_path, data)
        with self._place(source) as src, self._place(destination, create=True) as dst:
            if dst.parts[: len(src.parts)] == src.parts:
                raise SandboxError(f"cannot copy the folder {src.rel} into itself")
            self._check_links_stay_inside(src, dst, skip=skip)
            # The copy is built under a temporary name and renamed into place at once.
            tmp = f".{dst.name[:80]}.{secrets.token_hex(8)}.tmp"
            tmp_rel = _join(dst.parts[:-1], tmp)
            self._note({"op": "tree", "path": tmp_rel})
            os.mkdir(tmp, 0o755, dir_fd=dst.dir_fd)
            saved, self._undo = self._undo, None  # the tree as a whole is noted; its insides need no notes
            try:
                self._copy_tree(src.rel, tmp_rel, skip)
            except BaseException:
                with _quiet():
                    shutil.rmtree(tmp, dir_fd=dst.dir_fd)
                raise
            finally:
                self._undo = saved
            self._note({"op": "tree", "path": dst.rel})
            os.rename(tmp, dst.name, src_dir_fd=dst.dir_fd, dst_dir_fd=dst.dir_fd)
            os.fsync(dst.dir_fd)
            return self.root.joinpath(*dst.parts)

    def _copy_tree(self, source: str, target: str, skip: frozenset[str]) -> None:
        for entry in self.scandir(source):
            if entry.name in skip:
                continue
            to = f"{target}/{entry.name}"
            if entry.is_dir:
                self.mkdir(to)
                self._copy_tree(entry.path, to, skip)
            elif entry.is_file:
                self.write_bytes(to, self.read_bytes(entry.path))
            elif entry.kind == "link":
                with self._place(entry.path, follow_last=False) as link:
                    value = os.readlink(link.name, dir_fd=link.dir_fd)
                with self._place(to, create=True) as place:
                    os.symlink(value, place.name, dir_fd=place.dir_fd)

    def _check_links_stay_inside(self, src: _Place, dst: _Place, skip: frozenset[str] = frozenset()) -> None:
        """Refuse to move or copy a folder holding a link that would point outside from its new place."""
        if src.st is None or not stat.S_ISDIR(src.st.st_mode):
            if src.st is not None and stat.S_ISLNK(src.st.st_mode):
                value = os.readlink(src.name, dir_fd=src.dir_fd)
                self._link_target_inside(dst.parts[:-1], value, src.rel)
            return
        for entry in self.walk(src.rel, skip=skip):
            if entry.kind != "link":
                continue
            with self._place(entry.path, follow_last=False) as link:
                value = os.readlink(link.name, dir_fd=link.dir_fd)
            inner = entry.path.split("/")[len(src.parts):-1]
            self._link_target_inside(dst.parts + inner, value, entry.path)

    def _link_target_inside(self, folder: list[str], value: str, shown: str) -> None:
        if os.path.isabs(value):
            root = str(self.root)
            lexical = os.path.abspath(value)
            if lexical == root or lexical.startswith(root + os.sep):
                return
        else:
            depth = len(folder)
            for part in value.split("/"):
                depth += -1 if part == ".." else 0 if part in ("", ".") else 1
                if depth < 0:
                    break
            else:
                return
        raise SandboxError(f"{shown} is a link that would point outside the sandbox from its new place; "
                           "nothing was moved or copied")

    # -- trash -----------------------------------------------------------------------------------

    @property
    def trash_dir(self) -> Path:
        return self.root / TRASH

    def trash(self, path: str | os.PathLike[str]) -> TrashEntry:
        """Move a file, folder or link (the link itself) into the sandbox trash; returns its entry."""
        with self._place(path, follow_last=False) as place:
            if place.st is None:
                raise SandboxError(f"cannot trash {os.fspath(path)}: it does not exist")
            if not place.name or place.parts[0] == TRASH:
                raise SandboxError(f"cannot trash {os.fspath(path)}: it is the sandbox root or already in the trash")
            original, name = place.rel, place.name
        entry = TrashEntry(id=uuid.uuid4().hex[:12], original=original,
                           trashed_at=datetime.now(UTC).isoformat(timespec="microseconds"))
        slot = f"{TRASH}/{entry.id}"
        self.mkdir(slot)
        try:
            self._move(original, f"{slot}/{name}", check_links=False)
        except BaseException:
            self._rmtree_quietly(slot)  # no record without its item
            raise
        # The record comes last: a slot without one is no entry, so a crash between the two leaves no phantom.
        self.write_text(f"{slot}/entry.json", entry.model_dump_json())
        return entry

    def trash_entries(self) -> list[TrashEntry]:
        if not self.is_dir(TRASH):
            return []
        entries = []
        for slot in self.scandir(TRASH):
            entry = self._trash_entry(slot.name)
            if entry is not None:
                entries.append(entry)
        return sorted(entries, key=lambda e: e.trashed_at)

    def _trash_entry(self, entry_id: str) -> TrashEntry | None:
        try:
            raw = self.read_bytes(f"{TRASH}/{entry_id}/entry.json", limit=64_000)
            entry = TrashEntry.model_validate_json(raw)
        except (OSError, SandboxError, ValidationError):
            return None  # a damaged or planted record is not an entry
        return entry if entry.id == entry_id else None

    def restore(self, entry_id: str) -> str:
        """Put a trashed item back where it was; refuses to overwrite what is there now."""
        if not entry_id or "/" in entry_id or entry_id in (".", ".."):
            raise SandboxError(f"no trash entry {entry_id!r}")
        entry = self._trash_entry(entry_id)
        if entry is None:
            raise SandboxError(f"no trash entry {entry_id!r}")
        if self.lstat(entry.original) is not None:
            raise SandboxError(f"cannot restore {entry.original}: something else is there now")
        if PurePosixPath(entry.original).parts[:1] == (TRASH,):
            raise SandboxError(f"trash entry {entry_id!r} names a place inside the trash")
        items = [e for e in self.scandir(f"{TRASH}/{entry_id}") if e.name != "entry.json"]
        if len(items) != 1:
            raise SandboxError(f"trash entry {entry_id!r} is damaged")
        self._move(items[0].path, entry.original, check_links=False)
        self._remove_tree(f"{TRASH}/{entry_id}")
        return entry.original

    def _remove_tree(self, path: str) -> None:
        """Delete an emptied trash slot; noted so a rolled-back step gets it back whole."""
        if self._undo is not None:
            self.move(path, self._undo.spare_name())
            return
        with self._place(path, follow_last=False) as place:
            shutil.rmtree(place.name, dir_fd=place.dir_fd)

    # -- the undo log of a running step ----------------------------------------------------------

    def begin_step(self, key: str) -> None:
        """Record every change from now on in the undo log `key` (see intentos.undo)."""
        self._undo = None
        log = UndoLog.create(self, key)
        self._undo = log

    def end_step(self) -> None:
        """The step's outcome is journaled: its undo log is no longer needed."""
        log, self._undo = self._undo, None
        if log is not None:
            log.discard()

    def _note(self, op: dict[str, str]) -> None:
        if self._undo is not None:
            self._undo.note(op)

    def _note_replace(self, place: _Place) -> None:
        """Before a file is replaced, keep its old version (a hard link, no copy) for a rollback."""
        if self._undo is None:
            return
        before = None
        if place.st is not None and stat.S_ISREG(place.st.st_mode):
            before = self._undo.keep(place)
        self._undo.note({"op": "replace", "path": place.rel, "before": before or ""})

    # Used by intentos.undo to put things back; each takes a sandbox-relative path.

    def _unlink_quietly(self, path: str) -> None:
        with _quiet(), self._place(path, follow_last=False) as place:
            if place.st is not None and not stat.S_ISDIR(place.st.st_mode):
                os.unlink(place.name, dir_fd=place.dir_fd)

    def _rmdir_quietly(self, path: str) -> None:
        with _quiet(), self._place(path, follow_last=False) as place:
            if place.st is not None and stat.S_ISDIR(place.st.st_mode):
                os.rmdir(place.name, dir_fd=place.dir_fd)

    def _rmtree_quietly(self, path: str) -> None:
        with _quiet(), self._place(path, follow_last=False) as place:
            if place.st is not None and stat.S_ISDIR(place.st.st_mode):
                shutil.rmtree(place.name, dir_fd=place.dir_fd)

    def _rename_back(self, source: str, destination: str, *, replace: bool = False) -> None:
        with self._place(source, follow_last=False) as src, self._place(destination, follow_last=False,
                                                                         create=True) as dst:
            if src.st is None or (dst.st is not None and not replace):
                return
            os.rename(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd)


# -- helpers ---------------------------------------------------------------------------------------


def _normalize(parts: list[str], shown: str, root: Path) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            if not out:
                raise SandboxError(f"path {shown!r} leads outside the sandbox {root}")
            out.pop()
        elif part not in ("", "."):
            out.append(part)
    return out


def _join(parts: list[str], name: str) -> str:
    return "/".join([*parts, name])


def _open_dir(place: _Place) -> int:
    if not place.name:
        return os.dup(place.dir_fd)
    if place.st is None or not stat.S_ISDIR(place.st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", place.rel)
    return os.open(place.name, _DIR_FLAGS, dir_fd=place.dir_fd)


def _entries(dir_fd: int, parts: list[str]) -> list[DirEntry]:
    out = []
    with os.scandir(dir_fd) as it:
        for item in it:
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue  # gone since it was listed
            mode = st.st_mode
            kind = ("folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode)
                    else "link" if stat.S_ISLNK(mode) else "other")
            out.append(DirEntry(item.name, _join(parts, item.name), kind, st.st_size, st.st_mtime))
    return sorted(out, key=lambda e: e.name.casefold())


@contextmanager
def _quiet() -> Iterator[None]:
    try:
        yield
    except (OSError, SandboxError):
        pass
