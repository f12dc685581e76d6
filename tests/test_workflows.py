"""Every scripted intent file in workflows/ runs to `done` through the real CLI and does what it says.

Each pinned workflow is run in a subprocess (`python -m intentos.cli run FILE --yes --json`),
which seeds its fixture into a fresh sandbox under INTENTOS_HOME. Then the sandbox itself is
inspected: the files, the Maildir outbox, the iCalendar file, the notes. No model is involved.
"""

from __future__ import annotations

import email
import json
import mailbox
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import getaddresses
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import yaml
from typer.testing import CliRunner

from intentos.cli import app

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
BERLIN = ZoneInfo("Europe/Berlin")


def _pinned_files() -> list[Path]:
    found = []
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        if path.name == "demo.yaml":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("workflow"):
            found.append(path)
    return found


FILES = _pinned_files()


# -- reading the sandbox back ------------------------------------------------------------------------------------


def _messages(sandbox: Path, folder: str) -> list[EmailMessage]:
    path = sandbox / "Mail" / folder
    if not path.is_dir():
        return []
    box = mailbox.Maildir(path, factory=None, create=False)
    return [email.message_from_bytes(box.get_bytes(key), policy=default_policy) for key in box.keys()]


def _recipients(msg: EmailMessage) -> list[str]:
    return [addr for _, addr in getaddresses([str(v) for v in msg.get_all("to", [])])]


def _attachments(msg: EmailMessage) -> dict[str, bytes]:
    return {part.get_filename(): part.get_payload(decode=True) for part in msg.iter_attachments()}


def _step(summary: dict[str, Any], state: str) -> dict[str, Any]:
    """The last step of `state` in the run."""
    return [s for s in summary["steps"] if s["state"] == state][-1]


def _note_meta(path: Path) -> tuple[dict[str, Any], str]:
    _, head, body = path.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(head), body


# -- what each workflow must have done ---------------------------------------------------------------------------


def check_tidy_downloads(sandbox: Path, summary: dict[str, Any]) -> None:
    moved = sorted(p.name for p in (sandbox / "Documents/Invoices").iterdir())
    assert moved == ["Invoice_Hetzner_2026-02.pdf", "invoice-2026-01-acme.pdf", "invoice-2026-02-office-supplies.txt"]
    left = sorted(p.name for p in (sandbox / "Downloads").iterdir())
    assert left == ["holiday-lisbon.jpg", "meeting-notes.txt", "setup-tool.dmg"]  # nothing else was touched
    assert (sandbox / "Documents/Invoices/invoice-2026-02-office-supplies.txt").read_text() == \
        "Invoice 2026-02: paper, toner. Total EUR 84.20"
    assert [s["state"] for s in summary["steps"]].count("move") == 3
    assert _step(summary, "report")["result"]["message"].startswith("Moved 3 invoices into Documents/Invoices")


def check_mail_travel_notes(sandbox: Path, summary: dict[str, Any]) -> None:
    (msg,) = _messages(sandbox, "outbox")  # no SMTP configured: queued, not sent
    assert _messages(sandbox, "sent") == []
    assert _recipients(msg) == ["anna.berg@example.com"]
    assert "Anna Berg" in str(msg["to"])  # the name came from the contacts
    assert msg["subject"] == "Travel notes"
    assert "2 travel notes" in msg.get_body(preferencelist=("plain",)).get_content()
    attached = _attachments(msg)
    assert sorted(attached) == ["packing-list.md", "trip-to-lisbon.md"]
    assert b"Hotel near Alfama" in attached["trip-to-lisbon.md"]
    assert _step(summary, "send")["result"]["queued"] is True


def check_schedule_meeting(sandbox: Path, summary: dict[str, Any]) -> None:
    cal = icalendar.Calendar.from_ical((sandbox / "Calendar/calendar.ics").read_bytes())
    (event,) = [e for e in cal.walk("VEVENT") if str(e["summary"]) == "Project sync"]
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    assert start == datetime(2026, 3, 11, 10, 30, tzinfo=BERLIN)  # after Team planning 09:00-10:30
    assert end - start == timedelta(minutes=60)
    attendees = sorted(str(a).removeprefix("mailto:") for a in event.get("attendee"))
    assert attendees == ["anna.berg@example.com", "ben.okafor@example.com"]
    assert str(event["location"]) == "Room 2"
    (invite,) = _messages(sandbox, "outbox")
    assert invite["subject"] == "Invitation: Project sync"
    assert sorted(_recipients(invite)) == ["anna.berg@example.com", "ben.okafor@example.com"]
    assert "2026-03-11T10:30:00+01:00" in invite.get_body(preferencelist=("plain",)).get_content()


def check_standup_log(sandbox: Path, summary: dict[str, Any]) -> None:
    text = (sandbox / "Documents/standup-log.md").read_text()
    assert text == "# Standup log\n- 2026-03-10 (Tuesday): website relaunch review; slides to Ben"
    statuses = [(s["state"], s["status"]) for s in summary["steps"]]
    assert statuses == [("now", "ok"), ("read", "error"), ("create", "ok"), ("add", "ok")]
    assert "does not exist" in _step(summary, "read")["error"]
    assert summary["error"] is None  # the failure was handled by its on_failure branch


def check_overdue_summary(sandbox: Path, summary: dict[str, Any]) -> None:
    path = sandbox / "Notes/overdue-tasks-2026-03-10.md"
    meta, body = _note_meta(path)
    assert meta["title"] == "Overdue tasks 2026-03-10" and meta["tags"] == ["tasks", "review"]
    # Due 03-05, 03-09 and today 08:00 are overdue at 09:00; due today (a date), later or done are not.
    assert "3 tasks were overdue on Tuesday 2026-03-10: t1, t2, t3." in body
    assert "Most urgent: Pay the Hetzner invoice (due 2026-03-05)." in body
    assert _step(summary, "tell")["result"]["message"] == \
        "Wrote Notes/overdue-tasks-2026-03-10.md listing 3 overdue tasks."


def check_send_website_zip(sandbox: Path, summary: dict[str, Any]) -> None:
    archive = sandbox / "Projects/website-2026-03-10.zip"
    expected = ["website/README.md", "website/assets/logo.svg", "website/index.html", "website/style.css"]
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == expected
    (reply,) = _messages(sandbox, "outbox")
    assert _recipients(reply) == ["ben.okafor@example.com"]
    assert reply["subject"] == "Re: Website files"
    assert reply["in-reply-to"]  # threaded under Ben's request
    attached = _attachments(reply)
    assert list(attached) == ["website-2026-03-10.zip"]
    assert attached["website-2026-03-10.zip"] == archive.read_bytes()
    with zipfile.ZipFile(BytesIO(attached["website-2026-03-10.zip"])) as zf:
        assert b"Doe Consulting" in zf.read("website/index.html")


def check_refuse_wipe(sandbox: Path, summary: dict[str, Any]) -> None:
    assert [(s["call"], s["status"]) for s in summary["steps"]] == [("agent.refuse", "ok")]
    assert _step(summary, "refuse")["result"]["refused"] is True
    assert len(list((sandbox / "Downloads").iterdir())) == 6
    assert _messages(sandbox, "outbox") == [] and not (sandbox / ".trash").exists()


def check_clarify_recipient(sandbox: Path, summary: dict[str, Any]) -> None:
    assert [s["state"] for s in summary["steps"]] == ["people", "unique", "which"]
    question = _step(summary, "which")["result"]["question"]
    assert "Chris Meyer (Allianz Insurance)" in question and "Chris Wong (Pixel Studio)" in question
    assert _messages(sandbox, "outbox") == []  # it asked instead of guessing


CHECKS: dict[str, Callable[[Path, dict[str, Any]], None]] = {
    "tidy-downloads": check_tidy_downloads,
    "mail-travel-notes": check_mail_travel_notes,
    "schedule-meeting": check_schedule_meeting,
    "standup-log": check_standup_log,
    "overdue-summary": check_overdue_summary,
    "send-website-zip": check_send_website_zip,
    "refuse-wipe": check_refuse_wipe,
    "clarify-recipient": check_clarify_recipient,
}


def test_every_check_has_its_workflow() -> None:
    assert len(FILES) >= 7
    assert set(CHECKS) <= {p.stem for p in FILES}, "a check whose workflow file is gone"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_workflow_runs_to_done(path: Path, isolated_home: Path) -> None:
    assert path.stem in CHECKS, f"{path.name} has no effect check in CHECKS"
    proc = subprocess.run([sys.executable, "-m", "intentos.cli", "run", str(path), "--yes", "--json"],
                          capture_output=True, text=True, timeout=60, env=os.environ.copy(), cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "done" and summary["final_state"] == "done", summary
    sandbox = Path(summary["sandbox"])
    assert sandbox == (isolated_home / "sandboxes" / summary["run_id"]).resolve()
    assert (isolated_home / "runs" / summary["run_id"] / "journal.jsonl").is_file()
    CHECKS[path.stem](sandbox, summary)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_workflow_validates_in_a_dry_run(path: Path, isolated_home: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(path), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["valid"] is True and out["problems"] == []
    assert not (isolated_home / "sandboxes").exists()  # the fixture was seeded into a scratch folder, now gone
    assert not Path(out["sandbox"]).exists()
