"""MCP servers as apps: a real server process (notes_server.py, written with the MCP SDK) configured under
`mcp_servers:` shows in the Function Table, the planner's prompt and the workflow schema, and its tools run
through the real Executor beside the built-in apps, confirmation policy included."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from intentos.app import Context
from intentos.backends.replay import ReplayBackend
from intentos.controller import Controller
from intentos.executor import ConfirmRequest, Executor, context_data
from intentos.function import Effect
from intentos.journal import Journal
from intentos.mcp.connection import close_all
from intentos.table import FunctionTable
from intentos.validation import WorkflowInvalid, validate
from intentos.workflow import Workflow

SERVER = Path(__file__).resolve().parent / "notes_server.py"


@pytest.fixture(autouse=True)
def no_server_left() -> Iterator[None]:
    """Every test ends every server it started."""
    yield
    close_all()


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return tmp_path / "notes.json"


@pytest.fixture
def pids(tmp_path: Path) -> Path:
    return tmp_path / "pids.txt"


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    file = tmp_path / "config.yaml"
    file.write_text(text, encoding="utf-8")
    monkeypatch.setenv("INTENTOS_CONFIG", str(file))
    return file


def memo_entry(notes: Path, pids: Path, name: str = "memo") -> str:
    return (f"  {name}:\n"
            f"    command: {json.dumps(sys.executable)}\n"
            f"    args: [{json.dumps(str(SERVER))}]\n"
            f"    env: {{NOTES_FILE: {json.dumps(str(notes))}, NOTES_PIDS: {json.dumps(str(pids))}}}\n")


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notes: Path, pids: Path) -> FunctionTable:
    write_config(tmp_path, monkeypatch, "mcp_servers:\n" + memo_entry(notes, pids))
    return FunctionTable.discover()


def wf(*states: dict) -> Workflow:
    return Workflow.model_validate({"states": list(states)})


def saved(notes: Path) -> list[dict]:
    return json.loads(notes.read_text()) if notes.exists() else []


# -- the table ---------------------------------------------------------------------------------------------------


def test_the_table_shows_each_tool_as_server_dot_tool_with_its_schema_and_effect(table: FunctionTable) -> None:
    assert table.problems == []
    assert "files.read" in table  # the built-in apps are all still there
    effects = {fn.name: fn.effect for fn in table if fn.app == "memo"}
    assert effects == {"memo.add": Effect.WRITE, "memo.search": Effect.READ, "memo.purge": Effect.DESTRUCTIVE,
                       "memo.count": Effect.EXTERNAL, "memo.halt": Effect.EXTERNAL}
    described = {d["name"]: d for d in table.describe()}
    add = described["memo.add"]
    assert add["description"] == "Add a note with optional tags."  # the first paragraph of the tool's
    assert add["params"]["required"] == ["text"] and add["params"]["properties"]["text"]["type"] == "string"
    assert set(add["result"]["properties"]) == {"id", "text", "tags"}
    limit = described["memo.search"]["params"]["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 10)  # the tool's schema, as it is
    assert described["memo.count"]["result"]["required"] == ["text"]  # no output schema: its text
    text = table.prompt_text()
    assert "## memo: Short notes kept in a JSON file." in text  # the server's instructions
    assert "- memo.add(text: str, tags?: list[str]) -> {id, text, tags} [write] Add a note with optional tags." \
        in text
    assert "- memo.search(query: str, limit?: int) -> {notes, count} [read]" in text
    assert "- memo.purge() -> {removed} [destructive] Delete every note." in text


def test_the_planner_is_shown_the_tools_and_its_grammar_allows_them(table: FunctionTable, ctx: Context) -> None:
    system = Controller(ReplayBackend([]), table, ctx, examples=[]).messages(
        "keep a note that the boiler was serviced", table, [])[0].content
    assert "memo.add(text: str, tags?: list[str]) -> {id, text, tags} [write]" in system
    schema = table.workflow_schema()
    members = {m["properties"]["call"]["const"]: m for m in schema["properties"]["states"]["items"]["oneOf"]}
    assert members["memo.search"]["properties"]["args"]["required"] == ["query"]
    good = {"states": [{"name": "find", "call": "memo.search", "args": {"query": "boiler", "limit": 3}},
                       {"name": "add", "call": "memo.add", "args": {"text": "${find.result.count} found"}}]}
    jsonschema.validate(good, schema)
    bad = {"states": [{"name": "add", "call": "memo.add", "args": {"text": "x", "colour": "red"}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_planning_never_runs_a_tool_that_changes_the_servers_data(table: FunctionTable, ctx: Context,
                                                                  notes: Path) -> None:
    """The planner dry-runs a plan in a scratch copy of the sandbox; the server's data is not in it."""
    plan = {"states": [{"name": "add", "call": "memo.add", "args": {"text": "boiler serviced"}}]}
    resolution = Controller(ReplayBackend([json.dumps(plan)] * 3), table, ctx, examples=[]).resolve(
        "keep a note that the boiler was serviced")
    assert list(resolution.workflow.states) == ["add"]
    assert not notes.exists()
    assert "stopped before 'add'" in resolution.trace.dry_run.summary()


# -- running -----------------------------------------------------------------------------------------------------


def test_a_workflow_mixing_files_and_a_server_runs_end_to_end(table: FunctionTable, ctx: Context,
                                                              notes: Path) -> None:
    ctx.sandbox.write_text("boiler.txt", "Boiler serviced on Monday")
    asked: list[tuple[str, str, tuple[str, ...]]] = []

    def confirm(request: ConfirmRequest) -> bool:
        asked.append((request.state, request.effect.value, request.details))
        return True

    workflow = wf(
        {"name": "read", "call": "files.read", "args": {"path": "boiler.txt"}},
        {"name": "add", "call": "memo.add", "args": {"text": "${read.result.text}", "tags": ["home"]}},
        {"name": "find", "call": "memo.search", "args": {"query": "serviced"}},
        {"name": "say", "call": "agent.say", "args": {"message": "found ${find.result.count}: "
                                                                  "${find.result.notes[0].text}"}},
    )
    assert validate(workflow, table) == []
    view = Executor(table, ctx, confirm=confirm).run(workflow)
    assert view.status == "done", view.error
    # Only the write asked (files.read and the read-only search did not), and it said what runs where.
    assert [(state, effect) for state, effect, _ in asked] == [("add", "write")]
    assert "the tool 'add' of the MCP server 'memo'" in asked[0][2][0]
    assert view.results["add"] == {"id": 1, "text": "Boiler serviced on Monday", "tags": ["home"]}
    assert view.results["find"]["count"] == 1
    assert view.results["say"] == {"message": "found 1: Boiler serviced on Monday"}
    assert saved(notes) == [{"id": 1, "text": "Boiler serviced on Monday", "tags": ["home"]}]
    assert view.steps[1].args == {"text": "Boiler serviced on Monday", "tags": ["home"]}  # as sent: no nulls


def test_a_write_a_crash_cut_short_is_asked_about_again_on_resume(table: FunctionTable, ctx: Context,
                                                                 notes: Path) -> None:
    """The server's data cannot be rolled back like the sandbox's: a cut-short write may have happened."""
    workflow = wf({"name": "add", "call": "memo.add", "args": {"text": "boiler serviced"}})
    executor = Executor(table, ctx, assume_yes=True)
    # What a crash inside the call leaves in the journal: the step started, nothing after it.
    with Journal.create("cut", executor.runs_root) as journal:
        journal.append("run_started", data={"workflow": workflow.to_data(), "sandbox": str(ctx.sandbox.root),
                                            "context": context_data(ctx)})
        journal.append("step_started", state="add", call="memo.add", args={"text": "boiler serviced"})
    asked: list[tuple[str, ...]] = []
    resumed = Executor(table, ctx, assume_yes=True, confirm=lambda r: asked.append(r.details) or False).resume("cut")
    assert resumed.status == "declined" and not notes.exists()  # asked even with --yes, and a no stops it
    assert "cut short by a crash" in asked[0][0]


def test_destructive_and_external_tools_ask_and_a_no_stops_before_the_call(table: FunctionTable, ctx: Context,
                                                                           notes: Path) -> None:
    asked: list[str] = []

    def confirm(request: ConfirmRequest) -> bool:
        asked.append(request.function.name)
        return request.effect is not Effect.DESTRUCTIVE

    view = Executor(table, ctx, confirm=confirm, assume_yes=True).run(wf(
        {"name": "add", "call": "memo.add", "args": {"text": "keep me"}},
        {"name": "how_many", "call": "memo.count", "args": {}},
        {"name": "purge", "call": "memo.purge", "args": {}},
    ))
    assert asked == ["memo.purge"]  # with --yes only the destructive one asks
    assert view.results["how_many"] == {"text": "1 notes"}  # a tool without an output schema: its text
    assert view.status == "declined" and [n["text"] for n in saved(notes)] == ["keep me"]
    asked.clear()
    view = Executor(table, ctx, confirm=confirm).run(wf({"name": "how_many", "call": "memo.count", "args": {}}))
    assert asked == ["memo.count"] and view.status == "done"  # external asks without --yes


def test_invalid_arguments_are_refused_in_one_line_before_any_call(table: FunctionTable, ctx: Context,
                                                                   notes: Path) -> None:
    cases = [
        ({"text": 5}, "5 is not of type 'string'"),
        ({"tags": ["x"]}, "Field required"),
        ({"text": "x", "tags": "home"}, "'home' is not valid under any of the given schemas"),
        ({"text": "x", "colour": "red"}, "memo.add has no argument 'colour'"),
    ]
    for args, message in cases:
        problems = validate(wf({"name": "add", "call": "memo.add", "args": args}), table)
        assert len(problems) == 1 and message in str(problems[0]) and "\n" not in str(problems[0]), problems
    problems = validate(wf({"name": "find", "call": "memo.search", "args": {"query": "x", "limit": 0}}), table)
    assert [p.field for p in problems] == ["args.limit"] and "0 is less than the minimum of 1" in str(problems[0])
    with pytest.raises(WorkflowInvalid):
        Executor(table, ctx, confirm=lambda r: True).run(wf({"name": "add", "call": "memo.add",
                                                             "args": {"text": 5}}))
    # A reference is checked against the tool's schema too, and so is what it resolves to at run time.
    problems = validate(wf({"name": "sum", "call": "agent.sum", "args": {"values": [1, 2]}},
                           {"name": "add", "call": "memo.add", "args": {"text": "x", "tags": "${sum.result.total}"}}),
                        table)
    assert [str(p) for p in problems] == ["state 'add', field 'args.tags': ${sum.result.total} is number, but the "
                                          "argument wants array/null"]
    with pytest.raises(ValidationError) as info:
        table.get("memo.add").params.model_validate({"text": "x", "tags": 3.0})
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [
        (("tags",), "3.0 is not valid under any of the given schemas")]
    assert not notes.exists()  # the server was never asked to write


def test_a_tool_error_is_a_one_line_step_error(table: FunctionTable, ctx: Context) -> None:
    view = Executor(table, ctx, confirm=lambda r: True).run(wf({"name": "add", "call": "memo.add",
                                                                "args": {"text": "   "}}))
    step = view.steps[-1]
    assert view.status == "failed" and step.status == "error"
    assert step.error == "memo.add failed: Error executing tool add: a note needs some text, not only spaces"


def test_a_server_dying_mid_call_is_one_line_and_the_next_call_starts_it_again(table: FunctionTable,
                                                                               ctx: Context, pids: Path) -> None:
    view = Executor(table, ctx, confirm=lambda r: True).run(wf({"name": "halt", "call": "memo.halt", "args": {}}))
    error = view.steps[-1].error or ""
    assert view.status == "failed" and "\n" not in error
    assert error.startswith("the MCP server 'memo' is not there for memo.halt: it stopped during the call")
    view = Executor(table, ctx, confirm=lambda r: True).run(wf({"name": "n", "call": "memo.count", "args": {}}))
    assert view.status == "done" and view.results["n"] == {"text": "0 notes"}
    assert len(pids.read_text().split()) == 2  # started again, once


def test_a_server_that_exited_between_calls_is_started_again(table: FunctionTable, ctx: Context,
                                                             pids: Path) -> None:
    count = wf({"name": "n", "call": "memo.count", "args": {}})
    assert Executor(table, ctx, confirm=lambda r: True).run(count).status == "done"
    first = int(pids.read_text().split()[0])
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while table.apps["memo"].server.alive and time.monotonic() < deadline:  # the session sees its stream end
        time.sleep(0.05)
    view = Executor(table, ctx, confirm=lambda r: True).run(count)
    assert view.status == "done" and view.results["n"] == {"text": "0 notes"}
    assert len(pids.read_text().split()) == 2


# -- what goes wrong ---------------------------------------------------------------------------------------------


def test_a_server_that_cannot_start_is_a_warning_and_the_rest_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   notes: Path, pids: Path, ctx: Context) -> None:
    write_config(tmp_path, monkeypatch, "mcp_servers:\n  ghost:\n    command: intentos-no-such-server\n"
                                        "  crashy:\n"
                                        f"    command: {json.dumps(sys.executable)}\n"
                                        "    args: [-c, 'import sys; sys.exit(\"no database here\")']\n"
                                        + memo_entry(notes, pids))
    table = FunctionTable.discover()
    assert table.problems[0] == ("MCP server 'ghost' (intentos-no-such-server) failed to start: "
                                 "no such command 'intentos-no-such-server'")
    assert table.problems[1].startswith("MCP server 'crashy' (")
    assert table.problems[1].endswith("(it said: no database here)")
    assert len(table.problems) == 2 and not any("\n" in p for p in table.problems)
    assert "ghost" not in table.apps and "crashy" not in table.apps and "memo.add" in table and "files.read" in table
    view = Executor(table, ctx).run(wf({"name": "find", "call": "memo.search", "args": {"query": "x"}}))
    assert view.status == "done"


@pytest.mark.parametrize("entry, line, message", [
    ("  web:\n    url: ftp://example.org\n", 3, "mcp_servers.web.url: url must be an http:// or https:// address"),
    ("  both:\n    command: x\n    url: http://h\n", 2, "mcp_servers.both: give either `command`"),
    ("  neither:\n", 2, "mcp_servers.neither: give either `command`"),
    ("  typo:\n    comand: x\n", 3, "mcp_servers.typo.comand: Extra inputs are not permitted"),
    ("  envy:\n    command: x\n    env: [A]\n", 4, "mcp_servers.envy.env: Input should be a valid dictionary"),
    ("  9lives:\n    command: x\n", 2, "a server's name is its app's name"),
    ("  files:\n    command: x\n", 2, "MCP server 'files' is left out: an app is already named 'files'"),
])
def test_a_bad_entry_is_a_warning_naming_the_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           entry: str, line: int, message: str) -> None:
    file = write_config(tmp_path, monkeypatch, "mcp_servers:\n" + entry)
    table = FunctionTable.discover()
    assert len(table.problems) == 1 and table.problems[0].startswith(f"{file}:{line}: ")
    assert message in table.problems[0]
    assert "files.read" in table


def test_an_intentos_started_by_intentos_starts_no_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           notes: Path, pids: Path) -> None:
    write_config(tmp_path, monkeypatch, "mcp_servers:\n" + memo_entry(notes, pids))
    monkeypatch.setenv("INTENTOS_MCP_CHILD", "1")  # what every stdio server intentos starts gets
    table = FunctionTable.discover()
    assert "memo" not in table.apps and "files.read" in table and not pids.exists()
    assert len(table.problems) == 1 and "this intentos was itself started by an MCP client" in table.problems[0]


def test_the_section_must_be_a_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = write_config(tmp_path, monkeypatch, "mcp_servers: [memo]\n")
    table = FunctionTable.discover()
    assert table.problems == [f"MCP servers not read: {file}:1: the `mcp_servers:` section must be a mapping"]


# -- transports and lifecycle ------------------------------------------------------------------------------------


def test_a_streamable_http_server_is_an_app_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notes: Path,
                                                ctx: Context) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(SERVER), "--http", str(port)], env={**os.environ,
                               "NOTES_FILE": str(notes)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.1)
        write_config(tmp_path, monkeypatch, f"mcp_servers:\n  web:\n    url: http://127.0.0.1:{port}/mcp\n"
                                            "    headers: {X-Test: 'yes'}\n")
        table = FunctionTable.discover()
        assert table.problems == [] and table.get("web.search").effect is Effect.READ
        view = Executor(table, ctx, confirm=lambda r: True).run(wf(
            {"name": "add", "call": "web.add", "args": {"text": "over HTTP"}},
            {"name": "find", "call": "web.search", "args": {"query": "http"}},
        ))
        assert view.status == "done" and view.results["find"]["notes"][0]["text"] == "over HTTP"
    finally:
        close_all()
        process.terminate()
        process.wait(10)


def test_discovery_reuses_a_running_server_and_close_all_leaves_no_process(table: FunctionTable,
                                                                           pids: Path) -> None:
    again = FunctionTable.discover()
    assert again.apps["memo"] is table.apps["memo"]  # the same server, not a second process
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 1
    close_all()
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_without_mcp_servers_the_sdk_is_not_even_imported(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("agent:\n  step_timeout: 5\n")
    code = ("import sys; from intentos.table import FunctionTable; t = FunctionTable.discover(); "
            "print(len(t), t.problems, 'mcp' in sys.modules, 'intentos.mcp.apps' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "INTENTOS_CONFIG": str(tmp_path / "config.yaml")}).stdout
    assert out.split()[-3:] == ["[]", "False", "False"]
