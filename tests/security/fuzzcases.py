"""Seeded, deterministic malformed inputs for the fuzz test (`test_fuzz.py`, run by `fuzz_worker.py`).

Every input starts from a VALID example of one file format that intentos reads (an example per format
below, in the shape the app itself writes) and gets one or two mutations: generic ones on the bytes
(truncation, flipped bytes, NUL, invalid UTF-8, a 1 MB line, deleted/duplicated/swapped lines, an empty
file, binary garbage, a BOM, UTF-16, CRLF or CR line ends, control characters, deep `[` nesting) and ones
that know the format (wrong types in JSON/YAML fields, YAML alias bombs and tags, huge numbers, bad
dates and recurrence rules in .ics, broken vCards, MIME structure of a Maildir message, CSV cells and
headers, gzip damage...).

`case(kind, index)` is a pure function of (SEED, kind, index): each input has its own
`random.Random(f"{SEED}/{kind}/{index}")`, so one failing case can be rebuilt and re-run on its own
(`python tests/security/fuzz_worker.py --case ics-017`). Mutations cycle with the index, so every
mutation of a kind is used, with random parameters and a random base example; about a third of the
inputs get a second, generic mutation on top.
"""

# ruff: noqa: E501 - sample log lines and mutation tables are data, kept one item a line

from __future__ import annotations

import copy
import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

SEED = 20260310
MB = 1 << 20
# Inputs per kind: at least 1,000 in all (the issue), about 100 per kind.
COUNTS: dict[str, int] = {
    "workflow": 100,
    "journal": 100,
    "ics": 100,
    "vcf": 90,
    "tasks": 90,
    "maildir": 90,
    "csv": 90,
    "topology": 90,
    "metrics": 90,
    "logs": 100,
    "notes": 70,
}
KINDS = tuple(COUNTS)

RUN_ID = "20260310-090000-f0221a"
MAIL_KEY = "1773133200.M1P1Q1.fuzz"
FAKE_SANDBOX = "/nonexistent/fuzz-sandbox"


@dataclass(frozen=True)
class Base:
    """A valid example: where it goes (relative to the case folder) and its bytes."""

    name: str
    target: str
    data: bytes
    fmt: str  # yaml | json | jsonl | ics | vcf | mail | tsv | csv | log | gzlog | md
    support: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Case:
    kind: str
    index: int
    id: str
    base: str
    mutation: str
    target: str  # relative to the case folder
    data: bytes
    support: tuple[tuple[str, bytes], ...] = field(default=())


# =====================================================================================================
# Valid examples
# =====================================================================================================

FIXTURE_TINY = b"""\
now: 2026-03-10T09:00:00
timezone: Europe/Berlin
user: {name: Alex Doe, email: alex@example.org}
files:
  Documents/readme.txt: "hello"
tasks:
  - {title: Pay the invoice, due: 2026-03-05, priority: high, tags: [finance]}
"""

WORKFLOW_OVERDUE = b"""\
name: overdue-summary
description: >
  Collect the open tasks whose due time has passed and write them into a dated
  summary note; say so if nothing is overdue.
intent: Make a note that summarises my overdue tasks
fixture:
  now: 2026-03-10T09:00:00
  timezone: Europe/Berlin
  user: {name: Alex Doe, email: alex@example.org}
  tasks:
    - {title: Pay the invoice, due: 2026-03-05, priority: high, tags: [finance]}
    - {title: Renew car insurance, due: 2026-03-09, tags: [car]}
    - {title: Prepare the report, due: 2026-03-20}
workflow:
  states:
    - name: now
      call: clock.now
    - name: overdue
      call: tasks.list
      args: {overdue: true}
    - name: any
      call: agent.check
      args: {value: "${overdue.result.count}", op: ">", other: 0}
      on_failure: all_clear
    - name: note
      call: notes.create
      args:
        title: "Overdue tasks ${now.result.date}"
        body: "${overdue.result.count} tasks were overdue: ${overdue.result.ids}."
        tags: [tasks, review]
    - name: tell
      call: agent.say
      args: {message: "Wrote ${note.result.path}."}
      next: done
    - name: all_clear
      call: agent.say
      args: {message: "Nothing is overdue."}
"""

WORKFLOW_STANDUP = b"""\
# The mapping form of a workflow, with a fixture file next to it.
name: standup-log
description: Add today's line to the standup log, creating the log when there is none.
intent: Add today's entry to my standup log
fixture: fixtures/tiny.yaml
workflow:
  start: now
  states:
    now: {call: clock.now, next: read}
    read:
      call: files.read
      args: {path: Documents/standup-log.md}
      next: add
      on_failure: create
      note: a missing log is the else-branch, not an error
    create:
      call: files.write
      args: {path: Documents/standup-log.md, text: "# Standup log\\n"}
      next: add
    add:
      call: files.append
      args: {path: Documents/standup-log.md, text: "- ${now.result.date}: review"}
      next: done
"""

WORKFLOW_SCHEDULE = b"""\
name: schedule-sync
description: Put a one-hour sync with Anna into tomorrow's first free slot and invite her.
intent: Schedule a one-hour sync with Anna tomorrow and invite her
fixture:
  now: 2026-03-10T09:00:00
  timezone: Europe/Berlin
  user: {name: Alex Doe, email: alex@example.org}
  contacts:
    - {name: Anna Berg, email: anna.berg@example.com, tags: [friends]}
  calendar:
    - {title: Team planning, start: 2026-03-11T09:00:00, end: 2026-03-11T10:30:00, location: Room 2}
workflow:
  states:
    - name: tomorrow
      call: clock.resolve
      args: {phrase: tomorrow}
    - name: slots
      call: calendar.free_slots
      args: {start: "${tomorrow.result.date}", duration_minutes: 60, day_start: "09:00", day_end: "17:00"}
    - name: has_slot
      call: agent.check
      args: {value: "${slots.result.count}", op: ">", other: 0}
      on_failure: no_slot
    - name: event
      call: calendar.add_event
      args:
        title: Project sync
        start: "${slots.result.slots[0].start}"
        duration_minutes: 60
        attendees: [Anna]
    - name: invite
      call: mail.send
      args:
        to: [Anna]
        subject: "Invitation: Project sync"
        body: "Hi Anna,\\n\\nlet's meet on ${event.result.start}.\\n\\nAlex"
      next: done
    - name: no_slot
      call: agent.say
      args: {message: "No free hour tomorrow."}
"""


def _jl(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)


_CTX = {"timezone": "Europe/Berlin", "fixed_now": "2026-03-10T09:00:00",
        "user": {"name": "Alex Doe", "email": "alex@example.org"}}
_STANDUP_WF = {"intent": "Add today's entry to my standup log", "start": "now", "states": {
    "now": {"call": "clock.now", "args": {}, "next": "read", "on_failure": "failed"},
    "read": {"call": "files.read", "args": {"path": "Documents/standup-log.md"}, "next": "add",
             "on_failure": "create", "note": "a missing log is the else-branch"},
    "create": {"call": "files.write", "args": {"path": "Documents/standup-log.md", "text": "# Standup log\n"},
               "next": "add", "on_failure": "failed"},
    "add": {"call": "files.append", "args": {"path": "Documents/standup-log.md", "text": "- ${now.result.date}"},
            "next": "done", "on_failure": "failed"}}}
_T = "2026-03-10T08:00:00.{:03d}+00:00"

JOURNAL_DONE = _jl(
    {"seq": 0, "event": "run_started", "time": _T.format(1), "data": {
        "workflow": _STANDUP_WF, "intent": "Add today's entry to my standup log", "source": "workflows/standup.yaml",
        "sandbox": FAKE_SANDBOX, "context": _CTX, "resolution": None}},
    {"seq": 1, "event": "step_started", "time": _T.format(2), "state": "now", "call": "clock.now",
     "args": {"timezone": None}},
    {"seq": 2, "event": "step_finished", "time": _T.format(3), "state": "now", "call": "clock.now",
     "args": {"timezone": None}, "status": "ok",
     "result": {"iso": "2026-03-10T09:00:00+01:00", "date": "2026-03-10", "time": "09:00", "weekday": "Tuesday",
                "timezone": "Europe/Berlin"}, "next": "read", "duration_s": 0.000481},
    {"seq": 3, "event": "step_started", "time": _T.format(4), "state": "read", "call": "files.read",
     "args": {"path": "Documents/standup-log.md", "max_chars": 20000}},
    {"seq": 4, "event": "step_finished", "time": _T.format(5), "state": "read", "call": "files.read",
     "args": {"path": "Documents/standup-log.md", "max_chars": 20000}, "status": "error",
     "error": "Documents/standup-log.md does not exist", "next": "create", "duration_s": 0.000387},
    {"seq": 5, "event": "step_started", "time": _T.format(6), "state": "create", "call": "files.write",
     "args": {"path": "Documents/standup-log.md", "text": "# Standup log\n", "overwrite": False}},
    {"seq": 6, "event": "step_finished", "time": _T.format(7), "state": "create", "call": "files.write",
     "args": {"path": "Documents/standup-log.md", "text": "# Standup log\n", "overwrite": False}, "status": "ok",
     "result": {"path": "Documents/standup-log.md", "size": 14, "created": True, "replaced_trash_id": None},
     "next": "add", "duration_s": 0.001991},
    {"seq": 7, "event": "step_started", "time": _T.format(8), "state": "add", "call": "files.append",
     "args": {"path": "Documents/standup-log.md", "text": "- 2026-03-10"}},
    {"seq": 8, "event": "step_finished", "time": _T.format(9), "state": "add", "call": "files.append",
     "args": {"path": "Documents/standup-log.md", "text": "- 2026-03-10"}, "status": "ok",
     "result": {"path": "Documents/standup-log.md", "size": 27, "created": False, "replaced_trash_id": None},
     "next": "done", "duration_s": 0.002142},
    {"seq": 9, "event": "run_finished", "time": _T.format(10), "state": "done", "status": "done"},
)

JOURNAL_DECLINED = _jl(
    {"seq": 0, "event": "run_started", "time": _T.format(1), "data": {
        "workflow": {"start": "call", "states": {"call": {"call": "files.trash", "args": {"path": "Downloads/a.dmg"},
                                                         "next": "done", "on_failure": "failed"}}},
        "intent": None, "source": "call", "sandbox": FAKE_SANDBOX,
        "context": {"timezone": "Etc/UTC", "fixed_now": None, "user": {"name": "Alex Doe", "email": "a@example.org"}},
        "resolution": None}},
    {"seq": 1, "event": "step_finished", "time": _T.format(2), "state": "call", "call": "files.trash",
     "args": {"path": "Downloads/a.dmg"}, "status": "declined", "error": "files.trash (destructive) was not confirmed"},
    {"seq": 2, "event": "run_finished", "time": _T.format(3), "state": "call", "status": "declined",
     "error": "files.trash (destructive) was not confirmed"},
)

JOURNAL_INTERRUPTED = _jl(
    {"seq": 0, "event": "run_started", "time": _T.format(1), "data": {
        "workflow": _STANDUP_WF, "intent": "Add today's entry", "source": "resolve", "sandbox": FAKE_SANDBOX,
        "context": _CTX, "resolution": {"model": "ollama:qwen2.5:7b", "attempts": 1, "tokens": 812}}},
    {"seq": 1, "event": "step_started", "time": _T.format(2), "state": "now", "call": "clock.now", "args": {}},
    {"seq": 2, "event": "step_finished", "time": _T.format(3), "state": "now", "call": "clock.now", "args": {},
     "status": "ok", "result": {"date": "2026-03-10"}, "next": "read", "duration_s": 0.0005},
    {"seq": 3, "event": "run_resumed", "time": _T.format(4), "state": "read"},
    {"seq": 4, "event": "step_started", "time": _T.format(5), "state": "read", "call": "files.read",
     "args": {"path": "Documents/standup-log.md"}},
)

_VTIMEZONE = b"""\
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZNAME:CET
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZNAME:CEST
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
"""

ICS_OFFICE = b"""\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//intentos//calendar//EN
""" + _VTIMEZONE + b"""\
BEGIN:VEVENT
SUMMARY:Team planning
DTSTART;TZID=Europe/Berlin:20260311T090000
DTEND;TZID=Europe/Berlin:20260311T103000
DTSTAMP:20260310T080000Z
UID:9e182d88-65a8-41a9-a06d-a3db3e50a6a6@intentos
LOCATION:Room 2
ATTENDEE;CN=Ben Okafor:mailto:ben.okafor@example.com
ORGANIZER:mailto:alex@example.org
DESCRIPTION:Quarterly planning with the whole team\\, agenda in the shared
  folder. Bring the numbers.
END:VEVENT
BEGIN:VEVENT
SUMMARY:Conference
DTSTART;VALUE=DATE:20260313
DTEND;VALUE=DATE:20260314
DTSTAMP:20260310T080000Z
UID:2c4a1f0e-0b7e-4d47-9a55-1c0f3f1f2d11@intentos
END:VEVENT
BEGIN:VEVENT
SUMMARY:Weekly review
DTSTART;TZID=Europe/Berlin:20260302T160000
DTEND;TZID=Europe/Berlin:20260302T163000
DTSTAMP:20260310T080000Z
UID:8d79c8cb-e2e1-4bd6-a953-f894a4c3f9d5@intentos
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10
EXDATE;TZID=Europe/Berlin:20260316T160000
END:VEVENT
BEGIN:VEVENT
SUMMARY:Weekly review (moved)
DTSTART;TZID=Europe/Berlin:20260323T170000
DTEND;TZID=Europe/Berlin:20260323T173000
DTSTAMP:20260310T080000Z
UID:8d79c8cb-e2e1-4bd6-a953-f894a4c3f9d5@intentos
RECURRENCE-ID;TZID=Europe/Berlin:20260323T160000
END:VEVENT
BEGIN:VEVENT
SUMMARY:Dentist
DTSTART:20260312T150000
DURATION:PT45M
DTSTAMP:20260310T080000Z
UID:ec865601-cc4c-4a84-be24-988ab2a11423@intentos
STATUS:CANCELLED
END:VEVENT
END:VCALENDAR
"""

ICS_MINIMAL = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example Corp.//CalDAV Client//EN\r\n"
               b"BEGIN:VEVENT\r\nUID:20260310T120000Z-1@example.com\r\nDTSTAMP:20260310T120000Z\r\n"
               b"DTSTART:20260312T170000Z\r\nDTEND:20260312T180000Z\r\nSUMMARY:Review call\r\n"
               b"RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20260331T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")

VCF_BOOK = b"""\
BEGIN:VCARD
VERSION:3.0
UID:62a2fe41-6237-4594-89b3-e5c79443ae43
CATEGORIES:friends,travel
EMAIL;TYPE=INTERNET:anna.berg@example.com
FN:Anna Berg
N:Berg;Anna;;;
ORG:Berg Travel
END:VCARD
BEGIN:VCARD
VERSION:3.0
UID:6601983a-8923-4e7d-8dde-3114992568e6
CATEGORIES:work
EMAIL;TYPE=INTERNET:ben.okafor@example.com
EMAIL;TYPE=INTERNET:ben@okafor.example
TEL;TYPE=CELL:+49 170 1234567
FN:Ben Okafor
N:Okafor;Ben;;;
ORG:Doe Consulting
NOTE:Prefers mornings\\, never calls on Fridays.
END:VCARD
BEGIN:VCARD
VERSION:3.0
UID:7a73959d-5da9-419d-9894-a67f502ae9db
CATEGORIES:insurance
EMAIL;TYPE=INTERNET:chris.meyer@example.com
FN:Chris Meyer
N:Meyer;Chris;;;
ORG:Allianz Insurance
END:VCARD
"""

VCF_EXPORTED = (b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Dana Schulz\r\nN:Schulz;Dana;;Dr.;\r\n"
                b"EMAIL;TYPE=work:dana.schulz@example.net\r\nTEL;VALUE=uri;TYPE=voice:tel:+49-30-1234567\r\n"
                b"ADR;TYPE=home:;;Hauptstr. 1;Berlin;;10115;Germany\r\n"
                b"NOTE:Met at the conference in Lisbon; follow up about the website rela\r\n unch.\r\n"
                b"PHOTO:data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk\r\n"
                b"CATEGORIES:work,conference\r\nEND:VCARD\r\n")

_TASKS = [
    {"id": "t1", "title": "Pay the Hetzner invoice", "due": "2026-03-05", "priority": "high", "tags": ["finance"],
     "done": False, "created": "2026-03-10T09:00:00+01:00", "completed": None},
    {"id": "t2", "title": "Renew car insurance", "due": "2026-03-09", "priority": "normal", "tags": ["car"],
     "done": False, "created": "2026-03-10T09:00:00+01:00", "completed": None},
    {"id": "t3", "title": "Send the slides to Ben", "due": "2026-03-10T08:00:00+01:00", "priority": "normal",
     "tags": ["work"], "done": False, "created": "2026-03-10T09:00:00+01:00", "completed": None},
    {"id": "t5", "title": "Prepare the quarterly report", "due": "2026-03-20", "priority": "high", "tags": ["work"],
     "done": False, "created": "2026-03-10T09:00:00+01:00", "completed": None, "source": "imported"},
    {"id": "t6", "title": "File the tax return", "due": "2026-03-01", "priority": "normal", "tags": [],
     "done": True, "created": "2026-03-10T09:00:00+01:00", "completed": "2026-02-27T16:00:00+01:00"},
]
TASKS_PRETTY = (json.dumps(_TASKS, indent=2, ensure_ascii=False) + "\n").encode()
TASKS_COMPACT = json.dumps([{"id": "t1", "title": "Call mum", "due": "2026-03-13"},
                            {"id": "t2", "title": "Buy milk", "tags": ["lists"], "done": True}]).encode()

MAIL_MULTIPART = b"""\
From: billing@hetzner.example
To: Alex Doe <alex@example.org>
Cc: accounting@example.org
Subject: Your invoice 2026-02
Date: Sun, 01 Mar 2026 06:00:00 +0100
Message-ID: <179633453864.10621.9201146019030396539@hetzner.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="===============8419278082992321351=="

--===============8419278082992321351==
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 7bit

Your invoice is attached.

--===============8419278082992321351==
Content-Type: text/plain
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="Invoice_Hetzner_2026-02.txt"
MIME-Version: 1.0

VG90YWwgRVVSIDM5Ljkw

--===============8419278082992321351==--
"""

MAIL_PLAIN = """\
From: =?utf-8?q?Anna_Berg?= <anna.berg@example.com>
To: alex@example.org
Subject: =?utf-8?b?UmVpc2UgbmFjaCBMaXNzYWJvbiDinIg=?=
Date: Mon, 09 Mar 2026 18:12:44 +0100
Message-ID: <lisbon-1@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit

Hi Alex,

the flights are booked: TP 553 on 14 April. Grüße, Anna
""".encode()

MAIL_HTML = b"""\
From: "Shop News" <news@shop.example>
To: alex@example.org
Subject: Spring sale
Date: Tue, 10 Mar 2026 07:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Sale starts today =E2=80=93 up to 50% off.=20
--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><body><p>Sale starts <b>today</b> =E2=80=93 up to 50% off.</p><script>x()</script></body></html>
--b1--
"""

C3O_TSV = b"""\
instance_count\tmachine_type\tslots\tmemory\tdata_size_MB\tfeatures\tk\tgross_runtime
2\tm4.2xlarge\t16\t64000\t16000\t5\t3\t1126
2\tm4.2xlarge\t16\t64000\t16000\t5\t3\t1151
4\tm4.2xlarge\t32\t128000\t16000\t5\t3\t640
4\tm4.2xlarge\t32\t128000\t16000\t5\t3\t655
8\tm4.2xlarge\t64\t256000\t16000\t5\t3\t371
8\tm4.2xlarge\t64\t256000\t16000\t5\t3\t380
2\tc4.2xlarge\t16\t30000\t8000\t10\t5\t702
4\tc4.2xlarge\t32\t60000\t8000\t10\t5\t398
6\tc4.2xlarge\t48\t90000\t8000\t10\t5\t291.5
8\tc4.2xlarge\t64\t120000\t8000\t10\t5\t240
"""

BELL_CSV = b"""\
Nodes,Runtime
4,846235
4,850160
6,590112
6,601876
8,470335
10,400874
12,362001
"""

TOPOLOGY_FLOW = b"""\
name: tinyshop
hosts: [edge-1, app-1, data-1]
components:
- {name: lb, host: edge-1, kind: load_balancer}
- {name: api, host: app-1, kind: service}
- {name: cache, host: app-1, kind: cache}
- {name: db, host: data-1, kind: database}
dependencies:
- {from: lb, to: api}
- {from: api, to: cache}
- {from: api, to: db}
"""

TOPOLOGY_BLOCK = b"""\
# The same application, written by hand in block style.
name: tinyshop
components:
  - name: lb
    host: edge-1
    kind: load_balancer
  - name: api
    host: app-1
  - name: cache
    host: app-1
    kind: cache
  - name: db
    host: data-1
    kind: database
dependencies:
  - from: lb
    to: api
  - from: api
    to: cache
  - from: api   # api reads the database
    to: db
"""

METRIC_NAMES = ("cpu", "memory", "net_in", "net_out", "disk_io", "latency")
COMPONENTS = ("lb", "api", "cache", "db")
SAMPLES = 20
T0 = 1_700_000_000.0


def _metric_value(ci: int, mi: int, t: int) -> float:
    base = (20.0, 400.0, 300.0, 5000.0, 5.0, 10.0)[mi] * (1 + 0.25 * ci)
    return round(base * (1 + 0.05 * ((t * 7 + ci * 3 + mi) % 11 - 5) / 5), 3)


def _metrics_wide(iso: bool = False) -> bytes:
    rows = ["timestamp,component," + ",".join(METRIC_NAMES)]
    for t in range(SAMPLES):
        ts = T0 + 0.5 * t
        stamp = f"2023-11-14T22:13:{20 + t // 2:02d}.{5 * (t % 2)}+00:00" if iso else f"{ts:.1f}"
        for ci, comp in enumerate(COMPONENTS):
            rows.append(f"{stamp},{comp}," + ",".join(f"{_metric_value(ci, mi, t):.3f}" for mi in range(6)))
    return ("\n".join(rows) + "\n").encode()


def _metrics_long() -> bytes:
    rows = ["timestamp,component,metric,value"]
    for t in range(SAMPLES):
        for ci, comp in enumerate(COMPONENTS):
            for mi, m in enumerate(METRIC_NAMES):
                rows.append(f"{T0 + 0.5 * t:.1f},{comp},{m},{_metric_value(ci, mi, t):.3f}")
    return ("\n".join(rows) + "\n").encode()


def _metrics_prometheus() -> bytes:
    result = []
    names = {"cpu": "container_cpu_usage", "memory": "memory", "net_in": "net_rx", "net_out": "net_tx",
             "disk_io": "disk_io", "latency": "latency_ms"}
    for ci, comp in enumerate(COMPONENTS):
        for mi, m in enumerate(METRIC_NAMES):
            result.append({"metric": {"__name__": names[m], "service": comp, "instance": f"{comp}:9100"},
                           "values": [[T0 + 0.5 * t, f"{_metric_value(ci, mi, t):.3f}"] for t in range(SAMPLES)]})
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}, indent=1).encode()


LOG_HDFS = b"""\
081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating
081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_-6952295868487656571 terminating
081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864
081109 204015 308 INFO dfs.DataNode$PacketResponder: Received block blk_8229193803249955061 of size 67108864 from /10.251.107.19
081109 204106 329 INFO dfs.DataNode$PacketResponder: PacketResponder 2 for block blk_-6670958622368987959 terminating
081109 204132 26 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.43.115:50010 is added to blk_3050920587428079149 size 67108864
081109 204324 34 INFO dfs.DataNode$DataXceiver: Receiving block blk_-5623176793330377570 src: /10.251.75.228:53725 dest: /10.251.75.228:50010
081109 204453 34 WARN dfs.DataNode$DataXceiver: 10.251.73.220:50010:Got exception while serving blk_7503483334202473044 to /10.251.203.80:
081109 204525 512 INFO dfs.DataNode$PacketResponder: PacketResponder 2 for block blk_572492839287299681 terminating
081109 204655 556 INFO dfs.DataNode$PacketResponder: Received block blk_3587508140051953248 of size 67108864 from /10.251.42.84
081109 204722 567 INFO dfs.DataNode$PacketResponder: Received block blk_5402003568334525940 of size 67108864 from /10.251.214.112
081109 204815 653 INFO dfs.DataNode$DataXceiver: Receiving block blk_5792489080791696128 src: /10.251.30.6:33145 dest: /10.251.30.6:50010
"""

LOG_GENERIC = b"""\
2024-03-04T08:00:00.123Z INFO [api] request_id=3f1c GET /orders 200 12ms
2024-03-04T08:00:00.456Z INFO [api] request_id=3f1d GET /orders/17 200 9ms
2024-03-04T08:00:01.002Z WARN [db] slow query took 1203ms: SELECT * FROM orders WHERE id = 17
2024-03-04T08:00:01.250Z ERROR [api] request_id=3f1e POST /orders 500 connection reset by peer
Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4
Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown
17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]
17/06/09 20:10:41 INFO spark.SecurityManager: Changing view acls to: yarn,curi
03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening app wtoken = AppWindowToken{9f4ef63 token=Token{a64f992 ActivityRecord{de9231d u0 com.tencent.qt.qtl/.activity.info.NewsDetailXinwenActivity t761}}}, allDrawn= false
[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties
[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6
a line that fits no header at all
"""

LOG_BGL = b"""\
- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected
- 1117838573 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.53.276129 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected
- 1117838976 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.49.36.156884 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected
KERNDTLB 1117869872 2005.06.04 R23-M1-N8-I:J18-U11 2005-06-04-00.24.32.432192 R23-M1-N8-I:J18-U11 RAS KERNEL FATAL data TLB error interrupt
- 1117869876 2005.06.04 R23-M1-N8-I:J18-U11 2005-06-04-00.24.36.222560 R23-M1-N8-I:J18-U11 RAS KERNEL INFO generating core.2275
APPREAD 1117955341 2005.06.05 R20-M1-N8-C:J11-U11 2005-06-05-00.09.01.903014 R20-M1-N8-C:J11-U11 RAS APP FATAL ciod: failed to read message prefix on control stream (CioStream socket to 172.16.96.116:33569
"""

LOG_LOGHUB_CSV = b"""\
LineId,Date,Time,Pid,Level,Component,Content,EventId,EventTemplate
1,081109,203615,148,INFO,dfs.DataNode$PacketResponder,PacketResponder 1 for block blk_38865049064139660 terminating,E10,PacketResponder <*> for block blk_<*> terminating
2,081109,203807,222,INFO,dfs.DataNode$PacketResponder,PacketResponder 0 for block blk_-6952295868487656571 terminating,E10,PacketResponder <*> for block blk_<*> terminating
3,081109,204005,35,INFO,dfs.FSNamesystem,"BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864",E6,BLOCK* NameSystem.addStoredBlock: blockMap updated: <*> is added to blk_<*> size <*>
4,081109,204015,308,INFO,dfs.DataNode$PacketResponder,Received block blk_8229193803249955061 of size 67108864 from /10.251.107.19,E11,Received block blk_<*> of size <*> from /<*>
5,081109,204106,329,INFO,dfs.DataNode$PacketResponder,PacketResponder 2 for block blk_-6670958622368987959 terminating,E10,PacketResponder <*> for block blk_<*> terminating
"""

NOTE_FRONT = b"""\
---
title: Trip to Lisbon
tags: [travel, lists]
created: '2026-03-02T10:00:00+01:00'
updated: 2026-03-05T18:30:00+01:00
source: imported
---
# Trip to Lisbon

Flights booked (TP 553, 14 April). Hotel near Alfama.
- passport
- adapters, rain jacket
"""

NOTE_PLAIN = b"""\
# Shopping

Milk, eggs, coffee.

tags: none here, just text
"""


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


_FIXTURE_SUPPORT = (("wf/fixtures/tiny.yaml", FIXTURE_TINY),)
_TOPOLOGY_SUPPORT = (("data/topology.yaml", TOPOLOGY_FLOW),)
MAIL_TARGET = f"sandbox/Mail/inbox/cur/{MAIL_KEY}:2,S"

BASES: dict[str, list[Base]] = {
    "workflow": [
        Base("overdue-summary", "wf/overdue-summary.yaml", WORKFLOW_OVERDUE, "yaml", _FIXTURE_SUPPORT),
        Base("standup-log", "wf/standup-log.yaml", WORKFLOW_STANDUP, "yaml", _FIXTURE_SUPPORT),
        Base("schedule-sync", "wf/schedule-sync.yaml", WORKFLOW_SCHEDULE, "yaml", _FIXTURE_SUPPORT),
    ],
    "journal": [
        Base("done", f"home/runs/{RUN_ID}/journal.jsonl", JOURNAL_DONE, "jsonl"),
        Base("declined", f"home/runs/{RUN_ID}/journal.jsonl", JOURNAL_DECLINED, "jsonl"),
        Base("interrupted", f"home/runs/{RUN_ID}/journal.jsonl", JOURNAL_INTERRUPTED, "jsonl"),
    ],
    "ics": [
        Base("office", "sandbox/Calendar/calendar.ics", ICS_OFFICE, "ics"),
        Base("minimal-crlf", "sandbox/Calendar/calendar.ics", ICS_MINIMAL, "ics"),
    ],
    "vcf": [
        Base("book", "sandbox/Contacts/contacts.vcf", VCF_BOOK, "vcf"),
        Base("exported-v4", "sandbox/Contacts/dana.vcf", VCF_EXPORTED, "vcf",
             (("sandbox/Contacts/contacts.vcf", VCF_BOOK),)),
    ],
    "tasks": [
        Base("office", "sandbox/Tasks/tasks.json", TASKS_PRETTY, "json"),
        Base("compact", "sandbox/Tasks/tasks.json", TASKS_COMPACT, "json"),
    ],
    "maildir": [
        Base("invoice-multipart", MAIL_TARGET, MAIL_MULTIPART, "mail"),
        Base("plain-8bit", MAIL_TARGET, MAIL_PLAIN, "mail"),
        Base("html-alternative", MAIL_TARGET, MAIL_HTML, "mail"),
    ],
    "csv": [
        Base("c3o-kmeans", "data/kmeans.tsv", C3O_TSV, "tsv"),
        Base("bell-grep", "data/grep.csv", BELL_CSV, "csv"),
    ],
    "topology": [
        Base("flow", "data/topology.yaml", TOPOLOGY_FLOW, "yaml"),
        Base("block", "data/topology.yaml", TOPOLOGY_BLOCK, "yaml"),
    ],
    "metrics": [
        Base("wide", "data/metrics.csv", _metrics_wide(), "csv", _TOPOLOGY_SUPPORT),
        Base("wide-iso", "data/metrics.csv", _metrics_wide(iso=True), "csv", _TOPOLOGY_SUPPORT),
        Base("long", "data/metrics.csv", _metrics_long(), "csv", _TOPOLOGY_SUPPORT),
        Base("prometheus", "data/metrics.json", _metrics_prometheus(), "json", _TOPOLOGY_SUPPORT),
    ],
    "logs": [
        Base("hdfs", "data/HDFS.log", LOG_HDFS, "log"),
        Base("generic", "data/app.log", LOG_GENERIC, "log"),
        Base("bgl", "data/BGL.log", LOG_BGL, "log"),
        Base("loghub-csv", "data/HDFS_2k.log_structured.csv", LOG_LOGHUB_CSV, "csv"),
        Base("hdfs-gz", "data/HDFS.log.gz", _gz(LOG_HDFS), "gzlog"),
        Base("generic-gz", "data/app.log.gz", _gz(LOG_GENERIC), "gzlog"),
    ],
    "notes": [
        Base("front-matter", "sandbox/Notes/fuzz-note.md", NOTE_FRONT, "md"),
        Base("plain", "sandbox/Notes/fuzz-note.md", NOTE_PLAIN, "md"),
    ],
}


# =====================================================================================================
# Mutations
# =====================================================================================================

Mutator = Callable[[random.Random, bytes, Base], tuple[bytes, str]]


@dataclass(frozen=True)
class Mutation:
    name: str
    apply: Mutator
    fits: Callable[[Base], bool] = lambda base: True


def _split(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _pos(rng: random.Random, data: bytes) -> int:
    return rng.randrange(0, len(data) + 1)


def _line_start(rng: random.Random, data: bytes) -> int:
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A and i + 1 < len(data)]
    return rng.choice(starts)


# -- generic, on bytes -------------------------------------------------------------------------------


def m_truncate(rng, data, base):
    cut = rng.randrange(0, max(1, len(data)))
    return data[:cut], f"truncate@{cut}"


def m_flip(rng, data, base):
    if not data:
        return b"\xff", "flip(empty)"
    out = bytearray(data)
    n = rng.choice([1, 1, 2, 4, 8, 32])
    for _ in range(n):
        i = rng.randrange(len(out))
        out[i] = out[i] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
    return bytes(out), f"flip({n})"


def m_nul(rng, data, base):
    n = rng.choice([1, 1, 3, 64, 4096])
    at = _pos(rng, data)
    return data[:at] + b"\x00" * n + data[at:], f"nul({n})@{at}"


BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
            b"\xe2\x82", b"caf\xe9", b"\xf0\x9f\x98"]


def m_bad_utf8(rng, data, base):
    seq = rng.choice(BAD_UTF8)
    at = _pos(rng, data)
    return data[:at] + seq + data[at:], f"bad_utf8({seq!r})@{at}"


def m_latin1(rng, data, base):
    """The text re-encoded as Latin-1, with a few non-ASCII characters in it."""
    text = data.decode("utf-8", "replace").replace("\ufffd", "?")
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    lines[i] = lines[i] + " Grüße, café, naïve"
    return "\n".join(lines).encode("latin-1", "replace"), "latin1"


def _huge(rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["A", "words", "random", "quotes"])
    if kind == "A":
        return b"A" * MB, "A*1MB"
    if kind == "words":
        return b"lorem ipsum " * (MB // 12), "words*1MB"
    if kind == "quotes":
        return b'"\'' * (MB // 2), "quotes*1MB"
    return bytes(rng.randrange(0x20, 0x7F) for _ in range(4096)) * (MB // 4096), "printable*1MB"


def m_huge_line(rng, data, base):
    blob, what = _huge(rng)
    at = _line_start(rng, data)
    return data[:at] + blob + b"\n" + data[at:], f"huge_line({what})@{at}"


def m_long_value(rng, data, base):
    """A 1 MB value right after a separator (`:`, `=`, `,`, tab) somewhere in the file."""
    seps = [i + 1 for i, b in enumerate(data) if b in b":=,\t"]
    at = rng.choice(seps) if seps else len(data)
    blob, what = _huge(rng)
    return data[:at] + blob + data[at:], f"long_value({what})@{at}"


def m_delete_lines(rng, data, base):
    lines = _split(data)
    n = min(len(lines), rng.choice([1, 1, 2, 3]))
    for _ in range(n):
        lines.pop(rng.randrange(len(lines)))
    return b"\n".join(lines), f"delete_lines({n})"


def m_dup_lines(rng, data, base):
    lines = _split(data)
    i = rng.randrange(len(lines))
    times = rng.choice([1, 2, 5, 1000])
    lines[i:i + 1] = [lines[i]] * (times + 1)
    return b"\n".join(lines), f"dup_line({i}x{times})"


def m_swap_lines(rng, data, base):
    lines = _split(data)
    if len(lines) < 2:
        return data + data, "swap_lines(doubled)"
    i, j = rng.sample(range(len(lines)), 2)
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines), f"swap_lines({i},{j})"


def m_shuffle_lines(rng, data, base):
    lines = _split(data)
    rng.shuffle(lines)
    return b"\n".join(lines), "shuffle_lines"


def m_empty(rng, data, base):
    return rng.choice([(b"", "empty"), (b"\n", "newline_only"), (b"   \n\t\n\n", "whitespace_only"),
                       (b"\xef\xbb\xbf", "bom_only")])


def m_garbage(rng, data, base):
    n = rng.choice([1, 17, 512, 4096, 65536])
    return rng.randbytes(n), f"garbage({n})"


def m_garbage_tail(rng, data, base):
    n = rng.choice([16, 4096])
    return data + rng.randbytes(n), f"garbage_tail({n})"


def m_bom(rng, data, base):
    return rng.choice([(b"\xef\xbb\xbf" + data, "utf8_bom"), (b"\xef\xbb\xbf\xef\xbb\xbf" + data, "double_bom")])


def m_utf16(rng, data, base):
    text = data.decode("utf-8", "replace")
    return rng.choice([(text.encode("utf-16"), "utf16_bom"), (text.encode("utf-16-le"), "utf16le_no_bom"),
                       (text.encode("utf-32"), "utf32")])


def m_crlf(rng, data, base):
    return rng.choice([(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), "crlf"),
                       (data.replace(b"\r\n", b"\n").replace(b"\n", b"\r"), "cr_only"),
                       (data.replace(b"\n", b"\r\r\n"), "cr_cr_lf"),
                       (data.replace(b"\n", b"\n\x0b\x0c"), "vt_ff")])


def m_control(rng, data, base):
    out = bytearray(data)
    n = rng.choice([1, 5, 50])
    for _ in range(n):
        out.insert(rng.randrange(len(out) + 1), rng.choice([1, 2, 7, 8, 0x1B, 0x7F, 0x85 & 0x7F, 0x1F]))
    return bytes(out), f"control_chars({n})"


def m_unicode(rng, data, base):
    weird = rng.choice(["\u202e", "\u2028", "\u2029", "\u0085", "\ufeff", "\U0001F4A9" * 100, "e\u0301" * 50,
                        "\ud7ff\ue000", "ǅ"])
    at = _pos(rng, data)
    return data[:at] + weird.encode("utf-8", "surrogatepass") + data[at:], f"unicode({weird[:2]!r})@{at}"


def m_deep_brackets(rng, data, base):
    n = rng.choice([5000, 50_000])
    opener = rng.choice([b"[", b"{", b"[{\"a\":"])
    blob = opener * n
    if rng.random() < 0.3:
        blob += {b"[": b"]", b"{": b"}", b"[{\"a\":": b"1}]"}[opener] * n
    at = _line_start(rng, data)
    return data[:at] + blob + b"\n" + data[at:], f"deep_nesting({opener.decode()}x{n})@{at}"


def m_repeat(rng, data, base):
    times = rng.choice([10, 100, 500]) if data else 1
    times = min(times, max(1, 2 * MB // max(1, len(data))))
    return data * times, f"repeat_file(x{times})"


def m_many_lines(rng, data, base):
    n = rng.choice([10_000, 100_000])
    lines = _split(data)
    i = rng.randrange(len(lines))
    line = rng.choice([lines[i], b"", b"x"])
    return b"\n".join(lines[:i] + [line] * n + lines[i:]), f"many_lines({n})"


GENERIC: list[Mutation] = [
    Mutation("truncate", m_truncate), Mutation("flip", m_flip), Mutation("nul", m_nul),
    Mutation("bad_utf8", m_bad_utf8), Mutation("latin1", m_latin1), Mutation("huge_line", m_huge_line),
    Mutation("long_value", m_long_value), Mutation("delete_lines", m_delete_lines),
    Mutation("dup_lines", m_dup_lines), Mutation("swap_lines", m_swap_lines), Mutation("empty", m_empty),
    Mutation("garbage", m_garbage), Mutation("garbage_tail", m_garbage_tail), Mutation("bom", m_bom),
    Mutation("utf16", m_utf16), Mutation("crlf", m_crlf), Mutation("control", m_control),
    Mutation("unicode", m_unicode), Mutation("deep_brackets", m_deep_brackets), Mutation("repeat", m_repeat),
]
STACKABLE = [m for m in GENERIC if m.name not in ("empty", "garbage", "utf16", "repeat")]


# -- structured: JSON and YAML trees -------------------------------------------------------------------


def _odd_value(rng: random.Random) -> Any:
    return rng.choice([
        None, True, False, 0, -1, 1.5, 2**63, -(2**63) - 1, 1e308, float("inf"), float("nan"), "", " ", "x",
        "null", "0", "2026-02-30", "2026-13-45T25:61:61", "9999-12-31T23:59:59+14:00", "0001-01-01",
        "friday 3pm", "${nope.result}", "../../../etc/passwd", "\x00", "é" * 10, [], {}, [None], [[[]]],
        {"a": {"b": {"c": None}}}, list(range(100)), {"": ""}, ["x"] * 1000, "A" * 4096,
    ])


def _paths(node: Any, here: tuple = ()) -> list[tuple]:
    out = [here]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, here + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, here + (i,))
    return out


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


def _set(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


def _tree_edit(rng: random.Random, tree: Any) -> tuple[Any, str]:
    """One edit of a parsed document: a value of the wrong type, a key dropped, added or renamed."""
    tree = copy.deepcopy(tree)
    paths = _paths(tree)
    path = rng.choice(paths[1:] or paths)
    what = rng.choice(["retype", "retype", "retype", "drop", "add_key", "rename_key", "huge_string", "deep"])
    parent = _get(tree, path[:-1]) if path else None
    where = ".".join(str(p) for p in path) or "<root>"
    if what == "drop" and path:
        del parent[path[-1]]
        return tree, f"drop({where})"
    if what == "add_key":
        target = _get(tree, path)
        if isinstance(target, dict):
            target[rng.choice(["unknown", "Name", "", "x" * 300, "__proto__", "0"])] = _odd_value(rng)
            return tree, f"add_key({where})"
    if what == "rename_key" and path and isinstance(parent, dict):
        parent[str(path[-1]).upper() + "_"] = parent.pop(path[-1])
        return tree, f"rename_key({where})"
    if what == "huge_string":
        return _set(tree, path, "B" * MB), f"huge_string({where})"
    if what == "deep":
        value: Any = "bottom"
        for _ in range(rng.choice([100, 500])):
            value = [value]
        return _set(tree, path, value), f"deep_value({where})"
    value = _odd_value(rng)
    return _set(tree, path, value), f"retype({where}={json.dumps(value, default=str)[:24]})"


def _yaml_dump(tree: Any) -> bytes:
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, default_flow_style=None).encode()


def m_yaml_tree(rng, data, base):
    tree = yaml.safe_load(data.decode("utf-8-sig")) if base.fmt == "yaml" else _front_matter(data)
    edited, what = _tree_edit(rng, tree)
    try:
        text = _yaml_dump(edited)
    except (yaml.YAMLError, ValueError, RecursionError):
        text = json.dumps(edited, default=str).encode()
    if base.fmt == "md":
        text = b"---\n" + text + b"---\n" + data.split(b"\n---\n", 1)[-1]
    return text, f"yaml_{what}"


def _front_matter(data: bytes) -> Any:
    if data.startswith(b"---\n"):
        return yaml.safe_load(data.split(b"\n---\n", 1)[0][4:].decode()) or {}
    return {"title": "x"}


def _json_retype(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    tree = json.loads(data)
    edited, what = _tree_edit(rng, tree)
    return json.dumps(edited, indent=rng.choice([None, 2]), default=str).encode(), f"json_{what}"


def m_json_tree(rng, data, base):
    return _json_retype(rng, data)


JSON_TOKENS = [b"1" * 5000, b"-" + b"9" * 5000, b"1e999999", b"NaN", b"Infinity", b"-Infinity", b"0x10", b"01",
               b"1.", b".5", b"+1", b"True", b"None", b"undefined", b"'single'", b'"\\ud800"', b'"\\u0000"',
               b'"\\x41"', b'"tab\there"', b"[1,]", b"{,}", b'{"a" 1}', b'{"a":1,"a":2}', b"//c", b"/*c*/"]


def m_json_token(rng, data, base):
    """A raw token no JSON writer makes (huge integers, NaN, comments, bad escapes) in place of a value."""
    targets = [i + 1 for i, b in enumerate(data) if b in b":,["]
    at = rng.choice(targets) if targets else 0
    end = at
    while end < len(data) and data[end:end + 1] not in (b",", b"}", b"]", b"\n"):
        end += 1
    token = rng.choice(JSON_TOKENS)
    return data[:at] + token + data[end:], f"json_token({token[:12]!r})@{at}"


def _bomb(depth: int, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol"' + ', "lol"' * (width - 1) + "]"]
    for i in range(1, depth):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines)


def m_yaml_bomb(rng, data, base):
    depth = rng.choice([6, 9, 12])
    bomb = _bomb(depth)
    style = rng.choice(["whole", "prefix", "value"])
    if style == "whole":
        return (bomb + "\n").encode(), f"alias_bomb(depth {depth}, whole file)"
    if style == "prefix":
        # anchors hidden in a key the format allows (name/description) and used below
        lines = data.decode("utf-8", "replace").split("\n")
        body = bomb.replace("\n", "\n  ")
        text = "\n".join(lines) + f"\nzz_bomb:\n  {body}\n"
        return text.encode(), f"alias_bomb(depth {depth}, extra key)"
    # value: the first `key: value` line gets an inline bomb (anchors and aliases in one flow sequence)
    width = 9
    items = ["&a0 [" + ", ".join(["lol"] * width) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, depth)]
    lines = data.decode("utf-8", "replace").split("\n")
    candidates = [i for i, ln in enumerate(lines) if ":" in ln and not ln.lstrip().startswith("#")] or [0]
    i = rng.choice(candidates)
    lines[i] = lines[i].split(":", 1)[0] + ": [" + ", ".join(items) + "]"
    return "\n".join(lines).encode(), f"alias_bomb(depth {depth}, inline at line {i + 1})"


YAML_SNIPPETS = [
    b"!!python/object/apply:os.system ['echo pwned']", b"!!python/name:os.system", b"!!binary '%%%notbase64'",
    b"!!timestamp 2026-99-99", b"!!int 12abc", b"!!float 1e", b"!!set {a, b}", b"!!omap [a, b]",
    b"*undefined_alias", b"&a [*a]", b"{a: 1, a: 2}", b"[a, b", b"{a: [}", b"'unterminated", b'"bad \\escape"',
    b"- - - - -", b"? complex key\n: value", b"|\n  block\n wrong indent", b"%YAML 9.9\n---", b"--- !<tag:x> 1",
    b"1" * 5000, b"0x" + b"F" * 5000, b".nan", b"-.inf", b"2001-12-14t21:59:43.10-05:00", b"~", b"<<: *nothing",
    b"\t- tab indented", b"key: value: another", b"@reserved", b"`backtick`",
]


def m_yaml_snippet(rng, data, base):
    """A YAML construct that safe_load refuses or that turns into an odd type, in place of a value."""
    lines = _split(data)
    candidates = [i for i, ln in enumerate(lines) if b":" in ln and not ln.lstrip().startswith(b"#")]
    snippet = rng.choice(YAML_SNIPPETS)
    if not candidates:
        return data + b"\nzz: " + snippet + b"\n", f"yaml_snippet({snippet[:20]!r})"
    i = rng.choice(candidates)
    head = lines[i].split(b":", 1)[0]
    lines[i] = head + b": " + snippet
    return b"\n".join(lines), f"yaml_snippet({snippet[:20]!r})@line{i + 1}"


def m_yaml_indent(rng, data, base):
    lines = _split(data)
    i = rng.randrange(len(lines))
    how = rng.choice(["tab", "dedent", "indent", "dup_key"])
    if how == "tab":
        lines[i] = b"\t" + lines[i].lstrip(b" ")
    elif how == "dedent":
        lines[i] = lines[i].lstrip(b" ")
    elif how == "indent":
        lines[i] = b"       " + lines[i]
    else:
        lines.insert(i, lines[i])
    return b"\n".join(lines), f"yaml_{how}(line{i + 1})"


def m_yaml_deep(rng, data, base):
    n = rng.choice([100, 1000, 50_000])
    style = rng.choice(["flow", "block", "map"])
    if style == "flow":
        value = b"[" * n + b"]" * (n if rng.random() < 0.5 else 0)
    elif style == "map":
        value = b"{a: " * n + b"1" + b"}" * n
    else:
        value = b"\n" + b"".join(b"  " * (k + 1) + b"- \n" for k in range(min(n, 3000)))
    lines = _split(data)
    candidates = [i for i, ln in enumerate(lines) if b":" in ln] or [0]
    i = rng.choice(candidates)
    lines[i] = lines[i].split(b":", 1)[0] + b": " + value
    return b"\n".join(lines), f"yaml_deep({style} x{n})"


YAML_MUTATIONS = [Mutation("yaml_tree", m_yaml_tree), Mutation("yaml_tree", m_yaml_tree),
                  Mutation("yaml_tree", m_yaml_tree), Mutation("yaml_bomb", m_yaml_bomb),
                  Mutation("yaml_snippet", m_yaml_snippet), Mutation("yaml_snippet", m_yaml_snippet),
                  Mutation("yaml_indent", m_yaml_indent), Mutation("yaml_deep", m_yaml_deep)]


# -- workflows --------------------------------------------------------------------------------------------

WF_EDITS = [
    (b"call: clock.now", b"call: clock.nope"), (b"call: tasks.list", b"call: tasks"), (b"next: done", b"next: nowhere"),
    (b"on_failure: all_clear", b"on_failure: 42"), (b"name: now", b"name: done"), (b"name: now", b"name: 'bad name!'"),
    (b"${overdue.result.count}", b"${overdue.result.count.deeper[99]}"), (b"${now.result.date}", b"${"),
    (b"start: now", b"start: missing"), (b"args: {overdue: true}", b"args: [overdue]"),
    (b"args: {overdue: true}", b"args: {overdue: maybe, extra: 1}"), (b"fixture: fixtures/tiny.yaml",
                                                                       b"fixture: fixtures/../../../../etc/passwd"),
    (b"fixture: fixtures/tiny.yaml", b"fixture: fixtures/missing.yaml"), (b"fixture: fixtures/tiny.yaml",
                                                                          b"fixture: [1, 2]"),
    (b"now: 2026-03-10T09:00:00", b"now: 2026-02-30T25:00:00"), (b"timezone: Europe/Berlin", b"timezone: Mars/Base"),
    (b"duration_minutes: 60", b"duration_minutes: -60"), (b"workflow:", b"workflow: null\nworkflow2:"),
    (b"name: overdue", b"name: overdue\n      max_visits: 0"), (b"next: add", b"next: read\n      max_visits: 100000"),
    (b"tasks:\n", b"tasks: {not: a list}\nzz:\n"), (b"contacts:\n", b"nosuchapp:\n"),
    (b"intent:", b"intent: [1, 2]\nzz_intent:"),
]


def m_wf_edit(rng, data, base):
    options = [(a, b) for a, b in WF_EDITS if a in data]
    a, b = rng.choice(options)
    return data.replace(a, b, 1), f"wf_edit({a.decode()[:24]} -> {b.decode()[:28]})"


def m_wf_loop(rng, data, base):
    """A workflow that goes round in circles (validation must refuse it, or max_visits bound it)."""
    bound = rng.choice(["", "\n      max_visits: 1000", "\n      max_visits: 3"])
    text = (b"name: loop\nintent: go round\nworkflow:\n  states:\n    - name: a\n      call: clock.now\n"
            b"      next: b" + bound.encode() + b"\n    - name: b\n      call: agent.say\n      args: {message: hi}\n"
            b"      next: a\n")
    return text, f"wf_loop({bound.strip() or 'unbounded'})"


def m_wf_many_states(rng, data, base):
    n = rng.choice([1000, 5000])
    states = "".join(f"    - name: s{i}\n      call: agent.say\n      args: {{message: 'step {i}'}}\n" for i in range(n))
    return f"name: many\nintent: many steps\nworkflow:\n  states:\n{states}".encode(), f"wf_many_states({n})"


WORKFLOW_MUTATIONS = YAML_MUTATIONS + [Mutation("wf_edit", m_wf_edit), Mutation("wf_edit", m_wf_edit),
                                       Mutation("wf_edit", m_wf_edit), Mutation("wf_loop", m_wf_loop),
                                       Mutation("wf_many_states", m_wf_many_states)]


# -- journals ----------------------------------------------------------------------------------------------


def m_journal_record(rng, data, base):
    lines = [ln for ln in _split(data) if ln]
    i = rng.randrange(len(lines))
    record = json.loads(lines[i])
    edited, what = _tree_edit(rng, record)
    lines[i] = json.dumps(edited, separators=(",", ":"), default=str).encode()
    return b"\n".join(lines) + b"\n", f"record{i + 1}:{what}"


JOURNAL_EDITS = [
    (b'"event":"run_started"', b'"event":"run_exploded"'), (b'"event":"step_finished"', b'"event":"run_started"'),
    (b'"status":"ok"', b'"status":"okay"'), (b'"status":"done"', b'"status":"ok"'),
    (b'"state":"read"', b'"state":"nowhere"'), (b'"next":"read"', b'"next":"nowhere"'),
    (b'"seq":1,', b'"seq":"one",'), (b'"seq":0,', b'"seq":' + b"1" * 5000 + b","),
    (b'"sandbox":"' + FAKE_SANDBOX.encode() + b'"', b'"sandbox":""'),
    (b'"sandbox":"' + FAKE_SANDBOX.encode() + b'"', b'"sandbox":["a"]'),
    (b'"start":"now"', b'"start":"nowhere"'), (b'"start":"call"', b'"start":7'),
    (b'"context":{', b'"context":{"user":"nobody",'), (b'"context":{', b'"context":{"timezone":"Mars/Base",'),
    (b'"fixed_now":"2026-03-10T09:00:00"', b'"fixed_now":"yesterday"'), (b'"args":{', b'"args":{"a":' + b"[" * 5000),
    (b'"result":{', b'"result":' + b"[" * 100_000 + b"{"), (b'"data":{', b'"data":[{'),
    (b'"time":"2026', b'"time":"0000'), (b'"duration_s":0.000481', b'"duration_s":1e999'),
]


def m_journal_edit(rng, data, base):
    options = [(a, b) for a, b in JOURNAL_EDITS if a in data]
    a, b = rng.choice(options)
    return data.replace(a, b, 1), f"journal_edit({a.decode()[:22]} -> {b[:26].decode('utf-8', 'replace')})"


def m_journal_torn(rng, data, base):
    lines = [ln for ln in _split(data) if ln]
    i = rng.randrange(len(lines))
    cut = rng.randrange(1, max(2, len(lines[i])))
    where = rng.choice(["last", "middle"]) if i < len(lines) - 1 else "last"
    if where == "last":
        out = b"\n".join(lines) + b"\n" + lines[i][:cut]
    else:
        lines[i] = lines[i][:cut]
        out = b"\n".join(lines) + b"\n"
    return out, f"torn_{where}(record{i + 1}@{cut})"


def m_journal_reorder(rng, data, base):
    lines = [ln for ln in _split(data) if ln]
    how = rng.choice(["reverse", "first_last", "dup_first", "drop_first", "dup_all"])
    if how == "reverse":
        lines.reverse()
    elif how == "first_last":
        lines.append(lines.pop(0))
    elif how == "dup_first":
        lines.insert(rng.randrange(1, len(lines) + 1), lines[0])
    elif how == "drop_first":
        lines.pop(0)
    else:
        lines = lines * 3
    return b"\n".join(lines) + b"\n", f"journal_{how}"


def m_journal_inject(rng, data, base):
    lines = [ln for ln in _split(data) if ln]
    junk = rng.choice([b"[]", b"null", b"42", b'"text"', b"{}", b'{"seq":1}', b'{"event":"step_started"}',
                       b"{" * 10_000, b'{"seq":1,"event":"step_started","args":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                       b"not json at all", b"\x00" * 100, b'{"seq":1e400,"event":"run_finished"}'])
    i = rng.randrange(1, len(lines) + 1)
    lines.insert(i, junk)
    return b"\n".join(lines) + b"\n", f"inject_line{i + 1}({junk[:16]!r})"


JOURNAL_MUTATIONS = [Mutation("journal_record", m_journal_record), Mutation("journal_record", m_journal_record),
                     Mutation("journal_record", m_journal_record), Mutation("journal_edit", m_journal_edit),
                     Mutation("journal_edit", m_journal_edit), Mutation("journal_edit", m_journal_edit),
                     Mutation("journal_torn", m_journal_torn), Mutation("journal_reorder", m_journal_reorder),
                     Mutation("journal_inject", m_journal_inject), Mutation("json_token", m_json_token)]


# -- iCalendar ---------------------------------------------------------------------------------------------

ICS_VALUES = {
    b"DTSTART": [b"20261345T250000", b"", b"2026", b"20260311T090000Z;X", b"99999999T999999", b"00000000T000000",
                 b"20260311T09", b"tomorrow", b"20260311", b"-20260311T090000"],
    b"DTEND": [b"20260301T000000", b"garbage", b"", b"10000101T000000"],
    b"RRULE": [b"FREQ=SECONDLY", b"FREQ=MINUTELY", b"FREQ=SECONDLY;INTERVAL=1;COUNT=100000000", b"FREQ=NEVER",
               b"FREQ=WEEKLY;BYDAY=XX", b"FREQ=DAILY;INTERVAL=0", b"FREQ=DAILY;COUNT=-1", b"FREQ=DAILY;UNTIL=garbage",
               b"FREQ=YEARLY;BYMONTH=13", b"FREQ=MONTHLY;BYMONTHDAY=31;BYSETPOS=400", b"", b"COUNT=3",
               b"FREQ=HOURLY;BYHOUR=25", b"FREQ=DAILY;INTERVAL=" + b"9" * 400],
    b"DURATION": [b"PT45M", b"P-1D", b"PT99999999999999H", b"P", b"garbage", b"-PT1S", b"P1Y"],
    b"EXDATE": [b"garbage", b"20260316T160000,,,", b""],
    b"RECURRENCE-ID": [b"garbage", b"", b"20260399T160000"],
    b"UID": [b"", b"x" * 100_000],
    b"TZID": [b"Mars/Olympus", b"", b"../../etc/localtime"],
    b"STATUS": [b"DELETED", b"", b"\x00"],
    b"ATTENDEE": [b"mailto:", b"not-an-address", b"mailto:" + b"a" * MB],
}


def m_ics_value(rng, data, base):
    lines = _split(data)
    candidates = [i for i, ln in enumerate(lines) if ln.split(b";")[0].split(b":")[0] in ICS_VALUES]
    i = rng.choice(candidates)
    name = lines[i].split(b";")[0].split(b":")[0]
    value = rng.choice(ICS_VALUES[name])
    cr = b"\r" if lines[i].endswith(b"\r") else b""
    if name == b"TZID":
        lines[i] = lines[i].split(b":")[0] + b":" + value + cr
    elif b"TZID=" in lines[i] and rng.random() < 0.3:
        lines[i] = lines[i].replace(b"TZID=Europe/Berlin", b"TZID=" + rng.choice(ICS_VALUES[b"TZID"]))
    else:
        lines[i] = lines[i].split(b":")[0] + b":" + value + cr
    return b"\n".join(lines), f"ics_value({name.decode()}={value[:24].decode('latin-1')})"


ICS_STRUCTURE = ["drop_end_event", "drop_end_calendar", "nested_events", "deep_components", "no_colon",
                 "fold_first", "bad_param", "dup_dtstart", "no_dtstart", "event_outside", "vtodo_only", "x_props"]


def m_ics_structure(rng, data, base):
    text = data
    how = rng.choice(ICS_STRUCTURE)
    if how == "drop_end_event":
        text = text.replace(b"END:VEVENT", b"", 1)
    elif how == "drop_end_calendar":
        text = text.replace(b"END:VCALENDAR", b"")
    elif how == "nested_events":
        n = rng.choice([10, 1000])
        text = text.replace(b"BEGIN:VEVENT", b"BEGIN:VEVENT\n" * n, 1)
    elif how == "deep_components":
        n = rng.choice([1000, 20_000])
        text = text.replace(b"END:VCALENDAR", b"BEGIN:X-A\n" * n + b"END:X-A\n" * n + b"END:VCALENDAR")
    elif how == "no_colon":
        text = text.replace(b"SUMMARY:", b"SUMMARY", 1)
    elif how == "fold_first":
        text = b" " + text
    elif how == "bad_param":
        text = text.replace(b"DTSTART;", b'DTSTART;TZID="Europe/Berlin;VALUE=', 1).replace(b"DTSTART:", b'DTSTART;X="":', 1)
    elif how == "dup_dtstart":
        text = text.replace(b"DTSTART", b"DTSTART:20260101T000000\nDTSTART", 1)
    elif how == "no_dtstart":
        lines = [ln for ln in _split(text) if not ln.startswith(b"DTSTART")]
        text = b"\n".join(lines)
    elif how == "event_outside":
        text = text + b"BEGIN:VEVENT\nSUMMARY:stray\nDTSTART:20260311T090000\nEND:VEVENT\n"
    elif how == "vtodo_only":
        text = text.replace(b"VEVENT", b"VTODO")
    else:
        text = text.replace(b"END:VEVENT", b"X-" + b"Y" * 200 + b";X-P=" + b"a" * 5000 + b":v\nEND:VEVENT", 1)
    return text, f"ics_{how}"


ICS_MUTATIONS = [Mutation("ics_value", m_ics_value)] * 4 + [Mutation("ics_structure", m_ics_structure)] * 3


# -- vCard ----------------------------------------------------------------------------------------------------

VCF_EDITS = [
    (b"FN:", b"XFN:"), (b"END:VCARD", b""), (b"BEGIN:VCARD", b"BEGIN:VCARD\nBEGIN:VCARD"), (b"VERSION:3.0", b"VERSION:9.9"),
    (b"VERSION:", b"VERSION;X=:"), (b"EMAIL;TYPE=INTERNET:", b"EMAIL;TYPE=INTERNET:<<<@@>>>,"),
    (b"N:", b"N:" + b";" * 5000), (b"CATEGORIES:", b"CATEGORIES:" + b"," * 5000), (b"FN:", b"FN:\n"),
    (b"FN:", b"FN;ENCODING=QUOTED-PRINTABLE:=ZZ=G="), (b"NOTE:", b"NOTE;ENCODING=b:!!!notbase64"),
    (b"PHOTO:", b"PHOTO;ENCODING=b;TYPE=JPEG:%%%%"), (b"ORG:", b"ORG;CHARSET=x-unknown:"), (b"UID:", b"UID:\n UID:"),
    (b"TEL;", b"TEL;TYPE=\"unterminated:"), (b"ADR;", b"ADR;TYPE=home:" + b";" * 1000), (b"FN:", b"FN;" + b"X" * 70000 + b":"),
    (b"BEGIN:VCARD", b"BEGIN:VCALENDAR"), (b"END:VCARD", b"END:VCALENDAR"),
]


def m_vcf_edit(rng, data, base):
    options = [(a, b) for a, b in VCF_EDITS if a in data]
    a, b = rng.choice(options)
    return data.replace(a, b, 1), f"vcf_edit({a.decode()[:20]} -> {b[:24].decode('latin-1')})"


def m_vcf_deep(rng, data, base):
    n = rng.choice([100, 5000])
    return data.replace(b"BEGIN:VCARD", b"BEGIN:VCARD\n" + b"BEGIN:X\n" * n + b"END:X\n" * n, 1), f"vcf_nested({n})"


VCF_MUTATIONS = [Mutation("vcf_edit", m_vcf_edit)] * 5 + [Mutation("vcf_deep", m_vcf_deep)]


# -- tasks.json ---------------------------------------------------------------------------------------------


TASK_VALUES = {
    "due": ["2026-02-30", "2026-03-10T25:00", "", "never", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-23:59",
            "10000-01-01", "friday 3pm", "1" * 5000, "2026-03-10T08:00:00+99:00"],
    "priority": ["urgent", "", "HIGH", 1, None],
    "id": ["t1", "", 1, None, "t" + "9" * 5000, "../t1"],
    "tags": ["work", [1, 2], [None], [["x"]], {}],
    "done": ["yes", 1, None, "false"],
    "title": ["", None, 7, ["a"], "\x00"],
    "created": ["yesterday", 5, "2026-13-01"],
}


def m_task_field(rng, data, base):
    tasks = json.loads(data)
    i = rng.randrange(len(tasks))
    key = rng.choice(list(TASK_VALUES))
    value = rng.choice(TASK_VALUES[key])
    tasks[i][key] = value
    return json.dumps(tasks, indent=2).encode(), f"task{i}.{key}={json.dumps(value)[:24]}"


def m_task_shape(rng, data, base):
    tasks = json.loads(data)
    how = rng.choice(["object", "nested", "dup_ids", "many", "strings", "empty_list", "list_of_lists"])
    if how == "object":
        out: Any = {"tasks": tasks}
    elif how == "nested":
        out = [tasks]
    elif how == "dup_ids":
        out = tasks + [dict(tasks[0])]
    elif how == "many":
        out = [{"id": f"t{i}", "title": f"task {i}", "due": "2026-03-10"} for i in range(rng.choice([10_000, 50_000]))]
    elif how == "strings":
        out = ["buy milk", "call mum"]
    elif how == "empty_list":
        out = []
    else:
        out = [[t["id"], t["title"]] for t in tasks]
    return json.dumps(out).encode(), f"tasks_{how}"


TASK_MUTATIONS = ([Mutation("task_field", m_task_field)] * 4 + [Mutation("task_shape", m_task_shape)] * 2
                  + [Mutation("json_tree", m_json_tree)] * 2 + [Mutation("json_token", m_json_token)] * 2)


# -- Maildir messages ---------------------------------------------------------------------------------------

MAIL_EDITS = [
    (b"boundary=", b"boundary_missing="), (b'--\n', b"\n"), (b"charset=\"utf-8\"", b"charset=\"x-no-such-charset\""),
    (b"charset=iso-8859-1", b"charset=\"\""), (b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: x-uuencode"),
    (b"VG90YWwgRVVSIDM5Ljkw", b"!!!*not*base64*==="), (b"quoted-printable\n\n", b"quoted-printable\n\n=ZZ=\n=E2=8"),
    (b"Date: ", b"Date: Mon, 99 Foo 99999 99:99:99 +9999\nX-Old-Date: "), (b"Date: ", b"Date: \nX-Old-Date: "),
    (b"From: ", b"From: <<<@@>>>, \"unterminated <x@y\nX-Old-From: "), (b"To: ", b"To: " + b"a@b.c, " * 20000 + b"\nX: "),
    (b"Subject: ", b"Subject: =?x-unknown?Q?abc?= =?utf-8?B?!!!?= =?utf-8?Q?=ZZ?=\nX-Old-Subject: "),
    (b"filename=\"", b"filename*=utf-8''%FF%FE%00\nX: \""), (b"filename=\"", b"filename*0*=bad'';filename*99=\""),
    (b"Content-Type: multipart/mixed", b"Content-Type: multipart/"), (b"Content-Type: text/plain", b"Content-Type: /"),
    (b"MIME-Version: 1.0\n", b""), (b"\n\n", b"\n", ), (b"Content-Type: multipart/alternative", b"Content-Type: message/rfc822"),
    (b"Message-ID: ", b"Message-ID: " + b"<" * 10000 + b"\nX: "),
]


def m_mail_edit(rng, data, base):
    options = [(a, b) for a, b in MAIL_EDITS if a in data]
    a, b = rng.choice(options)
    return data.replace(a, b, 1), f"mail_edit({a.decode()[:24]!r} -> {b[:24].decode('latin-1')!r})"


def m_mail_nested(rng, data, base):
    """Multiparts nested thousands deep (the parser and get_body recurse)."""
    n = rng.choice([100, 2000, 20_000])
    head = b"From: a@example.org\nTo: alex@example.org\nSubject: nested\nMIME-Version: 1.0\n"
    parts = b"".join(b"Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n" % (i, i) for i in range(n))
    return head + parts + b"Content-Type: text/plain\n\ndeep\n", f"mail_nested_multipart({n})"


def m_mail_header(rng, data, base):
    how = rng.choice(["long_header", "many_headers", "folded_forever", "no_body_sep", "header_only", "8bit_header"])
    if how == "long_header":
        return b"X-Long: " + b"a" * MB + b"\n" + data, "mail_long_header(1MB)"
    if how == "many_headers":
        return b"".join(b"X-H%d: v\n" % i for i in range(50_000)) + data, "mail_many_headers(50000)"
    if how == "folded_forever":
        return b"Subject: start\n" + b" continued\n" * 50_000 + data, "mail_folded_header(50000)"
    if how == "no_body_sep":
        return data.replace(b"\n\n", b"\n", 1), "mail_no_header_body_separator"
    if how == "header_only":
        return data.split(b"\n\n", 1)[0], "mail_header_only"
    return b"Subject: caf\xe9 \xff\xfe\nFrom: J\xf6rg <j@example.org>\n" + data, "mail_8bit_header"


MAIL_MUTATIONS = [Mutation("mail_edit", m_mail_edit)] * 4 + [Mutation("mail_nested", m_mail_nested),
                                                              Mutation("mail_header", m_mail_header),
                                                              Mutation("mail_header", m_mail_header)]


# -- CSV (dataflow histories, metrics, LogHub CSV) ------------------------------------------------------------

CELL_VALUES = ["", " ", "abc", "nan", "NaN", "inf", "-inf", "-1", "0", "0.0", "1e400", "1e-400", "1" * 5000, "2.5",
               '"', '"unterminated', '""', "\x00", "1,5", "\t", "0x10", "1_000", "١٢٣", "+3", "--1", "True"]


def _delim(base: Base) -> str:
    return "\t" if base.fmt == "tsv" else ","


def m_csv_cell(rng, data, base):
    d = _delim(base).encode()
    lines = _split(data)
    rows = [i for i, ln in enumerate(lines) if ln.strip()]
    i = rng.choice(rows[1:] if len(rows) > 1 and rng.random() < 0.85 else rows)
    cells = lines[i].split(d)
    j = rng.randrange(len(cells))
    value = rng.choice(CELL_VALUES).encode()
    if rng.random() < 0.1:
        value = b"9" * (MB // 2)
    cells[j] = value
    lines[i] = d.join(cells)
    return b"\n".join(lines), f"csv_cell(line{i + 1},col{j + 1}={value[:16]!r})"


def m_csv_shape(rng, data, base):
    d = _delim(base).encode()
    lines = _split(data)
    how = rng.choice(["extra_col", "missing_col", "header_only", "no_header", "header_renamed", "header_case",
                      "other_delim", "dup_header", "quoted_newline", "unterminated_quote", "huge_field",
                      "many_rows", "many_cols", "blank_rows"])
    rows = [i for i, ln in enumerate(lines) if ln.strip()]
    r = rng.choice(rows[1:] or rows)
    if how == "extra_col":
        lines[r] += d + b"7"
    elif how == "missing_col":
        lines[r] = d.join(lines[r].split(d)[:-1])
    elif how == "header_only":
        lines = lines[:1]
    elif how == "no_header":
        lines = lines[1:]
    elif how == "header_renamed":
        cols = lines[0].split(d)
        k = rng.randrange(len(cols))
        cols[k] = rng.choice([b"", b"unknown", cols[k] + b"_x", b"timestamp", b"value"])
        lines[0] = d.join(cols)
    elif how == "header_case":
        lines[0] = lines[0].upper()
    elif how == "other_delim":
        other = b";" if d == b"," else b","
        lines = [ln.replace(d, other) for ln in lines]
    elif how == "dup_header":
        lines.insert(r, lines[0])
    elif how == "quoted_newline":
        lines[r] = b'"' + lines[r] + b'\nstill the same cell"'
    elif how == "unterminated_quote":
        lines[r] = lines[r].replace(d, d + b'"', 1)
    elif how == "huge_field":
        lines[r] = lines[r].replace(d, d + b"7" * 200_000, 1)
    elif how == "many_rows":
        lines = lines[:1] + lines[1:] * rng.choice([500, 3000])
    elif how == "many_cols":
        lines = [ln + (d + b"1") * 10_000 for ln in lines]
    else:
        lines = [ln + b"\n" + d * 5 for ln in lines]
    return b"\n".join(lines), f"csv_{how}"


CSV_MUTATIONS = [Mutation("csv_cell", m_csv_cell)] * 4 + [Mutation("csv_shape", m_csv_shape)] * 4


# -- topology --------------------------------------------------------------------------------------------------

TOPO_EDITS = [
    (b"to: api", b"to: lb"), (b"to: api", b"to: nowhere"), (b"to: db", b"to: api"), (b"name: api", b"name: lb"),
    (b"host: app-1", b"host: elsewhere"), (b"components:", b"components: []\nzz:"), (b"dependencies:", b"dependencies: {}\nzz:"),
    (b"name: tinyshop", b"name: [1, 2]"), (b"kind: cache", b"kind: 42"), (b"from: api", b"caller: api"),
    (b"name: lb", b"name: ''"), (b"hosts: [edge-1, app-1, data-1]", b"hosts: edge-1"),
]


def m_topo_edit(rng, data, base):
    options = [(a, b) for a, b in TOPO_EDITS if a in data]
    a, b = rng.choice(options)
    return data.replace(a, b, 1), f"topo_edit({a.decode()} -> {b.decode()[:24]})"


def m_topo_big(rng, data, base):
    n = rng.choice([1000, 5000])
    comps = "".join(f"- {{name: c{i}, host: h{i % 50}}}\n" for i in range(n))
    deps = "".join(f"- {{from: c{i}, to: c{i + 1}}}\n" for i in range(n - 1))
    return f"name: big\ncomponents:\n{comps}dependencies:\n{deps}".encode(), f"topo_big({n} components)"


TOPOLOGY_MUTATIONS = YAML_MUTATIONS + [Mutation("topo_edit", m_topo_edit)] * 3 + [Mutation("topo_big", m_topo_big)]


# -- metrics ---------------------------------------------------------------------------------------------------


def _is_csv(base: Base) -> bool:
    return base.fmt == "csv"


def _is_json(base: Base) -> bool:
    return base.fmt == "json"


PROM_EDITS = [
    (b'"status": "success"', b'"status": "error"'), (b'"resultType": "matrix"', b'"resultType": "vector"'),
    (b'"result": [', b'"result": {"a": ['), (b'"service": "api"', b'"service": ""'),
    (b'"__name__": "container_cpu_usage"', b'"__name__": "gpu"'), (b'"values": [', b'"values": [["x", "1"], '),
    (b'"values": [', b'"values": [[1700000000.0], '), (b'"values": [', b'"values": [[1700000000.0, "NaN"], '),
    (b'"values": [', b'"values": [[1e400, "1"], '), (b'"values": [', b'"values": [[1700000000.0, null], '),
    (b'"values": [', b'"values": [["2023-13-01T00:00:00", "1"], '), (b'"metric": {', b'"metric": ["'),
]


def m_prom_edit(rng, data, base):
    options = [(a, b) for a, b in PROM_EDITS if a in data]
    a, b = rng.choice(options)
    return data.replace(a, b, 1), f"prom_edit({a.decode()[:22]} -> {b.decode()[:26]})"


METRICS_CSV_EDITS = [
    (b",lb,", b",,"), (b",api,", b",gateway,"), (b"1700000000.0,", b"2023-13-45T99:00:00,"), (b"1700000000.5,", b"inf,"),
    (b"cpu", b"gpu"), (b"latency", b"latency,extra"), (b",cpu,", b",memory,"),
]


def m_metrics_csv_edit(rng, data, base):
    options = [(a, b) for a, b in METRICS_CSV_EDITS if a in data]
    a, b = rng.choice(options)
    count = rng.choice([1, -1])
    return data.replace(a, b, count), f"metrics_edit({a.decode()} -> {b.decode()}{' all' if count < 0 else ''})"


METRICS_MUTATIONS = [Mutation("csv_cell", m_csv_cell, _is_csv), Mutation("csv_cell", m_csv_cell, _is_csv),
                     Mutation("csv_shape", m_csv_shape, _is_csv), Mutation("csv_shape", m_csv_shape, _is_csv),
                     Mutation("metrics_csv_edit", m_metrics_csv_edit, _is_csv),
                     Mutation("prom_edit", m_prom_edit, _is_json), Mutation("prom_edit", m_prom_edit, _is_json),
                     Mutation("json_tree", m_json_tree, _is_json), Mutation("json_token", m_json_token, _is_json)]


# -- logs ------------------------------------------------------------------------------------------------------


def _is_gz(base: Base) -> bool:
    return base.fmt == "gzlog"


def m_gz(rng, data, base):
    """Damage to the gzip stream itself (or a text mutation inside it)."""
    how = rng.choice(["truncate", "flip", "trailing", "bomb", "members", "header_only", "text_inside", "bad_crc"])
    if how == "truncate":
        cut = rng.randrange(2, len(data))
        return data[:cut], f"gz_truncate@{cut}"
    if how == "flip":
        out = bytearray(data)
        i = rng.randrange(10, len(out))
        out[i] ^= 0xFF
        return bytes(out), f"gz_flip@{i}"
    if how == "trailing":
        return data + rng.randbytes(rng.choice([1, 100])), "gz_trailing_garbage"
    if how == "bomb":
        size = rng.choice([64, 256]) * MB
        chunk = rng.choice([b"\x00", b"A"])
        return gzip.compress(chunk * (size // len(chunk)), compresslevel=9, mtime=0), f"gz_bomb({size // MB}MB of {chunk!r})"
    if how == "members":
        return data + data + gzip.compress(b"\xff\xfe binary member \x00\x00", mtime=0), "gz_multi_member"
    if how == "header_only":
        return b"\x1f\x8b", "gz_magic_only"
    if how == "bad_crc":
        out = bytearray(data)
        out[-8] ^= 0x01
        return bytes(out), "gz_bad_crc"
    plain = gzip.decompress(data)
    mutation = rng.choice(STACKABLE)
    inner, what = mutation.apply(rng, plain, base)
    return gzip.compress(inner, mtime=0), f"gz({what})"


LOG_LINES = [b"\x00" * 200, b"\xff\xfe" * 100, b"081109 999999 1 INFO x: y", b"- notanumber 2005.13.45 R R RAS KERNEL",
             b"2024-02-30T25:61:61Z INFO impossible time", b"Feb 30 25:61:61 host x[1]: y", b"[Sun Dec 99 99:99:99 2005] [x] y",
             b"LineId,Date,Time", b"\t\t\t", b"blk_" + b"9" * 5000, b"%s %d %n {0} ${jndi:ldap://x}"]


def m_log_lines(rng, data, base):
    lines = _split(data)
    n = rng.choice([1, 3, 20])
    for _ in range(n):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(LOG_LINES))
    return b"\n".join(lines), f"log_lines({n})"


def m_log_binary_head(rng, data, base):
    head = rng.choice([b"\x7fELF\x02\x01\x01" + b"\x00" * 500, b"PK\x03\x04" + rng.randbytes(300), rng.randbytes(70_000),
                       b"\x89PNG\r\n\x1a\n" + rng.randbytes(200)])
    return head + data, f"log_binary_head({head[:4]!r})"


def m_log_no_newline(rng, data, base):
    n = rng.choice([3, 20]) * MB
    return data + b"x" * n, f"log_unterminated_line({n // MB}MB)"


LOG_MUTATIONS = [Mutation("gz", m_gz, _is_gz), Mutation("gz", m_gz, _is_gz), Mutation("log_lines", m_log_lines),
                 Mutation("log_lines", m_log_lines), Mutation("log_binary_head", m_log_binary_head),
                 Mutation("log_no_newline", m_log_no_newline), Mutation("many_lines", m_many_lines),
                 Mutation("csv_cell", m_csv_cell, lambda b: b.fmt == "csv"),
                 Mutation("csv_shape", m_csv_shape, lambda b: b.fmt == "csv")]


# -- notes -----------------------------------------------------------------------------------------------------

NOTE_EDITS = [
    (b"---\n#", b"#"), (b"tags: [travel, lists]", b"tags: {a: 1}"), (b"tags: [travel, lists]", b"tags: 42"),
    (b"tags: [travel, lists]", b"tags: [[1], {a: b}]"), (b"title: Trip to Lisbon", b"title: [1, 2]"),
    (b"title: Trip to Lisbon", b"title: "), (b"created: '2026-03-02T10:00:00+01:00'", b"created: 2026-02-30"),
    (b"updated: 2026-03-05T18:30:00+01:00", b"updated: 99999-01-01"), (b"---\ntitle", b"--- !!python/object:os.system\ntitle"),
    (b"---\ntitle", b"---\n- a list\ntitle"), (b"---\ntitle", b"...\ntitle"), (b"# Shopping", b"---\n# Shopping"),
    (b"# Shopping", b"---\n---\n# Shopping"), (b"# Shopping", b"---\n" + b"[" * 50_000 + b"\n---\n# Shopping"),
]


def m_note_edit(rng, data, base):
    options = [(a, b) for a, b in NOTE_EDITS if a in data]
    a, b = rng.choice(options)
    return data.replace(a, b, 1), f"note_edit({a.decode()[:20]!r} -> {b[:24].decode()!r})"


NOTE_MUTATIONS = ([Mutation("note_edit", m_note_edit)] * 4
                  + [Mutation(m.name, m.apply, lambda b: b.name == "front-matter") for m in YAML_MUTATIONS])

SPECIFIC: dict[str, list[Mutation]] = {
    "workflow": WORKFLOW_MUTATIONS, "journal": JOURNAL_MUTATIONS, "ics": ICS_MUTATIONS, "vcf": VCF_MUTATIONS,
    "tasks": TASK_MUTATIONS, "maildir": MAIL_MUTATIONS, "csv": CSV_MUTATIONS, "topology": TOPOLOGY_MUTATIONS,
    "metrics": METRICS_MUTATIONS, "logs": LOG_MUTATIONS, "notes": NOTE_MUTATIONS,
}
MAX_BYTES = 80 * MB  # a gzip bomb is small on disk; everything else stays far below this


def mutations(kind: str) -> list[Mutation]:
    """The cycle of mutations for a kind: its own (about half) interleaved with the generic ones."""
    own, generic = SPECIFIC[kind], GENERIC
    cycle: list[Mutation] = []
    for i in range(max(len(own), len(generic))):
        if i < len(own):
            cycle.append(own[i])
        if i < len(generic):
            cycle.append(generic[i])
    return cycle


def case(kind: str, index: int, seed: int = SEED) -> Case:
    rng = random.Random(f"{seed}/{kind}/{index}")
    cycle = mutations(kind)
    mutation = cycle[index % len(cycle)]
    bases = [b for b in BASES[kind] if mutation.fits(b)] or BASES[kind]
    base = rng.choice(bases)
    data, what = mutation.apply(rng, base.data, base)
    if rng.random() < 0.3 and len(data) < 4 * MB and not _is_gz(base):
        extra = rng.choice(STACKABLE)
        data, more = extra.apply(rng, data, base)
        what = f"{what} + {more}"
    if len(data) > MAX_BYTES:
        data, what = data[:MAX_BYTES], what + " (cut to the size limit)"
    if data == base.data:  # a mutation that changed nothing is no malformed input: change one byte
        data, more = m_flip(rng, data, base)
        what = f"{what} + {more}"
    return Case(kind=kind, index=index, id=f"{kind}-{index:03d}", base=base.name, mutation=what, target=base.target,
                data=data, support=base.support)


def control(kind: str, index: int) -> Case:
    """A valid example, unchanged: the harness itself must see it pass with exit code 0."""
    base = BASES[kind][index]
    return Case(kind=kind, index=index, id=f"{kind}-valid{index}", base=base.name, mutation="none (valid)",
                target=base.target, data=base.data, support=base.support)


def all_ids() -> list[str]:
    return [f"{kind}-{i:03d}" for kind in KINDS for i in range(COUNTS[kind])]


def control_ids() -> list[str]:
    return [f"{kind}-valid{i}" for kind in KINDS for i in range(len(BASES[kind]))]


def by_id(case_id: str) -> Case:
    kind, _, rest = case_id.rpartition("-")
    if rest.startswith("valid"):
        return control(kind, int(rest[5:]))
    return case(kind, int(rest))
