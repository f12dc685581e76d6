"""The command line, driven in-process through typer's CliRunner (no model inference here).

Exit codes: 0 a run reached `done`, 1 it ended otherwise (failed, declined), 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.cli import app

APPS = {"agent", "calendar", "clock", "contacts", "dataflow", "faults", "files", "logs", "mail", "notes", "tasks",
        "training"}


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def invoke(cli: CliRunner, *args: str, input: str | None = None) -> Any:
    result = cli.invoke(app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def as_json(result: Any) -> Any:
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:  # CliRunner echoes answers typed at a prompt onto stdout; a terminal would not
        return json.loads(result.stdout.strip().splitlines()[-1])


def flat(text: str) -> str:
    """Rich wraps long lines at 80 columns when not on a terminal: compare without the wrapping."""
    return " ".join(text.split())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sandbox_dir(tmp_path: Path) -> Path:
    path = tmp_path / "sb"
    path.mkdir()
    return path


# -- functions and call ------------------------------------------------------------------------------------------


def test_functions_json_lists_every_app(cli: CliRunner) -> None:
    result = invoke(cli, "functions", "--json")
    assert result.exit_code == 0
    table = as_json(result)
    assert {f["app"] for f in table} == APPS
    names = {f["name"] for f in table}
    for name in ("files.find", "files.zip", "notes.search", "tasks.list", "calendar.free_slots", "contacts.get",
                 "mail.send", "clock.resolve", "agent.refuse", "agent.check"):
        assert name in names
    assert {f["effect"] for f in table} == {"read", "write", "external", "destructive"}
    send = next(f for f in table if f["name"] == "mail.send")
    assert send["effect"] == "external" and "to" in send["params"]["required"]


def test_call_clock_now_json(cli: CliRunner, sandbox_dir: Path) -> None:
    result = invoke(cli, "call", "clock.now", "--sandbox", str(sandbox_dir), "--json")
    assert result.exit_code == 0, result.output
    out = as_json(result)
    assert out["status"] == "done" and out["error"] is None
    assert set(out["result"]) >= {"iso", "date", "time", "weekday", "timezone"}


def test_call_write_is_declined_without_yes_and_no_answer(cli: CliRunner, sandbox_dir: Path) -> None:
    args = json.dumps({"path": "hello.txt", "text": "hi"})
    result = invoke(cli, "call", "files.write", "--args", args, "--sandbox", str(sandbox_dir), "--json")
    assert result.exit_code == 1
    out = as_json(result)
    assert out["status"] == "declined" and out["steps"][0]["status"] == "declined"
    assert "not confirmed" in out["error"]
    assert not (sandbox_dir / "hello.txt").exists()

    result = invoke(cli, "call", "files.write", "--args", args, "--sandbox", str(sandbox_dir), "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert as_json(result)["result"]["created"] is True
    assert (sandbox_dir / "hello.txt").read_text() == "hi"


def test_call_with_bad_input_exits_2(cli: CliRunner, sandbox_dir: Path) -> None:
    result = invoke(cli, "call", "files.shred", "--sandbox", str(sandbox_dir), "--json")
    assert result.exit_code == 2 and "files.shred" in as_json(result)["error"]
    result = invoke(cli, "call", "files.list", "--args", "{not json", "--sandbox", str(sandbox_dir), "--json")
    assert result.exit_code == 2 and "--args is not valid JSON" in as_json(result)["error"]


def test_call_outside_the_sandbox_fails_naming_the_path(cli: CliRunner, sandbox_dir: Path) -> None:
    args = json.dumps({"path": "../../etc/passwd"})
    result = invoke(cli, "call", "files.read", "--args", args, "--sandbox", str(sandbox_dir), "--json")
    assert result.exit_code == 1
    out = as_json(result)
    assert out["status"] == "failed" and out["result"] is None
    assert "'../../etc/passwd'" in out["error"] and "outside the sandbox" in out["error"]


# -- run: malformed files ----------------------------------------------------------------------------------------


def test_run_yaml_syntax_error_names_file_and_line(cli: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "broken.yaml", "name: broken\nintent: say hi\nworkflow:\n  states: [\n    {name: a\n")
    result = invoke(cli, "run", str(path), "--yes", "--json")
    assert result.exit_code == 2
    error = as_json(result)["error"]
    assert error.startswith(f"{path}:") and "malformed YAML" in error
    line = int(error.split(":")[1])
    assert 4 <= line <= 6


def test_run_unknown_key_names_file_and_line(cli: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "typo.yaml", "name: typo\nintent: say hi\nworkflow:\n  states:\n"
                 "    - {name: hi, call: agent.say, args: {message: hi}}\nfixtures: office.yaml\n")
    result = invoke(cli, "run", str(path), "--yes", "--json")
    assert result.exit_code == 2
    error = as_json(result)["error"]
    assert error.startswith(f"{path}:6:") and "unknown key 'fixtures'" in error

    path = write(tmp_path / "state-typo.yaml", "name: typo\nworkflow:\n  states:\n"
                 "    - {name: hi, call: agent.say, args: {message: hi}, on_fail: failed}\n")
    result = invoke(cli, "run", str(path), "--yes")
    assert result.exit_code == 2
    # The line is that of `states:` (list items are located by index, the error by state name); the state is named.
    assert f"{path}:3: workflow.states.hi.on_fail: Extra inputs are not permitted" in flat(result.stderr)


def test_run_unknown_function_names_file_and_state(cli: CliRunner, tmp_path: Path, isolated_home: Path) -> None:
    fixture = write(tmp_path / "fx.yaml", "now: 2026-03-10T09:00:00\nfiles: {a.txt: hello}\n")
    path = write(tmp_path / "shred.yaml", f"name: shred\nfixture: {fixture.name}\nworkflow:\n  states:\n"
                 "    - {name: find, call: files.find, args: {pattern: '*.txt'}}\n"
                 "    - {name: destroy, call: files.shred, args: {path: '${find.result.paths[0]}'}}\n")
    result = invoke(cli, "run", str(path), "--yes", "--json")
    assert result.exit_code == 2
    error = as_json(result)["error"]
    assert str(path) in error and "'destroy'" in error and "files.shred" in error
    assert not (isolated_home / "sandboxes").exists()  # nothing was seeded for an invalid file
    assert not (isolated_home / "runs").exists()

    result = invoke(cli, "run", str(path), "--dry-run", "--json")
    assert result.exit_code == 2
    out = as_json(result)
    assert out["valid"] is False
    assert [(p["state"], p["code"]) for p in out["problems"]] == [("destroy", "unknown_function")]


def test_run_missing_file_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    result = invoke(cli, "run", str(tmp_path / "nope.yaml"), "--json")
    assert result.exit_code == 2 and "no such file" in as_json(result)["error"]


# -- run: the sandbox, dry runs ----------------------------------------------------------------------------------


def test_run_escaping_the_sandbox_fails_the_step(cli: CliRunner, tmp_path: Path, sandbox_dir: Path) -> None:
    path = write(tmp_path / "escape.yaml", "name: escape\nworkflow:\n  states:\n"
                 "    - {name: peek, call: files.read, args: {path: ../../etc/passwd}}\n"
                 "    - {name: keep, call: files.write, args: {path: loot.txt, text: '${peek.result.text}'}}\n")
    result = invoke(cli, "run", str(path), "--sandbox", str(sandbox_dir), "--yes", "--json")
    assert result.exit_code == 1
    out = as_json(result)
    assert out["status"] == "failed" and out["final_state"] == "failed"
    (step,) = out["steps"]
    assert step["state"] == "peek" and step["status"] == "error"
    assert "'../../etc/passwd'" in step["error"] and "outside the sandbox" in step["error"]
    assert out["error"] == step["error"]
    assert list(sandbox_dir.iterdir()) == []


def test_run_dry_run_validates_and_runs_nothing(cli: CliRunner, tmp_path: Path, sandbox_dir: Path,
                                                isolated_home: Path) -> None:
    path = write(tmp_path / "plan.yaml", "name: plan\nintent: Write a greeting\nworkflow:\n  states:\n"
                 "    - {name: greet, call: files.write, args: {path: greeting.txt, text: hello}}\n")
    result = invoke(cli, "run", str(path), "--sandbox", str(sandbox_dir), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "valid (dry run: nothing executed)" in result.stdout
    assert "files.write" in result.stdout and "greet" in result.stdout  # the plan is shown
    result = invoke(cli, "run", str(path), "--sandbox", str(sandbox_dir), "--dry-run", "--json")
    assert result.exit_code == 0
    out = as_json(result)
    assert out["valid"] is True and out["problems"] == [] and out["workflow"]["start"] == "greet"
    assert not (sandbox_dir / "greeting.txt").exists()
    assert not (isolated_home / "runs").exists()


# -- runs: list, show, resume ------------------------------------------------------------------------------------

TWO_WRITES = """\
name: two-writes
intent: Write two files
workflow:
  states:
    - {name: first, call: files.write, args: {path: first.txt, text: one}}
    - {name: second, call: files.write, args: {path: second.txt, text: "after ${first.result.path}"}}
"""


def _journal(isolated_home: Path, run_id: str) -> list[dict[str, Any]]:
    lines = (isolated_home / "runs" / run_id / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_runs_list_and_show(cli: CliRunner, sandbox_dir: Path) -> None:
    result = invoke(cli, "runs")
    assert result.exit_code == 0 and "no runs yet" in flat(result.stdout)
    done = as_json(invoke(cli, "call", "clock.now", "--sandbox", str(sandbox_dir), "--json"))
    failed = as_json(invoke(cli, "call", "files.read", "--args", '{"path": "missing.txt"}',
                            "--sandbox", str(sandbox_dir), "--json"))

    listed = as_json(invoke(cli, "runs", "--json"))
    assert {(r["run_id"], r["status"]) for r in listed} == {(done["run_id"], "done"), (failed["run_id"], "failed")}
    assert all(r["source"] == "call" for r in listed)
    text = invoke(cli, "runs").stdout  # a table: narrow columns fold the ids, so look at the rest
    assert "done" in text and "failed" in text and text.count("call") == 2

    result = invoke(cli, "runs", "show", failed["run_id"], "--json")
    assert result.exit_code == 0
    view = as_json(result)
    assert view["status"] == "failed" and view["sandbox"] == str(sandbox_dir.resolve())
    (step,) = view["steps"]
    assert step["call"] == "files.read" and step["args"]["path"] == "missing.txt"
    assert "missing.txt does not exist" in step["error"]
    assert invoke(cli, "runs", "show", done["run_id"]).exit_code == 0

    result = invoke(cli, "runs", "show", "20000101-000000-nope00", "--json")
    assert result.exit_code == 2 and "no run" in as_json(result)["error"]


def test_resume_a_declined_run_does_not_redo_finished_steps(cli: CliRunner, tmp_path: Path, sandbox_dir: Path,
                                                            isolated_home: Path) -> None:
    path = write(tmp_path / "two-writes.yaml", TWO_WRITES)
    # Confirm the first write, decline the second.
    result = invoke(cli, "run", str(path), "--sandbox", str(sandbox_dir), "--json", input="y\nn\n")
    assert result.exit_code == 1
    out = as_json(result)
    run_id = out["run_id"]
    assert out["status"] == "declined" and out["final_state"] == "second"
    assert [(s["state"], s["status"]) for s in out["steps"]] == [("first", "ok"), ("second", "declined")]
    assert (sandbox_dir / "first.txt").read_text() == "one" and not (sandbox_dir / "second.txt").exists()
    first_written = (sandbox_dir / "first.txt").stat().st_mtime_ns

    result = invoke(cli, "runs", "resume", run_id, "--yes", "--json")
    assert result.exit_code == 0, result.output
    out = as_json(result)
    assert out["run_id"] == run_id and out["status"] == "done"
    assert (sandbox_dir / "second.txt").read_text() == "after first.txt"  # the first result, from the journal
    assert (sandbox_dir / "first.txt").stat().st_mtime_ns == first_written

    records = _journal(isolated_home, run_id)
    started = [r["state"] for r in records if r["event"] == "step_started"]
    assert started == ["first", "second"]  # `first` ran once, before the resume only
    events = [r["event"] for r in records]
    assert events.count("run_resumed") == 1 and events[-1] == "run_finished" and records[-1]["status"] == "done"
    assert events.index("run_resumed") > started.index("first")

    view = as_json(invoke(cli, "runs", "show", run_id, "--json"))
    assert [(s["state"], s["status"]) for s in view["steps"]] == [("first", "ok"), ("second", "declined"),
                                                                   ("second", "ok")]
    again = invoke(cli, "runs", "resume", run_id, "--yes", "--json")
    assert again.exit_code == 2 and "already finished" in as_json(again)["error"]


# -- resolve: settings errors ------------------------------------------------------------------------------------


def test_resolve_with_a_bad_model_spec_exits_2(cli: CliRunner, sandbox_dir: Path) -> None:
    result = invoke(cli, "resolve", "Make a note called Shopping", "--model", "nope:x", "--sandbox",
                    str(sandbox_dir), "--json")
    assert result.exit_code == 2
    error = as_json(result)["error"]
    assert "nope:x" in error and "llamacpp" in error
    result = invoke(cli, "resolve", "Make a note called Shopping", "--model", "nope:x", "--sandbox", str(sandbox_dir))
    assert result.exit_code == 2
    assert "error:" in result.stderr and "nope:x" in flat(result.stderr)


def test_resolve_that_never_validates_saves_the_trace(cli: CliRunner, sandbox_dir: Path, isolated_home: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded model output (the replay backend evals use) that never validates: exit 1, the trace kept."""
    from intentos import cli as cli_module
    from intentos.backends.replay import ReplayBackend

    recorded = ['{"states": [{"name": "x", "call": "notes.shout", "args": {}}]}'] * 3
    monkeypatch.setattr(cli_module, "make_backend", lambda spec, settings: ReplayBackend(recorded, spec=spec))
    result = invoke(cli, "resolve", "Make a note called Shopping", "--sandbox", str(sandbox_dir), "--json")
    assert result.exit_code == 1
    error = as_json(result)["error"]
    assert "no valid workflow in 3 attempt(s)" in error and "notes.shout" in error
    saved = Path(error.rsplit("the trace with every raw output is in ", 1)[1])
    assert saved.parent == isolated_home / "traces"
    trace = json.loads(saved.read_text())
    assert [a["raw"] for a in trace["attempts"]] == recorded and not trace["ok"]
    assert not (sandbox_dir.exists() and any(sandbox_dir.iterdir()))  # nothing ran, nothing was written
