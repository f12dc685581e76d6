"""for_each: one call per item of a list, validated up front, bounded, confirmed once, journaled, undone on resume."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from intentos import render
from intentos.app import Context
from intentos.executor import ConfirmRequest, Executor
from intentos.journal import read_records, view_run
from intentos.references import substitute
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable
from intentos.validation import validate
from intentos.workflow import MAX_FOR_EACH_ITEMS, Workflow


@pytest.fixture
def table(probe_plugin: Path) -> FunctionTable:
    return FunctionTable.discover()


def wf(states: dict, start: str | None = None) -> Workflow:
    return Workflow.model_validate({"start": start or next(iter(states)), "states": states})


def problems(workflow: Workflow, table: FunctionTable) -> list[str]:
    return [str(p) for p in validate(workflow, table)]


def journal_of(run_id: str) -> Path:
    return Path(os.environ["INTENTOS_HOME"]) / "runs" / run_id / "journal.jsonl"


EXPORT = {
    "make": {"call": "notes.create", "for_each": [{"title": "Groceries", "body": "milk"},
                                                  {"title": "Trip", "body": "Lisbon"},
                                                  {"title": "Books", "body": "Dune"}],
             "args": {"title": "${item.title}", "body": "${item.body}"}, "next": "list"},
    "list": {"call": "notes.list", "next": "export"},
    "export": {"call": "files.write", "for_each": "${list.result.notes}",
               "args": {"path": "export/${item.title}.txt", "text": "${item.title}: ${item.snippet}"},
               "next": "report"},
    "report": {"call": "agent.say",
               "args": {"message": "exported ${export.result.count}, first ${export.result.items[0].path}"}},
}


def test_one_write_per_listed_note_with_item_fields(table: FunctionTable, ctx: Context) -> None:
    workflow = wf(EXPORT)
    assert problems(workflow, table) == []
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view.error
    export = ctx.sandbox.root / "export"
    assert sorted(p.name for p in export.iterdir()) == ["Books.txt", "Groceries.txt", "Trip.txt"]
    assert (export / "Trip.txt").read_text() == "Trip: Lisbon"
    assert sorted(p.name for p in (ctx.sandbox.root / "Notes").iterdir()) == ["books.md", "groceries.md", "trip.md"]
    result = view.results["export"]
    assert result["count"] == 3 and [r["path"] for r in result["items"]] == [
        f"export/{n['title']}.txt" for n in view.results["list"]["notes"]]
    assert view.results["report"]["message"].startswith("exported 3, first export/")
    step = next(s for s in view.steps if s.state == "export")
    assert step.args == EXPORT["export"]["args"]  # as written; each item's own arguments beside them
    assert [i["path"] for i in step.items] == [r["path"] for r in result["items"]]
    finished = [r for r in read_records(journal_of(view.run_id))
                if r.event == "step_finished" and r.state == "export"]
    assert len(finished) == 1 and finished[0].result == result and len(finished[0].items) == 3


def test_whole_item_keeps_its_type_and_interpolation_makes_text(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({
        "tags": {"call": "notes.create", "for_each": [{"name": "Ann", "tags": ["work", "call"]}, {"name": "Bo",
                                                                                                 "tags": []}],
                 "args": {"title": "Call ${item.name}", "tags": "${item.tags}", "body": "item: ${item}"}},
    })
    assert problems(workflow, table) == []
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view.error
    made = view.results["tags"]["items"]
    assert [(m["title"], m["tags"]) for m in made] == [("Call Ann", ["work", "call"]), ("Call Bo", [])]
    text = (ctx.sandbox.root / made[0]["path"]).read_text()
    assert 'item: {"name": "Ann", "tags": ["work", "call"]}' in text


def test_a_list_item_that_refers_to_a_list_of_texts_is_that_lists_items(table: FunctionTable, ctx: Context) -> None:
    for name in ("a.md", "b.md"):
        (ctx.sandbox.root / "Notes").mkdir(exist_ok=True)
        (ctx.sandbox.root / "Notes" / name).write_text(f"# {name}\n")
    (ctx.sandbox.root / "todo.txt").write_text("milk\n")
    workflow = wf({
        "notes": {"call": "files.list", "args": {"folder": "Notes"}, "next": "zip"},
        "zip": {"call": "files.zip", "args": {"paths": ["${notes.result.paths}", "todo.txt"],
                                              "archive": "backup.zip"}}})
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view
    import zipfile

    with zipfile.ZipFile(ctx.sandbox.root / "backup.zip") as archive:
        assert sorted(archive.namelist()) == ["a.md", "b.md", "todo.txt"]
    # A list of things that are not texts stays one item (its call then says what is wrong).
    assert substitute(["${a.result.x}", 1], {"a": {"x": [{"n": 1}]}}) == [[{"n": 1}], 1]
    assert substitute(["${a.result.x}", "b"], {"a": {"x": ["c", "d"]}}) == ["c", "d", "b"]
    assert substitute(["x ${a.result.x}"], {"a": {"x": ["c", "d"]}}) == ["x c, d"]


def test_a_list_of_things_written_into_a_text_is_a_line_for_each() -> None:
    tasks = [{"id": "t1", "title": "Pay the invoice", "due": "2026-03-08"}, {"id": "t2", "title": "Call Mum"}]
    assert substitute("Overdue:\n${l.result.tasks}", {"l": {"tasks": tasks}}) == (
        "Overdue:\n- Pay the invoice (2026-03-08)\n- Call Mum")
    # Things with no name to show stay JSON.
    assert substitute("${l.result.x}", {"l": {"x": [{"n": 1}]}}) == [{"n": 1}]
    assert substitute("x: ${l.result.x}", {"l": {"x": [{"n": 1}]}}) == 'x: [{"n": 1}]'


def test_substitute_item_paths() -> None:
    item = {"a": {"b": [10, 20]}, "name": "x"}
    assert substitute({"v": "${item.a.b[1]}", "w": "${item.a.b.0}", "s": "n=${item.name}"}, {}, item) == {
        "v": 20, "w": 10, "s": "n=x"}
    assert substitute("${item}", {}, [1, 2]) == [1, 2]
    assert substitute("${item}", {}) == "${item}"  # no item: left as written
    assert substitute("${item.result.x}", {"item": {"x": 1}}, {"result": {"x": 2}}) == 1  # a state named item


def test_an_empty_list_is_zero_calls(table: FunctionTable, ctx: Context) -> None:
    asked: list[ConfirmRequest] = []
    workflow = wf({
        "none": {"call": "files.write", "for_each": [], "args": {"path": "${item}", "text": "x"}, "next": "find"},
        "find": {"call": "notes.list", "args": {"tag": "nothing-has-this"}, "next": "each"},
        "each": {"call": "notes.delete", "for_each": "${find.result.paths}", "args": {"note": "${item}"}},
    })
    assert problems(workflow, table) == []
    view = Executor(table, ctx, confirm=lambda r: asked.append(r) or True).run(workflow)
    assert view.status == "done", view.error
    assert view.results["none"] == {"items": [], "count": 0} == view.results["each"]
    assert asked == []  # nothing to confirm when nothing runs
    assert not (ctx.sandbox.root / "${item}").exists()


def test_a_literal_list_over_the_bound_is_a_validation_problem(table: FunctionTable) -> None:
    workflow = wf({"many": {"call": "agent.say", "for_each": list(range(MAX_FOR_EACH_ITEMS + 1)),
                            "args": {"message": "n ${item}"}}})
    found = validate(workflow, table)
    assert [(p.code, p.field) for p in found] == [("for_each_bound", "for_each")]
    assert f"{MAX_FOR_EACH_ITEMS + 1} items" in found[0].message and f"at most {MAX_FOR_EACH_ITEMS}" in found[0].message
    at_bound = wf({"many": {"call": "agent.say", "for_each": list(range(MAX_FOR_EACH_ITEMS)),
                            "args": {"message": "n ${item}"}}})
    assert problems(at_bound, table) == []


def test_a_referenced_list_over_the_bound_fails_the_step_and_nothing_runs(table: FunctionTable,
                                                                          ctx: Context) -> None:
    for i in range(MAX_FOR_EACH_ITEMS + 3):
        ctx.sandbox.write_text(f"in/{i:03}.txt", "x")
    workflow = wf({
        "ls": {"call": "files.list", "args": {"folder": "in"}, "next": "copy"},
        "copy": {"call": "files.copy", "for_each": "${ls.result.paths}",
                 "args": {"source": "${item}", "destination": "out/${item}"}, "on_failure": "said"},
        "said": {"call": "agent.say", "args": {"message": "too many"}},
    })
    assert problems(workflow, table) == []
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    step = next(s for s in view.steps if s.state == "copy")
    assert step.status == "error"
    assert f"{MAX_FOR_EACH_ITEMS + 3} items" in step.error and f"at most {MAX_FOR_EACH_ITEMS}" in step.error
    assert view.status == "done" and [s.state for s in view.steps] == ["ls", "copy", "said"]
    assert not (ctx.sandbox.root / "out").exists()
    events = [(r.event, r.state) for r in read_records(journal_of(view.run_id))]
    assert ("step_started", "copy") not in events  # failed before anything started


def test_item_outside_for_each_and_bad_fields_are_problems(table: FunctionTable) -> None:
    workflow = wf({
        "list": {"call": "notes.list", "next": "each"},
        "each": {"call": "files.write", "for_each": "${list.result.notes}",
                 "args": {"path": "${item.nope}.txt", "text": "${item.tags}"}, "next": "after"},
        "after": {"call": "agent.say", "args": {"message": "${item.title} ${each.result.items[0].nope}"},
                  "next": "count"},
        "count": {"call": "agent.say", "args": {"message": "${each.result.path} ${each.result.count}"},
                  "next": "bad_list"},
        "bad_list": {"call": "agent.say", "for_each": "${list.result.count}", "args": {"message": "x"}},
    })
    found = problems(workflow, table)
    assert any("'after'" in p and "${item.title}" in p and "has no for_each" in p for p in found), found
    assert any("${each.result.items[0].nope}" in p and "has no field 'nope'" in p for p in found), found
    assert any("${each.result.path}" in p and "has no field 'path'" in p and "items, count" in p for p in found)
    assert any("${item.nope}" in p and "the item has no field 'nope'" in p for p in found), found
    assert any("${item.tags} is array, but the argument wants string" in p for p in found), found
    assert any("'bad_list'" in p and "not a list" in p for p in found), found
    assert not any("${each.result.count}" in p for p in found)
    assert len(found) == 6, found


def test_each_literal_item_must_make_valid_arguments(table: FunctionTable) -> None:
    workflow = wf({"each": {"call": "files.write", "for_each": [{"p": "a.txt"}, {"p": 3}, {"q": "c"}, {"p": 4}],
                            "args": {"path": "${item.p}", "text": "x", "overwrite": "${item}"}}})
    found = validate(workflow, table)
    text = [str(p) for p in found]
    assert any("items 2, 4 of 4" in t and "args.path" in t and "valid string" in t for t in text), text
    assert any("item 3 of 4" in t and "${item.p}: the item has no field 'p'" in t for t in text), text
    assert any("args.overwrite" in t and "items 1, 2, 3, 4 of 4" in t for t in text), text  # a dict is no bool


def test_confirmation_is_asked_once_with_a_line_per_item(table: FunctionTable, ctx: Context) -> None:
    asked: list[ConfirmRequest] = []

    def decline(request: ConfirmRequest) -> bool:
        asked.append(request)
        return False

    names = [f"n{i:02}" for i in range(25)]
    workflow = wf({"each": {"call": "files.write", "for_each": names,
                            "args": {"path": "out/${item}.txt", "text": "hi ${item}"}}})
    view = Executor(table, ctx, confirm=decline).run(workflow)
    assert view.status == "declined" and view.resume_at == "each"
    assert len(asked) == 1
    request = asked[0]
    assert request.args == {"path": "out/${item}.txt", "text": "hi ${item}"}
    assert [i["path"] for i in request.items] == [f"out/{n}.txt" for n in names]
    assert request.details[0] == "for each of 25 items:"
    assert request.details[1] == '1. path="out/n00.txt", text="hi n00", overwrite=false'
    assert len(request.details) == 1 + 20 + 1 and request.details[-1] == "… and 5 more items"
    assert not (ctx.sandbox.root / "out").exists()  # declining ran nothing
    records = read_records(journal_of(view.run_id))
    assert [r.event for r in records].count("step_started") == 0

    asked.clear()
    resumed = Executor(table, ctx, confirm=lambda r: asked.append(r) or True).resume(view.run_id)
    assert resumed.status == "done" and len(asked) == 1
    assert len(list((ctx.sandbox.root / "out").iterdir())) == 25


def test_the_cli_prompt_shows_every_item_line(table: FunctionTable, ctx: Context, capsys) -> None:
    from intentos import cli

    workflow = wf({"each": {"call": "files.write", "for_each": ["a", "b"],
                            "args": {"path": "${item}.txt", "text": "x"}}})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "err", Console(stderr=True, width=200))
        mp.setattr(cli, "_read_answer", lambda question, timeout: (False, ""))
        view = Executor(table, ctx, confirm=cli._confirmer(as_json=False)).run(workflow)
    assert view.status == "declined"
    shown = capsys.readouterr().err
    assert "files.write for each item" in shown and "for each of 2 items:" in shown
    assert '1. path="a.txt"' in shown and '2. path="b.txt"' in shown


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_tui_dialog_shows_the_items_and_keeps_its_buttons_in_sight(table: FunctionTable,
                                                                             ctx: Context) -> None:
    import io

    from textual.app import App
    from textual.widgets import Button

    from intentos.tui import app as tui_app
    from intentos.tui.screens.confirm import ConfirmStepScreen

    asked: list[ConfirmRequest] = []
    workflow = wf({"each": {"call": "files.trash", "for_each": [f"f{i}.txt" for i in range(30)],
                            "args": {"path": "${item}"}}})
    Executor(table, ctx, confirm=lambda r: asked.append(r) or False).run(workflow)
    answers: list[bool | None] = []

    class Host(App[None]):  # the real stylesheet, with only the dialog on screen
        CSS_PATH = str(Path(tui_app.__file__).parent / "intentos.tcss")

        def on_mount(self) -> None:
            self.push_screen(ConfirmStepScreen(asked[0]), answers.append)

    app = Host()
    async with app.run_test(size=(110, 36)) as pilot:
        await pilot.pause()
        console = Console(width=110, height=36, file=io.StringIO(), record=True)
        console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
        shown = console.export_text()
        assert "destructive step (30 calls)?" in shown and "files.trash for each item" in shown
        assert "for each of 30 items:" in shown and '1. path="f0.txt"' in shown
        yes = app.screen.query_one("#yes", Button)
        assert yes.region.bottom <= 36 and yes.region.height > 0  # the long list scrolls; the buttons stay
        await pilot.press("y")
        await pilot.pause()
    assert answers == [True]


def test_a_failing_item_fails_the_step_naming_it(table: FunctionTable, ctx: Context) -> None:
    ctx.sandbox.write_text("b.txt", "already here")
    workflow = wf({
        "each": {"call": "files.write", "for_each": ["a.txt", "b.txt", "c.txt"],
                 "args": {"path": "${item}", "text": "new"}, "on_failure": "after"},
        "after": {"call": "agent.say", "args": {"message": "handled"}},
    })
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    step = view.steps[0]
    assert step.status == "error" and step.error.startswith("item 2 of 3: ")
    assert step.result == {"items": [view.steps[0].result["items"][0]], "count": 1}  # what ran before it
    assert (ctx.sandbox.root / "a.txt").read_text() == "new"
    assert (ctx.sandbox.root / "b.txt").read_text() == "already here"
    assert not (ctx.sandbox.root / "c.txt").exists()
    assert view.status == "done" and view.steps[-1].state == "after"


def test_a_bad_item_at_run_time_fails_before_any_call(table: FunctionTable, ctx: Context) -> None:
    ctx.sandbox.write_text("in/a.txt", "x")
    workflow = wf({
        "ls": {"call": "files.list", "args": {"folder": "in"}, "next": "each"},
        "each": {"call": "files.write", "for_each": ["ok.txt", "${ls.result.count}"],  # an integer: no path
                 "args": {"path": "${item}", "text": "x"}},
    })
    assert problems(workflow, table) == []  # the second item is known at run time only
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    step = view.steps[-1]
    assert step.status == "error" and step.error.startswith("item 2 of 2: invalid arguments"), step.error
    assert not (ctx.sandbox.root / "ok.txt").exists()  # the first item did not run either


def test_the_step_timeout_covers_all_items(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({"naps": {"call": "probe.sleep", "for_each": [0.4, 0.4, 0.4, 0.4], "args": {"seconds": "${item}"}}})
    started = time.monotonic()
    view = Executor(table, ctx, step_timeout=1.0).run(workflow)
    assert time.monotonic() - started < 5
    step = view.steps[0]
    assert step.status == "timeout" and "of 4" in step.error and "all 4 items" in step.error
    assert 0 < step.result["count"] < 4
    ctx.cancelled.set()  # let an abandoned worker end


def test_cancel_between_items_stops_and_undoes_the_step(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({"each": {"call": "probe.append", "for_each": ["one", "two", "three"],
                            "args": {"path": "log.txt", "text": "${item}", "cancel_unless": "go.txt"}}})
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    assert view.status == "cancelled" and view.resume_at == "each"
    assert "cancelled after 1 of 3 items" in view.steps[0].error and "undone" in view.steps[0].error
    assert not (ctx.sandbox.root / "log.txt").exists()  # the first item's change was rolled back
    ctx.sandbox.write_text("go.txt", "")
    resumed = Executor(table, ctx, assume_yes=True).resume(view.run_id)
    assert resumed.status == "done"
    assert (ctx.sandbox.root / "log.txt").read_text() == "one\ntwo\nthree\n"


def test_cancel_from_outside_during_a_for_each(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({"naps": {"call": "probe.sleep", "for_each": [0.05, 30, 30], "args": {"seconds": "${item}"}}})
    executor = Executor(table, ctx)
    threading.Timer(0.5, executor.cancel).start()
    view = executor.run(workflow)
    assert view.status == "cancelled" and view.steps[0].status == "cancelled"


def test_schema_accepts_a_for_each_state(table: FunctionTable) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = table.workflow_schema()
    good = {"states": [
        {"name": "list", "call": "notes.list", "args": {}},
        {"name": "each", "call": "files.write", "for_each": "${list.result.notes}",
         "args": {"path": "out/${item.title}.txt", "text": "${item.snippet}", "overwrite": "${item.flag}"}},
        {"name": "lit", "call": "agent.sum", "for_each": [[1, 2], [3]], "args": {"values": "${item}"}},
    ]}
    jsonschema.validate(good, schema)
    assert validate(Workflow.model_validate(good), table) != []  # `${item.flag}`: notes have no flag
    for bad_for_each in ("notes", "${list.notes}", list(range(MAX_FOR_EACH_ITEMS + 1))):
        broken = {"states": [{"name": "a", "call": "agent.say", "for_each": bad_for_each,
                              "args": {"message": "${item}"}}]}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
    with pytest.raises(jsonschema.ValidationError):  # an integer argument takes a whole reference only
        jsonschema.validate({"states": [{"name": "a", "call": "files.find", "args": {"max_results": "${items}"}}]},
                            schema)


def test_a_for_each_that_is_no_list_or_reference_is_refused(tmp_path: Path) -> None:
    from intentos.errors import WorkflowFileError

    path = tmp_path / "wf.yaml"
    path.write_text("states:\n  - {name: a, call: agent.say, for_each: 'notes', args: {message: x}}\n")
    with pytest.raises(WorkflowFileError, match="for_each must be a list or exactly one reference"):
        Workflow.load(path)


def test_a_workflow_file_with_for_each_runs_and_renders(table: FunctionTable, ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "intent: greet everyone\n"
        "states:\n"
        "  - name: greet\n"
        "    call: files.write\n"
        "    for_each: [{name: Ann}, {name: Bo}]\n"
        "    args: {path: 'hello-${item.name}.txt', text: 'Hello ${item.name}'}\n"
    )
    workflow = Workflow.load(path)
    assert Workflow.from_yaml(workflow.to_yaml()) == workflow
    assert problems(workflow, table) == []
    console = Console(width=200, record=True)
    console.print(render.plan(workflow, table))
    shown = console.export_text()
    assert 'for each [{"name": "Ann"}, {"name": "Bo"}] (2 items): files.write' in shown
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    assert view.status == "done"
    assert (ctx.sandbox.root / "hello-Bo.txt").read_text() == "Hello Bo"
    console = Console(width=200, record=True)
    console.print(render.run_view(view))
    assert "files.write ×2" in console.export_text()
    ref = wf({"l": {"call": "notes.list", "next": "e"},
              "e": {"call": "notes.read", "for_each": "${l.result.paths}", "args": {"note": "${item}"}}})
    assert render.call_text(ref.states["e"]) == "for each ${l.result.paths}: notes.read"


def test_resume_after_a_kill_inside_for_each_rolls_it_back_and_reruns_it(table: FunctionTable, tmp_path: Path,
                                                                         killed_run: Callable[..., None]) -> None:
    sandbox = tmp_path / "sb"
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        "start: first\nstates:\n"
        "  first: {call: probe.append, args: {path: first.txt, text: once}, next: each}\n"
        "  each:\n"
        "    call: probe.append\n"
        "    for_each: [{t: one, w: null}, {t: two, w: go.txt}, {t: three, w: null}]\n"
        "    args: {path: log.txt, text: '${item.t}', wait_for: '${item.w}'}\n"
    )
    log = sandbox / "log.txt"
    killed_run(sandbox, workflow, "each", lambda: log.exists() and "two" in log.read_text(),
               "the for_each step never reached its second item")
    before = view_run(journal_of("each").parent)
    assert before.status == "interrupted" and before.resume_at == "each"
    assert log.read_text() == "one\ntwo\n"

    (sandbox / "go.txt").write_text("")
    ctx = Context(sandbox=Sandbox(sandbox))
    after = Executor(table, ctx, assume_yes=True).resume("each")
    assert after.status == "done", after.error
    assert log.read_text() == "one\ntwo\nthree\n"  # rolled back, then run once, whole
    assert (sandbox / "first.txt").read_text() == "once\n"
    assert after.results["each"]["count"] == 3
    events = [json.loads(line)["event"] for line in journal_of("each").read_text().splitlines()]
    assert events.count("run_resumed") == 1 and events[-1] == "run_finished"
