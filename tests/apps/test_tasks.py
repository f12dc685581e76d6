"""The tasks app, through its functions, on a real sandbox (clock fixed at Tue 2026-03-10 09:00 Berlin)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from intentos.app import Context
from intentos.apps.tasks import (
    REMOVED_FILE,
    TASKS_FILE,
    AddArgs,
    ListArgs,
    RestoreArgs,
    TaskRefArgs,
    TasksApp,
    UpdateArgs,
)
from intentos.errors import AppError
from intentos.executor import Executor
from intentos.table import FunctionTable
from intentos.workflow import Workflow


@pytest.fixture
def tasks(ctx: Context) -> TasksApp:
    app = TasksApp(ctx)
    app.seed([
        {"title": "Pay rent", "due": date(2026, 3, 12), "priority": "high", "tags": ["home"]},
        {"title": "File taxes", "due": "2026-03-09", "tags": ["admin"]},
        {"title": "Call mum", "due": "2026-03-10T08:30"},
        {"title": "Read book", "priority": "low"},
        {"title": "Buy stamps", "done": True, "completed": "2026-03-08T12:00:00"},
    ])
    return app


def stored(ctx: Context, name: str = TASKS_FILE) -> list[dict]:
    return json.loads((ctx.sandbox.root / name).read_text())


def test_seed_and_summary(tasks: TasksApp, ctx: Context) -> None:
    data = stored(ctx)
    assert [t["id"] for t in data] == ["t1", "t2", "t3", "t4", "t5"]
    assert data[0]["due"] == "2026-03-12" and data[2]["due"] == "2026-03-10T08:30:00+01:00"
    assert data[4]["completed"] == "2026-03-08T12:00:00+01:00" and data[0]["created"] == "2026-03-10T09:00:00+01:00"
    assert tasks.summary() == "4 open (2 overdue), 1 done; next due: Pay rent (t1) 2026-03-12"
    assert TasksApp(Context(sandbox=ctx.sandbox.__class__(ctx.sandbox.root / "empty"))).summary() == "no tasks"
    with pytest.raises(AppError, match="list of tasks"):
        tasks.seed({"title": "x"})
    with pytest.raises(AppError, match="tasks fixture"):
        tasks.seed([{"title": "x", "priority": "urgent"}])


def test_add_parses_due_dates_in_the_users_zone(tasks: TasksApp) -> None:
    task = tasks.add(AddArgs(title="  Dentist  appointment ", due="2026-03-20 15:00", tags=["#Health"]))
    assert (task.id, task.title, task.due) == ("t6", "Dentist appointment", "2026-03-20T15:00:00+01:00")
    assert task.tags == ["health"] and task.priority == "normal" and not task.done and not task.overdue
    assert tasks.add(AddArgs(title="Summer", due="2026-07-01T10:00Z")).due == "2026-07-01T12:00:00+02:00"
    assert tasks.add(AddArgs(title="Day only", due="2026-04-01")).due == "2026-04-01"
    with pytest.raises(AppError, match="due 'someday maybe'"):
        tasks.add(AddArgs(title="Vague", due="someday maybe"))
    with pytest.raises(AppError, match="needs a title"):
        tasks.add(AddArgs(title=" "))


def test_list_filters_and_order(tasks: TasksApp) -> None:
    assert tasks.list(ListArgs()).ids == ["t2", "t3", "t1", "t4"]  # soonest due first, undated last
    assert tasks.list(ListArgs(status="done")).ids == ["t5"]
    assert tasks.list(ListArgs(status="all")).count == 5
    assert tasks.list(ListArgs(tag="HOME")).ids == ["t1"]
    overdue = tasks.list(ListArgs(overdue=True))
    assert overdue.ids == ["t2", "t3"] and all(t.overdue for t in overdue.tasks)
    with pytest.raises(AppError, match="^overdue tasks are open ones: status 'done' with overdue finds none"):
        tasks.list(ListArgs(status="done", overdue=True))
    assert tasks.list(ListArgs(due_before="2026-03-11")).ids == ["t2", "t3"]
    assert tasks.list(ListArgs(due_before="2026-03-12")).ids == ["t2", "t3", "t1"]  # a date includes its day
    assert tasks.list(ListArgs(due_before="2026-03-10T08:00")).ids == ["t2"]


def test_complete_by_id_or_title(tasks: TasksApp, ctx: Context) -> None:
    done = tasks.complete(TaskRefArgs(task="t1"))
    assert done.done and done.completed == "2026-03-10T09:00:00+01:00"
    assert tasks.complete(TaskRefArgs(task="call MUM")).id == "t3"
    assert tasks.complete(TaskRefArgs(task="4")).id == "t4"
    with pytest.raises(AppError, match="t1 .*'Pay rent'.* is already done"):
        tasks.complete(TaskRefArgs(task="Pay rent"))
    with pytest.raises(AppError, match="no task with the id or title 'Pay rnet'; did you mean 'Pay rent'"):
        tasks.complete(TaskRefArgs(task="Pay rnet"))
    assert [t["done"] for t in stored(ctx)] == [True, False, True, True, True]


def test_a_word_of_two_open_titles_is_an_error_naming_both(tasks: TasksApp) -> None:
    tasks.add(AddArgs(title="Write the quarterly report"))
    tasks.add(AddArgs(title="Send the expense report"))
    with pytest.raises(AppError, match="no task is titled 'report', and 2 open tasks have it in their title: "
                                       "'Write the quarterly report' \\(t6\\), 'Send the expense report' \\(t7\\); "
                                       "name one by its id, or, if nothing says which, ask"):
        tasks.complete(TaskRefArgs(task="report"))
    with pytest.raises(AppError, match="did you mean 'Send the expense report'"):
        tasks.complete(TaskRefArgs(task="expense report"))


def test_ambiguous_title_is_an_error_naming_the_ids(tasks: TasksApp) -> None:
    tasks.add(AddArgs(title="Pay rent", due="2026-04-12"))
    with pytest.raises(AppError, match="2 tasks are titled 'Pay rent': t1 \\(due 2026-03-12\\), t6 .*by its id"):
        tasks.complete(TaskRefArgs(task="Pay rent"))
    tasks.complete(TaskRefArgs(task="t1"))
    assert tasks.complete(TaskRefArgs(task="Pay rent")).id == "t6"  # only one of them is still open


def test_update(tasks: TasksApp) -> None:
    task = tasks.update(UpdateArgs(task="t4", title="Read two books", due="2026-03-31", priority="high"))
    assert (task.title, task.due, task.priority) == ("Read two books", "2026-03-31", "high")
    assert tasks.update(UpdateArgs(task="t4", due="none", tags=["Leisure"])).due is None
    assert tasks.list(ListArgs(tag="leisure")).ids == ["t4"]
    with pytest.raises(AppError, match="needs something to change"):
        tasks.update(UpdateArgs(task="t4"))


def test_remove_keeps_the_task_and_restore_brings_it_back(tasks: TasksApp, ctx: Context) -> None:
    gone = tasks.remove(TaskRefArgs(task="File taxes"))
    assert (gone.id, gone.title, gone.kept_in) == ("t2", "File taxes", REMOVED_FILE)
    assert "t2" not in [t["id"] for t in stored(ctx)]
    assert stored(ctx, REMOVED_FILE)[0]["removed"] == "2026-03-10T09:00:00+01:00"
    assert tasks.add(AddArgs(title="New")).id == "t6"  # ids are never reused
    back = tasks.restore(RestoreArgs(task="t2"))
    assert (back.id, back.title, back.due, back.tags) == ("t2", "File taxes", "2026-03-09", ["admin"])
    assert "removed" not in stored(ctx)[-1] and stored(ctx, REMOVED_FILE) == []
    with pytest.raises(AppError, match="no removed task"):
        tasks.restore(RestoreArgs(task="t2"))


@pytest.mark.parametrize("content, message", [
    ("[{\"id\": \"t1\", \"title\": ", "Tasks/tasks.json is not valid JSON \\(line 1"),
    ("{\"tasks\": []}", "Tasks/tasks.json must hold a JSON list of tasks, not dict"),
    ("[{\"id\": \"t1\"}]", "Tasks/tasks.json holds an invalid task: \\[0\\].title: Field required"),
    ("[{\"id\": \"t1\", \"title\": \"a\", \"priority\": \"urgent\"}]", "\\[0\\].priority"),
    ("[{\"id\": \"t1\", \"title\": \"a\", \"due\": \"soon\"}]", "task t1: due 'soon'"),
    ("[{\"id\": \"t1\", \"title\": \"a\"}, {\"id\": \"t1\", \"title\": \"b\"}]", "two tasks with the id t1"),
])
def test_a_corrupt_task_file_is_named_and_never_overwritten(ctx: Context, content: str, message: str) -> None:
    ctx.sandbox.write_text(TASKS_FILE, content)
    app = TasksApp(ctx)
    with pytest.raises(AppError, match=message):
        app.add(AddArgs(title="anything"))
    with pytest.raises(AppError, match="left as it is"):
        app.list(ListArgs())
    assert "left as it is" in app.summary()
    assert (ctx.sandbox.root / TASKS_FILE).read_text() == content


def test_fields_other_programs_wrote_are_kept(ctx: Context) -> None:
    ctx.sandbox.write_text(TASKS_FILE, json.dumps([{"id": "t7", "title": "Sync", "source": "phone"}]))
    app = TasksApp(ctx)
    app.complete(TaskRefArgs(task="t7"))
    assert stored(ctx)[0]["source"] == "phone" and stored(ctx)[0]["done"] is True
    assert app.add(AddArgs(title="Next")).id == "t8"


def test_the_task_file_stays_in_the_sandbox(ctx: Context, tmp_path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (ctx.sandbox.root / "Tasks").symlink_to(outside)
    with pytest.raises(AppError, match="Tasks/tasks.json cannot be read: .*outside the sandbox"):
        TasksApp(ctx).add(AddArgs(title="x"))
    assert list(outside.iterdir()) == []


def test_through_the_executor(tasks: TasksApp, ctx: Context) -> None:
    table = FunctionTable([TasksApp])
    workflow = Workflow.model_validate({"states": [
        {"name": "late", "call": "tasks.list", "args": {"overdue": True}},
        {"name": "add", "call": "tasks.add", "args": {"title": "Catch up", "due": "2026-03-11", "priority": "high"}},
        {"name": "finish", "call": "tasks.complete", "args": {"task": "${add.result.id}"}},
    ]})
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view.error
    assert view.results["late"]["ids"] == ["t2", "t3"]
    assert view.results["finish"]["done"] is True
