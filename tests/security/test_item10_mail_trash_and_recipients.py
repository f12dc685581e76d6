"""Item 10 (mail): no deleting without asking, and the confirmation names everyone a mail goes to.

mail.move refuses the trash folder whatever it is called (any case, another program's name for it, a
folder link leading to it): mail.delete does that, and asks first. The confirmation of send,
send_draft, reply and draft lists every recipient (To, Cc, Bcc) and attachment, from the same code
that sends, and flags a reply going to a Reply-To other than the sender; a reply-all Cc never looks a
bare name up in the contacts. Tested through the Executor with a confirmer that records what it saw.
"""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import getaddresses

import pytest

from intentos.app import Context
from intentos.apps.contacts import AddArgs, ContactsApp
from intentos.apps.mail import ListArgs, MailApp, MoveArgs
from intentos.errors import AppError
from intentos.executor import ConfirmRequest, Executor
from intentos.table import FunctionTable
from intentos.workflow import Workflow

ATTACKER = "attacker@evil.example"
SPY = "spy@evil.example"


def _plant(ctx: Context, key: str, raw: bytes) -> None:
    path = ctx.sandbox.root / "Mail/inbox/cur" / f"{key}:2,S"
    path.parent.mkdir(parents=True, exist_ok=True)
    (ctx.sandbox.root / "Mail/inbox/new").mkdir(exist_ok=True)
    (ctx.sandbox.root / "Mail/inbox/tmp").mkdir(exist_ok=True)
    path.write_bytes(raw)


PHISH = (f"From: Anna Berg <anna@example.org>\nReply-To: Anna <{ATTACKER}>\nTo: Alex Doe <alex@example.org>\n"
         f"Cc: {SPY}, Ben <ben@example.org>, boss\nSubject: Contract\nMessage-ID: <p1@example.org>\n"
         "Date: Mon, 09 Mar 2026 12:00:00 +0100\n\nCan you send me the signed contract?\n").encode()


class Recorder:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.requests: list[ConfirmRequest] = []

    def __call__(self, request: ConfirmRequest) -> bool:
        self.requests.append(request)
        return self.answer


def _run(ctx: Context, call: str, args: dict, answer: bool) -> tuple[Recorder, object]:
    recorder = Recorder(answer)
    table = FunctionTable([MailApp, ContactsApp])
    workflow = Workflow.model_validate({"start": "s", "states": {"s": {"call": call, "args": args}}})
    view = Executor(table, ctx, confirm=recorder).run(workflow)
    return recorder, view


def _outbox(ctx: Context) -> list[EmailMessage]:
    folder = ctx.sandbox.root / "Mail/outbox"
    return [email.message_from_bytes(p.read_bytes(), policy=default_policy)
            for p in sorted(folder.rglob("*")) if p.is_file()] if folder.exists() else []


def _listed(details: tuple[str, ...]) -> dict[str, list[str]]:
    """Addresses the confirmation shows, by header."""
    out: dict[str, list[str]] = {}
    for line in details:
        header, _, rest = line.partition(": ")
        if header in ("To", "Cc", "Bcc"):
            out[header] = [addr for _, addr in getaddresses([rest])]
    return out


def _sent_to(msg: EmailMessage) -> dict[str, list[str]]:
    return {h: [a for _, a in getaddresses([str(v) for v in msg.get_all(h, [])])] for h in ("To", "Cc", "Bcc")
            if msg.get_all(h)}


# -- move into the trash -------------------------------------------------------------------------------------


@pytest.fixture
def mail(ctx: Context) -> MailApp:
    app = MailApp(ctx)
    app.seed({"inbox": [{"from": "news@shop.example", "subject": "Sale", "body": "Everything must go"}],
              "trash": []})
    return app


@pytest.mark.parametrize("folder", ["trash", "Trash", " TRASH ", "deleted", "Deleted_Items", "deleted-messages",
                                   "bin", "Wastebasket"])
def test_move_refuses_the_trash_by_any_name(mail: MailApp, ctx: Context, folder: str) -> None:
    msg = mail.list(ListArgs()).messages[0]
    with pytest.raises(AppError) as info:
        mail.move(MoveArgs(id=msg.id, folder=folder))
    assert "use mail.delete" in str(info.value) and "\n" not in str(info.value)
    assert mail.list(ListArgs()).messages[0].id == msg.id and mail.list(ListArgs(folder="trash")).count == 0


def test_move_refuses_a_folder_link_to_the_trash(mail: MailApp, ctx: Context) -> None:
    msg = mail.list(ListArgs()).messages[0]
    root = ctx.sandbox.root / "Mail"
    (root / "archive2").symlink_to("trash")
    with pytest.raises(AppError, match="use mail.delete"):
        mail.move(MoveArgs(id=msg.id, folder="archive2"))
    (root / "keep" / "tmp").mkdir(parents=True)
    (root / "keep" / "new").mkdir()
    (root / "keep" / "cur").symlink_to("../trash/cur")
    with pytest.raises(AppError, match="Mail/keep/cur is not a folder"):
        mail.move(MoveArgs(id=msg.id, folder="keep"))
    assert mail.list(ListArgs(folder="trash")).count == 0 and mail.list(ListArgs()).count == 1


def test_move_into_trash_through_the_executor_fails_without_asking(mail: MailApp, ctx: Context) -> None:
    msg = mail.list(ListArgs()).messages[0]
    recorder, view = _run(ctx, "mail.move", {"id": msg.id, "folder": "Trash"}, answer=True)
    assert view.steps[-1].status == "error" and "use mail.delete" in view.steps[-1].error
    assert mail.list(ListArgs(folder="trash")).count == 0
    recorder, view = _run(ctx, "mail.delete", {"id": msg.id}, answer=False)
    assert [r.function.name for r in recorder.requests] == ["mail.delete"]  # delete asks, and was declined
    assert mail.list(ListArgs(folder="trash")).count == 0


# -- the confirmation names every recipient ------------------------------------------------------------------


@pytest.fixture
def phish(ctx: Context) -> str:
    ContactsApp(ctx).add(AddArgs(name="boss", email="boss@corp.example"))
    ctx.sandbox.write_text("Documents/contract.pdf", "%PDF signed contract")
    _plant(ctx, "1700000100.phish", PHISH)
    return "1700000100.phish"


def test_reply_all_preview_names_reply_to_and_every_cc(ctx: Context, phish: str) -> None:
    args = {"id": phish, "body": "Here it is.", "reply_all": True, "attachments": ["Documents/contract.pdf"]}
    declined, view = _run(ctx, "mail.reply", args, answer=False)
    assert view.status == "declined" and _outbox(ctx) == []
    (request,) = declined.requests
    details = "\n".join(request.details)
    assert ATTACKER in details and SPY in details and "ben@example.org" in details
    assert "Reply-To differs from the sender" in details and "anna@example.org" in details
    assert "Documents/contract.pdf" in details
    assert "boss@corp.example" not in details  # a bare name in Cc is not looked up in the contacts
    shown = _listed(request.details)
    assert shown == {"To": [ATTACKER], "Cc": [SPY, "ben@example.org"]}

    accepted, view = _run(ctx, "mail.reply", args, answer=True)
    assert view.status == "done"
    (queued,) = _outbox(ctx)
    assert _sent_to(queued) == _listed(accepted.requests[0].details) == shown  # exactly what was shown
    assert [p.get_filename() for p in queued.iter_attachments()] == ["contract.pdf"]


def test_plain_reply_preview_flags_reply_to(ctx: Context, phish: str) -> None:
    declined, _ = _run(ctx, "mail.reply", {"id": phish, "body": "ok"}, answer=False)
    details = declined.requests[0].details
    assert any(line.startswith("Reply-To differs from the sender") and ATTACKER in line for line in details)
    assert _listed(details) == {"To": [ATTACKER]} and SPY not in "\n".join(details)
    assert "no attachments" in details


def test_reply_preview_without_reply_to_is_quiet(ctx: Context) -> None:
    _plant(ctx, "1700000101.plain", b"From: anna@example.org\nTo: alex@example.org\nSubject: Hi\n\nHello\n")
    declined, _ = _run(ctx, "mail.reply", {"id": "1700000101.plain", "body": "hi"}, answer=False)
    details = declined.requests[0].details
    assert _listed(details) == {"To": ["anna@example.org"]}
    assert not any("differs" in line for line in details)


def test_send_and_send_draft_preview_every_recipient_and_attachment(ctx: Context) -> None:
    ctx.sandbox.write_text("Documents/a.txt", "A")
    args = {"to": ["x@example.org"], "cc": [SPY], "bcc": ["hidden@evil.example"], "subject": "s", "body": "b",
            "attachments": ["Documents/a.txt"]}
    declined, _ = _run(ctx, "mail.send", args, answer=False)
    details = declined.requests[0].details
    assert _listed(details) == {"To": ["x@example.org"], "Cc": [SPY], "Bcc": ["hidden@evil.example"]}
    assert "attachment: Documents/a.txt (1 bytes)" in details
    _run(ctx, "mail.draft", args, answer=True)
    draft = MailApp(ctx).list(ListArgs(folder="drafts")).messages[0]
    declined, _ = _run(ctx, "mail.send_draft", {"id": draft.id}, answer=False)
    details = declined.requests[0].details
    assert _listed(details) == {"To": ["x@example.org"], "Cc": [SPY], "Bcc": ["hidden@evil.example"]}
    assert any(line.startswith("attachment: a.txt") for line in details)
    assert MailApp(ctx).list(ListArgs(folder="drafts")).count == 1  # declined: nothing sent, nothing moved
