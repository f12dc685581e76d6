"""Files: list, find, read and write the files of the sandbox, zip them, trash and restore them.

Every path is taken relative to the sandbox root, and every read, listing, write, copy, move,
trash and restore goes through the Sandbox's own methods, which walk a path one component at
a time from the root and never follow a link out: `..`, absolute paths and links that lead
out are refused, a folder swapped for a link between a check and a use cannot lead out, and a
hard link to a file outside is not read. Folders are walked without entering links; a link
that leads inside is listed as a link and read through the sandbox, one that leads out (or
nowhere) is left out.

Nothing is destroyed: trashing moves an item (a link: the link itself) to the sandbox's
`.trash/`, and a write, copy, move or unzip that replaces an existing item does so only when
asked (`overwrite: true`) and trashes the old one first; the confirmation prompt says which.
The folders intentos keeps for itself (`.trash`, `.intentos`) are hidden from listings and
searches, are not copied, and cannot be written into.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import fnmatch
import io
import os
import posixpath
import stat
import struct
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from intentos.app import App
from intentos.errors import AppError, SandboxError
from intentos.function import AKA, Effect, function
from intentos.grounding import Grounded, GroundingQuery, file_names, words_of
from intentos.sandbox import INTERNAL, TRASH, DirEntry

MAX_TEXT_SCAN = 5_000_000  # bytes; `find` does not look for text in larger files
GROUND_LIMIT = 5000  # entries looked at when grounding an intent
NEW_FILE_SCORE = 4.0  # a file the request names that does not exist: as strong as a file named by two words
SUMMARY_LIMIT = 10_000  # entries; the summary stops counting there
PREVIEW_LIMIT = 10_000  # files counted for a confirmation prompt
MAX_UNZIPPED = 2_000_000_000  # bytes; an archive that would unpack to more is refused
MAX_MEMBER = 256 * 2**20  # bytes of one unpacked file: it is held in memory until written
MAX_MEMBERS = 100_000  # entries of one archive
MAX_CENTRAL_DIRECTORY = 64 * 2**20  # bytes of an archive's member list
MAX_ZIPPED = MAX_UNZIPPED  # bytes of files packed into one archive (built in memory, then written)
CHUNK = 2**20  # bytes read at a time
_BINARY_MAGIC = (b"%PDF", b"PK\x03\x04", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\x7fELF")

Kind = Literal["file", "folder"]
EntryKind = Literal["file", "folder", "link", "other"]


# -- arguments and results -------------------------------------------------------------------


class ListArgs(BaseModel):
    folder: str = Field(".", description="folder to list, relative to the sandbox root")
    pattern: str | None = Field(None, description="only names matching this glob, e.g. *.pdf")
    recursive: bool = Field(False, description="also list everything in subfolders")


class Entry(BaseModel):
    path: str
    kind: EntryKind = Field(description="a link is listed as itself (never walked into); 'other' is a pipe, "
                                        "socket or device")
    size: int | None = Field(None, description="bytes; None for a folder (for a link: of the file it names)")
    modified: str
    target: str | None = Field(None, description="for a link: the path in the sandbox it names; None if it names "
                                                 "nothing")


class Listing(BaseModel):
    folder: str
    entries: list[Entry]
    paths: list[str]
    count: int


class FindArgs(BaseModel):
    pattern: str | None = Field(None, description="glob on names (*.pdf) or on paths under the folder (Trip/*.jpg)")
    text: str | None = Field(None, description="only files containing this text (case-insensitive)")
    under: str = Field(".", description="folder to search in, with all its subfolders")
    max_results: int = Field(200, ge=1, le=10_000)


class Found(BaseModel):
    paths: list[str]
    count: int
    truncated: bool = False


class PathArgs(BaseModel):
    path: str


class ReadArgs(BaseModel):
    path: str
    max_chars: int = Field(20_000, ge=1, description="return at most this many characters")


class Text(BaseModel):
    path: str
    text: str = Field(json_schema_extra={AKA: ["content", "body"]})
    chars: int = Field(description="length of the whole file in characters")
    truncated: bool


class WriteArgs(BaseModel):
    path: str
    text: str
    overwrite: bool = Field(False, description="replace an existing file (the old version goes to the trash)")


class AppendArgs(BaseModel):
    path: str
    text: str = Field(description="added at the end, on a new line; the file is created if missing")


class Written(BaseModel):
    path: str
    size: int
    created: bool
    replaced_trash_id: str | None = Field(None, description="trash entry of the version that was replaced")


class TransferArgs(BaseModel):
    source: str
    destination: str = Field(description="new path, or an existing folder to put the item into")
    overwrite: bool = Field(False, description="replace an existing item (the old one goes to the trash)")


class Transferred(BaseModel):
    source: str
    path: str
    replaced_trash_id: str | None = None


class Folder(BaseModel):
    path: str
    created: bool


class ZipArgs(BaseModel):
    paths: list[str] = Field(min_length=1, description="files and folders to put into the archive")
    archive: str = Field(description="path of the .zip file to create")
    overwrite: bool = False


class Archive(BaseModel):
    path: str
    members: list[str] = Field(description="names of the files inside the archive")
    count: int
    size: int


class UnzipArgs(BaseModel):
    archive: str
    destination: str | None = Field(None, description="folder to unpack into; default: next to the archive, "
                                                      "named after it")
    overwrite: bool = False


class Extracted(BaseModel):
    folder: str
    paths: list[str]
    count: int
    skipped: list[str] = Field(default_factory=list, description="members not unpacked: symbolic links")


class Trashed(BaseModel):
    path: str
    trash_id: str


class RestoreArgs(BaseModel):
    trash_id: str | None = Field(None, description="id returned by files.trash")
    path: str | None = Field(None, description="original path; restores the item most recently trashed from it")


class Restored(BaseModel):
    path: str


class Info(BaseModel):
    path: str
    kind: Kind
    size: int = Field(description="bytes; for a folder, all files inside it")
    modified: str
    lines: int | None = Field(None, description="number of lines, for a text file")
    files: int | None = Field(None, description="number of files inside, for a folder")


# -- the app ------------------------------------------------------------------------------------


@dataclass
class _Item:
    """One entry met while walking a folder; a link comes with where it leads inside the sandbox."""

    entry: DirEntry
    target: str | None = None  # a link: the sandbox path it names
    target_st: os.stat_result | None = None  # a link: what is there (None: nothing)

    @property
    def path(self) -> str:
        return self.entry.path

    @property
    def is_folder(self) -> bool:
        """A folder, or a link to one (listed, never entered)."""
        return self.entry.kind == "folder" or (self.target_st is not None and stat.S_ISDIR(self.target_st.st_mode))

    @property
    def readable(self) -> bool:
        """A regular file, or a link to one inside the sandbox: its bytes can be read through the sandbox."""
        return self.entry.kind == "file" or (self.target_st is not None and stat.S_ISREG(self.target_st.st_mode))


@dataclass
class _UnzipPlan:
    archive: str
    dest: str
    dest_raw: str
    zf: zipfile.ZipFile
    members: list[tuple[zipfile.ZipInfo, str, os.stat_result | None]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


class FilesApp(App):
    name = "files"
    description = "files and folders in the sandbox: list, find, read, write, copy, move, zip, trash"

    @function(Effect.READ)
    def list(self, args: ListArgs) -> Listing:
        """List a folder (optionally recursively, optionally only names matching a glob)."""
        folder, _ = self._existing(args.folder, want="folder")
        entries = []
        for item in self._walk(folder, recursive=args.recursive):
            if args.pattern and not _glob_match(item.entry.name, args.pattern):
                continue
            entries.append(self._entry(item))
        return Listing(folder=folder, entries=entries, paths=[e.path for e in entries], count=len(entries))

    @function(Effect.READ)
    def find(self, args: FindArgs) -> Found:
        """Find files by glob pattern and/or by text they contain, anywhere under a folder."""
        if not args.pattern and not args.text:
            raise AppError("files.find needs a pattern, a text to look for, or both")
        under, _ = self._existing(args.under, want="folder")
        prefix = "" if under == "." else under + "/"
        needle = args.text.casefold() if args.text else None
        paths: list[str] = []
        for item in self._walk(under, recursive=True):
            if args.pattern and not _glob_match(item.path[len(prefix):], args.pattern):
                continue
            if needle is not None and not (item.readable and self._contains(item.path, needle)):
                continue
            if len(paths) == args.max_results:
                return Found(paths=paths, count=len(paths), truncated=True)
            paths.append(item.path)
        return Found(paths=paths, count=len(paths))

    @function(Effect.READ)
    def read(self, args: ReadArgs) -> Text:
        """Read a text file (up to max_chars characters)."""
        path, _ = self._existing(args.path, want="file")
        data = self._read(path, args.path)
        text = _decode(data)
        if text is None:
            raise _error(f"{args.path} is a binary file ({len(data)} bytes), not text")
        return Text(path=path, text=text[: args.max_chars], chars=len(text), truncated=len(text) > args.max_chars)

    @function(Effect.WRITE)
    def write(self, args: WriteArgs) -> Written:
        """Write text to a file; an existing file is replaced only with overwrite: true."""
        target = self._target(args.path)
        trash_id = self._make_room(target, args.path, args.overwrite)
        data = args.text.encode("utf-8")
        self._write(target, args.path, data, trash_id)
        return Written(path=target, size=len(data), created=trash_id is None, replaced_trash_id=trash_id)

    @function(Effect.WRITE)
    def append(self, args: AppendArgs) -> Written:
        """Add text at the end of a text file, on a new line (creating the file if needed)."""
        target = self._target(args.path)
        st = self.sandbox.stat(target)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise _error(f"{args.path} is a folder, not a file")
        created = st is None
        old = "" if created else _decode(self._read(target, args.path))
        if old is None:
            raise _error(f"{args.path} is a binary file; text cannot be appended to it")
        sep = "\n" if old and not old.endswith("\n") else ""
        data = (old + sep + args.text).encode("utf-8")
        self._write(target, args.path, data)  # the whole new content in one atomic write
        return Written(path=target, size=len(data), created=created)

    @function(Effect.WRITE)
    def copy(self, args: TransferArgs) -> Transferred:
        """Copy a file or folder; an existing destination is replaced only with overwrite: true."""
        source, target = self._transfer_ends(args, verb="copy")
        trash_id = self._make_room(target, args.destination, args.overwrite)
        try:
            self.sandbox.copy(source, target, skip=INTERNAL)  # a folder: built aside, renamed into place at once
        except (OSError, SandboxError) as exc:
            self._put_back(trash_id)
            doing = f"cannot copy {args.source} to {args.destination}"
            raise _app_error(exc, args.source, source, doing=doing) from None
        return Transferred(source=source, path=target, replaced_trash_id=trash_id)

    @function(Effect.WRITE)
    def move(self, args: TransferArgs) -> Transferred:
        """Move or rename a file or folder; an existing destination is replaced only with overwrite: true."""
        source, target = self._transfer_ends(args, verb="move")
        trash_id = self._make_room(target, args.destination, args.overwrite)
        try:
            self.sandbox.move(source, target)  # a link is moved as itself
        except (OSError, SandboxError) as exc:
            self._put_back(trash_id)
            doing = f"cannot move {args.source} to {args.destination}"
            raise _app_error(exc, args.source, source, doing=doing) from None
        return Transferred(source=source, path=target, replaced_trash_id=trash_id)

    @function(Effect.WRITE)
    def mkdir(self, args: PathArgs) -> Folder:
        """Create a folder (and any missing parents); nothing happens if it exists."""
        target = self._target(args.path)
        st = self.sandbox.stat(target)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise _error(f"{args.path} exists and is a file, not a folder")
        try:
            created = self.sandbox.mkdir(target)
        except FileExistsError:
            raise _error(f"{args.path} exists and is a file, not a folder") from None
        except (OSError, SandboxError) as exc:
            raise _app_error(exc, args.path, target, doing=f"cannot create the folder {args.path}") from None
        return Folder(path=target, created=created)

    @function(Effect.WRITE)
    def zip(self, args: ZipArgs) -> Archive:
        """Pack files and folders into a .zip archive."""
        shown = args.archive if args.archive.lower().endswith(".zip") else f"{args.archive}.zip"
        archive = self._target(shown)
        members: dict[str, str] = {}  # name in the archive -> sandbox path read
        for raw in args.paths:
            item, st = self._existing(raw)
            if item == archive:
                raise _error(f"{raw} is the archive being written; it cannot go into itself")
            if stat.S_ISDIR(st.st_mode):
                files = [i.path for i in self._walk(item, recursive=True) if i.readable and i.path != archive]
            elif stat.S_ISREG(st.st_mode):
                files = [item]
            else:
                raise _error(f"{raw} is not a regular file or a folder; it cannot be zipped")
            parent = posixpath.dirname(item)
            for file in files:
                name = file[len(parent) + 1:] if parent else file
                if name in members and members[name] != file:
                    raise _error(f"two items would be stored as {name} in the archive; zip them separately")
                members[name] = file
        if not args.overwrite and self.sandbox.lstat(archive) is not None:
            raise _error(_already_exists(args.archive))
        data = self._pack(members, shown)
        trash_id = self._make_room(archive, args.archive, args.overwrite)
        self._write(archive, shown, data, trash_id)
        return Archive(path=archive, members=list(members), count=len(members), size=len(data))

    @function(Effect.WRITE)
    def unzip(self, args: UnzipArgs) -> Extracted:
        """Unpack a .zip archive into a folder; existing files are replaced only with overwrite: true."""
        with self._unzip_plan(args) as plan:
            for _info, target, existing in plan.members:  # every member is checked before anything is written
                if existing is not None and not args.overwrite:
                    raise _error(_already_exists(target) + "; nothing was unpacked")
            budget = [MAX_UNZIPPED]
            written: list[str] = []
            for info, target, _existing in plan.members:
                self._check_cancelled()
                data = self._inflate(plan, info, budget, len(written))
                if self.sandbox.lstat(target) is not None:
                    self._trash(target, target)
                self._write(target, target, data)  # each member in one atomic write
                del data
                written.append(target)
            try:
                self.sandbox.mkdir(plan.dest)
            except (OSError, SandboxError) as exc:
                raise _app_error(exc, plan.dest_raw, plan.dest) from None
            return Extracted(folder=plan.dest, paths=written, count=len(written), skipped=plan.links)

    @function(Effect.DESTRUCTIVE)
    def trash(self, args: PathArgs) -> Trashed:
        """Move a file or folder to the sandbox trash (restore it with files.restore)."""
        path = self._own(args.path)
        if path == ".":
            raise _error("the sandbox root itself cannot be trashed")
        if self.sandbox.lstat(path) is None:
            raise _error(f"{args.path} does not exist")
        return Trashed(path=path, trash_id=self._trash(path, args.path))

    @function(Effect.WRITE)
    def restore(self, args: RestoreArgs) -> Restored:
        """Put a trashed item back where it was, by trash id or by its original path."""
        if args.trash_id:
            entry_id, shown = args.trash_id, args.trash_id
        elif args.path:
            wanted = self._own(args.path, internal_ok=True)
            matches = [e for e in self.sandbox.trash_entries() if e.original == wanted]
            if not matches:
                raise _error(f"nothing from {args.path} is in the trash")
            entry_id, shown = matches[-1].id, args.path
        else:
            raise _error("files.restore needs a trash_id or the original path")
        try:
            return Restored(path=self.sandbox.restore(entry_id))
        except (OSError, SandboxError) as exc:
            raise _app_error(exc, shown, doing=f"cannot restore {shown}") from None

    @function(Effect.READ)
    def info(self, args: PathArgs) -> Info:
        """Size, modification time and kind of a file or folder, and the line count of a text file."""
        path, st = self._existing(args.path)
        modified = self._time(st.st_mtime)
        if stat.S_ISDIR(st.st_mode):
            files = [i.entry for i in self._walk(path, recursive=True) if i.entry.kind == "file"]
            return Info(path=path, kind="folder", size=sum(e.size for e in files), modified=modified,
                        files=len(files))
        lines = None
        if stat.S_ISREG(st.st_mode):
            text = _decode(self._read(path, args.path))
            lines = None if text is None else len(text.splitlines())
        return Info(path=path, kind="file", size=st.st_size, modified=modified, lines=lines)

    # -- the confirmation prompt ----------------------------------------------------------------------

    def preview(self, verb: str, args: BaseModel) -> list[str]:
        """What the prompt's arguments do not show: a link trashed or moved as itself, and which existing
        item an overwrite sends to the trash."""
        try:
            if verb == "trash" and isinstance(args, PathArgs):
                return self._preview_trash(args.path)
            if verb == "write" and isinstance(args, WriteArgs):
                lines = self._link_note(args.path)
                return lines + self._replaced(self._target(args.path), args.overwrite)
            if verb in ("copy", "move") and isinstance(args, TransferArgs):
                return self._preview_transfer(verb, args)
            if verb == "zip" and isinstance(args, ZipArgs):
                shown = args.archive if args.archive.lower().endswith(".zip") else f"{args.archive}.zip"
                return self._replaced(self._target(shown), args.overwrite)
            if verb == "unzip" and isinstance(args, UnzipArgs) and args.overwrite:
                with self._unzip_plan(args) as plan:
                    existing = [target for _i, target, st in plan.members if st is not None]
                if not existing:
                    return []
                shown = ", ".join(existing[:5]) + (", ..." if len(existing) > 5 else "")
                go = "goes to the trash and is replaced" if len(existing) == 1 else "go to the trash and are replaced"
                return [_one_line(f"{_plural(len(existing), 'existing file')} {go}: {shown}")]
        except (AppError, SandboxError, OSError):
            return []  # the call itself will say what is wrong
        return []

    def _preview_trash(self, raw: str) -> list[str]:
        path = self._own(raw)
        st = self.sandbox.lstat(path)
        if st is None or path == ".":
            return []
        if stat.S_ISLNK(st.st_mode):
            where = self._leads_to(path)
            if where is None:
                return [_one_line(f"{raw} is a link that leads outside the sandbox; the link itself goes to the trash")]
            return [_one_line(f"{raw} is a link to {where}; the link itself goes to the trash, not {where}")]
        return [_one_line(f"{self._describe(path, st, raw)} goes to the trash")]

    def _preview_transfer(self, verb: str, args: TransferArgs) -> list[str]:
        source, target = self._transfer_ends(args, verb=verb)
        lines = []
        if verb == "move":
            st = self.sandbox.lstat(source)
            if st is not None and stat.S_ISLNK(st.st_mode):
                where = self._leads_to(source)
                lines.append(f"{args.source} is a link that leads outside the sandbox; the link itself is moved"
                             if where is None else
                             f"{args.source} is a link to {where}; the link itself is moved, not {where}")
        else:
            own = self._own(args.source)
            st = self.sandbox.lstat(own)
            if st is not None and stat.S_ISLNK(st.st_mode) and own != source:
                lines.append(f"{args.source} is a link to {source}; {source} is copied")
        return [_one_line(line) for line in lines] + self._replaced(target, args.overwrite)

    def _link_note(self, raw: str) -> list[str]:
        own = self._own(raw)
        st = self.sandbox.lstat(own)
        if st is None or not stat.S_ISLNK(st.st_mode):
            return []
        target = self._target(raw)
        return [_one_line(f"{raw} is a link to {target}")] if target != own else []

    def _replaced(self, target: str, overwrite: bool) -> list[str]:
        st = self.sandbox.lstat(target) if overwrite else None
        if st is None:
            return []
        return [_one_line(f"the existing {self._describe(target, st, target)} goes to the trash and is replaced")]

    def _describe(self, path: str, st: os.stat_result, shown: str) -> str:
        if stat.S_ISDIR(st.st_mode):
            count = sum(1 for e in self.sandbox.walk(path, skip=INTERNAL, limit=PREVIEW_LIMIT) if e.is_file)
            files = f"more than {PREVIEW_LIMIT} files" if count >= PREVIEW_LIMIT else _plural(count, "file")
            return f"folder {shown} ({files})"
        if stat.S_ISLNK(st.st_mode):
            return f"link {shown}"
        return f"file {shown} ({_plural(st.st_size, 'byte')})"

    # -- fixtures and context ---------------------------------------------------------------------

    def seed(self, data: Any) -> None:
        """Create files from a fixture.

        Shape: a mapping of sandbox-relative path to content. Content is text, or
        {base64: "..."} for bytes; a path ending in "/" (or with an empty value) is a folder.
            {Documents/todo.txt: "buy milk", Photos/cat.jpg: {base64: "/9j/4AAQ..."}, Downloads/: null}
        """
        if not isinstance(data, dict):
            raise AppError("files fixture data must be a mapping of path to content")
        for raw, content in data.items():
            path = self._target(str(raw))
            if content is None or str(raw).endswith("/"):
                self.sandbox.mkdir(path)
            elif isinstance(content, dict):
                if set(content) != {"base64"}:
                    raise AppError(f"files fixture: {raw} must be text or {{base64: ...}}")
                try:
                    self.sandbox.write_bytes(path, base64.b64decode(str(content["base64"]), validate=True))
                except binascii.Error as exc:
                    raise AppError(f"files fixture: {raw} is not valid base64: {exc}") from None
            else:
                self.sandbox.write_text(path, str(content))

    def summary(self) -> str:
        files = folders = 0
        capped = False
        for item in self._walk(".", recursive=True):
            if files + folders == SUMMARY_LIMIT:
                capped = True
                break
            if item.is_folder:
                folders += 1
            else:
                files += 1
        if not files and not folders:
            return "the sandbox is empty"
        top = [item.entry.name for item in self._walk(".", recursive=False) if item.is_folder]
        shown = ", ".join(top[:8]) + (", ..." if len(top) > 8 else "")
        counts = f"{_plural(files, 'file')}, {_plural(folders, 'folder')}"
        if capped:
            counts = f"more than {SUMMARY_LIMIT} files and folders"
        return counts + (f"; top folders: {shown}" if top else "")

    def ground(self, query: GroundingQuery) -> list[Grounded]:
        """Files and folders whose path has the intent's words, a folder with a few of its entries."""
        offers: list[Grounded] = []
        written = {name.lower(): name for name in file_names(query.intent)}
        named_folders: list[str] = []  # the folders the request names by their very name
        said = set(words_of(query.intent))
        for seen, item in enumerate(self._walk(".", recursive=True)):
            if seen == GROUND_LIMIT:
                written = {}  # not every file was seen: one may exist
                break
            if item.path.split("/", 1)[0] in query.data_folders:
                continue
            written.pop(item.entry.name.lower(), None)
            if item.is_folder and item.entry.name.lower() in said:  # "in Documents", not "the photo" for Photos
                named_folders.append(item.path)
            name_score = query.score(item.entry.name, weight=2)
            score = name_score + query.score(item.path) * 0.5
            if not name_score:
                continue
            if item.is_folder:
                inside = [child.name for child in self._children(item.path) if child.name not in INTERNAL]
                shown = ", ".join(inside[:6]) + (", …" if len(inside) > 6 else "")
                offers.append(Grounded(f"folder {item.path}/ holds: {shown or 'nothing'}", score, self.name))
            else:
                offers.append(Grounded(f"file {item.path}", score, self.name, ref=item.path,
                                       named=query.names(item.entry.name)))
        # A file the request writes out that is nowhere ("put this in ideas.md in Notes"): that it is new
        # is a fact to plan with (a 1.5B model shown only the folder's other files appended to one of them).
        folder = min(named_folders, key=lambda path: path.count("/"), default="")
        for name in written.values():
            path = f"{folder}/{name}" if folder else name
            offers.append(Grounded(f"file {path} does not exist yet", NEW_FILE_SCORE, self.name))
        return query.top(offers)

    # -- paths --------------------------------------------------------------------------------------
    # A path is kept as the sandbox-relative string the Sandbox gives back, and every use hands that
    # string to the Sandbox again, which walks it afresh from the root: nothing trusts a check made earlier.

    def _target(self, raw: str) -> str:
        """The sandbox path `raw` leads to (a link on the way or at the end followed, inside only),
        outside the internal folders."""
        path = self.sandbox.relative(raw)
        self._refuse_internal(path, raw)
        return path

    def _own(self, raw: str, *, internal_ok: bool = False) -> str:
        """The sandbox path of the item `raw` names itself: a link at the end is the link, not what it names."""
        head, name = posixpath.split(raw.rstrip("/") or raw)
        if name in ("", ".", ".."):
            return self.sandbox.relative(raw) if internal_ok else self._target(raw)
        parent = self.sandbox.relative(head or ".")
        path = name if parent == "." else f"{parent}/{name}"
        if not internal_ok:
            self._refuse_internal(path, raw)
        return path

    def _refuse_internal(self, path: str, raw: str) -> None:
        internal = [part for part in path.split("/") if part in INTERNAL]
        if internal:
            raise _error(f"{raw} is inside {internal[0]}, which intentos keeps for itself"
                         + (" (use files.restore to get trashed items back)" if internal[0] == TRASH else ""))

    def _existing(self, raw: str, want: Kind | None = None) -> tuple[str, os.stat_result]:
        path = self._target(raw)
        st = self.sandbox.stat(path)
        if st is None:
            raise _error(self.sandbox.missing(raw) + self._nearby(raw))
        if want == "folder" and not stat.S_ISDIR(st.st_mode):
            raise _error(f"{raw} is a file, not a folder")
        if want == "file" and stat.S_ISDIR(st.st_mode):
            raise _error(f"{raw} is a folder, not a file")
        if want == "file" and not stat.S_ISREG(st.st_mode):
            raise _error(f"{raw} is not a regular file")
        return path, st

    def _nearby(self, raw: str) -> str:
        """"; nearby: A/b, C/b" for items elsewhere whose name is the one asked for (or contains it), so a
        plan that guessed a folder's place can be repaired."""
        wanted = posixpath.basename(raw.strip().rstrip("/")).casefold()
        if not wanted:
            return ""
        exact, partial = [], []
        for seen, item in enumerate(self._walk(".", recursive=True)):
            if seen == GROUND_LIMIT or len(exact) == 3:
                break
            name = item.entry.name.casefold()
            if name == wanted or posixpath.splitext(name)[0] == wanted:
                exact.append(item.path)
            elif len(wanted) >= 3 and wanted in name and len(partial) < 3:
                partial.append(item.path)
        found = (exact + partial)[:3]
        return f"; nearby: {', '.join(found)}" if found else ""

    def _leads_to(self, link: str) -> str | None:
        """Where a link names inside the sandbox; None if it leads out (or round in circles)."""
        try:
            return self.sandbox.relative(link)
        except SandboxError:
            return None

    def _make_room(self, target: str, raw: str, overwrite: bool) -> str | None:
        """Refuse to replace an existing item unless asked; when asked, trash it. The trash id, if any."""
        if self.sandbox.lstat(target) is None:
            return None
        if not overwrite:
            raise _error(_already_exists(raw))
        if target == ".":
            raise _error("the sandbox root cannot be replaced")
        return self._trash(target, raw)

    def _trash(self, path: str, raw: str) -> str:
        try:
            return self.sandbox.trash(path).id
        except (OSError, SandboxError) as exc:
            raise _app_error(exc, raw, path, doing=f"cannot move {raw} to the trash") from None

    def _put_back(self, trash_id: str | None) -> None:
        """A replacement failed: the item it would have replaced comes back from the trash."""
        if trash_id is not None:
            try:
                self.sandbox.restore(trash_id)
            except (OSError, SandboxError):
                pass  # still in the trash, restorable by hand

    def _transfer_ends(self, args: TransferArgs, verb: str) -> tuple[str, str]:
        # A move takes a link as itself; a copy copies what it names.
        source = self._own(args.source) if verb == "move" else self._target(args.source)
        st = self.sandbox.lstat(source) if verb == "move" else self.sandbox.stat(source)
        if st is None:
            raise _error(f"{args.source} does not exist")
        if source == ".":
            raise _error(f"cannot {verb} the sandbox root")
        target = self._target(args.destination)
        # A file with an extension sent to a name without one that is not there yet ("copy car-title.pdf to
        # Documents/Insurance") goes into a new folder of that name, as people mean it, not to a file so named.
        new_folder = (not stat.S_ISDIR(st.st_mode) and self.sandbox.lstat(target) is None
                      and _extension(source) and not _extension(args.destination.rstrip("/")))
        if args.destination.endswith("/") or self.sandbox.is_dir(target) or new_folder:
            target = self._target(posixpath.join(args.destination, posixpath.basename(source)))
        if target == source:
            raise _error(f"{args.source} and {args.destination} are the same place")
        if stat.S_ISDIR(st.st_mode) and target.startswith(source + "/"):
            raise _error(f"cannot {verb} the folder {args.source} into itself")
        return source, target

    # -- reading and writing through the sandbox ---------------------------------------------------

    def _read(self, path: str, raw: str) -> bytes:
        try:
            return self.sandbox.read_bytes(path)
        except (OSError, SandboxError) as exc:
            raise _app_error(exc, raw, path) from None

    def _write(self, path: str, raw: str, data: bytes | bytearray, trash_id: str | None = None) -> None:
        try:
            self.sandbox.write_bytes(path, data)  # type: ignore[arg-type]  # any bytes-like object is written
        except (OSError, SandboxError) as exc:
            self._put_back(trash_id)
            raise _app_error(exc, raw, path, doing=f"cannot write {raw}") from None

    def _contains(self, path: str, needle: str) -> bool:
        try:
            text = _decode(self.sandbox.read_bytes(path, limit=MAX_TEXT_SCAN))
        except (OSError, SandboxError):
            return False  # too big, gone, or not to be read (a hard link to a file outside)
        return text is not None and needle in text.casefold()

    def _walk(self, folder: str, recursive: bool) -> Iterator[_Item]:
        """Entries of a folder, sorted, each folder's entries right after it; without intentos' own folders
        and without links that lead out or nowhere. Links are never entered."""
        try:
            first = self.sandbox.scandir(folder)
        except (OSError, SandboxError) as exc:
            raise _app_error(exc, folder, folder, doing=f"cannot read the folder {folder}") from None
        stack = [iter(first)]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            self._check_cancelled()
            if entry.name in INTERNAL:
                continue
            if entry.kind == "link":
                item = self._link_item(entry)
                if item is not None:
                    yield item
                continue
            yield _Item(entry)
            if recursive and entry.kind == "folder":
                stack.append(iter(self._children(entry.path)))

    def _children(self, folder: str) -> list[DirEntry]:
        try:
            entries = self.sandbox.scandir(folder)
        except (OSError, SandboxError):
            return []  # gone since it was listed, or swapped for a link that leads out
        # Swapped for a link to another folder since it was listed: not entered.
        return [e for e in entries if e.path == f"{folder}/{e.name}"]

    def _link_item(self, entry: DirEntry) -> _Item | None:
        try:
            target = self.sandbox.relative(entry.path)
            st = self.sandbox.stat(entry.path)
        except (OSError, SandboxError):
            return None  # leads out, or round in circles: left out
        if any(part in INTERNAL for part in target.split("/")):
            return None
        return _Item(entry, target, st)

    def _entry(self, item: _Item) -> Entry:
        e = item.entry
        modified = self._time(e.mtime)
        if e.kind == "folder":
            return Entry(path=e.path, kind="folder", modified=modified)
        if e.kind == "link":
            st = item.target_st
            size = st.st_size if st is not None and stat.S_ISREG(st.st_mode) else None
            return Entry(path=e.path, kind="link", size=size, modified=modified,
                         target=item.target if st is not None else None)
        return Entry(path=e.path, kind="file" if e.kind == "file" else "other", size=e.size, modified=modified)

    def _time(self, mtime: float) -> str:
        return datetime.fromtimestamp(mtime, self.ctx.tz).isoformat(timespec="seconds")

    # -- archives -------------------------------------------------------------------------------------

    def _pack(self, members: dict[str, str], shown: str) -> bytes:
        """The archive's bytes, built in memory from files read through the sandbox a chunk at a time."""
        buf = io.BytesIO()
        total = 0
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, path in members.items():
                self._check_cancelled()
                try:
                    with self.sandbox.open_read(path) as fh:
                        st = os.fstat(fh.fileno())
                        info = zipfile.ZipInfo(name, date_time=_zip_time(st.st_mtime))
                        info.compress_type = zipfile.ZIP_DEFLATED
                        info.external_attr = (stat.S_IFREG | (st.st_mode & 0o777)) << 16
                        info.file_size = st.st_size
                        with zf.open(info, "w") as out:
                            while chunk := fh.read(CHUNK):
                                total += len(chunk)
                                if total > MAX_ZIPPED:
                                    raise _error(f"the files for {shown} add up to more than "
                                                 f"{MAX_ZIPPED // 10**9} GB; refused")
                                out.write(chunk)
                except (OSError, SandboxError) as exc:
                    raise _app_error(exc, path, path, doing=f"cannot pack {path} into {shown}") from None
        return buf.getvalue()

    @contextmanager
    def _unzip_plan(self, args: UnzipArgs) -> Iterator[_UnzipPlan]:
        """The archive opened through the sandbox, every member checked and given its place; nothing written."""
        archive, _ = self._existing(args.archive, want="file")
        parent, stem = posixpath.dirname(archive), posixpath.splitext(posixpath.basename(archive))[0]
        dest_raw = args.destination or (f"{parent}/{stem}" if parent else stem)
        dest = self._target(dest_raw)
        st = self.sandbox.stat(dest)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise _error(f"{dest_raw} exists and is a file, not a folder")
        with ExitStack() as stack:
            try:
                fh = stack.enter_context(self.sandbox.open_read(archive))
            except (OSError, SandboxError) as exc:
                raise _app_error(exc, args.archive, archive) from None
            declared, directory = _declared(fh)
            if declared > MAX_MEMBERS or directory > MAX_CENTRAL_DIRECTORY:
                raise _error(f"{args.archive} holds more than {MAX_MEMBERS} members; refused")
            try:
                zf = stack.enter_context(zipfile.ZipFile(fh))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise _error(f"{args.archive} is not a readable zip archive: {exc}") from None
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise _error(f"{args.archive} holds more than {MAX_MEMBERS} members; refused")
            plan = _UnzipPlan(args.archive, dest, dest_raw, zf)
            files = []
            for info in infos:
                if info.is_dir():
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    plan.links.append(info.filename)  # never made into a link
                    continue
                if info.file_size > MAX_MEMBER:
                    raise _error(f"{args.archive}: member {info.filename!r} would unpack to {info.file_size} "
                                 f"bytes, over the {MAX_MEMBER // 2**20} MB limit for one file; nothing was unpacked")
                files.append(info)
            if sum(i.file_size for i in files) > MAX_UNZIPPED:
                raise _error(f"{args.archive} would unpack to more than {MAX_UNZIPPED // 10**9} GB; refused")
            for info in files:
                target = self._member_target(dest, dest_raw, info.filename, args.archive)
                there = self.sandbox.lstat(target)
                if there is not None and stat.S_ISDIR(there.st_mode):
                    raise _error(f"{args.archive}: member {info.filename!r} would replace the folder "
                                 f"{target}; nothing was unpacked")
                plan.members.append((info, target, there))
            yield plan

    def _inflate(self, plan: _UnzipPlan, info: zipfile.ZipInfo, budget: list[int], done: int) -> bytearray:
        """One member's bytes, read a chunk at a time; what it really inflates to is counted, not what its
        header says."""
        data = bytearray()
        cap = min(info.file_size, MAX_MEMBER)
        before = f"; {done} of {len(plan.members)} files were unpacked before it" if done else \
            "; nothing was unpacked"
        try:
            with plan.zf.open(info) as member:
                while chunk := member.read(CHUNK):
                    data += chunk
                    budget[0] -= len(chunk)
                    if len(data) > cap or budget[0] < 0:
                        raise _error(f"{plan.archive}: member {info.filename!r} inflates to more than its "
                                     f"{cap} bytes{before}")
        except AppError:
            raise
        except Exception as exc:  # a damaged, encrypted or exotic member: bad CRC, EOF, unknown method...
            raise _error(f"{plan.archive}: member {info.filename!r} cannot be unpacked: {exc}{before}") from None
        return data

    def _member_target(self, dest: str, dest_raw: str, name: str, archive: str) -> str:
        member = PurePosixPath(name.replace("\\", "/"))
        if member.is_absolute() or ".." in member.parts:
            raise _error(f"{archive} holds an unsafe member name {name!r}; nothing was unpacked")
        try:
            target = self._target(posixpath.join(dest_raw, *member.parts))
        except SandboxError:
            raise _error(f"{archive}: member {name!r} would land outside the sandbox; nothing was unpacked") from None
        if not (dest == "." or target.startswith(dest + "/")) or target == ".":
            raise _error(f"{archive}: member {name!r} would land outside {dest_raw}; nothing was unpacked")
        return target

    def _check_cancelled(self) -> None:
        if self.ctx.cancelled.is_set():
            raise AppError("cancelled")


# -- helpers ----------------------------------------------------------------------------------------


def _error(text: str) -> AppError:
    return AppError(_one_line(text))


def _one_line(text: str) -> str:
    """A message stays one line whatever a file name holds: control characters are shown escaped."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _app_error(exc: Exception, raw: str, path: str | None = None, *, doing: str | None = None) -> AppError:
    """The Sandbox's error as one line naming the path as the user gave it (`path`: the sandbox path used),
    after `doing` when given ("cannot move a to b")."""
    name = getattr(exc, "filename", None)
    if isinstance(exc, SandboxError):
        text = str(exc)
        if path and path != raw and text.startswith(path + " "):
            text = raw + text[len(path):]
    elif isinstance(exc, OSError) and name not in (None, raw, path):
        text = f"{name}: {exc.strerror or exc}"  # something inside the item, or met on the way
    elif isinstance(exc, FileNotFoundError):
        text = f"{raw} does not exist"
    elif isinstance(exc, FileExistsError):
        text = f"{raw} already exists"
    elif isinstance(exc, IsADirectoryError):
        text = f"{raw} is a folder, not a file"
    elif isinstance(exc, NotADirectoryError):
        text = f"{raw} is a file, not a folder"
    elif isinstance(exc, OSError):
        text = f"{raw}: {exc.strerror or exc}"
    else:
        text = f"{raw}: {exc}"
    return _error(f"{doing}: {text}" if doing else text)


def _declared(fh: Any) -> tuple[int, int]:
    """How many members an archive's end record claims, and how many bytes its member list takes: checked
    before zipfile reads that list into memory. (0, 0) when there is no readable end record."""
    try:
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError, struct.error):
        return 0, 0
    finally:
        fh.seek(0)
    if not end:
        return 0, 0
    return int(end[zipfile._ECD_ENTRIES_TOTAL]), int(end[zipfile._ECD_SIZE])  # type: ignore[attr-defined]


def _zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    """A zip timestamp: local time, kept within the years the format can hold."""
    year, month, day, hour, minute, sec = time.localtime(mtime)[:6]
    if year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    if year > 2107:
        return (2107, 12, 31, 23, 59, 58)
    return (year, month, day, hour, minute, sec)


def _glob_match(path: str, pattern: str) -> bool:
    """Case-insensitive glob: on the name alone, or on the whole relative path if the pattern has a '/'."""
    pattern = pattern.strip()
    while pattern.startswith("**/"):
        pattern = pattern[3:]
    if "/" not in pattern:
        path = path.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(path.casefold(), pattern.casefold())


def _decode(data: bytes) -> str | None:
    """The text of a file's bytes, or None if they look binary."""
    sample = data[:8192]
    if b"\x00" in sample or sample.startswith(_BINARY_MAGIC):
        return None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        controls = sum(1 for b in sample if b < 32 and b not in b"\t\n\r\f\b")
        if controls > len(sample) * 0.1:
            return None
        return data.decode("cp1252", errors="replace")  # an old 8-bit text file
    return data.decode("utf-8-sig", errors="replace")


def _already_exists(path: str) -> str:
    return f"{path} already exists; pass overwrite: true to replace it (the old version goes to the trash)"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _extension(path: str) -> str:
    """The extension of a path's last part ("pdf" of "Documents/car-title.pdf"; "" for "Documents/Insurance"
    or ".bashrc")."""
    name = posixpath.basename(path)
    return name.rsplit(".", 1)[1] if "." in name.lstrip(".") else ""
