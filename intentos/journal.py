"""The Journal: an append-only JSONL record of every transition of a run.

Each record is written, flushed and fsynced before the executor takes its next step,
so a run killed at any point can be inspected and resumed: whatever finished is in
the file. A torn last line (the process died mid-write: bytes after the last newline
that are no complete record) is ignored when reading; when the journal is reopened to
append, it is moved aside (to `journal.torn` beside it) and cut off, so the next record
starts on a line of its own. Damage anywhere else (bytes that are not UTF-8, JSON that
does not parse or nests too deeply, a field of the wrong type, records that do not fit
together) is a JournalError naming the file and line, never a crash.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from intentos import locations, yamlfile
from intentos.errors import JournalError
from intentos.workflow import TERMINALS, Workflow

Event = Literal["run_started", "run_resumed", "step_started", "step_finished", "run_finished"]
RunStatus = Literal["running", "done", "failed", "declined", "cancelled", "interrupted"]
STEP_STATUSES = ("ok", "error", "timeout", "declined", "cancelled")
FINISHED_STATUSES = ("done", "failed", "declined", "cancelled")
MAX_RECORD_DEPTH = 200  # JSON nesting in one record; deeper is damage (json and pydantic recurse on it)
TORN_FILE = "journal.torn"


class Record(BaseModel):
    seq: int
    event: Event
    time: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    state: str | None = None
    call: str | None = None
    args: dict[str, Any] | None = None
    items: list[dict[str, Any]] | None = None  # a for_each step: each item's resolved arguments (args as written)
    status: str | None = None
    result: Any = None
    error: str | None = None
    next: str | None = None
    duration_s: float | None = None
    data: dict[str, Any] | None = None  # run-level facts: workflow, sandbox, intent, context


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class Journal:
    """One run's journal file, opened for appending. Holds an exclusive lock while open."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "journal.jsonl"
        fresh = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise JournalError(f"run {run_dir.name} is being executed by another process") from None
        try:
            if fresh:
                _fsync_dir(run_dir.parent)
                self._seq = 0
            else:
                self._seq = len(self._repair_tail())
        except BaseException:
            self._fh.close()
            raise

    def _repair_tail(self) -> list[Record]:
        """Make the file end at a record boundary before anything is appended; return its records.

        A complete last record that only lacks its newline gets one. Anything else after the last
        newline is a write torn by a crash: it is saved to `journal.torn` (nothing written is lost)
        and cut off, both fsynced, so the next record does not run on into it.
        """
        raw = _read_bytes(self.path)
        cut = raw.rfind(b"\n") + 1
        tail = raw[cut:]
        if tail:
            try:
                _parse_line(tail)
            except _Damaged:
                if tail.strip():
                    with open(self.run_dir / TORN_FILE, "ab") as aside:
                        aside.write(tail + b"\n")
                        aside.flush()
                        os.fsync(aside.fileno())
                os.ftruncate(self._fh.fileno(), cut)
                raw = raw[:cut]
            else:
                self._fh.write("\n")
                raw += b"\n"
            self._fh.flush()
            os.fsync(self._fh.fileno())
        return [record for _, record in _parse(self.path, raw)]

    @classmethod
    def create(cls, run_id: str | None = None, root: Path | None = None) -> Journal:
        run_dir = (root or locations.runs_dir()) / (run_id or new_run_id())
        if run_dir.exists():
            raise JournalError(f"run {run_dir.name} already exists")
        return cls(run_dir)

    @classmethod
    def reopen(cls, run_id: str, root: Path | None = None) -> Journal:
        run_dir = (root or locations.runs_dir()) / run_id
        if not (run_dir / "journal.jsonl").is_file():
            raise JournalError(f"no run {run_id!r} under {run_dir.parent}")
        return cls(run_dir)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def append(self, event: Event, **fields: Any) -> Record:
        record = Record(seq=self._seq, event=event, **fields)
        self._fh.write(record.model_dump_json(exclude_none=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._seq += 1
        return record

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: Path) -> list[Record]:
    """Every record of a journal; a torn final line is left out, other damage is a JournalError."""
    return [record for _, record in _parse(path, _read_bytes(path))]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"no journal at {path}") from None
    except OSError as exc:
        raise JournalError(f"{path}: the journal cannot be read ({exc.strerror or exc})") from None


class _Damaged(ValueError):
    """One line is not a record; the message says why (one line)."""


def _parse(path: Path, raw: bytes) -> list[tuple[int, Record]]:
    """(line number, record) for every line; bytes after the last newline that are no record are a torn write."""
    lines = raw.split(b"\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append((number, _parse_line(line)))
        except _Damaged as exc:
            if number == len(lines):
                break  # no newline after it: a torn final write from a crash; everything before it is intact
            raise JournalError(f"{path}:{number}: damaged journal record ({exc})") from None
    return records


def _parse_line(line: bytes) -> Record:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Damaged(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise _Damaged(f"JSON nested deeper than {MAX_RECORD_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise _Damaged(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer with too many digits
        raise _Damaged(f"not JSON: {yamlfile.one_line(exc)}") from None
    if not isinstance(data, dict):
        raise _Damaged(f"a record is a JSON object, not {type(data).__name__}")
    if yamlfile.nesting_depth(data, MAX_RECORD_DEPTH) > MAX_RECORD_DEPTH:
        raise _Damaged(f"JSON nested deeper than {MAX_RECORD_DEPTH} levels")
    try:
        return Record.model_validate(data)
    except ValidationError as exc:
        raise _Damaged(_problems(exc)) from None


def _problems(exc: ValidationError, limit: int = 300) -> str:
    """A pydantic error as one short line: `field: message; ...`."""
    text = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {yamlfile.one_line(e['msg'])}"
                     for e in exc.errors())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- reading a run back ----------------------------------------------------------------------


class StepView(BaseModel):
    state: str
    call: str
    args: dict[str, Any] | None = None
    items: list[dict[str, Any]] | None = None  # a for_each step: each item's resolved arguments
    status: str  # ok/error/timeout/declined/cancelled, or "running" if it never finished
    result: Any = None
    error: str | None = None
    next: str | None = None
    duration_s: float | None = None


class RunView(BaseModel):
    """A run as its journal tells it: what ran, what came of it, where it would go on."""

    run_id: str
    status: RunStatus
    started: str
    finished: str | None = None
    intent: str | None = None
    source: str | None = None
    sandbox: str
    workflow: dict[str, Any]
    context: dict[str, Any] = Field(default_factory=dict)
    resolution: dict[str, Any] | None = None  # model, attempts, tokens, when a model wrote the workflow
    steps: list[StepView] = Field(default_factory=list)
    results: dict[str, Any] = Field(default_factory=dict)  # latest result of each state
    visits: dict[str, int] = Field(default_factory=dict)  # completed visits per state
    resume_at: str | None = None  # the state a resume would enter
    error: str | None = None


def run_summary(view: RunView) -> dict[str, Any]:
    """A run as `--json` prints it (CLI and MCP server): its id, final state and each step's status."""
    return {
        "run_id": view.run_id,
        "status": view.status,
        "final_state": view.status if view.status in ("done", "failed") else view.resume_at,
        "sandbox": view.sandbox,
        # A step error that an on_failure branch handled is no error of a run that reached `done`.
        "error": view.error if view.status != "done" else None,
        "steps": [s.model_dump(exclude_none=True) for s in view.steps],
    }


def view_run(run_dir: Path) -> RunView:
    """The run a journal tells; a journal that does not tell a run is a JournalError naming file and line."""
    path = run_dir / "journal.jsonl"
    records = _parse(path, _read_bytes(path))
    try:
        return _view(run_dir.name, path, records)
    except JournalError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:  # a backstop: never a crash
        raise JournalError(f"{path}: the journal does not tell a run ({type(exc).__name__}: "
                           f"{yamlfile.one_line(exc)[:300]})") from None


def _view(run_id: str, path: Path, records: list[tuple[int, Record]]) -> RunView:
    if not records or records[0][1].event != "run_started" or not records[0][1].data:
        raise JournalError(f"{path}:{records[0][0] if records else 1}: does not start with a run_started record")
    number, first = records[0]
    head = first.data or {}

    def bad(line: int, message: str) -> JournalError:
        return JournalError(f"{path}:{line}: {message}")

    if not isinstance(head.get("workflow"), dict):
        raise bad(number, "the run_started record has no workflow (a mapping)")
    try:
        workflow = Workflow.model_validate(head["workflow"])
    except ValidationError as exc:
        raise bad(number, f"the journaled workflow is not a valid workflow ({_problems(exc)})") from None
    if not isinstance(head.get("sandbox"), str) or not head["sandbox"]:
        raise bad(number, "the run_started record names no sandbox")
    for key, kind in (("context", dict), ("resolution", dict), ("intent", str), ("source", str)):
        if head.get(key) is not None and not isinstance(head[key], kind):
            raise bad(number, f"the run_started record's {key} is not a {'mapping' if kind is dict else 'text'}")
    context = head.get("context") or {}
    if context.get("user") is not None and not isinstance(context["user"], dict):
        raise bad(number, "the run_started record's context.user is not a mapping")
    view = RunView(
        run_id=run_id,
        status="interrupted",
        started=first.time,
        intent=head.get("intent"),
        source=head.get("source"),
        sandbox=head["sandbox"],
        workflow=head["workflow"],
        context=context,
        resolution=head.get("resolution"),
        resume_at=workflow.start,
    )
    states = workflow.states

    def known(line: int, rec: Record, field: str, allowed: tuple[str, ...] = ()) -> str:
        value = getattr(rec, field)
        if value not in states and value not in allowed:
            raise bad(line, f"{rec.event} record: {field} {value!r} is not a state of the run's workflow")
        return value

    for number, rec in records[1:]:
        if rec.event == "run_started":
            raise bad(number, "a second run_started record")
        if rec.event == "step_started":
            state = known(number, rec, "state")
            view.steps.append(StepView(state=state, call=rec.call or "", args=rec.args, items=rec.items,
                                       status="running"))
            view.resume_at = state
        elif rec.event == "step_finished":
            state = known(number, rec, "state")
            if rec.status not in STEP_STATUSES:
                raise bad(number, f"step_finished record: status {rec.status!r} is not one of "
                                  f"{', '.join(STEP_STATUSES)}")
            if rec.next is not None:
                known(number, rec, "next", TERMINALS)
            step = view.steps[-1] if view.steps and view.steps[-1].status == "running" else None
            if step is None:  # declined before starting: no step_started record
                step = StepView(state=state, call=rec.call or "", args=rec.args, items=rec.items, status="running")
                view.steps.append(step)
            step.status, step.result, step.error = rec.status, rec.result, rec.error
            if rec.items is not None:
                step.items = rec.items
            step.next, step.duration_s = rec.next, rec.duration_s
            if rec.status == "ok":
                view.results[step.state] = rec.result
            if rec.status in ("ok", "error", "timeout"):
                view.visits[step.state] = view.visits.get(step.state, 0) + 1
                view.resume_at = rec.next if rec.next is not None else (
                    states[step.state].next if rec.status == "ok" else states[step.state].on_failure)
            else:  # declined/cancelled: a resume asks again at the same state
                view.resume_at = step.state
            if rec.error:
                view.error = rec.error
        elif rec.event == "run_resumed":
            if rec.state is not None:
                known(number, rec, "state", TERMINALS)
            view.status = "interrupted"
            view.finished = None
        elif rec.event == "run_finished":
            if rec.status not in FINISHED_STATUSES:
                raise bad(number, f"run_finished record: status {rec.status!r} is not one of "
                                  f"{', '.join(FINISHED_STATUSES)}")
            view.status = rec.status  # type: ignore[assignment]
            view.finished = rec.time
            if rec.error:
                view.error = rec.error
    if view.status == "interrupted" and view.steps and view.steps[-1].status == "running":
        view.resume_at = view.steps[-1].state  # killed inside a step: it never completed, so it runs again
    return view


class DamagedRun(BaseModel):
    """A run whose journal cannot be read back: listed with the reason, not left out."""

    run_id: str
    error: str


def list_runs(root: Path | None = None) -> list[RunView]:
    """The runs whose journals read back; see `scan_runs` for the damaged ones too."""
    return scan_runs(root)[0]


def scan_runs(root: Path | None = None) -> tuple[list[RunView], list[DamagedRun]]:
    """Every run under `root`: those that read back, and those whose journal is damaged (with why)."""
    root = root or locations.runs_dir()
    if not root.is_dir():
        return [], []
    views, damaged = [], []
    for run_dir in sorted(root.iterdir()):
        if (run_dir / "journal.jsonl").is_file():
            try:
                views.append(view_run(run_dir))
            except JournalError as exc:  # one damaged run must not hide the others, nor be hidden
                damaged.append(DamagedRun(run_id=run_dir.name, error=str(exc)))
    return views, damaged


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
