"""Notes: markdown files in `Notes/`, each with YAML front matter.

    ---
    title: Trip to Lisbon
    tags: [travel]
    created: '2026-03-10T09:00:00+01:00'
    updated: '2026-03-10T09:00:00+01:00'
    ---
    Flights booked; hotel near Alfama.

A note lives at `Notes/<slug>.md`, the slug made from its title (`-2`, `-3` when taken).
A markdown file dropped into `Notes/` without front matter is a note too: its title is
its first heading or its file name. A note whose front matter cannot be read is named
in the error of any call that needs it, left out of lists and searches (which report
it), and never written over. A link in `Notes/` is not a note: it is never followed,
and one named `*.md` is reported as skipped. Files are read only through the sandbox,
with a size limit. Deleting a note moves its file to the sandbox trash.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from intentos.app import App
from intentos.apps import naming
from intentos.apps.problems import content_problem, shown_path
from intentos.errors import AppError, SandboxError
from intentos.function import AKA, Effect, function
from intentos.grounding import Grounded, GroundingQuery

NOTES_DIR = "Notes"
# "all my notes", "copy my notes"; not "any of my notes" (which asks about some of them)
_ALL_NOTES = re.compile(r"(?<!\bof\s)\b(?:all|every|my)\s+(?:(?:of\s+)?my\s+)?notes\b", re.IGNORECASE)
_ALL_NOTES_SCORE = 3.0  # as a note whose title has the request's word
SNIPPET_CHARS = 160
MAX_NOTE_BYTES = 50 * 1024 * 1024  # a bigger file is refused, not read
MAX_NOTE_FILES = 100_000  # entries looked at under Notes/
MAX_FRONT_MATTER_CHARS = 1_000_000  # YAML is parsed in Python: a bigger head is refused
MAX_FRONT_MATTER_DEPTH = 64  # [ and { nested deeper than this are refused before the YAML parser recurses
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)

NOTE_REF = "the note's title or its path (e.g. Notes/shopping.md)"


# -- arguments and results -------------------------------------------------------------------


class CreateArgs(BaseModel):
    title: str
    body: str = Field("", description="markdown text of the note")
    tags: list[str] = Field(default_factory=list)


class NoteRef(BaseModel):
    path: str
    title: str
    tags: list[str]


class AppendArgs(BaseModel):
    note: str = Field(description=NOTE_REF)
    text: str = Field(description="markdown added at the end of the note, on a new line")


class ReadArgs(BaseModel):
    note: str = Field(description=NOTE_REF)


class Note(BaseModel):
    path: str
    title: str
    tags: list[str]
    created: str
    updated: str
    body: str = Field(json_schema_extra={AKA: ["text", "content"]})


class SearchArgs(BaseModel):
    query: str | None = Field(None, description="words that must all occur in the title or body (case-insensitive)")
    tag: str | None = Field(None, description="only notes with this tag")


class ListArgs(BaseModel):
    tag: str | None = Field(None, description="only notes with this tag")


class NoteHit(BaseModel):
    title: str
    path: str
    tags: list[str]
    snippet: str
    updated: str


class NoteList(BaseModel):
    notes: list[NoteHit]
    paths: list[str]
    count: int
    problems: list[str] = Field(default_factory=list, description="notes that could not be read")


class TagArgs(BaseModel):
    note: str = Field(description=NOTE_REF)
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class Deleted(BaseModel):
    path: str
    title: str
    trash_id: str = Field(description="sandbox trash entry that restores the note (files.restore)")


class SeedNote(BaseModel):
    title: str
    body: str = ""
    tags: list[str] = Field(default_factory=list)
    created: datetime | date | None = None


# -- storage --------------------------------------------------------------------------------------


@dataclass
class _Stored:
    """A note as it is on disk."""

    path: str  # sandbox-relative, the file it is stored in
    title: str
    tags: list[str]
    created: str
    updated: str
    body: str = Field(json_schema_extra={AKA: ["text", "content"]})
    extra: dict[str, Any] = field(default_factory=dict)  # other front-matter keys, kept as they are

    def render(self) -> str:
        meta = {"title": self.title, "tags": self.tags, "created": self.created, "updated": self.updated}
        head = yaml.safe_dump({**meta, **self.extra}, sort_keys=False, allow_unicode=True, default_flow_style=None)
        body = self.body if self.body.endswith("\n") or not self.body else self.body + "\n"
        return f"---\n{head}---\n{body}"

    def ref(self) -> NoteRef:
        return NoteRef(path=self.path, title=self.title, tags=self.tags)


class NotesApp(App):
    name = "notes"
    description = "markdown notes with tags: create, append, read, search, tag, delete"
    data_folder = NOTES_DIR

    @function(Effect.WRITE)
    def create(self, args: CreateArgs) -> NoteRef:
        """Create a markdown note with optional tags."""
        note = self._new(args.title, args.body, args.tags, self._now())
        return note.ref()

    @function(Effect.WRITE)
    def append(self, args: AppendArgs) -> NoteRef:
        """Add text at the end of a note."""
        note = self._find(args.note)
        sep = "\n" if note.body and not note.body.endswith("\n") else ""
        note.body = note.body + sep + args.text
        self._save(note)
        return note.ref()

    @function(Effect.READ)
    def read(self, args: ReadArgs) -> Note:
        """Read a note: its title, tags, dates and markdown body."""
        note = self._find(args.note)
        return Note(path=note.path, title=note.title, tags=note.tags, created=note.created, updated=note.updated,
                    body=note.body)

    @function(Effect.READ)
    def search(self, args: SearchArgs) -> NoteList:
        """Find notes whose title or body contains the query words, and/or that carry a tag."""
        notes, problems = self._all()
        words = args.query.casefold().split() if args.query else []
        tag = _tag(args.tag) if args.tag else None
        hits = []
        for note in notes:
            if tag and tag not in note.tags:
                continue
            title, body = note.title.casefold(), note.body.casefold()
            if not all(w in title or w in body for w in words):
                continue
            in_title = sum(w in title for w in words)
            hits.append((-in_title, -_instant(note.updated), note))
        hits.sort(key=lambda h: h[:2])
        return _note_list([h[2] for h in hits], problems, words)

    @function(Effect.READ)
    def list(self, args: ListArgs) -> NoteList:
        """List notes, most recently updated first, optionally only those with a tag."""
        notes, problems = self._all()
        if args.tag:
            notes = [n for n in notes if _tag(args.tag) in n.tags]
        notes.sort(key=lambda n: _instant(n.updated), reverse=True)
        return _note_list(notes, problems, [])

    @function(Effect.WRITE)
    def tag(self, args: TagArgs) -> NoteRef:
        """Add and/or remove tags of a note."""
        if not args.add and not args.remove:
            raise AppError("notes.tag needs tags to add or to remove")
        note = self._find(args.note)
        removed = {_tag(t) for t in args.remove}
        note.tags = [t for t in _tags(note.tags + args.add) if t not in removed]
        self._save(note)
        return note.ref()

    @function(Effect.DESTRUCTIVE)
    def delete(self, args: ReadArgs) -> Deleted:
        """Delete a note (its file goes to the sandbox trash and can be restored)."""
        note = self._find(args.note)
        try:
            entry = self.sandbox.trash(note.path)
        except (OSError, SandboxError) as exc:
            raise _file_error(note.path, exc) from None
        return Deleted(path=note.path, title=note.title, trash_id=entry.id)

    # -- fixtures and context ---------------------------------------------------------------------

    def seed(self, data: Any) -> None:
        """Create notes from a fixture.

        Shape: a list of {title, body?, tags?: [..], created?}; created is an ISO date-time
        (or a YAML timestamp), naive ones in the user's time zone; default now.
        """
        if not isinstance(data, list):
            raise AppError("notes fixture data must be a list of notes")
        for item in data:
            try:
                spec = SeedNote.model_validate(item)
            except ValidationError as exc:
                raise AppError(f"notes fixture: {item!r} is not a note: {exc.errors()[0]['msg']}") from None
            self._new(spec.title, spec.body, spec.tags, self._stamp(spec.created) if spec.created else self._now())

    def summary(self) -> str:
        notes, problems = self._all()
        if not notes and not problems:
            return "no notes"
        counts = Counter(t for n in notes for t in n.tags)
        tags = sorted(counts, key=lambda t: (-counts[t], t))[:8]
        line = _plural(len(notes), "note") + (f"; tags: {', '.join(tags)}" if tags else "")
        return line + (f"; {len(problems)} unreadable" if problems else "")

    def ground(self, query: GroundingQuery) -> list[Grounded]:
        notes, _ = self._all()
        offers = []
        for note in notes:
            score = query.score(note.title, *note.tags, weight=2) + query.score(note.body)
            if score:
                tags = f" (tags {', '.join(note.tags)})" if note.tags else ""
                offers.append(Grounded(f'note "{note.title}"{tags}: {note.body}', score, self.name, name=note.title,
                                       aka=tuple(note.tags)))
        if notes and _ALL_NOTES.search(query.intent):
            # The notes as a whole ("copy all my notes to a folder"): where they lie as files, which the files
            # app does not offer (its own folder is the notes app's). Told only "nearby: Notes", the 1.5B model
            # packed "Documents/notes" three times.
            names = ", ".join(PurePosixPath(n.path).name for n in notes)
            offers.append(Grounded(f"folder {NOTES_DIR}/ holds every note, one file each: {names}", _ALL_NOTES_SCORE,
                                   self.name))
        return query.top(offers)

    # -- storage ---------------------------------------------------------------------------------

    def _now(self) -> str:
        return self._stamp(self.ctx.now())

    def _stamp(self, when: datetime | date) -> str:
        if not isinstance(when, datetime):
            when = datetime(when.year, when.month, when.day)
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.ctx.tz)
        return when.astimezone(self.ctx.tz).isoformat(timespec="seconds")

    def _new(self, title: str, body: str, tags: list[str], created: str) -> _Stored:
        title = " ".join(title.split())
        if not title:
            raise AppError("a note needs a title")
        slug = _slug(title)
        path, n = f"{NOTES_DIR}/{slug}.md", 1
        while self._taken(path):
            n += 1
            path = f"{NOTES_DIR}/{slug}-{n}.md"
        note = _Stored(path=path, title=title, tags=_tags(tags), created=created, updated=created, body=body)
        self._write(note)
        return note

    def _taken(self, path: str) -> bool:
        try:
            return self.sandbox.lstat(path) is not None  # a link (even a dangling one) takes the name too
        except (OSError, SandboxError) as exc:
            raise _file_error(path, exc) from None

    def _save(self, note: _Stored) -> None:
        note.updated = self._now()
        self._write(note)

    def _write(self, note: _Stored) -> None:
        try:
            text = note.render()
        except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
            raise AppError(f"note {note.path} cannot be written: {content_problem(exc)}; "
                           "it was left as it is") from None
        try:
            self.sandbox.write_text(note.path, text)
        except (OSError, SandboxError) as exc:
            raise _file_error(note.path, exc) from None

    def _scan(self) -> tuple[list[str], list[str]]:
        """The note files (regular `*.md` files under Notes/, links never followed), and lines about skipped ones."""
        try:
            st = self.sandbox.stat(NOTES_DIR)
            if st is None:
                return [], []
            if not self.sandbox.is_dir(NOTES_DIR):
                raise AppError(f"{NOTES_DIR} is a file, not a folder; notes live in the folder {NOTES_DIR}/")
            entries = list(self.sandbox.walk(NOTES_DIR, limit=MAX_NOTE_FILES))
        except (OSError, SandboxError) as exc:
            raise _file_error(NOTES_DIR, exc) from None
        files, skipped = [], []
        for entry in entries:
            if not entry.name.endswith(".md") or entry.name.startswith("."):
                continue
            if entry.is_file:
                files.append(entry.path)
            elif entry.kind == "link":
                skipped.append(f"{shown_path(entry.path)} is a link, not a note; skipped")
            elif entry.kind == "other":
                skipped.append(f"{shown_path(entry.path)} is not a regular file; skipped")
        return sorted(files), skipped

    def _files(self) -> list[str]:
        return self._scan()[0]

    def _all(self) -> tuple[list[_Stored], list[str]]:
        files, problems = self._scan()
        notes = []
        for path in files:
            try:
                notes.append(self._load(path))
            except AppError as exc:
                problems.append(str(exc))
        return notes, problems

    def _load(self, path: str) -> _Stored:
        try:
            raw = self.sandbox.read_bytes(path, limit=MAX_NOTE_BYTES)
            st = self.sandbox.lstat(path)
        except (OSError, SandboxError) as exc:
            raise _file_error(path, exc, "note ") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise AppError(f"note {path} cannot be read: it is not UTF-8 text ({exc.reason} at byte {exc.start})") \
                from None
        try:
            return self._parse(path, text, st.st_mtime if st is not None else 0.0)
        except AppError:
            raise
        except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
            raise AppError(f"note {path} cannot be read: {content_problem(exc)}; "
                           "it was left as it is") from None

    def _parse(self, path: str, text: str, mtime: float) -> _Stored:
        meta: dict[str, Any] = {}
        body = text
        match = _FRONT_MATTER.match(text)
        if match:
            head = match.group(1)
            if len(head) > MAX_FRONT_MATTER_CHARS:
                raise AppError(f"note {path} has front matter of {len(head)} characters, over the "
                               f"{MAX_FRONT_MATTER_CHARS} limit; it was left as it is")
            if _flow_depth(head) > MAX_FRONT_MATTER_DEPTH:
                raise AppError(f"note {path} has front matter nested too deeply; it was left as it is")
            try:
                loaded = yaml.safe_load(head)
            except yaml.YAMLError as exc:
                raise AppError(f"note {path} has front matter that is not valid YAML: {_first_line(exc)}") from None
            if loaded is not None and not isinstance(loaded, dict):
                raise AppError(f"note {path} has front matter that is not a mapping of keys to values")
            meta = loaded or {}
            body = text[match.end():]
        elif text.startswith("---"):
            raise AppError(f"note {path} opens front matter with '---' but never closes it")
        raw_tags = meta.pop("tags", None) or []
        if isinstance(raw_tags, str):
            raw_tags = re.split(r"[,\s]+", raw_tags)
        if not isinstance(raw_tags, list) or not all(isinstance(t, _SCALARS) for t in raw_tags):
            raise AppError(f"note {path}: tags must be a list of words")
        modified = self._stamp(datetime.fromtimestamp(mtime, self.ctx.tz))
        created = meta.pop("created", None)
        updated = meta.pop("updated", None)
        title = meta.pop("title", None)
        for key, value in (("title", title), ("created", created), ("updated", updated)):
            if value is not None and not isinstance(value, _SCALARS):
                raise AppError(f"note {path}: {key} must be a single value, not {type(value).__name__}")
        return _Stored(
            path=path,
            title=str(title).strip() if title else _title_from(body, path),
            tags=_tags([str(t) for t in raw_tags]),
            created=self._stamp(created) if isinstance(created, date) else str(created or modified),
            updated=self._stamp(updated) if isinstance(updated, date) else str(updated or created or modified),
            body=body,
            extra=meta,
        )

    def _find(self, ref: str) -> _Stored:
        """The one note a title or path names; a clear error when none or several do."""
        ref = ref.strip()
        if ref.lower().endswith(".md") or "/" in ref:
            given = ref if "/" in ref else f"{NOTES_DIR}/{ref}"
            try:
                st = self.sandbox.lstat(given)
                path = self.sandbox.relative(given)
            except (OSError, SandboxError) as exc:
                raise _file_error(ref, exc) from None
            if st is not None:
                if path not in self._files():
                    raise AppError(f"{ref} is not a note (notes are the regular .md files in {NOTES_DIR}/; "
                                   "links are not followed)")
                return self._load(path)
            if ref.lower().endswith(".md"):
                raise AppError(f"there is no note {ref}")
        notes, problems = self._all()
        wanted = ref.casefold()
        matches = [n for n in notes if n.title.casefold() == wanted]
        if not matches:
            matches = [n for n in notes if PurePosixPath(n.path).stem == _slug(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AppError(f"{len(matches)} notes are titled {ref!r}: {', '.join(n.path for n in matches)}; "
                           "name one by its path")
        unreadable = f" ({len(problems)} unreadable notes were skipped: {'; '.join(problems)})" if problems else ""
        # "my list note" beside a packing list and a shopping list: a guess would change the wrong one.
        holding = naming.holding(ref, notes, lambda n: [*n.title.split(), *n.tags])
        naming.refuse_several(ref, "notes", holding, lambda n: f"{n.title!r} ({n.path})", "in their title or tags",
                              "by its title", also=unreadable)
        close = [n.title for n in holding] or difflib.get_close_matches(ref, [n.title for n in notes], n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise AppError(f"no note titled {ref!r}{hint}{unreadable}")


# -- helpers ------------------------------------------------------------------------------------------


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].rstrip("-")
    return slug or "note"


def _tag(tag: str) -> str:
    return "-".join(tag.strip().lstrip("#").lower().split())


def _tags(tags: list[str]) -> list[str]:
    """Normalized (lowercase, no '#', no spaces), without duplicates, in the order given."""
    return list(dict.fromkeys(t for t in map(_tag, tags) if t))


def _title_from(body: str, path: str) -> str:
    heading = re.search(r"^#\s+(.+?)\s*#*\s*$", body, re.M)
    stem = PurePosixPath(path).stem
    return heading.group(1) if heading else stem.replace("-", " ").replace("_", " ").strip() or stem


def _snippet(body: str, words: list[str]) -> str:
    flat = " ".join(body.split())
    start = 0
    if words:
        found = [i for i in (flat.casefold().find(w) for w in words) if i >= 0]
        if found:
            start = max(0, min(found) - SNIPPET_CHARS // 4)
            start = flat.rfind(" ", 0, start) + 1 if start else 0
    piece = flat[start:start + SNIPPET_CHARS]
    prefix = "…" if start else ""
    suffix = "…" if start + SNIPPET_CHARS < len(flat) else ""
    return prefix + piece + suffix


def _note_list(notes: list[_Stored], problems: list[str], words: list[str]) -> NoteList:
    hits = [NoteHit(title=n.title, path=n.path, tags=n.tags, snippet=_snippet(n.body, words), updated=n.updated)
            for n in notes]
    return NoteList(notes=hits, paths=[h.path for h in hits], count=len(hits), problems=problems)


def _instant(stamp: str) -> float:
    """Seconds since the epoch of an ISO stamp, for sorting; an unreadable one sorts as the oldest."""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return float("-inf")
    return when.timestamp() if when.tzinfo else when.replace(tzinfo=UTC).timestamp()


def _first_line(exc: BaseException) -> str:
    text = " ".join(" ".join(str(exc).split("\n")[:3]).split()) or type(exc).__name__
    return text[:300]


_SCALARS = (str, int, float, date)


def _flow_depth(text: str) -> int:
    """How deep [ and { nest (quotes not considered: a bound, not a parse)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _file_error(path: str, exc: BaseException, prefix: str = "") -> AppError:
    """One line naming the file for a sandbox or OS error on it."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, FileNotFoundError):
        reason = f"there is no {prefix}{path}"
    elif isinstance(exc, IsADirectoryError):
        reason = f"{prefix}{path} is a folder, not a file"
    elif isinstance(exc, OSError) and not isinstance(exc, SandboxError) and exc.strerror:
        reason = f"{prefix}{path} cannot be read: {exc.strerror}"
    else:
        reason = _first_line(exc)
        if shown_path(path) not in reason:
            reason = f"{prefix}{path}: {reason}"
    return AppError(" ".join(shown_path(reason).split()))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"

