"""Tasks: a to-do list in `Tasks/tasks.json`, a JSON list written atomically.

Each task has a short id that never changes and is never reused (t1, t2, ...), a title,
an optional due date (`2026-03-12`) or date-time (`2026-03-12T15:00:00+01:00`), a
priority, tags, and when it was created and completed. Due dates are read with the
clock's grammar: ISO dates and date-times (naive ones are in the user's time zone) and
phrases like "friday 3pm". A task due on a date is due by the end of that day.

Removing a task moves it to `Tasks/removed.json`, from where `tasks.restore` puts it
back. The files are read through the sandbox with a size limit. A task file that cannot
be read (not JSON, nested too deeply, not a list of tasks, a due date out of range...) is
named in a one-line error and never written over.
"""

from __future__ import annotations

import difflib
import json
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from intentos.app import App
from intentos.apps import naming
from intentos.apps.problems import one_line
from intentos.errors import AppError, SandboxError
from intentos.function import Effect, function
from intentos.grounding import Grounded, GroundingQuery
from intentos.when import isoformat, localize, parse_when

TASKS_FILE = "Tasks/tasks.json"
REMOVED_FILE = "Tasks/removed.json"
_ID = re.compile(r"t(\d+)")
TASK_REF = "the task's id (t3) or its exact title"
DUE = "ISO date or date-time (2026-03-12, 2026-03-12T15:00) or a phrase like 'friday 3pm'"
MAX_TASKS_BYTES = 50 * 1024 * 1024  # a bigger file is refused, not read

Priority = Literal["low", "normal", "high"]
_PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}


class Task(BaseModel):
    """A task as stored (fields another program added are kept)."""

    model_config = ConfigDict(extra="allow")

    id: str
    title: str
    due: str | None = None
    priority: Priority = "normal"
    tags: list[str] = Field(default_factory=list)
    done: bool = False
    created: str | None = None
    completed: str | None = None


class RemovedTask(Task):
    removed: str


class TaskInfo(Task):
    """A task as shown: the stored fields, and whether it is overdue now."""

    overdue: bool = False


# -- arguments and results -------------------------------------------------------------------


class AddArgs(BaseModel):
    title: str
    due: str | None = Field(None, description=DUE)
    priority: Priority = "normal"
    tags: list[str] = Field(default_factory=list)


class ListArgs(BaseModel):
    status: Literal["open", "done", "all"] = "open"
    tag: str | None = None
    due_before: str | None = Field(None, description="only tasks due no later than this (a date includes its "
                                                     "whole day); " + DUE)
    overdue: bool = Field(False, description="only open tasks whose due time has passed")


class TaskList(BaseModel):
    tasks: list[TaskInfo]
    ids: list[str]
    count: int


class TaskRefArgs(BaseModel):
    task: str = Field(description=TASK_REF)


class UpdateArgs(BaseModel):
    task: str = Field(description=TASK_REF)
    title: str | None = None
    due: str | None = Field(None, description=DUE + "; 'none' removes the due date")
    priority: Priority | None = None
    tags: list[str] | None = Field(None, description="replaces the task's tags")


class Removed(BaseModel):
    id: str
    title: str
    kept_in: str = Field(REMOVED_FILE, description="where the task is kept; tasks.restore brings it back")


class RestoreArgs(BaseModel):
    task: str = Field(description="the removed task's id or exact title")


class SeedTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    title: str
    due: datetime | date | str | None = None
    priority: Priority = "normal"
    tags: list[str] = Field(default_factory=list)
    done: bool = False
    created: datetime | date | str | None = None
    completed: datetime | date | str | None = None


# -- the app --------------------------------------------------------------------------------------


class TasksApp(App):
    name = "tasks"
    description = "a to-do list: add, list, complete, update, remove tasks with due dates, priorities, tags"
    data_folder = "Tasks"

    @function(Effect.WRITE)
    def add(self, args: AddArgs) -> TaskInfo:
        """Add a task, optionally with a due date, a priority and tags."""
        tasks = self._load()
        task = Task(id=self._next_id(tasks), title=_title(args.title), due=self._due(args.due),
                    priority=args.priority, tags=_tags(args.tags), created=self._now())
        tasks.append(task)
        self._save(tasks)
        return self._info(task)

    @function(Effect.READ)
    def list(self, args: ListArgs) -> TaskList:
        """List tasks (open by default), soonest due first; filter by tag, due date or overdue."""
        if args.overdue and args.status == "done":
            # A done task is never overdue: the pair finds nothing, and a plan reading it reports no tasks.
            raise AppError("overdue tasks are open ones: status 'done' with overdue finds none; leave status out")
        now = self.ctx.now()
        bound = self._deadline(self._due(args.due_before)) if args.due_before else None
        tag = (_tags([args.tag]) or [None])[0] if args.tag else None
        shown = []
        for task in self._load():
            if (args.status == "open" and task.done) or (args.status == "done" and not task.done):
                continue
            if tag and tag not in task.tags:
                continue
            deadline = self._deadline(task.due) if task.due else None
            if bound is not None and (deadline is None or deadline > bound):
                continue
            if args.overdue and (task.done or deadline is None or deadline > now):
                continue
            shown.append(task)
        shown.sort(key=self._order)
        infos = [self._info(t) for t in shown]
        return TaskList(tasks=infos, ids=[t.id for t in infos], count=len(infos))

    @function(Effect.WRITE)
    def complete(self, args: TaskRefArgs) -> TaskInfo:
        """Mark a task as done."""
        tasks = self._load()
        task = _pick(args.task, tasks)
        if task.done:
            raise AppError(f"task {task.id} ({task.title!r}) is already done" +
                           (f" since {task.completed}" if task.completed else ""))
        task.done, task.completed = True, self._now()
        self._save(tasks)
        return self._info(task)

    @function(Effect.WRITE)
    def update(self, args: UpdateArgs) -> TaskInfo:
        """Change a task's title, due date, priority or tags."""
        if args.title is None and args.due is None and args.priority is None and args.tags is None:
            raise AppError("tasks.update needs something to change: title, due, priority or tags")
        tasks = self._load()
        task = _pick(args.task, tasks)
        if args.title is not None:
            task.title = _title(args.title)
        if args.due is not None:
            task.due = None if args.due.strip().lower() in ("", "none", "null", "no due date") else self._due(args.due)
        if args.priority is not None:
            task.priority = args.priority
        if args.tags is not None:
            task.tags = _tags(args.tags)
        self._save(tasks)
        return self._info(task)

    @function(Effect.DESTRUCTIVE)
    def remove(self, args: TaskRefArgs) -> Removed:
        """Remove a task from the list (it is kept aside and tasks.restore brings it back)."""
        tasks = self._load()
        task = _pick(args.task, tasks)
        removed = self._load_removed()
        removed.append(RemovedTask(**task.model_dump(), removed=self._now()))
        # Kept aside first: a crash between the two writes leaves the task in both files, never in neither.
        self._write(REMOVED_FILE, removed)
        self._save([t for t in tasks if t.id != task.id])
        return Removed(id=task.id, title=task.title)

    @function(Effect.WRITE)
    def restore(self, args: RestoreArgs) -> TaskInfo:
        """Bring back a removed task, by its id or title."""
        removed = self._load_removed()
        tasks = self._load()
        gone = _pick(args.task, removed, what="removed task")
        if any(t.id == gone.id for t in tasks):
            raise AppError(f"task {gone.id} is in the task list already")
        task = Task(**gone.model_dump(exclude={"removed"}))
        tasks.append(task)
        self._save(tasks)
        self._write(REMOVED_FILE, [r for r in removed if r is not gone])
        return self._info(task)

    # -- fixtures and context ---------------------------------------------------------------------

    def seed(self, data: Any) -> None:
        """Add tasks from a fixture.

        Shape: a list of {title, due?, priority?: low|normal|high, tags?: [..], done?, created?,
        completed?, id?}; dates are ISO strings or YAML dates; ids default to t1, t2, ...
        """
        if not isinstance(data, list):
            raise AppError("tasks fixture data must be a list of tasks")
        tasks = self._load()
        for item in data:
            try:
                spec = SeedTask.model_validate(item)
            except ValidationError as exc:
                raise AppError(f"tasks fixture: {item!r} is not a task: {_first_error(exc)}") from None
            task_id = spec.id or self._next_id(tasks)
            if any(t.id == task_id for t in tasks):
                raise AppError(f"tasks fixture: two tasks have the id {task_id}")
            created = self._stamp(spec.created) if spec.created else self._now()
            completed = None
            if spec.done:
                completed = self._stamp(spec.completed) if spec.completed else self._now()
            tasks.append(Task(id=task_id, title=_title(spec.title), due=self._due(spec.due), priority=spec.priority,
                              tags=_tags(spec.tags), done=spec.done, created=created, completed=completed))
        self._save(tasks)

    def summary(self) -> str:
        try:
            tasks = self._load()
        except AppError as exc:
            return str(exc)
        if not tasks:
            return "no tasks"
        now = self.ctx.now()
        open_ = sorted((t for t in tasks if not t.done), key=self._order)
        overdue = [t for t in open_ if t.due and self._deadline(t.due) < now]
        line = f"{len(open_)} open"
        if overdue:
            line += f" ({len(overdue)} overdue)"
        line += f", {len(tasks) - len(open_)} done"
        upcoming = [t for t in open_ if t.due and t not in overdue]
        if upcoming:
            line += f"; next due: {upcoming[0].title} ({upcoming[0].id}) {upcoming[0].due}"
        return line

    def ground(self, query: GroundingQuery) -> list[Grounded]:
        try:
            tasks = self._load()
        except AppError:
            return []
        offers = []
        for task in tasks:
            score = query.score(task.title, *task.tags, weight=2)
            if score:
                state = "done" if task.done else "open"
                due = f", due {task.due}" if task.due else ""
                offers.append(Grounded(f'task {task.id} "{task.title}" ({state}{due}, {task.priority})', score,
                                       self.name, name="" if task.done else task.title, aka=tuple(task.tags)))
        return query.top(offers)

    # -- time ---------------------------------------------------------------------------------------

    def _now(self) -> str:
        return isoformat(self.ctx.now())

    def _stamp(self, value: datetime | date | str) -> str:
        when = parse_when(value, self.ctx.tz, self.ctx.now())
        return isoformat(when.at)

    def _due(self, value: datetime | date | str | None) -> str | None:
        """A due date as stored: YYYY-MM-DD for a day, ISO with offset for a moment."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            when = parse_when(value, self.ctx.tz, self.ctx.now())
        except AppError as exc:
            raise AppError(f"due {value!r} is not a date: {exc}") from None
        return isoformat(when.at) if when.has_time else when.at.date().isoformat()

    def _deadline(self, due: str) -> datetime:
        """The moment a task is due by: the given time, or the end of the given day."""
        try:
            return localize(datetime.combine(date.fromisoformat(due) + timedelta(days=1), time()), self.ctx.tz)
        except (ValueError, OverflowError):
            pass
        try:
            return localize(datetime.fromisoformat(due), self.ctx.tz)
        except (ValueError, OverflowError):
            raise AppError(f"due {_short(due)!r} is not an ISO date or date-time this calendar can reach") from None

    def _order(self, task: Task) -> tuple[Any, ...]:
        deadline = self._deadline(task.due).timestamp() if task.due else float("inf")
        number = int(m.group(1)) if (m := _ID.fullmatch(task.id)) else 0
        return task.done, deadline, _PRIORITY_RANK[task.priority], number

    def _info(self, task: Task) -> TaskInfo:
        overdue = bool(not task.done and task.due and self._deadline(task.due) < self.ctx.now())
        return TaskInfo(**task.model_dump(), overdue=overdue)

    # -- storage --------------------------------------------------------------------------------------

    def _load(self) -> list[Task]:
        tasks = self._read(TASKS_FILE, Task)
        seen: set[str] = set()
        for task in tasks:
            if task.id in seen:
                raise AppError(f"{TASKS_FILE} has two tasks with the id {_short(task.id)}; it was left as it is")
            seen.add(task.id)
            if task.due:
                try:
                    self._deadline(task.due)
                except AppError as exc:
                    raise AppError(f"{TASKS_FILE}: task {_short(task.id)}: {exc}; the file was left as it is") from None
        return tasks

    def _load_removed(self) -> list[RemovedTask]:
        return self._read(REMOVED_FILE, RemovedTask)

    def _read(self, name: str, model: type[Task]) -> list[Any]:
        advice = "fix or move the file; it was left as it is"
        try:
            raw = self.sandbox.read_bytes(name, limit=MAX_TASKS_BYTES)
        except FileNotFoundError:
            return []
        except IsADirectoryError:
            raise AppError(f"{name} is a folder, not a task file") from None
        except (OSError, SandboxError) as exc:
            raise AppError(one_line(f"{name} cannot be read: {_reason(exc)}")) from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise AppError(f"{name} is not UTF-8 text; {advice}") from None
        except json.JSONDecodeError as exc:
            raise AppError(one_line(f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                                     f"{advice}")) from None
        except RecursionError:
            raise AppError(f"{name} is nested too deeply to be a task list; {advice}") from None
        if not isinstance(data, list):
            raise AppError(f"{name} must hold a JSON list of tasks, not {type(data).__name__}; {advice}")
        try:
            tasks = TypeAdapter(list[model]).validate_python(data)
        except ValidationError as exc:
            raise AppError(one_line(f"{name} holds an invalid task: {_first_error(exc)}; {advice}")) from None
        except RecursionError:
            raise AppError(f"{name} is nested too deeply to be a task list; {advice}") from None
        for index, task in enumerate(tasks):
            try:  # a task must be showable and writable back: fields another program added too
                json.dumps(task.model_dump(mode="json"))
            except (ValueError, TypeError, RecursionError) as exc:
                raise AppError(one_line(f"{name} holds a task that cannot be written back ([{index}]: {exc}); "
                                         f"{advice}")) from None
        return tasks

    def _save(self, tasks: list[Task]) -> None:
        self._write(TASKS_FILE, tasks)

    def _write(self, name: str, tasks: list[Any]) -> Path:
        data = [t.model_dump(mode="json") for t in tasks]
        try:
            return self.sandbox.write_text(name, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        except (OSError, SandboxError) as exc:
            raise AppError(one_line(f"{name} cannot be written: {_reason(exc)}")) from None

    def _next_id(self, tasks: list[Task]) -> str:
        """One more than any id used so far, removed tasks included, so an id is never reused."""
        ids = [t.id for t in tasks] + [t.id for t in self._load_removed()]
        numbers = [int(m.group(1)) for i in ids if (m := _ID.fullmatch(i))]
        return f"t{max(numbers, default=0) + 1}"


# -- helpers ----------------------------------------------------------------------------------------


def _pick(ref: str, tasks: list[Any], what: str = "task") -> Any:
    """The one task an id or exact title names; open tasks win over done ones with the same title."""
    ref = ref.strip()
    wanted_id = f"t{ref}" if ref.isdigit() else ref.lower()
    for task in reversed(tasks):
        if task.id.lower() == wanted_id:
            return task
    matches = [t for t in tasks if t.title.casefold() == ref.casefold()]
    pool = [t for t in matches if not t.done] or matches
    if len(pool) == 1:
        return pool[0]
    if len(pool) > 1:
        listed = ", ".join(f"{t.id}" + (f" (due {t.due})" if t.due else "") for t in pool)
        raise AppError(f"{len(pool)} {what}s are titled {ref!r}: {listed}; name one by its id")
    # "the report task" with two open report tasks: a guess would tick off the wrong one.
    holding = naming.holding(ref, [t for t in tasks if not t.done], lambda t: t.title.split())
    naming.refuse_several(ref, f"open {what}s", holding, lambda t: f"{t.title!r} ({t.id})", "in their title",
                          "by its id")
    close = [t.title for t in holding] or difflib.get_close_matches(ref, [t.title for t in tasks], n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise AppError(f"no {what} with the id or title {ref!r}{hint}")


def _title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise AppError("a task needs a title")
    return title


def _tags(tags: list[str]) -> list[str]:
    """Lowercase, without '#' or spaces, without duplicates, in the order given."""
    cleaned = ("-".join(t.strip().lstrip("#").lower().split()) for t in tags)
    return list(dict.fromkeys(t for t in cleaned if t))


def _short(text: str, limit: int = 80) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[:limit] + "…"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, SandboxError) and exc.strerror:
        return exc.strerror
    return one_line(str(exc)) or type(exc).__name__


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
    return f"{where}: {err['msg']}" if where else err["msg"]
