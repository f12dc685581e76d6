"""Mail: Maildir folders under `Mail/` (inbox, outbox, sent, drafts, trash...).

Each folder is a standard Maildir (`Mail/inbox/{cur,new,tmp}`), created when first
needed. A message's id is its Maildir key; it stays the same when the message moves
between folders, so a later workflow step can still name it.

Sending is honest about what happened: with SMTP configured (`ctx.settings["smtp"]`:
host, port, username, password, starttls, from_address) the message is delivered and
a copy filed in `sent`; without it, or when the server refuses, the message waits in
`outbox` and the result (or the error) says so. Deleting moves to `trash`.
Recipients may be email addresses or names from the contacts app.
"""

from __future__ import annotations

import email
import html
import mailbox
import mimetypes
import os
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parseaddr, parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from intentos.app import App
from intentos.apps.clock import isoformat, localize, parse_when
from intentos.errors import AppError
from intentos.function import Effect, function

MAIL_DIR = "Mail"
STANDARD_FOLDERS = ("inbox", "outbox", "sent", "drafts", "trash")
_FOLDER = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
SNIPPET = 140
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MessageInfo(BaseModel):
    id: str
    folder: str
    sender: str = Field(description="'Name <email>' of the From header")
    sender_email: str
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
    folder: str = Field(description="target folder, e.g. inbox, archive, sent; created if new")


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


class MailApp(App):
    name = "mail"
    description = "email in local Maildir folders: list, read, search, draft, send, reply, move, delete"

    # -- folders and messages ---------------------------------------------------------------------

    def _box(self, folder: str, *, create: bool = False) -> mailbox.Maildir:
        name = folder.strip().lower()
        if not _FOLDER.fullmatch(name):
            raise AppError(f"{folder!r} is not a folder name (use letters, digits, - or _; e.g. inbox, archive)")
        path = self.sandbox.resolve(f"{MAIL_DIR}/{name}")
        if not path.is_dir() and not (create or name in STANDARD_FOLDERS):
            raise AppError(f"no mail folder {name!r} (folders: {', '.join(self._folders()) or 'none yet'})")
        path.parent.mkdir(parents=True, exist_ok=True)
        return mailbox.Maildir(path, factory=None, create=True)

    def _folders(self) -> list[str]:
        root = self.sandbox.resolve(MAIL_DIR)
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if (p / "cur").is_dir() and _FOLDER.fullmatch(p.name))

    def _locate(self, key: str) -> tuple[str, mailbox.Maildir]:
        key = key.strip()
        if key and "/" not in key and not key.startswith("."):
            for name in self._folders():
                box = self._box(name)
                if key in box:
                    return name, box
        raise AppError(f"no message with id {key!r} (ids come from mail.list or mail.search)")

    def _parsed(self, box: mailbox.Maildir, key: str) -> EmailMessage:
        return email.message_from_bytes(box.get_bytes(key), policy=default_policy)

    def _info(self, folder: str, box: mailbox.Maildir, key: str, *, full: bool = False) -> Message | MessageInfo:
        msg = self._parsed(box, key)
        flags = box.get_message(key)
        body = _body(msg)
        sender_name, sender_email = parseaddr(str(msg.get("from", "")))
        info = dict(
            id=key, folder=folder, sender=formataddr((sender_name, sender_email)) if sender_email else sender_name,
            sender_email=sender_email, to=_addresses(msg, "to"), cc=_addresses(msg, "cc"),
            subject=str(msg.get("subject", "")), date=self._date(msg),
            unread=flags.get_subdir() == "new" or "S" not in flags.get_flags(),
            attachments=_attachment_names(msg), snippet=" ".join(body.split())[:SNIPPET],
        )
        info["has_attachments"] = bool(info["attachments"])
        if full:
            return Message(**info, body=body, message_id=str(msg.get("message-id", "")))
        return MessageInfo(**info)

    def _date(self, msg: EmailMessage) -> str:
        try:
            when = parsedate_to_datetime(str(msg["date"]))
        except (TypeError, ValueError, IndexError):
            return ""
        return isoformat(localize(when, self.ctx.tz) if when.tzinfo is None else when.astimezone(self.ctx.tz))

    def _all(self, folders: list[str], *, full: bool = False) -> list[Any]:
        """Every message of `folders`, newest first."""
        found = []
        for name in folders:
            box = self._box(name)
            found.extend(self._info(name, box, key, full=full) for key in box.keys())
        return sorted(found, key=lambda m: datetime.fromisoformat(m.date) if m.date else _EPOCH, reverse=True)

    def _file(self, folder: str, msg: EmailMessage, *, seen: bool = True) -> str:
        """Store `msg` in `folder`; returns its id."""
        stored = mailbox.MaildirMessage(msg.as_bytes())
        if seen:
            stored.set_subdir("cur")
            stored.add_flag("S")
        return self._box(folder, create=True).add(stored)

    # -- composing and sending ----------------------------------------------------------------------

    def _from(self) -> str:
        smtp = self._smtp() or {}
        return formataddr((self.ctx.user.name, smtp.get("from_address") or self.ctx.user.email))

    def _smtp(self) -> dict[str, Any] | None:
        smtp = self.ctx.settings.get("smtp")
        if isinstance(smtp, BaseModel):
            smtp = smtp.model_dump()
        return smtp if smtp and smtp.get("host") else None

    def _compose(self, args: ComposeArgs) -> EmailMessage:
        from intentos.apps.contacts import resolve_addresses  # contacts is an app of its own; import on use

        msg = EmailMessage()
        msg["From"] = self._from()
        for header, items in (("To", args.to), ("Cc", args.cc), ("Bcc", args.bcc)):
            if items:
                msg[header] = ", ".join(formataddr(a) for a in resolve_addresses(self.ctx, items))
        msg["Subject"] = args.subject
        msg["Date"] = format_datetime(self.ctx.now())
        msg["Message-ID"] = make_msgid(domain=parseaddr(msg["From"])[1].rpartition("@")[2] or "intentos.local")
        msg.set_content(args.body)
        for path in args.attachments:
            self._attach(msg, path)
        return msg

    def _attach(self, msg: EmailMessage, path: str) -> None:
        real = self.sandbox.resolve(path)  # a path leaving the sandbox is refused here
        if not real.is_file():
            raise AppError(f"attachment {path} does not exist in the sandbox")
        kind = mimetypes.guess_type(real.name)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        msg.add_attachment(real.read_bytes(), maintype=maintype, subtype=subtype, filename=real.name)

    def _deliver(self, msg: EmailMessage, *, queue_on_failure: bool) -> Sent:
        recipients = [a for _, a in getaddresses([str(v) for h in ("to", "cc", "bcc") for v in msg.get_all(h, [])])]
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
            refused = _smtp_send(msg, smtp, host, port)
        except (smtplib.SMTPException, OSError) as exc:
            where = f"{host}:{port}"
            if queue_on_failure:
                key = self._file("outbox", msg)
                raise AppError(f"could not send via {where}: {exc}; NOT sent, queued in outbox as {key}") from None
            raise AppError(f"could not send via {where}: {exc}; NOT sent") from None
        key = self._file("sent", msg)
        return Sent(id=key, folder="sent", delivered=True, queued=False, refused=sorted(refused), **shown)

    # -- functions ------------------------------------------------------------------------------------

    @function(Effect.READ)
    def list(self, args: ListArgs) -> Messages:
        """List messages in a folder, newest first, optionally only unread or by sender/subject."""
        name = args.folder.strip().lower()
        self._box(name)
        sender, subject = (args.sender or "").casefold(), (args.subject or "").casefold()
        hits = [m for m in self._all([name]) if (m.unread or not args.unread_only)
                and sender in m.sender.casefold() and subject in m.subject.casefold()]
        shown = hits[: args.limit]
        return Messages(messages=shown, count=len(shown), total=len(hits))

    @function(Effect.READ)
    def read(self, args: ReadArgs) -> Message:
        """Read a message: full text body and attachment names (marks it read)."""
        folder, box = self._locate(args.id)
        stored = box.get_message(args.id)
        if stored.get_subdir() == "new" or "S" not in stored.get_flags():
            stored.set_subdir("cur")
            stored.add_flag("S")
            box[args.id] = stored
        return self._info(folder, box, args.id, full=True)

    @function(Effect.READ)
    def search(self, args: SearchArgs) -> Messages:
        """Search messages in all folders (or one) for words in sender, recipients, subject or body."""
        folders = [args.folder.strip().lower()] if args.folder else [f for f in self._folders() if f != "trash"]
        if args.folder:
            self._box(folders[0])
        words = args.query.casefold().split()
        hits = []
        for full in self._all(folders, full=True):
            text = " ".join([full.sender, *full.to, *full.cc, full.subject, full.body, *full.attachments]).casefold()
            if all(w in text for w in words):
                hits.append(MessageInfo(**full.model_dump(exclude={"body", "message_id"})))
        shown = hits[: args.limit]
        return Messages(messages=shown, count=len(shown), total=len(hits))

    @function(Effect.WRITE)
    def draft(self, args: DraftArgs) -> MessageInfo:
        """Save a message in drafts without sending it."""
        key = self._file("drafts", self._compose(args))
        return self._info("drafts", self._box("drafts"), key)

    @function(Effect.EXTERNAL)
    def send(self, args: ComposeArgs) -> Sent:
        """Send an email (or queue it in outbox when no mail server is configured)."""
        if not args.to:
            raise AppError("send needs at least one recipient in `to`")
        return self._deliver(self._compose(args), queue_on_failure=True)

    @function(Effect.EXTERNAL)
    def send_draft(self, args: SendDraftArgs) -> Sent:
        """Send a saved draft (or retry a message queued in outbox)."""
        folder, box = self._locate(args.id)
        if folder not in ("drafts", "outbox"):
            raise AppError(f"message {args.id} is in {folder}, not in drafts or outbox")
        msg = self._parsed(box, args.id)
        if folder == "drafts":
            del msg["Date"]
            msg["Date"] = format_datetime(self.ctx.now())
        if folder == "outbox" and self._smtp() is None:
            raise AppError(f"message {args.id} stays queued in outbox: no SMTP server is configured")
        sent = self._deliver(msg, queue_on_failure=False)
        box.remove(args.id)
        return sent

    @function(Effect.EXTERNAL)
    def reply(self, args: ReplyArgs) -> Sent:
        """Reply to a message (quoting it); reply_all also writes to the other recipients."""
        folder, box = self._locate(args.id)
        original = self._parsed(box, args.id)
        _, author = parseaddr(str(original.get("reply-to") or original.get("from", "")))
        if not author:
            raise AppError(f"message {args.id} has no sender to reply to")
        own = parseaddr(self._from())[1].casefold()
        to = [author]
        cc = []
        if args.reply_all:
            others = _addresses(original, "to") + _addresses(original, "cc")
            cc = [a for a in dict.fromkeys(others) if a.casefold() not in (own, author.casefold())]
        subject = str(original.get("subject", ""))
        if not subject.lower().startswith("re:"):
            subject = f"Re: {subject}".strip()
        info = self._info(folder, box, args.id)
        quoted = "\n".join(f"> {line}" for line in _body(original).splitlines())
        body = f"{args.body}\n\nOn {info.date}, {info.sender} wrote:\n{quoted}\n"
        msg = self._compose(ComposeArgs(to=to, cc=cc, subject=subject, body=body, attachments=args.attachments))
        if parent := str(original.get("message-id", "")):
            msg["In-Reply-To"] = parent
            msg["References"] = " ".join(filter(None, [str(original.get("references", "")), parent]))
        sent = self._deliver(msg, queue_on_failure=True)
        stored = box.get_message(args.id)
        stored.add_flag("R")
        box[args.id] = stored
        return sent

    @function(Effect.WRITE)
    def move(self, args: MoveArgs) -> MessageInfo:
        """Move a message to another folder (its id stays the same)."""
        folder, box = self._locate(args.id)
        target = args.folder.strip().lower()
        if target == folder:
            return self._info(folder, box, args.id)
        self._relocate(folder, args.id, target)
        return self._info(target, self._box(target), args.id)

    @function(Effect.DESTRUCTIVE)
    def delete(self, args: DeleteArgs) -> Deleted:
        """Delete a message by moving it to the trash folder (recoverable with move)."""
        folder, _ = self._locate(args.id)
        if folder == "trash":
            raise AppError(f"message {args.id} is already in trash; nothing was removed")
        self._relocate(folder, args.id, "trash")
        return Deleted(id=args.id, previous_folder=folder)

    def _relocate(self, folder: str, key: str, target: str) -> None:
        """Move the message file between Maildirs by rename, keeping its key (and so its id)."""
        self._box(target, create=True)
        source = self.sandbox.resolve(f"{MAIL_DIR}/{folder}")
        destination = self.sandbox.resolve(f"{MAIL_DIR}/{target}")
        for sub in ("cur", "new"):
            for path in (source / sub).iterdir():
                if path.name == key or path.name.startswith(key + mailbox.Maildir.colon):
                    os.replace(path, destination / sub / path.name)
                    return
        raise AppError(f"no message with id {key!r} in {folder}")

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
            self._box(str(folder), create=True)
            for item in items or []:
                spec = _SeedMessage.model_validate(item)
                self._file(str(folder), self._seed_message(spec), seen=spec.read or folder != "inbox")

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
        for name in self._folders():
            box = self._box(name)
            total = len(box)
            if name == "inbox":
                unread = sum(1 for m in box if m.get_subdir() == "new" or "S" not in m.get_flags())
                parts.append(f"inbox {total} ({unread} unread)")
            elif name == "outbox" and total:
                parts.append(f"outbox {total} queued, not sent")
            elif total:
                parts.append(f"{name} {total}")
        return "mail: " + (", ".join(parts) if parts else "no messages")


# -- message helpers ------------------------------------------------------------------------------


def _smtp_send(msg: EmailMessage, smtp: dict[str, Any], host: str, port: int) -> dict[str, Any]:
    """Deliver through the configured server; returns the recipients it refused."""
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
        return client.send_message(msg)


def _addresses(msg: EmailMessage, header: str) -> list[str]:
    return [addr for _, addr in getaddresses([str(v) for v in msg.get_all(header, [])]) if addr]


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
        text = part.get_payload(decode=True).decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"(?is)<(script|style).*?</\1>", " ", text)))
    return text.strip()


def _attachment_names(msg: EmailMessage) -> list[str]:
    return [part.get_filename() or "unnamed" for part in msg.iter_attachments()]
