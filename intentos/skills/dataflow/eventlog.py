"""Spark event logs (JSON lines written with `spark.eventLog.enabled`) -> stage-level records of a job.

Reads the events Enel needs and ignores every other kind (Spark writes many): application start/end,
executors added/removed (the scale-out over time), jobs with their stage infos (the DAG: "Parent IDs"),
stage submission/completion times and task ends. A log still being written (a running job) has no
ApplicationEnd and may end in a half-written line; that last line is skipped and counted. Any other
line that is not a JSON object (or not UTF-8), or a known event missing a field or with one of the
wrong type, raises EventLogError with file:line; so does a log over the bounds below. Parsing works
on the file's bytes (`parse_eventlog_bytes`): the app reads them through the sandbox, the CLI from any path.
"""

from __future__ import annotations

import bisect
import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from intentos.errors import IntentosError
from intentos.skills.kit.files import LocalReadError, read_local


class EventLogError(IntentosError):
    """An event log could not be read; names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path, self.line = str(path), line
        message = " ".join(message.split())
        super().__init__(f"{path}:{line}: {message}" if line is not None else f"{path}: {message}")


class StageRecord(BaseModel):
    stage_id: int
    job_id: int
    name: str
    parents: list[int]
    num_tasks: int
    submitted_ms: int | None = None
    completed_ms: int | None = None
    tasks_done: int = 0
    task_time_ms: int = Field(0, description="sum of the executor run time of finished tasks")
    failed: bool = False

    @property
    def duration_s(self) -> float | None:
        if self.submitted_ms is None or self.completed_ms is None:
            return None
        return (self.completed_ms - self.submitted_ms) / 1000


class JobRecord(BaseModel):
    job_id: int
    stage_ids: list[int]
    submitted_ms: int
    completed_ms: int | None = None
    result: str | None = None


class ExecutorChange(BaseModel):
    time_ms: int
    executor_id: str
    added: bool
    cores: int = 0


class EventLog(BaseModel):
    path: str
    app_name: str
    app_id: str = ""
    start_ms: int
    end_ms: int | None = None
    last_ms: int = Field(description="time of the last event with a time: 'now' for a running job")
    jobs: list[JobRecord]
    stages: list[StageRecord]
    executor_changes: list[ExecutorChange]
    skipped_last_line: bool = False

    @property
    def complete(self) -> bool:
        return self.end_ms is not None

    @property
    def runtime_s(self) -> float:
        """Seconds from the application's start to its end (to its last event while it runs)."""
        return ((self.end_ms or self.last_ms) - self.start_ms) / 1000

    def executors_at(self, t_ms: int) -> int:
        """Executors alive at a time (added at or before, not yet removed)."""
        times = [c.time_ms for c in self.executor_changes]
        alive = 0
        for c in self.executor_changes[: bisect.bisect_right(times, t_ms)]:
            alive += 1 if c.added else -1
        return max(alive, 0)

    def executors_now(self) -> int:
        return self.executors_at(self.last_ms)

    def max_executors(self) -> int:
        """Most executors alive at any time."""
        alive, best = 0, 0
        for c in self.executor_changes:
            alive += 1 if c.added else -1
            best = max(best, alive)
        return best

    def until(self, t_ms: int) -> EventLog:
        """The log as the running application had written it at `t_ms`: later events dropped, stages that
        were running then without their end (their finished-task counts are not kept per task: 0)."""
        jobs = [j.model_copy(update={"completed_ms": None, "result": None})
                if j.completed_ms is None or j.completed_ms > t_ms else j
                for j in self.jobs if j.submitted_ms <= t_ms]
        known = {sid for j in jobs for sid in j.stage_ids}
        stages = []
        for s in self.stages:
            if s.stage_id not in known:
                continue
            if s.completed_ms is not None and s.completed_ms <= t_ms:
                stages.append(s)
            elif s.submitted_ms is not None and s.submitted_ms <= t_ms:
                stages.append(s.model_copy(update={"completed_ms": None, "tasks_done": 0, "task_time_ms": 0}))
            else:
                stages.append(s.model_copy(update={"submitted_ms": None, "completed_ms": None, "tasks_done": 0,
                                                   "task_time_ms": 0, "failed": False}))
        cut = self.model_copy(update={
            "end_ms": self.end_ms if self.end_ms is not None and self.end_ms <= t_ms else None,
            "last_ms": min(self.last_ms, t_ms), "jobs": jobs, "stages": stages,
            "executor_changes": [c for c in self.executor_changes if c.time_ms <= t_ms]})
        cut.__dict__.pop("_stage_index", None)  # a cached index of the whole log's stages
        return cut

    def stage(self, stage_id: int) -> StageRecord | None:
        return self._stage_index.get(stage_id)

    @cached_property
    def _stage_index(self) -> dict[int, StageRecord]:
        return {s.stage_id: s for s in self.stages}


MAX_JOBS = 1_000  # jobs of one application (Enel builds a graph per job boundary)
MAX_STAGES = 10_000  # stages of one application
MAX_EXECUTOR_CHANGES = 100_000
MAX_MS = 2**53  # times are milliseconds; anything larger is not a time (and would not fit a float)


def _obj(value: Any, what: str, path: str, line: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EventLogError(path, f"{what} must be a JSON object, got {_short(value)}", line)
    return value


def _need(event: dict[str, Any], key: str, path: str, line: int) -> Any:
    if key not in event:
        raise EventLogError(path, f"{_clip(str(event.get('Event')))} has no {key!r}", line)
    return event[key]


def _int(value: Any, what: str, path: str, line: int, *, minimum: int = -MAX_MS) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventLogError(path, f"{what} must be a number, got {_short(value)}", line)
    if not math.isfinite(value) or not minimum <= value <= MAX_MS:
        raise EventLogError(path, f"{what} {_short(value)} is out of range", line)
    return int(value)


def _short(value: Any) -> str:
    return _clip(repr(value))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


# --- how Spark stores a log ---------------------------------------------------------------------
# Spark 4 writes by default a rolling log: a folder eventlog_v2_<app id> holding events_<n>_<app id>
# files (compressed with zstd unless spark.eventLog.compress=false) and an appstatus_<app id> file that
# ends in .inprogress while the application runs. Single-file logs (rolling off) are app-<id> with an
# optional codec suffix and .inprogress while running.

ROLLING_PREFIX = "eventlog_v2_"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_OTHER_CODECS = (".lz4", ".lzf", ".snappy")
MAX_DECODED_BYTES = 1 << 30  # a decompressed log; a zstd bomb stops here
_ZSTD_STEP = 1024


def is_rolling_folder(name: str) -> bool:
    return name.startswith(ROLLING_PREFIX)


def rolling_parts(names: list[str]) -> list[str]:
    """The event files of a rolling log folder (its file names), in the order Spark wrote them."""
    parts = []
    for name in names:
        if name.startswith("events_"):
            index = name.split("_", 2)[1]
            if index.isdigit():
                parts.append((int(index), name))
    return [name for _, name in sorted(parts)]


def decode(raw: bytes, path: str) -> tuple[bytes, bool]:
    """The JSON lines of one event file: zstd is decompressed (a frame cut short by a running
    application ends the data; the bool says so); other codecs are named, not guessed."""
    if not raw.startswith(_ZSTD_MAGIC):
        codec = next((c for c in _OTHER_CODECS if path.removesuffix(".inprogress").endswith(c)), None)
        if codec is not None:
            raise EventLogError(path, f"compressed with {codec[1:]}; intentos reads zstd (Spark's default) and "
                                      "uncompressed logs: set spark.eventLog.compression.codec=zstd")
        return raw, False
    import zstandard

    # Frame by frame, fed in small pieces: the output is checked against the bound after every piece (one
    # KiB of zstd can expand to megabytes, never to gigabytes), and a frame still open at the end of the
    # input is the one a running application is writing.
    dctx = zstandard.ZstdDecompressor()
    frame, open_frame = dctx.decompressobj(), False
    out = bytearray()
    pos = 0
    try:
        while pos < len(raw):
            piece = raw[pos:pos + _ZSTD_STEP]
            pos += len(piece)
            out += frame.decompress(piece)
            open_frame = True
            if len(out) > MAX_DECODED_BYTES:
                raise EventLogError(path, f"decompresses to over {MAX_DECODED_BYTES >> 20} MiB; not read")
            if frame.eof:
                pos -= len(frame.unused_data)
                frame, open_frame = dctx.decompressobj(), False
    except zstandard.ZstdError as exc:
        raise EventLogError(path, f"not valid zstd data ({exc})") from None
    return bytes(out), open_frame


def parse_eventlog(path: str | Path) -> EventLog:
    """Read one Spark event log anywhere (the CLI): a file, or a rolling log's eventlog_v2_ folder."""
    path = Path(path)
    if path.is_dir():
        names = rolling_parts(sorted(p.name for p in path.iterdir() if p.is_file()))
        if not names:
            raise EventLogError(path, "no events_<n>_ files: not a Spark rolling event log folder")
        return parse_eventlog_parts([(n, _read(path / n)) for n in names], str(path))
    return parse_eventlog_bytes(_read(path), str(path))


def _read(path: Path) -> bytes:
    try:
        return read_local(path, what="event log")
    except LocalReadError as exc:
        raise EventLogError(path, str(exc)) from None


def parse_eventlog_parts(parts: list[tuple[str, bytes]], path: str) -> EventLog:
    """A rolling log from its event files (name, bytes) in order; errors name the folder and the file."""
    decoded = bytearray()
    for i, (name, raw) in enumerate(parts):
        data, cut = decode(raw, f"{path}/{name}")
        if cut and i < len(parts) - 1:
            raise EventLogError(f"{path}/{name}", "its zstd data ends early, and later event files follow it")
        decoded += data if not data or data.endswith(b"\n") or i == len(parts) - 1 else data + b"\n"
    return parse_eventlog_bytes(bytes(decoded), path)


def parse_eventlog_bytes(raw: bytes, path: str) -> EventLog:
    """One Spark event log from the bytes of the file `path` (named, with the line, in every error);
    zstd-compressed bytes are decompressed first."""
    raw, _ = decode(raw, path)
    app: dict[str, Any] = {}
    jobs: dict[int, JobRecord] = {}
    stages: dict[int, StageRecord] = {}
    execs: list[ExecutorChange] = []
    last_ms = 0
    skipped = False
    pos, i = 0, 0
    while pos < len(raw):
        i += 1
        end = raw.find(b"\n", pos)
        unterminated = end < 0  # the last line of a log being written may be half there
        end = len(raw) if unterminated else end
        data, pos = raw[pos:end], end + 1
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if unterminated:
                skipped = True
                break
            raise EventLogError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line)", i) from None
        if not text.strip():
            continue
        try:
            event = json.loads(text)
        except (ValueError, RecursionError) as exc:
            if unterminated:
                skipped = True
                break
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or "nested too deeply"
            raise EventLogError(path, f"not a JSON event: {reason}", i) from None
        if not isinstance(event, dict) or not isinstance(event.get("Event"), str):
            raise EventLogError(path, "not a Spark event (a JSON object with an 'Event' field)", i)
        kind = event["Event"]
        if kind == "SparkListenerApplicationStart":
            app = {"name": str(_need(event, "App Name", path, i)), "id": str(event.get("App ID", "")),
                   "start": _int(_need(event, "Timestamp", path, i), "Timestamp", path, i)}
            last_ms = max(last_ms, app["start"])
        elif kind == "SparkListenerApplicationEnd":
            app["end"] = _int(_need(event, "Timestamp", path, i), "Timestamp", path, i)
            last_ms = max(last_ms, app["end"])
        elif kind in ("SparkListenerExecutorAdded", "SparkListenerExecutorRemoved"):
            t = _int(_need(event, "Timestamp", path, i), "Timestamp", path, i)
            info = _obj(event.get("Executor Info") or {}, "'Executor Info'", path, i)
            if len(execs) >= MAX_EXECUTOR_CHANGES:
                raise EventLogError(path, f"more than {MAX_EXECUTOR_CHANGES:,} executor changes", i)
            execs.append(ExecutorChange(time_ms=t, executor_id=str(_need(event, "Executor ID", path, i)),
                                        added=kind.endswith("Added"),
                                        cores=_int(info.get("Total Cores", 0), "Total Cores", path, i, minimum=0)))
            last_ms = max(last_ms, t)
        elif kind == "SparkListenerJobStart":
            job_id = _int(_need(event, "Job ID", path, i), "Job ID", path, i)
            t = _int(_need(event, "Submission Time", path, i), "Submission Time", path, i)
            infos = _need(event, "Stage Infos", path, i)
            if not isinstance(infos, list):
                raise EventLogError(path, "'Stage Infos' must be a list", i)
            for info in infos:
                sid = _stage_id(info, path, i)
                if sid not in stages:
                    stages[sid] = _stage_record(info, job_id, path, i)
            jobs[job_id] = JobRecord(job_id=job_id, stage_ids=[_stage_id(s, path, i) for s in infos], submitted_ms=t)
            last_ms = max(last_ms, t)
        elif kind in ("SparkListenerStageSubmitted", "SparkListenerStageCompleted"):
            info = _obj(_need(event, "Stage Info", path, i), "'Stage Info'", path, i)
            sid = _stage_id(info, path, i)
            rec = stages.get(sid) or _stage_record(info, -1, path, i)
            stages[sid] = rec
            if kind.endswith("Submitted"):
                rec.submitted_ms = _int(_need(info, "Submission Time", path, i), "Submission Time", path, i)
                last_ms = max(last_ms, rec.submitted_ms)
            else:
                rec.submitted_ms = _int(_need(info, "Submission Time", path, i), "Submission Time", path, i)
                rec.completed_ms = _int(_need(info, "Completion Time", path, i), "Completion Time", path, i)
                rec.failed = bool(info.get("Failure Reason"))
                last_ms = max(last_ms, rec.completed_ms)
        elif kind == "SparkListenerTaskEnd":
            sid = _int(_need(event, "Stage ID", path, i), "Stage ID", path, i)
            task = _need(event, "Task Info", path, i)
            finish = _int(task.get("Finish Time", 0), "Finish Time", path, i) if isinstance(task, dict) else 0
            metrics = _obj(event.get("Task Metrics") or {}, "'Task Metrics'", path, i)
            run_ms = _int(metrics.get("Executor Run Time", 0), "Executor Run Time", path, i, minimum=0)
            if sid in stages:
                stages[sid].tasks_done += 1
                stages[sid].task_time_ms += run_ms
            last_ms = max(last_ms, finish)
        elif kind == "SparkListenerJobEnd":
            job_id = _int(_need(event, "Job ID", path, i), "Job ID", path, i)
            t = _int(_need(event, "Completion Time", path, i), "Completion Time", path, i)
            if job_id in jobs:
                jobs[job_id].completed_ms = t
                result = event.get("Job Result")
                jobs[job_id].result = str(result.get("Result", "") if isinstance(result, dict) else "")
            last_ms = max(last_ms, t)
        if len(jobs) > MAX_JOBS or len(stages) > MAX_STAGES:
            raise EventLogError(path, f"more than {MAX_JOBS:,} jobs or {MAX_STAGES:,} stages; Enel reads "
                                      "applications of at most that many", i)
    if not app:
        raise EventLogError(path, "no SparkListenerApplicationStart event: not a Spark event log")
    return EventLog(path=str(path), app_name=app["name"], app_id=app["id"], start_ms=app["start"],
                    end_ms=app.get("end"), last_ms=last_ms, jobs=sorted(jobs.values(), key=lambda j: j.job_id),
                    stages=sorted(stages.values(), key=lambda s: s.stage_id),
                    executor_changes=sorted(execs, key=lambda c: c.time_ms), skipped_last_line=skipped)


def _stage_id(info: Any, path: str, line: int) -> int:
    if not isinstance(info, dict):
        raise EventLogError(path, "a stage info must be a JSON object", line)
    return _int(_need(info, "Stage ID", path, line), "Stage ID", path, line)


def _stage_record(info: dict[str, Any], job_id: int, path: str, line: int) -> StageRecord:
    parents = info.get("Parent IDs", [])
    if not isinstance(parents, list):
        raise EventLogError(path, "'Parent IDs' must be a list", line)
    return StageRecord(stage_id=_stage_id(info, path, line), job_id=job_id, name=str(info.get("Stage Name", "")),
                       parents=[_int(p, "Parent ID", path, line) for p in parents],
                       num_tasks=_int(_need(info, "Number of Tasks", path, line), "Number of Tasks", path, line,
                                      minimum=0))
