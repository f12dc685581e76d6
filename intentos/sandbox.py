"""The Sandbox: one root folder that every app path is resolved inside.

Nothing outside the root is read or written. Paths given by a model or a user are
taken relative to the root; `..`, absolute paths and symlinks that lead outside are
refused with a SandboxError naming the path. Removal never destroys: files go to
`.trash/` inside the sandbox with a record of where they came from.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from intentos.errors import SandboxError

TRASH = ".trash"


class TrashEntry(BaseModel):
    id: str
    original: str  # sandbox-relative path it had
    trashed_at: str


class Sandbox:
    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        root = Path(root).expanduser()
        if create:
            root.mkdir(parents=True, exist_ok=True)
        if not root.is_dir():
            raise SandboxError(f"sandbox root {root} is not a folder")
        self.root = root.resolve()

    def __repr__(self) -> str:
        return f"Sandbox({str(self.root)!r})"

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """The real location of `path` inside the sandbox, or SandboxError if it would leave it."""
        raw = os.fspath(path)
        if "\x00" in raw:
            raise SandboxError(f"path {raw!r} contains a NUL byte")
        candidate = Path(raw).expanduser()
        if candidate.is_absolute():
            # An absolute path is accepted only when it already names a place in the sandbox.
            if not _is_within(Path(os.path.abspath(candidate)), self.root):
                raise SandboxError(f"path {raw!r} is absolute and outside the sandbox {self.root}")
        else:
            candidate = self.root / candidate
        # realpath follows every symlink, existing or not, so a link that points out is caught.
        real = Path(os.path.realpath(candidate))
        if not _is_within(real, self.root):
            lexical = Path(os.path.normpath(candidate))
            why = "goes through a symlink that leads" if _is_within(lexical, self.root) else "leads"
            raise SandboxError(f"path {raw!r} {why} outside the sandbox {self.root}")
        return real

    def relative(self, path: Path) -> str:
        """A sandbox-relative POSIX path for results shown to models and people."""
        rel = Path(os.path.realpath(path)).relative_to(self.root)
        return rel.as_posix() if str(rel) != "." else "."

    # -- writing without losing anything -------------------------------------------------

    def write_bytes(self, path: str | os.PathLike[str], data: bytes) -> Path:
        """Write atomically (temp file + rename), so a crash never leaves half a file."""
        target = self.resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def write_text(self, path: str | os.PathLike[str], text: str) -> Path:
        return self.write_bytes(path, text.encode("utf-8"))

    # -- trash -----------------------------------------------------------------------------

    @property
    def trash_dir(self) -> Path:
        return self.root / TRASH

    def trash(self, path: str | os.PathLike[str]) -> TrashEntry:
        """Move a file or folder into the sandbox trash; returns the entry to restore it by."""
        source = self.resolve(path)
        if not source.exists():
            raise SandboxError(f"cannot trash {path!s}: it does not exist")
        if source == self.root or _is_within(source, self.trash_dir):
            raise SandboxError(f"cannot trash {path!s}: it is the sandbox root or already in the trash")
        entry = TrashEntry(
            id=uuid.uuid4().hex[:12],
            original=self.relative(source),
            trashed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        slot = self.trash_dir / entry.id
        slot.mkdir(parents=True)
        (slot / "entry.json").write_text(entry.model_dump_json())
        shutil.move(str(source), slot / source.name)
        return entry

    def trash_entries(self) -> list[TrashEntry]:
        if not self.trash_dir.is_dir():
            return []
        entries = [TrashEntry.model_validate_json(p.read_text()) for p in self.trash_dir.glob("*/entry.json")]
        return sorted(entries, key=lambda e: e.trashed_at)

    def restore(self, entry_id: str) -> str:
        """Put a trashed item back where it was; refuses to overwrite what is there now."""
        slot = self.trash_dir / entry_id
        meta = slot / "entry.json"
        if not meta.is_file():
            raise SandboxError(f"no trash entry {entry_id!r}")
        entry = TrashEntry.model_validate_json(meta.read_text())
        target = self.resolve(entry.original)
        if target.exists():
            raise SandboxError(f"cannot restore {entry.original}: something else is there now")
        item = next(p for p in slot.iterdir() if p.name != "entry.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(item), target)
        shutil.rmtree(slot)
        return entry.original


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
