"""Files: list, find, read and write the files of the sandbox, zip them, trash and restore them.

Every path is taken relative to the sandbox root and resolved through the Sandbox, so
`..`, absolute paths and links that lead out are refused. Nothing is destroyed: trashing
moves an item to the sandbox's `.trash/`, and a write, copy, move or unzip that replaces
an existing file does so only when asked (`overwrite: true`) and trashes the old version
first. The folders intentos keeps for itself (`.trash`, `.intentos`) are hidden from
listings and searches and cannot be written into.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import fnmatch
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from intentos.app import App
from intentos.errors import AppError, SandboxError
from intentos.function import Effect, function
from intentos.sandbox import TRASH

INTERNAL = frozenset({TRASH, ".intentos"})  # folders intentos keeps for itself, at any depth
MAX_TEXT_SCAN = 5_000_000  # bytes; `find` does not look for text in larger files
SUMMARY_LIMIT = 10_000  # entries; the summary stops counting there
MAX_UNZIPPED = 2_000_000_000  # bytes; an archive that would unpack to more is refused
_BINARY_MAGIC = (b"%PDF", b"PK\x03\x04", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\x7fELF")

Kind = Literal["file", "folder"]


# -- arguments and results -------------------------------------------------------------------


class ListArgs(BaseModel):
    folder: str = Field(".", description="folder to list, relative to the sandbox root")
    pattern: str | None = Field(None, description="only names matching this glob, e.g. *.pdf")
    recursive: bool = Field(False, description="also list everything in subfolders")


class Entry(BaseModel):
    path: str
    kind: Kind
    size: int | None = Field(None, description="bytes; None for a folder")
    modified: str


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
    text: str
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


class FilesApp(App):
    name = "files"
    description = "files and folders in the sandbox: list, find, read, write, copy, move, zip, trash"

    @function(Effect.READ)
    def list(self, args: ListArgs) -> Listing:
        """List a folder (optionally recursively, optionally only names matching a glob)."""
        folder = self._existing(args.folder, want="folder")
        entries = []
        for path in self._walk(folder, recursive=args.recursive):
            if args.pattern and not _glob_match(path.name, args.pattern):
                continue
            entries.append(self._entry(path))
        return Listing(folder=self._rel(folder), entries=entries, paths=[e.path for e in entries],
                       count=len(entries))

    @function(Effect.READ)
    def find(self, args: FindArgs) -> Found:
        """Find files by glob pattern and/or by text they contain, anywhere under a folder."""
        if not args.pattern and not args.text:
            raise AppError("files.find needs a pattern, a text to look for, or both")
        under = self._existing(args.under, want="folder")
        needle = args.text.casefold() if args.text else None
        paths: list[str] = []
        for path in self._walk(under, recursive=True):
            if args.pattern and not _glob_match(path.relative_to(under).as_posix(), args.pattern):
                continue
            if needle is not None and (path.is_dir() or not _contains(path, needle)):
                continue
            if len(paths) == args.max_results:
                return Found(paths=paths, count=len(paths), truncated=True)
            paths.append(self._rel(path))
        return Found(paths=paths, count=len(paths))

    @function(Effect.READ)
    def read(self, args: ReadArgs) -> Text:
        """Read a text file (up to max_chars characters)."""
        path = self._existing(args.path, want="file")
        text = _decode(path.read_bytes())
        if text is None:
            raise AppError(f"{args.path} is a binary file ({path.stat().st_size} bytes), not text")
        return Text(path=self._rel(path), text=text[: args.max_chars], chars=len(text),
                    truncated=len(text) > args.max_chars)

    @function(Effect.WRITE)
    def write(self, args: WriteArgs) -> Written:
        """Write text to a file; an existing file is replaced only with overwrite: true."""
        target = self._target(args.path)
        trash_id = self._make_room(target, args.path, args.overwrite)
        self.sandbox.write_text(target, args.text)
        return Written(path=self._rel(target), size=target.stat().st_size, created=trash_id is None,
                       replaced_trash_id=trash_id)

    @function(Effect.WRITE)
    def append(self, args: AppendArgs) -> Written:
        """Add text at the end of a text file, on a new line (creating the file if needed)."""
        target = self._target(args.path)
        if target.is_dir():
            raise AppError(f"{args.path} is a folder, not a file")
        created = not target.exists()
        old = "" if created else _decode(target.read_bytes())
        if old is None:
            raise AppError(f"{args.path} is a binary file; text cannot be appended to it")
        sep = "\n" if old and not old.endswith("\n") else ""
        self.sandbox.write_text(target, old + sep + args.text)
        return Written(path=self._rel(target), size=target.stat().st_size, created=created)

    @function(Effect.WRITE)
    def copy(self, args: TransferArgs) -> Transferred:
        """Copy a file or folder; an existing destination is replaced only with overwrite: true."""
        source, target = self._transfer_ends(args, verb="copy")
        trash_id = self._make_room(target, args.destination, args.overwrite)
        if source.is_dir():
            tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
            shutil.copytree(source, tmp, symlinks=True, ignore=lambda _d, names: [n for n in names if n in INTERNAL])
            os.replace(tmp, target)
        else:
            _copy_file_atomically(source, target)
        return Transferred(source=self._rel(source), path=self._rel(target), replaced_trash_id=trash_id)

    @function(Effect.WRITE)
    def move(self, args: TransferArgs) -> Transferred:
        """Move or rename a file or folder; an existing destination is replaced only with overwrite: true."""
        source, target = self._transfer_ends(args, verb="move")
        was = self._rel(source)
        trash_id = self._make_room(target, args.destination, args.overwrite)
        shutil.move(str(source), str(target))
        return Transferred(source=was, path=self._rel(target), replaced_trash_id=trash_id)

    @function(Effect.WRITE)
    def mkdir(self, args: PathArgs) -> Folder:
        """Create a folder (and any missing parents); nothing happens if it exists."""
        target = self._target(args.path)
        if target.exists() and not target.is_dir():
            raise AppError(f"{args.path} exists and is a file, not a folder")
        created = not target.exists()
        target.mkdir(parents=True, exist_ok=True)
        return Folder(path=self._rel(target), created=created)

    @function(Effect.WRITE)
    def zip(self, args: ZipArgs) -> Archive:
        """Pack files and folders into a .zip archive."""
        archive = self._target(args.archive if args.archive.lower().endswith(".zip") else f"{args.archive}.zip")
        members: dict[str, Path] = {}
        for raw in args.paths:
            item = self._existing(raw)
            if item == archive:
                raise AppError(f"{raw} is the archive being written; it cannot go into itself")
            files = [item] if item.is_file() else [p for p in self._walk(item, recursive=True) if p.is_file()]
            for file in files:
                if file == archive:
                    continue
                name = file.relative_to(item.parent).as_posix()
                if name in members and members[name] != file:
                    raise AppError(f"two items would be stored as {name} in the archive; zip them separately")
                members[name] = file
        trash_id = self._make_room(archive, args.archive, args.overwrite)
        fd, tmp = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".tmp")
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, file in members.items():
                    self._check_cancelled()
                    zf.write(file, name)
            os.replace(tmp, archive)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            if trash_id is not None:
                self.sandbox.restore(trash_id)
            raise
        return Archive(path=self._rel(archive), members=list(members), count=len(members),
                       size=archive.stat().st_size)

    @function(Effect.WRITE)
    def unzip(self, args: UnzipArgs) -> Extracted:
        """Unpack a .zip archive into a folder; existing files are replaced only with overwrite: true."""
        archive = self._existing(args.archive, want="file")
        dest_raw = args.destination or self._rel(archive.parent / archive.stem)
        dest = self._target(dest_raw)
        if dest.exists() and not dest.is_dir():
            raise AppError(f"{dest_raw} exists and is a file, not a folder")
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            raise AppError(f"{args.archive} is not a readable zip archive: {exc}") from None
        with zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if sum(i.file_size for i in infos) > MAX_UNZIPPED:
                raise AppError(f"{args.archive} would unpack to more than {MAX_UNZIPPED // 10**9} GB; refused")
            plan = []
            for info in infos:  # every member is checked before anything is written
                target = self._member_target(dest, dest_raw, info.filename, args.archive)
                if target.is_dir():
                    raise AppError(f"{args.archive}: member {info.filename!r} would replace the folder "
                                   f"{self._rel(target)}; nothing was unpacked")
                if target.exists() and not args.overwrite:
                    raise AppError(_already_exists(self._rel(target)) + "; nothing was unpacked")
                plan.append((info, target))
            written = []
            for info, target in plan:
                self._check_cancelled()
                if target.exists():
                    self.sandbox.trash(target)
                self.sandbox.write_bytes(target, zf.read(info))
                written.append(self._rel(target))
        dest.mkdir(parents=True, exist_ok=True)
        return Extracted(folder=self._rel(dest), paths=written, count=len(written))

    @function(Effect.DESTRUCTIVE)
    def trash(self, args: PathArgs) -> Trashed:
        """Move a file or folder to the sandbox trash (restore it with files.restore)."""
        path = self._existing(args.path)
        if path == self.sandbox.root:
            raise AppError("the sandbox root itself cannot be trashed")
        was = self._rel(path)
        entry = self.sandbox.trash(path)
        return Trashed(path=was, trash_id=entry.id)

    @function(Effect.WRITE)
    def restore(self, args: RestoreArgs) -> Restored:
        """Put a trashed item back where it was, by trash id or by its original path."""
        if args.trash_id:
            entry_id = args.trash_id
        elif args.path:
            wanted = self._rel(self.sandbox.resolve(args.path))
            matches = [e for e in self.sandbox.trash_entries() if e.original == wanted]
            if not matches:
                raise AppError(f"nothing from {args.path} is in the trash")
            entry_id = matches[-1].id
        else:
            raise AppError("files.restore needs a trash_id or the original path")
        return Restored(path=self.sandbox.restore(entry_id))

    @function(Effect.READ)
    def info(self, args: PathArgs) -> Info:
        """Size, modification time and kind of a file or folder, and the line count of a text file."""
        path = self._existing(args.path)
        entry = self._entry(path)
        if path.is_dir():
            files = [p for p in self._walk(path, recursive=True) if p.is_file()]
            return Info(path=entry.path, kind="folder", size=sum(p.stat().st_size for p in files),
                        modified=entry.modified, files=len(files))
        text = _decode(path.read_bytes())
        lines = None if text is None else len(text.splitlines())
        return Info(path=entry.path, kind="file", size=entry.size or 0, modified=entry.modified, lines=lines)

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
                path.mkdir(parents=True, exist_ok=True)
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
        for path in self._walk(self.sandbox.root, recursive=True):
            if files + folders == SUMMARY_LIMIT:
                capped = True
                break
            if path.is_dir():
                folders += 1
            else:
                files += 1
        if not files and not folders:
            return "the sandbox is empty"
        top = sorted(p.name for p in self._walk(self.sandbox.root, recursive=False) if p.is_dir())
        shown = ", ".join(top[:8]) + (", ..." if len(top) > 8 else "")
        counts = f"{_plural(files, 'file')}, {_plural(folders, 'folder')}"
        if capped:
            counts = f"more than {SUMMARY_LIMIT} files and folders"
        return counts + (f"; top folders: {shown}" if top else "")

    # -- paths --------------------------------------------------------------------------------------

    def _rel(self, path: Path) -> str:
        return self.sandbox.relative(path)

    def _target(self, raw: str) -> Path:
        """Resolve a path to write to: inside the sandbox, outside the internal folders."""
        path = self.sandbox.resolve(raw)
        internal = [part for part in path.relative_to(self.sandbox.root).parts if part in INTERNAL]
        if internal:
            raise AppError(f"{raw} is inside {internal[0]}, which intentos keeps for itself"
                           + (" (use files.restore to get trashed items back)" if internal[0] == TRASH else ""))
        return path

    def _existing(self, raw: str, want: Kind | None = None) -> Path:
        path = self._target(raw)
        if not path.exists():
            raise AppError(f"{raw} does not exist")
        if want == "folder" and not path.is_dir():
            raise AppError(f"{raw} is a file, not a folder")
        if want == "file" and not path.is_file():
            raise AppError(f"{raw} is a folder, not a file")
        return path

    def _make_room(self, target: Path, raw: str, overwrite: bool) -> str | None:
        """Refuse to replace an existing file unless asked; when asked, trash it. The trash id, if any."""
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            return None
        if not overwrite:
            raise AppError(_already_exists(raw))
        if target == self.sandbox.root:
            raise AppError("the sandbox root cannot be replaced")
        return self.sandbox.trash(target).id

    def _transfer_ends(self, args: TransferArgs, verb: str) -> tuple[Path, Path]:
        source = self._existing(args.source)
        if source == self.sandbox.root:
            raise AppError(f"cannot {verb} the sandbox root")
        target = self._target(args.destination)
        if target.is_dir() or args.destination.endswith("/"):
            target = self._target(os.path.join(args.destination, source.name))
        if target == source:
            raise AppError(f"{args.source} and {args.destination} are the same place")
        if source.is_dir() and source in target.parents:
            raise AppError(f"cannot {verb} the folder {args.source} into itself")
        return source, target

    def _member_target(self, dest: Path, dest_raw: str, name: str, archive: str) -> Path:
        member = PurePosixPath(name.replace("\\", "/"))
        if member.is_absolute() or ".." in member.parts:
            raise AppError(f"{archive} holds an unsafe member name {name!r}; nothing was unpacked")
        try:
            target = self._target(os.path.join(dest_raw, *member.parts))
        except SandboxError:
            raise AppError(f"{archive}: member {name!r} would land outside the sandbox; nothing was unpacked") from None
        if dest not in target.parents:
            raise AppError(f"{archive}: member {name!r} would land outside {dest_raw}; nothing was unpacked")
        return target

    def _walk(self, folder: Path, recursive: bool) -> Iterator[Path]:
        """Entries of a folder, sorted, without intentos' own folders or links that lead out."""
        try:
            children = sorted(folder.iterdir(), key=lambda p: p.name.casefold())
        except OSError as exc:
            raise AppError(f"cannot read the folder {self._rel(folder)}: {exc.strerror}") from None
        for child in children:
            self._check_cancelled()
            if child.name in INTERNAL or not self._inside(child):
                continue
            yield child
            if recursive and child.is_dir() and not child.is_symlink():
                yield from self._walk(child, recursive=True)

    def _inside(self, path: Path) -> bool:
        try:
            self.sandbox.resolve(path)
        except SandboxError:
            return False
        return True

    def _entry(self, path: Path) -> Entry:
        st = path.stat()
        modified = datetime.fromtimestamp(st.st_mtime, self.ctx.tz).isoformat(timespec="seconds")
        if path.is_dir():
            return Entry(path=self._rel(path), kind="folder", modified=modified)
        return Entry(path=self._rel(path), kind="file", size=st.st_size, modified=modified)

    def _check_cancelled(self) -> None:
        if self.ctx.cancelled.is_set():
            raise AppError("cancelled")


# -- helpers ----------------------------------------------------------------------------------------


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


def _contains(path: Path, needle: str) -> bool:
    try:
        if path.stat().st_size > MAX_TEXT_SCAN:
            return False
        text = _decode(path.read_bytes())
    except OSError:
        return False
    return text is not None and needle in text.casefold()


def _copy_file_atomically(source: Path, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _already_exists(path: str) -> str:
    return f"{path} already exists; pass overwrite: true to replace it (the old version goes to the trash)"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
