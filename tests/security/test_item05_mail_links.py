"""Item 5 (mail): links in Maildir folders and hard-linked attachments never read what is outside.

A message file in `cur/` or `new/` that is a symbolic link (to a file outside the sandbox) is not a
message: mail.list and mail.search skip it and name it in `problems`, mail.read refuses it with one
line naming it. A message file that is a hard link of an outside file is refused when read (listed
as a problem). An attachment that is a hard link (or a symbolic link) to an outside file is refused by
mail.send, mail.draft and mail.reply with one line naming the path, and nothing is queued or saved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentos.app import Context
from intentos.apps.mail import ComposeArgs, DraftArgs, ListArgs, MailApp, ReadArgs, ReplyArgs, SearchArgs
from intentos.cli import app as cli_app
from intentos.errors import AppError

SECRET = b"From: boss@corp.example\nSubject: OUTSIDE-SECRET payroll\n\nOUTSIDE-SECRET salaries\n"
INBOX = {"inbox": [{"from": "Anna Berg <anna@example.org>", "subject": "Lunch", "body": "At noon?",
                    "date": "2026-03-09T12:00:00"}]}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.eml").write_bytes(SECRET)
    return folder


@pytest.fixture
def mail(ctx: Context) -> MailApp:
    app = MailApp(ctx)
    app.seed(INBOX)
    return app


def _hard_link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError as exc:  # pragma: no cover - a file system without hard links
        pytest.skip(f"no hard links here: {exc}")


def _one_line_naming(exc: BaseException, path: str) -> str:
    message = str(exc)
    assert "\n" not in message and path in message, message
    assert "OUTSIDE-SECRET" not in message
    return message


def _nothing_secret_inside(ctx: Context) -> None:
    for path in ctx.sandbox.root.rglob("*"):
        if path.is_file() and not path.is_symlink() and os.stat(path).st_nlink == 1:
            assert b"OUTSIDE-SECRET" not in path.read_bytes(), path


@pytest.mark.parametrize("sub, name", [("cur", "1700000000.evil:2,S"), ("new", "1700000000.evil")])
@pytest.mark.parametrize("absolute", [True, False])
def test_a_symlinked_message_is_not_listed_searched_or_read(mail: MailApp, ctx: Context, outside: Path,
                                                             sub: str, name: str, absolute: bool) -> None:
    link = ctx.sandbox.root / "Mail" / "inbox" / sub / name
    target = outside / "secret.eml"
    link.symlink_to(target if absolute else os.path.relpath(target, link.parent))
    listed = mail.list(ListArgs())
    assert [m.subject for m in listed.messages] == ["Lunch"]
    assert any(f"Mail/inbox/{sub}/{name}" in p and "link" in p for p in listed.problems), listed.problems
    found = mail.search(SearchArgs(query="OUTSIDE-SECRET"))
    assert found.count == 0 and any(name in p for p in found.problems)
    with pytest.raises(AppError) as info:
        mail.read(ReadArgs(id="1700000000.evil"))
    _one_line_naming(info.value, f"Mail/inbox/{sub}/{name}")
    assert link.is_symlink() and target.read_bytes() == SECRET  # neither replaced nor written through
    _nothing_secret_inside(ctx)


def test_a_hard_linked_message_is_refused(mail: MailApp, ctx: Context, outside: Path) -> None:
    name = "1700000001.hard:2,S"
    _hard_link(outside / "secret.eml", ctx.sandbox.root / "Mail/inbox/cur" / name)
    listed = mail.list(ListArgs())
    assert [m.subject for m in listed.messages] == ["Lunch"]
    assert any(f"Mail/inbox/cur/{name}" in p and "hard links outside" in p for p in listed.problems)
    with pytest.raises(AppError) as info:
        mail.read(ReadArgs(id="1700000001.hard"))
    assert "hard links outside" in _one_line_naming(info.value, f"Mail/inbox/cur/{name}")
    assert mail.search(SearchArgs(query="salaries")).count == 0
    assert (outside / "secret.eml").read_bytes() == SECRET
    assert (ctx.sandbox.root / "Mail/inbox/cur" / name).exists()  # not renamed, not marked


@pytest.mark.parametrize("kind", ["hard", "symbolic"])
def test_an_attachment_linked_to_an_outside_file_is_refused(mail: MailApp, ctx: Context, outside: Path,
                                                             kind: str) -> None:
    attachment = ctx.sandbox.root / "Documents" / "report.pdf"
    if kind == "hard":
        _hard_link(outside / "secret.eml", attachment)
    else:
        attachment.parent.mkdir(parents=True, exist_ok=True)
        attachment.symlink_to(outside / "secret.eml")
    original = mail.list(ListArgs()).messages[0].id
    attached = ["Documents/report.pdf"]
    attempts = [
        lambda: mail.send(ComposeArgs(to=["a@example.org"], subject="x", body="y", attachments=attached)),
        lambda: mail.draft(DraftArgs(to=["a@example.org"], subject="x", body="y", attachments=attached)),
        lambda: mail.reply(ReplyArgs(id=original, body="see attached", attachments=attached)),
    ]
    for attempt in attempts:
        with pytest.raises(AppError) as info:
            attempt()
        message = _one_line_naming(info.value, "Documents/report.pdf")
        assert "hard links outside" in message if kind == "hard" else "outside the sandbox" in message
    for folder in ("outbox", "drafts", "sent"):
        assert mail.list(ListArgs(folder=folder)).count == 0
    assert (outside / "secret.eml").read_bytes() == SECRET
    _nothing_secret_inside(ctx)


def test_through_the_cli(mail: MailApp, ctx: Context, outside: Path) -> None:
    (ctx.sandbox.root / "Mail/inbox/cur/1700000002.cli:2,S").symlink_to(outside / "secret.eml")
    runner = CliRunner()
    base = ["--sandbox", str(ctx.sandbox.root), "--json", "--yes"]
    read = runner.invoke(cli_app, ["call", "mail.read", "--args", json.dumps({"id": "1700000002.cli"}), *base])
    assert read.exit_code == 1, read.output
    out = json.loads(read.stdout)
    assert out["status"] == "failed" and "Mail/inbox/cur/1700000002.cli:2,S" in out["error"]
    assert "\n" not in out["error"] and "OUTSIDE-SECRET" not in read.stdout
    listed = runner.invoke(cli_app, ["call", "mail.list", *base])
    assert listed.exit_code == 0, listed.output
    result = json.loads(listed.stdout)["result"]
    assert [m["subject"] for m in result["messages"]] == ["Lunch"] and "OUTSIDE-SECRET" not in listed.stdout
    _nothing_secret_inside(ctx)
