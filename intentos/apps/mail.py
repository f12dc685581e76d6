"""Mail: Maildir folders under `Mail/` (inbox, outbox, sent, drafts, trash...).

Each folder is a standard Maildir (`Mail/inbox/{cur,new,tmp}`), created when first
written to. A message's id is its Maildir key; it stays the same when the message moves
between folders, so a later workflow step can still name it.

Every file is read and written through the sandbox: a message is a regular file in
`cur/` or `new/` (a link there is not a message: it is skipped and reported), read with a
size limit and never through a link or hard link leading out of the sandbox. Reading never
rewrites a message: marking it seen (or answered) only renames its file, from `new/` to
`cur/` with the Maildir info suffix (`:2,S`), so its bytes stay exactly as they were.

Sending is honest about what happened: with SMTP configured (`ctx.settings["smtp"]`:
host, port, username, password, starttls, from_address) the message is delivered and
a copy filed in `sent`; without it, or when the server refuses, the message waits in
`outbox` and the result (or the error) says so. Deleting moves to `trash` (and only
mail.delete does, after asking). Recipients may be email addresses or names from the
contacts app. The confirmation prompt of send, send_draft, reply and draft lists every
recipient (To, Cc, Bcc) and attachment, computed by the same code that sends, and says
when a reply goes somewhere other than the original sender.
"""

from __future__ import annotations

import email
import html
import itertools
import mimetypes
import os
import re
import secrets
import smtplib
import ssl
import stat
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parseaddr, parsedate_to_datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from intentos.app import App
from intentos.apps.problems import content_problem, one_line, shown_path
from intentos.errors import AppError, SandboxError
from intentos.function import AKA, Effect, function
from intentos.grounding import Grounded, GroundingQuery
from intentos.when import isoformat, localize, parse_when

MAIL_DIR = "Mail"
STANDARD_FOLDERS = ("inbox", "outbox", "sent", "drafts", "trash")
TRASH_FOLDER = "trash"
# Names other mail programs give the trash; mail.move refuses them all (mail.delete asks first).
_TRASH_ALIASES = {"trash", "trashcan", "deleted", "deleteditems", "deletedmessages", "deletedmail", "bin",
                  "recyclebin", "rubbish", "rubbishbin", "wastebasket", "papierkorb", "corbeille"}
_FOLDER = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")
SNIPPET = 140
MAX_MESSAGE_BYTES = 50 * 1024 * 1024  # a message file bigger than this is refused, not read
MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEQUENCE = itertools.count()


GROUND_LIMIT = 500  # newest messages looked at when grounding an intent

class MessageInfo(BaseModel):
    id: str
    folder: str
    sender: str = Field(description="'Name <email>' of the From header")
    sender_email: str = Field(json_schema_extra={AKA: ["from", "from_email", "sender_address"]})
    to: list[str] = Field(description="recipient email addresses")
    cc: list[str] = Field(default_factory=list)
    subject: str
    date: str = Field(description="ISO 8601 with offset, in the user's time zone")
    unread: bool
    has_attachments: bool
    attachments: list[str] = Field(default_factory=list, description="attachment file names")
    snippet: str


class Message(MessageInfo):
    body: str
    message_id: str


class Messages(BaseModel):
    messages: list[MessageInfo]
    count: int
    total: int = Field(description="matches before the limit was applied")
    problems: list[str] = Field(default_factory=list, description="files in the folders that were skipped, and why")


class ListArgs(BaseModel):
    folder: str = "inbox"
    unread_only: bool = False
    sender: str | None = Field(None, description="only messages whose From contains this (name or address)")
    subject: str | None = Field(None, description="only messages whose subject contains this")
    limit: int = Field(20, gt=0)


class ReadArgs(BaseModel):
    id: str


class SearchArgs(BaseModel):
    query: str = Field(description="words to find in sender, recipients, subject, body or attachment names")
    folder: str | None = Field(None, description="one folder; default all except trash")
    limit: int = Field(20, gt=0)


class ComposeArgs(BaseModel):
    to: list[str] = Field(description="email addresses or contact names")
    subject: str
    body: str
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    attachments: list[str] = Field(default_factory=list, description="sandbox paths of files to attach")


class DraftArgs(ComposeArgs):
    to: list[str] = Field(default_factory=list, description="email addresses or contact names")


class Sent(BaseModel):
    id: str
    folder: str = Field(description="'sent' when delivered, 'outbox' when queued")
    delivered: bool
    queued: bool = Field(description="true: NOT sent yet, waiting in outbox (no SMTP server configured)")
    to: list[str]
    subject: str
    message_id: str
    refused: list[str] = Field(default_factory=list, description="recipients the server refused")


class SendDraftArgs(BaseModel):
    id: str = Field(description="id of a message in drafts (or one queued in outbox)")


class ReplyArgs(BaseModel):
    id: str
    body: str
    reply_all: bool = False
    attachments: list[str] = Field(default_factory=list, description="sandbox paths of files to attach")


class MoveArgs(BaseModel):
    id: str
    folder: str = Field(description="target folder, e.g. inbox, archive, sent; created if new (not trash: "
                                    "use mail.delete)")


class DeleteArgs(BaseModel):
    id: str


class Deleted(BaseModel):
    id: str
    folder: str = "trash"
    previous_folder: str


class _SeedMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    sender: str = Field(alias="from")
    to: list[str] | str | None = None
    cc: list[str] | str | None = None
    subject: str = ""
    body: str = ""
    date: datetime | str | None = None
    attachments: dict[str, str] = Field(default_factory=dict)
    read: bool = False


@dataclass(frozen=True)
class _Stored:
    """One message file: `Mail/<folder>/<sub>/<name>`, the name being its key plus, in cur/, `:2,FLAGS`."""

    folder: str
    sub: str  # "new" or "cur"
    name: str

    @property
    def key(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def flags(self) -> str:
        info = self.name.partition(":")[2]
        return info[2:] if info.startswith("2,") else ""

    @property
    def path(self) -> str:
        return f"{MAIL_DIR}/{self.folder}/{self.sub}/{self.name}"

    @property
    def unread(self) -> bool:
        return self.sub == "new" or "S" not in self.flags


@dataclass
class _Outgoing:
    """A message about to be sent or saved, and what the confirmation prompt should say about it."""

    msg: EmailMessage
    attached: list[str] = field(default_factory=list)  # "path (N bytes)" per attachment
    notes: list[str] = field(default_factory=list)  # warnings: Reply-To differs, addresses left out...
    source: _Stored | None = None  # the draft being sent, or the message replied to


class MailApp(App):
    name = "mail"
    description = "email in local Maildir folders: list, read, search, draft, send, reply, move, delete"
    data_folder = MAIL_DIR
    dry_run_safe = True  # without its SMTP settings, sending only queues in the sandbox's outbox

    # -- folders ----------------------------------------------------------------------------------

    def _name(self, folder: str) -> str:
        name = folder.strip().lower()
        if not _FOLDER.fullmatch(name):
            # A file folder ("Documents/Invoices") for a mail one: say which mail folders there are.
            folders = sorted({*self._folders(), *STANDARD_FOLDERS})
            raise AppError(f"{folder!r} is not a mail folder name (use letters, digits, - or _; the mail folders "
                           f"are {', '.join(folders)}; a new name such as archive makes a new one)")
        return name

    def _is_folder(self, rel: str) -> bool:
        """Whether `rel` is a real folder (not a link to one)."""
        try:
            st = self.sandbox.lstat(rel)
        except (OSError, SandboxError) as exc:
            raise _file_error(rel, exc) from None
        return st is not None and stat.S_ISDIR(st.st_mode)

    def _require(self, name: str) -> None:
        """A folder that reads may look at: an existing one, or a standard one (then empty)."""
        if name not in STANDARD_FOLDERS and not self._is_folder(f"{MAIL_DIR}/{name}"):
            raise AppError(f"no mail folder {name!r} (folders: {', '.join(self._folders()) or 'none yet'})")

    def _ensure(self, name: str) -> None:
        """Create the Maildir `name` if needed; refuse one whose folders are links or files."""
        for rel in (f"{MAIL_DIR}/{name}", *(f"{MAIL_DIR}/{name}/{sub}" for sub in ("cur", "new", "tmp"))):
            try:
                st = self.sandbox.lstat(rel)
                if st is None:
                    self.sandbox.mkdir(rel)
                elif not stat.S_ISDIR(st.st_mode):
                    raise AppError(f"{rel} is not a folder (a link or a file is there); nothing was changed")
            except (OSError, SandboxError) as exc:
                raise _file_error(rel, exc) from None

    def _folders(self) -> list[str]:
        try:
            if not self.sandbox.is_dir(MAIL_DIR):
                return []
            entries = self.sandbox.scandir(MAIL_DIR)
        except (OSError, SandboxError) as exc:
            raise _file_error(MAIL_DIR, exc) from None
        return sorted(e.name for e in entries
                      if e.is_dir and _FOLDER.fullmatch(e.name) and self._is_folder(f"{MAIL_DIR}/{e.name}/cur"))

    def _scan(self, folder: str) -> tuple[list[_Stored], list[str]]:
        """The message files of a folder, and a line for each entry that is not one (a link...)."""
        found: list[_Stored] = []
        problems: list[str] = []
        top = f"{MAIL_DIR}/{folder}"
        if not self._is_folder(top):
            if self.sandbox.lstat(top) is not None:
                problems.append(f"{top} is not a mail folder (a link or a file); skipped")
            return found, problems
        for sub in ("new", "cur"):
            rel = f"{MAIL_DIR}/{folder}/{sub}"
            try:
                st = self.sandbox.lstat(rel)
                if st is None:
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    problems.append(f"{rel} is not a folder (a link or a file); skipped")
                    continue
                entries = self.sandbox.scandir(rel)
            except (OSError, SandboxError) as exc:
                raise _file_error(rel, exc) from None
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.kind == "file":
                    found.append(_Stored(folder, sub, entry.name))
                elif entry.kind == "link":
                    problems.append(f"{shown_path(entry.path)} is a link, not a message; skipped")
                elif entry.kind == "other":
                    problems.append(f"{shown_path(entry.path)} is not a regular file; skipped")
        return found, problems

    def _locate(self, message_id: str) -> _Stored:
        key = message_id.strip().split(":", 1)[0]
        if key and "/" not in key and not key.startswith(".") and "\x00" not in key:
            for folder in self._folders():
                for sub in ("new", "cur"):
                    rel = f"{MAIL_DIR}/{folder}/{sub}"
                    if not self._is_folder(rel):
                        continue
                    try:
                        entries = self.sandbox.scandir(rel)
                    except (OSError, SandboxError) as exc:
                        raise _file_error(rel, exc) from None
                    for entry in entries:
                        if entry.name == key or entry.name.startswith(key + ":"):
                            if entry.kind != "file":
                                raise AppError(f"{shown_path(entry.path)} is a link or special file, not a message; "
                                               "it was not read")
                            return _Stored(folder, sub, entry.name)
        raise AppError(f"no message with id {message_id!r} (ids come from mail.list or mail.search)")

    # -- messages ---------------------------------------------------------------------------------

    def _parsed(self, stored: _Stored) -> EmailMessage:
        try:
            raw = self.sandbox.read_bytes(stored.path, limit=MAX_MESSAGE_BYTES)
        except (OSError, SandboxError) as exc:
            raise _file_error(stored.path, exc) from None
        try:
            return email.message_from_bytes(raw, policy=default_policy)
        except Exception as exc:  # noqa: BLE001 - any parser failure on a hostile file is that file's problem
            raise _bad_message(stored, exc) from None

    def _info(self, stored: _Stored, *, full: bool = False, msg: EmailMessage | None = None) -> Message | MessageInfo:
        msg = self._parsed(stored) if msg is None else msg
        try:
            body = _body(msg)
            sender_name, sender_email = parseaddr(str(msg.get("from", "")))
            info = dict(
                id=stored.key, folder=stored.folder,
                sender=formataddr((sender_name, sender_email)) if sender_email else sender_name,
                sender_email=sender_email, to=_addresses(msg, "to"), cc=_addresses(msg, "cc"),
                subject=str(msg.get("subject", "")), date=self._date(msg), unread=stored.unread,
                attachments=_attachment_names(msg), snippet=" ".join(body.split())[:SNIPPET],
            )
            info["has_attachments"] = bool(info["attachments"])
            if full:
                return Message(**info, body=body, message_id=str(msg.get("message-id", "")))
            return MessageInfo(**info)
        except Exception as exc:  # noqa: BLE001 - the email package raises all sorts on malformed input
            raise _bad_message(stored, exc) from None

    def _date(self, msg: EmailMessage) -> str:
        try:
            when = parsedate_to_datetime(str(msg["date"]))
            return isoformat(localize(when, self.ctx.tz) if when.tzinfo is None else when.astimezone(self.ctx.tz))
        except (TypeError, ValueError, IndexError, OverflowError):
            return ""

    def _all(self, folders: list[str], *, full: bool = False) -> tuple[list[Any], list[str]]:
        """Every readable message of `folders`, newest first, and a line for each file that was skipped."""
        found: list[Any] = []
        problems: list[str] = []
        for name in folders:
            stored, skipped = self._scan(name)
            problems.extend(skipped)
            for item in stored:
                try:
                    found.append(self._info(item, full=full))
                except AppError as exc:
                    problems.append(str(exc))
        found.sort(key=lambda m: datetime.fromisoformat(m.date) if m.date else _EPOCH, reverse=True)
        return found, problems

    def _file(self, folder: str, msg: EmailMessage, *, seen: bool = True) -> str:
        """Store `msg` in `folder` as a new file (written atomically); returns its id."""
        self._ensure(folder)
        try:
            data = msg.as_bytes()
        except Exception as exc:  # noqa: BLE001 - a malformed header of a parsed draft
            raise AppError(f"the message cannot be written out: {_why(exc)}") from None
        while True:
            key = _new_key()
            if all(self.sandbox.lstat(f"{MAIL_DIR}/{folder}/{sub}/{key}") is None for sub in ("new", "cur")):
                break
        name, sub = (f"{key}:2,S", "cur") if seen else (key, "new")
        rel = f"{MAIL_DIR}/{folder}/{sub}/{name}"
        try:
            self.sandbox.write_bytes(rel, data)
        except (OSError, SandboxError) as exc:
            raise _file_error(rel, exc) from None
        return key

    def _set_flags(self, stored: _Stored, add: str) -> _Stored:
        """Mark a message (S seen, R answered) by renaming its file; its bytes are never rewritten."""
        flags = "".join(sorted(set(stored.flags) | set(add)))
        marked = _Stored(stored.folder, "cur", f"{stored.key}:2,{flags}")
        if marked != stored:
            self._rename(stored.path, marked.path)
        return marked

    def _relocate(self, stored: _Stored, target: str) -> _Stored:
        """Move the message file to another Maildir by rename, keeping its key (and so its id)."""
        self._ensure(target)
        moved = _Stored(target, stored.sub, stored.name)
        self._rename(stored.path, moved.path)
        return moved

    def _rename(self, source: str, destination: str) -> None:
        try:
            self.sandbox.move(source, destination)
        except FileExistsError:
            raise AppError(f"{destination} already exists; {source} was not moved") from None
        except (OSError, SandboxError) as exc:
            raise _file_error(source, exc) from None

    # -- composing and sending ----------------------------------------------------------------------

    def _from(self) -> str:
        smtp = self._smtp() or {}
        return formataddr((self.ctx.user.name, smtp.get("from_address") or self.ctx.user.email))

    def _smtp(self) -> dict[str, Any] | None:
        smtp = self.ctx.settings.get("smtp")
        if isinstance(smtp, BaseModel):
            smtp = smtp.model_dump()
        return smtp if smtp and smtp.get("host") else None

    def _compose(self, args: ComposeArgs) -> _Outgoing:
        from intentos.apps.contacts import resolve_addresses  # contacts is an app of its own; import on use

        to, cc, bcc = (list(resolve_addresses(self.ctx, items)) for items in (args.to, args.cc, args.bcc))
        return self._message(to, cc, bcc, args.subject, args.body, args.attachments)

    def _message(self, to: list[tuple[str, str]], cc: list[tuple[str, str]], bcc: list[tuple[str, str]],
                 subject: str, body: str, attachments: list[str]) -> _Outgoing:
        msg = EmailMessage()
        try:
            msg["From"] = self._from()
            for header, items in (("To", to), ("Cc", cc), ("Bcc", bcc)):
                if items:
                    msg[header] = ", ".join(formataddr((" ".join(name.split()), addr)) for name, addr in items)
            msg["Subject"] = " ".join(subject.split())
        except (ValueError, TypeError) as exc:
            raise AppError(f"the message cannot be made: {_why(exc)}") from None
        msg["Date"] = format_datetime(self.ctx.now())
        msg["Message-ID"] = make_msgid(domain=parseaddr(msg["From"])[1].rpartition("@")[2] or "intentos.local")
        msg.set_content(body)
        attached = [self._attach(msg, path) for path in attachments]
        return _Outgoing(msg, attached)

    def _attach(self, msg: EmailMessage, path: str) -> str:
        """Attach a sandbox file (never through a link or hard link leading out); returns a line about it."""
        try:
            data = self.sandbox.read_bytes(path, limit=MAX_ATTACHMENT_BYTES)
            shown = self.sandbox.relative(path)
        except FileNotFoundError:
            raise AppError(f"attachment {path} does not exist in the sandbox") from None
        except IsADirectoryError:
            raise AppError(f"attachment {path} is a folder, not a file") from None
        except (OSError, SandboxError) as exc:
            raise AppError(one_line(f"attachment {path} was not attached: {_reason(exc)}")) from None
        filename = PurePosixPath(shown).name
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        return f"{shown} ({len(data)} bytes)"

    def _outgoing(self, verb: str, args: BaseModel) -> _Outgoing:
        """The message `verb` would send or save: the one place both the send and its preview come from."""
        if verb in ("send", "draft"):
            assert isinstance(args, ComposeArgs)
            if verb == "send" and not args.to:
                raise AppError("send needs at least one recipient in `to`")
            return self._compose(args)
        if verb == "send_draft":
            assert isinstance(args, SendDraftArgs)
            return self._draft_to_send(args)
        if verb == "reply":
            assert isinstance(args, ReplyArgs)
            return self._reply(args)
        raise KeyError(verb)

    def _draft_to_send(self, args: SendDraftArgs) -> _Outgoing:
        stored = self._locate(args.id)
        if stored.folder not in ("drafts", "outbox"):
            raise AppError(f"message {args.id} is in {stored.folder}, not in drafts or outbox")
        msg = self._parsed(stored)
        try:
            if stored.folder == "drafts":
                del msg["Date"]
                msg["Date"] = format_datetime(self.ctx.now())
            attached = [f"{part.get_filename() or 'unnamed'} ({len(part.get_payload(decode=True) or b'')} bytes)"
                        for part in msg.iter_attachments()]
        except Exception as exc:  # noqa: BLE001
            raise _bad_message(stored, exc) from None
        return _Outgoing(msg, attached, source=stored)

    def _reply(self, args: ReplyArgs) -> _Outgoing:
        """The reply: to the Reply-To addresses (else the sender); with reply_all, Cc to the others."""
        stored = self._locate(args.id)
        original = self._parsed(stored)
        notes: list[str] = []
        try:
            info = self._info(stored, msg=original)
            sender = parseaddr(str(original.get("from", "")))[1]
            reply_to = _valid(_pairs(original, "reply-to"), "Reply-To", notes)
            targets = reply_to or _valid([("", sender)] if sender else [], "From", notes)
            if not targets:
                raise AppError(f"message {args.id} has no sender to reply to")
            target_set = {a.casefold() for _, a in targets}
            if reply_to and target_set != {sender.casefold()}:
                went = ", ".join(a for _, a in targets)
                notes.insert(0, f"Reply-To differs from the sender: the reply goes to {went}, "
                                f"not to the sender {sender or '(no From address)'}")
            cc: list[tuple[str, str]] = []
            if args.reply_all:
                own = parseaddr(self._from())[1].casefold()
                seen = set(target_set) | {own}
                for name, addr in _valid(_pairs(original, "to") + _pairs(original, "cc"), "To/Cc", notes):
                    if addr.casefold() not in seen:
                        seen.add(addr.casefold())
                        cc.append((name, addr))
                if cc:
                    notes.append("reply all: Cc goes to everyone else in the original's To and Cc")
            subject = " ".join(str(original.get("subject", "")).split())
            if not subject.lower().startswith("re:"):
                subject = f"Re: {subject}".strip()
            quoted = "\n".join(f"> {line}" for line in _body(original).splitlines())
            parent = " ".join(str(original.get("message-id", "")).split())
            references = " ".join(str(original.get("references", "")).split())
        except AppError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _bad_message(stored, exc) from None
        body = f"{args.body}\n\nOn {info.date}, {info.sender} wrote:\n{quoted}\n"
        out = self._message(targets, cc, [], subject, body, args.attachments)
        if parent:
            out.msg["In-Reply-To"] = parent
            out.msg["References"] = " ".join(filter(None, [references, parent]))
        out.notes, out.source = notes, stored
        return out

    def _deliver(self, msg: EmailMessage, *, queue_on_failure: bool) -> Sent:
        recipients = [addr for pairs in _recipients(msg).values() for _, addr in pairs]
        if not recipients:
            raise AppError("the message has no recipients")
        shown = dict(to=_addresses(msg, "to"), subject=str(msg.get("subject", "")),
                     message_id=str(msg["message-id"]))
        smtp = self._smtp()
        if smtp is None:
            key = self._file("outbox", msg)
            return Sent(id=key, folder="outbox", delivered=False, queued=True, **shown)
        host, port = smtp["host"], int(smtp.get("port") or 587)
        try:
            refused = _smtp_send(msg, recipients, smtp, host, port)
        except (smtplib.SMTPException, OSError) as exc:
            where = f"{host}:{port}"
            if queue_on_failure:
                key = self._file("outbox", msg)
                raise AppError(f"could not send via {where}: {exc}; NOT sent, queued in outbox as {key}") from None
            raise AppError(f"could not send via {where}: {exc}; NOT sent") from None
        key = self._file("sent", msg)
        return Sent(id=key, folder="sent", delivered=True, queued=False, refused=sorted(refused), **shown)

    def preview(self, verb: str, args: BaseModel) -> list[str]:
        """Every recipient (To, Cc, Bcc) and attachment of what send/send_draft/reply/draft will send or save."""
        if verb not in ("send", "send_draft", "reply", "draft"):
            return []
        out = self._outgoing(verb, args)
        lines = list(out.notes)
        recipients = _recipients(out.msg)
        for header, pairs in recipients.items():
            if pairs:
                lines.append(f"{header}: " + ", ".join(formataddr(p) for p in pairs))
        if not any(recipients.values()):
            lines.append("no recipients")
        lines.extend(f"attachment: {a}" for a in out.attached)
        if not out.attached:
            lines.append("no attachments")
        return [one_line(line) for line in lines]

    # -- functions ------------------------------------------------------------------------------------

    @function(Effect.READ)
    def list(self, args: ListArgs) -> Messages:
        """List messages in a folder, newest first, optionally only unread or by sender/subject."""
        name = self._name(args.folder)
        self._require(name)
        sender, subject = (args.sender or "").casefold(), (args.subject or "").casefold()
        found, problems = self._all([name])
        hits = [m for m in found if (m.unread or not args.unread_only)
                and sender in m.sender.casefold() and subject in m.subject.casefold()]
        shown = hits[: args.limit]
        return Messages(messages=shown, count=len(shown), total=len(hits), problems=problems)

    @function(Effect.READ)
    def read(self, args: ReadArgs) -> Message:
        """Read a message: full text body and attachment names (marks it read)."""
        stored = self._locate(args.id)
        message = self._info(stored, full=True)  # a message that cannot be read is named before anything moves
        if stored.unread:
            self._set_flags(stored, "S")  # a rename new/ -> cur/ with :2,S; the bytes stay as they are
            message = message.model_copy(update={"unread": False})
        return message  # type: ignore[return-value]

    @function(Effect.READ)
    def search(self, args: SearchArgs) -> Messages:
        """Search messages in all folders (or one) for words in sender, recipients, subject or body."""
        if args.folder:
            folders = [self._name(args.folder)]
            self._require(folders[0])
        else:
            folders = [f for f in self._folders() if f != TRASH_FOLDER]
        words = args.query.casefold().split()
        hits = []
        found, problems = self._all(folders, full=True)
        for full in found:
            text = " ".join([full.sender, *full.to, *full.cc, full.subject, full.body, *full.attachments]).casefold()
            if all(w in text for w in words):
                hits.append(MessageInfo(**full.model_dump(exclude={"body", "message_id"})))
        shown = hits[: args.limit]
        return Messages(messages=shown, count=len(shown), total=len(hits), problems=problems)

    @function(Effect.WRITE)
    def draft(self, args: DraftArgs) -> MessageInfo:
        """Save a message in drafts without sending it."""
        key = self._file("drafts", self._outgoing("draft", args).msg)
        return self._info(_Stored("drafts", "cur", f"{key}:2,S"))

    @function(Effect.EXTERNAL)
    def send(self, args: ComposeArgs) -> Sent:
        """Send an email (or queue it in outbox when no mail server is configured)."""
        return self._deliver(self._outgoing("send", args).msg, queue_on_failure=True)

    @function(Effect.EXTERNAL)
    def send_draft(self, args: SendDraftArgs) -> Sent:
        """Send a saved draft (or retry a message queued in outbox)."""
        out = self._outgoing("send_draft", args)
        assert out.source is not None
        if out.source.folder == "outbox" and self._smtp() is None:
            raise AppError(f"message {args.id} stays queued in outbox: no SMTP server is configured")
        sent = self._deliver(out.msg, queue_on_failure=False)
        try:
            self.sandbox.trash(out.source.path)  # sent (or queued) as a new file: the draft goes to the trash
        except (OSError, SandboxError) as exc:
            raise _file_error(out.source.path, exc) from None
        return sent

    @function(Effect.EXTERNAL)
    def reply(self, args: ReplyArgs) -> Sent:
        """Reply to a message (quoting it) to its Reply-To or sender; reply_all also Cc's the other recipients."""
        out = self._outgoing("reply", args)
        sent = self._deliver(out.msg, queue_on_failure=True)
        assert out.source is not None
        self._set_flags(out.source, "R")
        return sent

    @function(Effect.WRITE)
    def move(self, args: MoveArgs) -> MessageInfo:
        """Move a message to another folder, e.g. archive (its id stays the same); to delete, use mail.delete."""
        stored = self._locate(args.id)
        target = self._name(args.folder)
        if self._is_trash(target):
            raise AppError(f"mail.move does not move messages into the trash ({args.folder.strip()!r}): "
                           "use mail.delete, which asks first")
        if target == stored.folder:
            return self._info(stored)
        return self._info(self._relocate(stored, target))

    @function(Effect.DESTRUCTIVE)
    def delete(self, args: DeleteArgs) -> Deleted:
        """Delete a message by moving it to the trash folder (recoverable with move)."""
        stored = self._locate(args.id)
        if stored.folder == TRASH_FOLDER:
            raise AppError(f"message {args.id} is already in trash; nothing was removed")
        self._relocate(stored, TRASH_FOLDER)
        return Deleted(id=stored.key, previous_folder=stored.folder)

    def _is_trash(self, name: str) -> bool:
        """The trash by name, by another program's name for it, or by a link leading to it."""
        if re.sub(r"[-_]", "", name) in _TRASH_ALIASES:
            return True
        try:
            return self.sandbox.relative(f"{MAIL_DIR}/{name}") == self.sandbox.relative(f"{MAIL_DIR}/{TRASH_FOLDER}")
        except SandboxError as exc:
            raise _file_error(f"{MAIL_DIR}/{name}", exc) from None

    # -- fixtures and context --------------------------------------------------------------------------

    def seed(self, data: Any) -> None:
        """Fill folders from a fixture.

        Shape: {folder: [{from, to?, cc?, subject, body, date?, attachments?: {file name: text}, read?}]},
        e.g. {inbox: [...], sent: [...]}. `to` defaults to the user; `date` (ISO, YAML timestamp or phrase)
        to now; inbox messages are unread unless `read: true`.
        """
        if not isinstance(data, dict):
            raise AppError("mail fixture data must map folder names to lists of messages")
        for folder, items in data.items():
            name = self._name(str(folder))
            self._ensure(name)
            for item in items or []:
                spec = _SeedMessage.model_validate(item)
                self._file(name, self._seed_message(spec), seen=spec.read or name != "inbox")

    def _seed_message(self, spec: _SeedMessage) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = spec.sender
        msg["To"] = _joined(spec.to) or formataddr((self.ctx.user.name, self.ctx.user.email))
        if spec.cc:
            msg["Cc"] = _joined(spec.cc)
        msg["Subject"] = spec.subject
        when = parse_when(spec.date, self.ctx.tz, self.ctx.now()).at if spec.date else self.ctx.now()
        msg["Date"] = format_datetime(when)
        msg["Message-ID"] = make_msgid(domain=parseaddr(spec.sender)[1].rpartition("@")[2] or "fixture.local")
        msg.set_content(spec.body)
        for name, text in spec.attachments.items():
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            maintype, subtype = kind.split("/", 1)
            msg.add_attachment(text.encode("utf-8"), maintype=maintype, subtype=subtype, filename=name)
        return msg

    def summary(self) -> str:
        parts = []
        try:
            for name in self._folders():
                stored, _ = self._scan(name)
                total = len(stored)
                if name == "inbox":
                    parts.append(f"inbox {total} ({sum(1 for s in stored if s.unread)} unread)")
                elif name == "outbox" and total:
                    parts.append(f"outbox {total} queued, not sent")
                elif total:
                    parts.append(f"{name} {total}")
        except AppError as exc:
            return f"mail: {exc}"
        return "mail: " + (", ".join(parts) if parts else "no messages")


    def ground(self, query: GroundingQuery) -> list[Grounded]:
        """Messages whose sender, subject or first lines share the intent's words."""
        try:
            messages, _ = self._all([f for f in self._folders() if not self._is_trash(f)])
        except AppError:
            return []
        offers = []
        for m in messages[:GROUND_LIMIT]:
            score = query.score(m.sender, m.subject, *m.attachments, weight=2) + query.score(m.snippet)
            if score:
                files = f"; attached {', '.join(m.attachments)}" if m.attachments else ""
                # No id: Maildir names differ on every seeding; a plan finds the message by sender or subject.
                offers.append(Grounded(f'mail in {m.folder} from {m.sender} on {m.date[:10]}: '
                                       f'"{m.subject}"{files}: {m.snippet}', score, self.name))
        return query.top(offers)

# -- message helpers ------------------------------------------------------------------------------


def _smtp_send(msg: EmailMessage, recipients: list[str], smtp: dict[str, Any], host: str,
               port: int) -> dict[str, Any]:
    """Deliver through the configured server to exactly `recipients`; returns the ones it refused."""
    secure = ssl.create_default_context()
    client = smtplib.SMTP_SSL(host, port, timeout=30, context=secure) if port == 465 else \
        smtplib.SMTP(host, port, timeout=30)
    with client:
        client.ehlo()
        if port != 465 and smtp.get("starttls", True):
            client.starttls(context=secure)
            client.ehlo()
        if smtp.get("username"):
            client.login(smtp["username"], smtp.get("password") or "")
        return client.send_message(msg, to_addrs=recipients)


def _recipients(msg: EmailMessage) -> dict[str, list[tuple[str, str]]]:
    """Who a message goes to, by header: what the send delivers to and what the preview lists."""
    return {header: _pairs(msg, header) for header in ("To", "Cc", "Bcc")}


def _pairs(msg: EmailMessage, header: str) -> list[tuple[str, str]]:
    return [(name, addr) for name, addr in getaddresses([str(v) for v in msg.get_all(header, [])]) if addr]


def _addresses(msg: EmailMessage, header: str) -> list[str]:
    return [addr for _, addr in _pairs(msg, header)]


def _valid(pairs: list[tuple[str, str]], where: str, notes: list[str]) -> list[tuple[str, str]]:
    """Addresses of an incoming message, taken as they are (never looked up in contacts); others noted."""
    kept = []
    for name, addr in pairs:
        if _EMAIL.fullmatch(addr):
            kept.append((name, addr))
        else:
            notes.append(f"left out {addr!r} from the original's {where}: not an email address")
    return kept


def _joined(value: list[str] | str | None) -> str:
    if not value:
        return ""
    return value if isinstance(value, str) else ", ".join(value)


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, KeyError, ValueError):
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(text, str):
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    if part.get_content_subtype() == "html":
        text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"(?is)<(script|style).*?</\1>", " ", text)))
    return text.strip()


def _attachment_names(msg: EmailMessage) -> list[str]:
    return [part.get_filename() or "unnamed" for part in msg.iter_attachments()]


def _new_key() -> str:
    """A Maildir key: time, then what makes it unique (process, sequence, randomness)."""
    now = time.time()
    return f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{next(_SEQUENCE)}R{secrets.token_hex(4)}.intentos"


def _why(exc: BaseException) -> str:
    text = one_line(str(exc)) or type(exc).__name__
    return (text[:200] + "…") if len(text) > 200 else text


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, SandboxError) and exc.strerror:
        return exc.strerror
    return _why(exc)


def _file_error(rel: str, exc: BaseException) -> AppError:
    """One line naming the file, for a sandbox or OS error on it."""
    if isinstance(exc, AppError):
        return exc
    reason = _reason(exc)
    shown = shown_path(rel)
    return AppError(one_line(reason if shown in reason else f"{shown}: {reason}"))


def _bad_message(stored: _Stored, exc: BaseException) -> AppError:
    if isinstance(exc, AppError):
        return exc
    return AppError(f"{shown_path(stored.path)} is not a readable message ({content_problem(exc)}); "
                    "it was left as it is")

