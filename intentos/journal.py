"""The Journal: an append-only JSONL record of every transition of a run.

Each record is written, flushed and fsynced before the executor takes its next step,
so a run killed at any point can be inspected and resumed: whatever finished is in
the file. A torn last line (the process died mid-write) is ignored; damage anywhere
else is an error naming the line.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from intentos import paths
from intentos.errors import JournalError

Event = Literal["run_started", "run_resumed", "step_started", "step_finished", "run_finished"]
StepStatus = Literal["ok", "error", "timeout", "declined", "cancelled"]
RunStatus = Literal["running", "done", "failed", "declined", "cancelled", "interrupted"]


class Record(BaseModel):
    seq: int
    event: Event
    time: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    state: str | None = None
    call: str | None = None
    args: dict[str, Any] | None = None
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
        if fresh:
            _fsync_dir(run_dir.parent)
        self._seq = len(read_records(self.path)) if not fresh else 0

    @classmethod
    def create(cls, run_id: str | None = None, root: Path | None = None) -> Journal:
        run_dir = (root or paths.runs_dir()) / (run_id or new_run_id())
        if run_dir.exists():
            raise JournalError(f"run {run_dir.name} already exists")
        return cls(run_dir)

    @classmethod
    def reopen(cls, run_id: str, root: Path | None = None) -> Journal:
        run_dir = (root or paths.runs_dir()) / run_id
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
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise JournalError(f"no journal at {path}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(Record.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValueError) as exc:
            if number == len(lines):
                break  # torn final write from a crash: everything before it is intact
            raise JournalError(f"{path}:{number}: damaged journal record ({exc})") from None
    return records


# -- reading a run back ----------------------------------------------------------------------


class StepView(BaseModel):
    state: str
    call: str
    args: dict[str, Any] | None = None
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


def view_run(run_dir: Path) -> RunView:
    records = read_records(run_dir / "journal.jsonl")
    if not records or records[0].event != "run_started" or not records[0].data:
        raise JournalError(f"{run_dir / 'journal.jsonl'}: does not start with a run_started record")
    head = records[0].data
    view = RunView(
        run_id=run_dir.name,
        status="interrupted",
        started=records[0].time,
        intent=head.get("intent"),
        source=head.get("source"),
        sandbox=head["sandbox"],
        workflow=head["workflow"],
        context=head.get("context", {}),
        resolution=head.get("resolution"),
        resume_at=head["workflow"]["start"],
    )
    for rec in records[1:]:
        if rec.event == "step_started":
            view.steps.append(StepView(state=rec.state or "", call=rec.call or "", args=rec.args, status="running"))
            view.resume_at = rec.state
        elif rec.event == "step_finished":
            step = view.steps[-1] if view.steps and view.steps[-1].status == "running" else None
            if step is None:  # declined before starting: no step_started record
                step = StepView(state=rec.state or "", call=rec.call or "", args=rec.args, status="running")
                view.steps.append(step)
            step.status, step.result, step.error = rec.status or "error", rec.result, rec.error
            step.next, step.duration_s = rec.next, rec.duration_s
            if rec.status == "ok":
                view.results[step.state] = rec.result
            if rec.status in ("ok", "error", "timeout"):
                view.visits[step.state] = view.visits.get(step.state, 0) + 1
                view.resume_at = rec.next
            else:  # declined/cancelled: a resume asks again at the same state
                view.resume_at = step.state
            if rec.error:
                view.error = rec.error
        elif rec.event == "run_resumed":
            view.status = "interrupted"
            view.finished = None
        elif rec.event == "run_finished":
            view.status = rec.status  # type: ignore[assignment]
            view.finished = rec.time
            if rec.error:
                view.error = rec.error
    if view.status == "interrupted" and view.steps and view.steps[-1].status == "running":
        view.resume_at = view.steps[-1].state  # killed inside a step: it never completed, so it runs again
    return view


def list_runs(root: Path | None = None) -> list[RunView]:
    root = root or paths.runs_dir()
    if not root.is_dir():
        return []
    views = []
    for run_dir in sorted(root.iterdir()):
        if (run_dir / "journal.jsonl").is_file():
            try:
                views.append(view_run(run_dir))
            except JournalError:
                continue  # one damaged run must not hide the others; `runs show` names the damage
    return views


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
