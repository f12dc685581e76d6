"""Item 16 (apps): bounded work, links skipped, and every malformed data file named in one line.

- A FREQ=SECONDLY rule (or one whose filters never match) makes calendar.list_events neither run
  into the step timeout nor list more than MAX_OCCURRENCES occurrences of one event.
- A link in Notes/ (leading outside, or to a folder outside) is skipped and named; the other notes
  keep working.
- A malformed tasks.json, .ics, .vcf, note or Maildir message gives ONE line naming the file
  (sandbox-relative) and the problem: no traceback, no RecursionError, no MemoryError (files are read
  with a size limit), and the file is left byte for byte as it was. Among many .vcf files, one bad file
  is named by contacts.find while lookups and additions keep working with the others.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.app import Context
from intentos.apps import calendar as calendar_module
from intentos.apps import tasks as tasks_module
from intentos.apps.calendar import CalendarApp
from intentos.apps.contacts import ContactsApp
from intentos.apps.mail import MailApp
from intentos.apps.notes import NotesApp
from intentos.apps.tasks import TasksApp
from intentos.cli import app as cli_app
from intentos.executor import Executor
from intentos.table import FunctionTable
from intentos.workflow import Workflow

APPS = [CalendarApp, ContactsApp, MailApp, NotesApp, TasksApp]


def _digest(root: Path) -> dict[str, str]:
    """Every file and link in the sandbox (the executor's own folder aside) -> its bytes' sha256 or link target."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".intentos"):
            continue
        if path.is_symlink():
            out[rel] = "-> " + str(path.readlink())
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _call(ctx: Context, name: str, args: dict[str, Any] | None = None, timeout: float = 120.0) -> Any:
    """One call through the Executor, as a workflow step; returns the step record."""
    workflow = Workflow.model_validate({"start": "s", "states": {"s": {"call": name, "args": args or {}}}})
    view = Executor(FunctionTable(APPS), ctx, assume_yes=True, step_timeout=timeout).run(workflow)
    return view.steps[-1]


def _fails_naming(step: Any, path: str, *words: str) -> str:
    assert step.status == "error", step
    error = step.error
    assert "\n" not in error and path in error, error
    for bad in ("Traceback", "RecursionError", "MemoryError", ".py:"):
        assert bad not in error, error
    for word in words:
        assert word in error, error
    return error


def _ics(rule: str, start: str = "20000101T000000Z") -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:tick@x\r\n"
            f"DTSTAMP:20260101T000000Z\r\nSUMMARY:tick\r\nDTSTART:{start}\r\nDTEND:{start}\r\nRRULE:{rule}\r\n"
            "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:meet@x\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Team meeting\r\n"
            "DTSTART:20260311T090000Z\r\nDTEND:20260311T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


# -- recurrence is bounded -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule, start", [
    ("FREQ=SECONDLY", "20000101T000000Z"),
    ("FREQ=SECONDLY", "20260310T080000Z"),
    ("FREQ=MINUTELY;INTERVAL=1", "19700101T000000Z"),
    ("FREQ=SECONDLY;COUNT=900000000", "20260301T000000Z"),
    ("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30", "20000101T000000Z"),  # never matches
    ("FREQ=SECONDLY;BYMONTH=1,11;BYHOUR=13,19", "20260301T000000Z"),  # matches, far from the window
    ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "20000106T000000Z"),  # a Thursday: its weeks never hold a Tuesday
])
def test_list_events_with_a_runaway_rule_is_bounded(ctx: Context, rule: str, start: str) -> None:
    ctx.sandbox.write_text("Calendar/calendar.ics", _ics(rule, start))
    before = _digest(ctx.sandbox.root)
    began = time.monotonic()
    step = _call(ctx, "calendar.list_events", {"start": "2026-03-10", "end": "2026-03-16"}, timeout=10)
    assert time.monotonic() - began < 2.0
    assert step.status == "ok", step.error
    ticks = [e for e in step.result["events"] if e["title"] == "tick"]
    assert len(ticks) <= calendar_module.MAX_OCCURRENCES
    assert [e["title"] for e in step.result["events"] if e["title"] != "tick"] == ["Team meeting"]
    if (rule, start) == ("FREQ=SECONDLY", "20000101T000000Z"):
        assert len(ticks) == calendar_module.MAX_OCCURRENCES and ticks[0]["start"] == "2026-03-10T00:00:00+01:00"
    assert _digest(ctx.sandbox.root) == before


def test_many_runaway_events_share_one_budget(ctx: Context) -> None:
    events = "".join(f"BEGIN:VEVENT\r\nUID:t{i}@x\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:t{i}\r\n"
                     f"DTSTART:2000010{1 + i % 9}T000000Z\r\nRRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\n" for i in range(40))
    ctx.sandbox.write_text("Calendar/calendar.ics", f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n{events}"
                                                    "END:VCALENDAR\r\n")
    began = time.monotonic()
    step = _call(ctx, "calendar.list_events", {}, timeout=30)
    assert step.status == "ok" and step.result["count"] <= calendar_module.MAX_TOTAL_OCCURRENCES
    assert time.monotonic() - began < 10.0


# -- links in Notes/ -----------------------------------------------------------------------------------------


def test_a_link_in_notes_is_skipped_and_named(ctx: Context, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.md").write_text("---\ntitle: OUTSIDE-SECRET\n---\nOUTSIDE-SECRET body\n")
    (outside / "folder" / "more.md").write_text("OUTSIDE-SECRET too\n")
    NotesApp(ctx).seed([{"title": "Trip to Lisbon", "body": "Flights booked"}])
    notes_dir = ctx.sandbox.root / "Notes"
    (notes_dir / "evil.md").symlink_to(outside / "secret.md")
    (notes_dir / "dir").symlink_to(outside / "folder")
    (notes_dir / "dangling.md").symlink_to(notes_dir / "nowhere.md")
    before = _digest(ctx.sandbox.root)
    listed = _call(ctx, "notes.list")
    assert listed.status == "ok", listed.error
    assert listed.result["paths"] == ["Notes/trip-to-lisbon.md"]
    problems = listed.result["problems"]
    assert any("Notes/evil.md" in p and "link" in p for p in problems) and all("\n" not in p for p in problems)
    assert "OUTSIDE-SECRET" not in json.dumps(listed.result)
    found = _call(ctx, "notes.search", {"query": "secret"})
    assert found.status == "ok" and found.result["count"] == 0
    assert _call(ctx, "notes.read", {"note": "Trip to Lisbon"}).result["body"].strip() == "Flights booked"
    _fails_naming(_call(ctx, "notes.read", {"note": "Notes/evil.md"}), "Notes/evil.md")
    _fails_naming(_call(ctx, "notes.read", {"note": "Notes/dir/more.md"}), "Notes/dir/more.md")
    assert _digest(ctx.sandbox.root) == before  # reading changed nothing
    assert _call(ctx, "notes.create", {"title": "Evil"}).status == "ok"  # a free name: not the link's
    assert (notes_dir / "evil.md").is_symlink() and "OUTSIDE-SECRET" in (outside / "secret.md").read_text()
    assert _call(ctx, "notes.append", {"note": "Trip to Lisbon", "text": "Hotel"}).status == "ok"


# -- malformed data files ------------------------------------------------------------------------------------

DEEP = 100_000

TASKS = {
    "nested object": '{"tasks": [[[{"id": "t1"}]]]}',
    "list of numbers": "[1, 2]",
    "deep list": "[" * DEEP + "]" * DEEP,
    "deep field": '[{"id": "t1", "title": "x", "extra": ' + "[" * 600 + "]" * 600 + "}]",
    "due out of range": '[{"id": "t1", "title": "x", "due": "9999-12-31T23:59:59-12:00"}]',
    "not utf-8": b'[{"id": "t1", "title": "\xff\xfe"}]',
    "bad json": '[{"id": "t1",',
    "null": "null",
}


@pytest.mark.parametrize("content", TASKS.values(), ids=TASKS.keys())
def test_a_malformed_tasks_file_is_named_in_one_line(ctx: Context, content: str | bytes) -> None:
    path = ctx.sandbox.root / "Tasks" / "tasks.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    before = _digest(ctx.sandbox.root)
    for call, args in (("tasks.list", {}), ("tasks.add", {"title": "new"}), ("tasks.complete", {"task": "t1"})):
        _fails_naming(_call(ctx, call, args), "Tasks/tasks.json")
    assert _digest(ctx.sandbox.root) == before


def test_a_due_date_on_the_last_day_of_the_calendar_is_no_crash(ctx: Context) -> None:
    ctx.sandbox.write_text("Tasks/tasks.json", '[{"id": "t1", "title": "x", "due": "9999-12-31"}]')
    listed = _call(ctx, "tasks.list")
    assert listed.status == "ok" and listed.result["ids"] == ["t1"]


def test_tasks_files_are_read_with_a_limit(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx.sandbox.write_text("Tasks/tasks.json", json.dumps([{"id": "t1", "title": "x" * 5000}]))
    monkeypatch.setattr(tasks_module, "MAX_TASKS_BYTES", 1000)
    _fails_naming(_call(ctx, "tasks.list"), "Tasks/tasks.json", "limit")


ICS = {
    "deep nesting": "BEGIN:VCALENDAR\r\n" + "BEGIN:VEVENT\r\n" * 5000 + "END:VEVENT\r\n" * 5000 + "END:VCALENDAR\r\n",
    "garbage": "\x00\x01 not a calendar at all",
    "bad rrule": _ics("FREQ=SOMETIMES"),
    "bad dtstart": _ics("FREQ=DAILY", start="notadate"),
    "two calendars": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
}


@pytest.mark.parametrize("content", ICS.values(), ids=ICS.keys())
def test_a_malformed_calendar_is_named_in_one_line(ctx: Context, content: str) -> None:
    ctx.sandbox.write_text("Calendar/calendar.ics", content)
    before = _digest(ctx.sandbox.root)
    _fails_naming(_call(ctx, "calendar.list_events"), "Calendar/calendar.ics")
    _fails_naming(_call(ctx, "calendar.add_event", {"title": "x", "start": "2026-03-11T10:00"}),
                  "Calendar/calendar.ics")
    assert _digest(ctx.sandbox.root) == before


GOOD_VCF = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Anna Berg\r\nEMAIL:anna@example.org\r\nEND:VCARD\r\n"
VCF = {
    "deep nesting": "BEGIN:VCARD\r\n" * 3000 + "END:VCARD\r\n" * 3000,
    "unterminated": "BEGIN:VCARD\nFN:Half a card\n",
    "garbage": "\x00\x01garbage\n:::\n",
    "no name": "BEGIN:VCARD\r\nVERSION:3.0\r\nEMAIL:x@example.org\r\nEND:VCARD\r\n",
    "not utf-8": b"BEGIN:VCARD\r\nFN:\xff\xfe\r\nEND:VCARD\r\n",
}


@pytest.mark.parametrize("content", VCF.values(), ids=VCF.keys())
def test_one_bad_vcf_among_many_is_named_and_the_rest_works(ctx: Context, content: str | bytes) -> None:
    folder = ctx.sandbox.root / "Contacts"
    folder.mkdir()
    (folder / "contacts.vcf").write_text(GOOD_VCF)
    (folder / "bad.vcf").write_bytes(content.encode() if isinstance(content, str) else content)
    bad_before = hashlib.sha256((folder / "bad.vcf").read_bytes()).hexdigest()
    before = _digest(ctx.sandbox.root)
    _fails_naming(_call(ctx, "contacts.find"), "Contacts/bad.vcf")
    got = _call(ctx, "contacts.get", {"contact": "Anna Berg"})
    assert got.status == "ok" and got.result["email"] == "anna@example.org"
    _fails_naming(_call(ctx, "contacts.get", {"contact": "Nobody Known"}), "Contacts/bad.vcf")
    assert _digest(ctx.sandbox.root) == before
    assert _call(ctx, "contacts.add", {"name": "Ben Okafor", "email": "ben@example.org"}).status == "ok"
    assert hashlib.sha256((folder / "bad.vcf").read_bytes()).hexdigest() == bad_before


def test_a_bad_main_book_is_never_written_over(ctx: Context) -> None:
    folder = ctx.sandbox.root / "Contacts"
    folder.mkdir()
    (folder / "contacts.vcf").write_text(VCF["deep nesting"])
    (folder / "other.vcf").write_text(GOOD_VCF)
    before = _digest(ctx.sandbox.root)
    _fails_naming(_call(ctx, "contacts.add", {"name": "Ben", "email": "ben@example.org"}), "Contacts/contacts.vcf",
                  "not written over")
    assert _digest(ctx.sandbox.root) == before


NOTES = {
    "deep yaml": "---\ntitle: " + "[" * 3000 + "]" * 3000 + "\n---\nbody\n",
    "alias bomb": "---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                  "title: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n---\nbody\n",
    "not utf-8": b"---\ntitle: \xff\n---\n",
    "unclosed": "---\ntitle: x\n",
    "created out of range": "---\ntitle: x\ncreated: 9999-12-31T23:59:59-12:00\n---\nbody\n",
}


@pytest.mark.parametrize("content", NOTES.values(), ids=NOTES.keys())
def test_a_malformed_note_is_named_and_the_others_work(ctx: Context, content: str | bytes) -> None:
    NotesApp(ctx).seed([{"title": "Good one", "body": "fine"}])
    bad = ctx.sandbox.root / "Notes" / "bad.md"
    bad.write_bytes(content.encode() if isinstance(content, str) else content)
    before = _digest(ctx.sandbox.root)
    listed = _call(ctx, "notes.list")
    assert listed.status == "ok" and listed.result["paths"] == ["Notes/good-one.md"]
    (problem,) = listed.result["problems"]
    assert "Notes/bad.md" in problem and "\n" not in problem and "RecursionError" not in problem
    _fails_naming(_call(ctx, "notes.read", {"note": "Notes/bad.md"}), "Notes/bad.md")
    _fails_naming(_call(ctx, "notes.append", {"note": "bad.md", "text": "more"}), "Notes/bad.md")
    assert _digest(ctx.sandbox.root) == before


def test_through_the_cli_errors_are_one_json_line(ctx: Context) -> None:
    ctx.sandbox.write_text("Tasks/tasks.json", TASKS["deep list"])
    before = _digest(ctx.sandbox.root)
    result = CliRunner().invoke(cli_app, ["call", "tasks.list", "--sandbox", str(ctx.sandbox.root), "--json", "--yes"])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    out = json.loads(result.stdout)
    assert out["status"] == "failed" and "Tasks/tasks.json" in out["error"] and "nested too deeply" in out["error"]
    assert "Traceback" not in result.output
    assert _digest(ctx.sandbox.root) == before
