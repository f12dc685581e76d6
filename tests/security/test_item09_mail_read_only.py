"""Item 9: mail.read (effect `read`) never modifies a message.

Malformed messages (a leading mbox `From ` line, CRLF line ends, binary garbage, no headers at all,
an empty file) keep every byte after mail.read, mail.list and mail.search: marking a message seen only
renames its file from new/ to cur/ with the Maildir info suffix `:2,S` (through the sandbox, so the
executor's undo log can roll it back). A message that cannot be read at all (over the size limit) is
named in one line and left where it was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from intentos.app import Context
from intentos.apps import mail as mail_module
from intentos.apps.mail import ListArgs, MailApp, ReadArgs, SearchArgs
from intentos.errors import AppError
from intentos.executor import Executor
from intentos.table import FunctionTable
from intentos.workflow import Workflow

MALFORMED = {
    "1700000001.fromline": b"From someone@example.org Mon Jan  5 10:00:00 2026\nFrom: a@example.org\n"
                           b"Subject: with an mbox line\n\nbody\n>From the start\n",
    "1700000002.crlf": b"From: b@example.org\r\nSubject: crlf\r\n\r\nline one\r\nline two\r\n",
    "1700000003.binary": bytes(range(256)) * 8 + b"\xff\xfe\x00\x00",
    "1700000004.noheaders": b"just a body, no header at all\nsecond line",
    "1700000005.empty": b"",
    "1700000006.badmime": b"Content-Type: multipart/mixed; boundary=x\nFrom: c@example.org\n\n--x\n"
                          b"Content-Type: text/plain; charset=no-such-charset\nContent-Transfer-Encoding: base64\n\n"
                          b"@@@not base64@@@\n--x--",
}


def _by_key(root: Path) -> dict[str, tuple[str, str]]:
    """Every message file under Mail/: its key -> (sub folder and name, sha256 of its bytes)."""
    out = {}
    for path in sorted((root / "Mail").rglob("*")):
        if path.is_file():
            out[path.name.split(":")[0]] = (f"{path.parent.parent.name}/{path.parent.name}/{path.name}",
                                            hashlib.sha256(path.read_bytes()).hexdigest())
    return out


@pytest.fixture
def inbox(ctx: Context) -> Path:
    root = ctx.sandbox.root
    for i, (key, data) in enumerate(MALFORMED.items()):
        sub, name = ("new", key) if i % 2 == 0 else ("cur", f"{key}:2,F")  # unread ones both ways
        path = root / "Mail/inbox" / sub / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "Mail/inbox/tmp").mkdir()
    return root


def test_read_of_malformed_messages_keeps_every_byte(ctx: Context, inbox: Path) -> None:
    before = _by_key(inbox)
    app = MailApp(ctx)
    for key in MALFORMED:
        try:
            message = app.read(ReadArgs(id=key))
        except AppError as exc:  # acceptable only as one line naming the file
            assert "\n" not in str(exc) and key in str(exc)
        else:
            assert message.id == key and not message.unread
    after = _by_key(inbox)
    assert {k: sha for k, (_, sha) in after.items()} == {k: sha for k, (_, sha) in before.items()}
    for key, (where, _) in after.items():
        flags = before[key][0].partition(":2,")[2]
        assert where == f"inbox/cur/{key}:2,{''.join(sorted(set(flags) | {'S'}))}", where
    # Reading again changes nothing at all, not even a name.
    for key in MALFORMED:
        try:
            app.read(ReadArgs(id=key))
        except AppError:
            pass
    assert _by_key(inbox) == after


def test_list_and_search_change_nothing(ctx: Context, inbox: Path) -> None:
    before = _by_key(inbox)
    app = MailApp(ctx)
    listed = app.list(ListArgs(limit=50))
    assert listed.total + len(listed.problems) == len(MALFORMED)
    assert all("\n" not in p for p in listed.problems)
    app.search(SearchArgs(query="body"))
    app.summary()
    assert _by_key(inbox) == before


def test_read_through_the_executor_only_renames(ctx: Context, inbox: Path) -> None:
    before = _by_key(inbox)
    table = FunctionTable([MailApp])
    states = {f"r{i}": {"call": "mail.read", "args": {"id": key}, "next": f"r{i + 1}" if i + 1 < len(MALFORMED)
                        else "done", "on_failure": f"r{i + 1}" if i + 1 < len(MALFORMED) else "done"}
              for i, key in enumerate(MALFORMED)}
    view = Executor(table, ctx).run(Workflow.model_validate({"start": "r0", "states": states}))
    assert view.status == "done"
    assert all(s.status == "ok" or (s.error and "\n" not in s.error) for s in view.steps)
    after = _by_key(inbox)
    assert {k: sha for k, (_, sha) in after.items()} == {k: sha for k, (_, sha) in before.items()}
    assert all(where.startswith("inbox/cur/") and where.endswith("S") for where, _ in after.values())
    leftovers = [p for p in (inbox / "Mail").rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []  # no temporary copies


def test_a_message_over_the_size_limit_is_named_and_left_alone(ctx: Context, inbox: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mail_module, "MAX_MESSAGE_BYTES", 1000)  # the binary one is 2052 bytes
    before = _by_key(inbox)
    app = MailApp(ctx)
    with pytest.raises(AppError) as info:
        app.read(ReadArgs(id="1700000003.binary"))
    message = str(info.value)
    assert "\n" not in message and "Mail/inbox/new/1700000003.binary" in message and "limit" in message
    listed = app.list(ListArgs(limit=50))
    assert any("1700000003.binary" in p for p in listed.problems)
    assert _by_key(inbox) == before
