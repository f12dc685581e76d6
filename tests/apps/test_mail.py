"""The mail app over real Maildir folders; sending through a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import socket
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller

from intentos.apps.contacts import AddArgs, ContactsApp
from intentos.apps.mail import (
    ComposeArgs,
    DeleteArgs,
    DraftArgs,
    ListArgs,
    MailApp,
    MoveArgs,
    ReadArgs,
    ReplyArgs,
    SearchArgs,
    SendDraftArgs,
)
from intentos.errors import AppError

INBOX = {
    "inbox": [
        {"from": "Anna Berg <anna@example.org>", "subject": "Lunch on Friday?", "body": "Shall we meet at noon?",
         "date": "2026-03-09T12:00:00"},
        {"from": "claims@allianz.example", "subject": "Your claim 4711", "date": "2026-03-10T08:00:00",
         "body": "Please send the car title.", "attachments": {"form.txt": "claim form"}},
        {"from": "news@shop.example", "subject": "Sale", "body": "Everything must go", "read": True,
         "date": "2026-03-01T10:00:00"},
    ],
}


class Recorder:
    def __init__(self) -> None:
        self.received: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server(ctx):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    ctx.settings["smtp"] = {"host": "127.0.0.1", "port": port, "starttls": False, "from_address": "alex@example.org"}
    yield recorder
    controller.stop()


@pytest.fixture
def mail(ctx):
    app = MailApp(ctx)
    app.seed(INBOX)
    return app


def test_list_newest_first_with_filters(mail):
    listed = mail.list(ListArgs())
    assert [m.subject for m in listed.messages] == ["Your claim 4711", "Lunch on Friday?", "Sale"]
    first = listed.messages[0]
    assert (first.sender_email, first.date, first.has_attachments, first.attachments, first.unread) == (
        "claims@allianz.example", "2026-03-10T08:00:00+01:00", True, ["form.txt"], True)
    assert first.to == ["alex@example.org"] and first.snippet == "Please send the car title."
    assert mail.list(ListArgs(unread_only=True)).count == 2
    assert [m.subject for m in mail.list(ListArgs(sender="anna")).messages] == ["Lunch on Friday?"]
    assert mail.list(ListArgs(subject="claim", limit=1)).total == 1
    with pytest.raises(AppError, match="no mail folder 'archive'"):
        mail.list(ListArgs(folder="archive"))


def test_read_returns_body_and_marks_read(mail):
    msg_id = mail.list(ListArgs(sender="allianz")).messages[0].id
    full = mail.read(ReadArgs(id=msg_id))
    assert full.body == "Please send the car title." and full.attachments == ["form.txt"]
    assert not mail.list(ListArgs(sender="allianz")).messages[0].unread
    with pytest.raises(AppError, match="no message with id"):
        mail.read(ReadArgs(id="missing"))


def test_search_across_folders(mail):
    mail.draft(DraftArgs(to=["bob@example.org"], subject="Notes", body="about the car title"))
    found = mail.search(SearchArgs(query="car title"))
    assert sorted(m.folder for m in found.messages) == ["drafts", "inbox"]
    assert mail.search(SearchArgs(query="noon", folder="inbox")).count == 1


def test_send_without_smtp_queues_in_outbox(mail, ctx):
    ctx.sandbox.write_text("Documents/car-title.pdf", "%PDF-1.4 title")
    sent = mail.send(ComposeArgs(to=["claims@allianz.example"], subject="Car title", body="Attached.",
                                 attachments=["Documents/car-title.pdf"]))
    assert (sent.queued, sent.delivered, sent.folder) == (True, False, "outbox")
    queued = mail.list(ListArgs(folder="outbox")).messages
    assert [m.id for m in queued] == [sent.id] and queued[0].attachments == ["car-title.pdf"]
    assert "outbox 1 queued, not sent" in mail.summary()
    with pytest.raises(AppError, match="no SMTP server"):
        mail.send_draft(SendDraftArgs(id=sent.id))


def test_send_through_smtp_delivers_and_files_in_sent(mail, ctx, smtp_server):
    ctx.sandbox.write_text("Documents/car-title.pdf", "%PDF-1.4 title")
    sent = mail.send(ComposeArgs(to=["claims@allianz.example"], subject="Car title", body="Here it is.",
                                 attachments=["Documents/car-title.pdf"]))
    assert (sent.delivered, sent.queued, sent.folder, sent.to) == (True, False, "sent", ["claims@allianz.example"])
    (envelope,) = smtp_server.received
    assert envelope.rcpt_tos == ["claims@allianz.example"] and envelope.mail_from == "alex@example.org"
    received = email.message_from_bytes(envelope.content, policy=default_policy)
    assert received["subject"] == "Car title"
    assert [p.get_filename() for p in received.iter_attachments()] == ["car-title.pdf"]
    filed = mail.list(ListArgs(folder="sent")).messages
    assert [m.id for m in filed] == [sent.id] and filed[0].attachments == ["car-title.pdf"]
    assert mail.list(ListArgs(folder="outbox")).count == 0


def test_send_resolves_contact_names(mail, ctx, smtp_server):
    ContactsApp(ctx).add(AddArgs(name="Anna Berg", email="anna@example.org"))
    sent = mail.send(ComposeArgs(to=["Anna Berg"], cc=["bob@example.org"], subject="Hi", body="Hello"))
    assert sent.to == ["anna@example.org"]
    assert smtp_server.received[0].rcpt_tos == ["anna@example.org", "bob@example.org"]
    with pytest.raises(AppError, match="Zed Unknown"):
        mail.send(ComposeArgs(to=["Zed Unknown"], subject="Hi", body="Hello"))


def test_attachment_problems_are_refused(mail, ctx):
    with pytest.raises(AppError, match="attachment Documents/missing.pdf does not exist"):
        mail.send(ComposeArgs(to=["a@example.org"], subject="x", body="y", attachments=["Documents/missing.pdf"]))
    with pytest.raises(AppError, match=r"attachment \.\./\.\./etc/passwd .*outside the sandbox"):
        mail.send(ComposeArgs(to=["a@example.org"], subject="x", body="y", attachments=["../../etc/passwd"]))
    with pytest.raises(AppError, match="attachment /etc/passwd .*outside the sandbox"):
        mail.draft(DraftArgs(to=["a@example.org"], subject="x", body="y", attachments=["/etc/passwd"]))
    assert mail.list(ListArgs(folder="outbox")).count == 0 and mail.list(ListArgs(folder="drafts")).count == 0


def test_draft_then_send_draft(mail, ctx, smtp_server):
    draft = mail.draft(DraftArgs(to=["bob@example.org"], subject="Plan", body="Draft text"))
    assert draft.folder == "drafts" and not draft.unread
    sent = mail.send_draft(SendDraftArgs(id=draft.id))
    assert sent.delivered and smtp_server.received[0].rcpt_tos == ["bob@example.org"]
    assert mail.list(ListArgs(folder="drafts")).count == 0 and mail.list(ListArgs(folder="sent")).count == 1


def test_reply_quotes_and_threads(mail, smtp_server):
    original = mail.list(ListArgs(sender="anna")).messages[0]
    sent = mail.reply(ReplyArgs(id=original.id, body="Yes, noon works."))
    assert sent.to == ["anna@example.org"] and sent.subject == "Re: Lunch on Friday?"
    received = email.message_from_bytes(smtp_server.received[0].content, policy=default_policy)
    assert received["In-Reply-To"] and "> Shall we meet at noon?" in received.get_body().get_content()


def test_move_keeps_id_and_delete_goes_to_trash(mail):
    msg = mail.list(ListArgs(sender="shop")).messages[0]
    moved = mail.move(MoveArgs(id=msg.id, folder="archive"))
    assert (moved.id, moved.folder) == (msg.id, "archive")
    assert mail.list(ListArgs(folder="archive")).messages[0].id == msg.id
    deleted = mail.delete(DeleteArgs(id=msg.id))
    assert (deleted.folder, deleted.previous_folder) == ("trash", "archive")
    assert mail.list(ListArgs(folder="trash")).messages[0].subject == "Sale"
    assert mail.search(SearchArgs(query="Everything")).count == 0  # trash is not searched by default
    with pytest.raises(AppError, match="already in trash"):
        mail.delete(DeleteArgs(id=msg.id))
    with pytest.raises(AppError, match=r"^'../escape' is not a mail folder name \(.*the mail folders are archive, "
                                       r"drafts, inbox, outbox, sent, trash; a new name such as archive"):
        mail.move(MoveArgs(id=msg.id, folder="../escape"))


def test_smtp_failure_is_not_claimed_as_sent(mail, ctx):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    ctx.settings["smtp"] = {"host": "127.0.0.1", "port": port, "starttls": False}
    with pytest.raises(AppError, match="NOT sent, queued in outbox"):
        mail.send(ComposeArgs(to=["a@example.org"], subject="x", body="y"))
    assert mail.list(ListArgs(folder="outbox")).count == 1 and mail.list(ListArgs(folder="sent")).count == 0


def test_summary(mail):
    assert mail.summary() == "mail: inbox 3 (2 unread)"
