"""Item 13: a damaged journal (bytes that are not UTF-8, a field of the wrong type, JSON nested 100,000
deep, records that parse but tell no run) gives one line naming the file and the line, exit code 2, in
`runs show` and `runs resume`; `runs` lists the other runs and marks the damaged one with the reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.cli import app

Lines = list[bytes]


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def finished_run(sandbox: Path) -> str:
    result = invoke("call", "agent.say", "--args", '{"message": "hi"}', "--sandbox", str(sandbox), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["run_id"]


def declined_run(sandbox: Path) -> str:
    result = invoke("call", "files.write", "--args", '{"path": "a.txt", "text": "x"}', "--sandbox", str(sandbox),
                    "--json")
    assert result.exit_code == 1, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])["run_id"]


def edit(index: int, change: Callable[[dict[str, Any]], None]) -> Callable[[Lines], Lines]:
    def apply(lines: Lines) -> Lines:
        record = json.loads(lines[index])
        change(record)
        lines[index] = json.dumps(record).encode()
        return lines

    return apply


def workflow(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda record: record["data"].__setitem__("workflow", value)


# (damage, the line it is on, what the message says)
DAMAGE: dict[str, tuple[Callable[[Lines], Lines], int, str]] = {
    "non-UTF-8 byte": (lambda ls: [ls[0][:-3] + b"\xff" + ls[0][-3:], *ls[1:]], 1, "not UTF-8"),
    "seq is text": (edit(1, lambda r: r.__setitem__("seq", "x")), 2, "seq: Input should be a valid integer"),
    "data is a number": (edit(0, lambda r: r.__setitem__("data", 5)), 1, "data: Input should be a valid dictionary"),
    "workflow is a list": (edit(0, workflow([])), 1, "no workflow"),
    "workflow is not a workflow": (edit(0, workflow({"start": "a", "states": {}})), 1, "not a valid workflow"),
    "100000 nested [": (lambda ls: [ls[0], b"[" * 100_000 + b"]" * 100_000, *ls[1:]], 2, "nested deeper"),
    "500 nested [ in a record": (lambda ls: [ls[0], b'{"seq": 1, "event": "step_started", "args": {"a": '
                                 + b"[" * 500 + b"]" * 500 + b"}}", *ls[1:]], 2, "nested deeper"),
    "not an object": (lambda ls: [ls[0], b"[1, 2]", *ls[1:]], 2, "a record is a JSON object"),
    "unknown state": (edit(1, lambda r: r.__setitem__("state", "nowhere")), 2, "'nowhere' is not a state"),
    "no sandbox": (edit(0, lambda r: r["data"].pop("sandbox")), 1, "names no sandbox"),
    "no run_started": (lambda ls: ls[1:], 1, "does not start with a run_started record"),
    "empty": (lambda ls: [], 1, "does not start with a run_started record"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_a_damaged_journal_is_one_line_naming_file_and_line(name: str, tmp_path: Path, isolated_home: Path) -> None:
    damage, line, says = DAMAGE[name]
    sandbox = tmp_path / "sb"
    sandbox.mkdir()
    good = finished_run(sandbox)
    bad = declined_run(sandbox)
    journal = isolated_home / "runs" / bad / "journal.jsonl"
    lines = [ln for ln in journal.read_bytes().split(b"\n") if ln]
    journal.write_bytes(b"".join(ln + b"\n" for ln in damage(lines)))
    where = f"{journal}:{line}: "

    for command in (["runs", "show", bad], ["runs", "show", bad, "--json"], ["runs", "resume", bad, "--yes"]):
        result = invoke(*command)
        assert result.exit_code == 2, (command, result.output)
        if "--json" in command:
            error = json.loads(result.stdout)["error"]
        else:
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            error = result.stderr.strip().removeprefix("error: ")
        assert error.startswith(where) and says in error, error

    listed = invoke("runs", "--json")
    assert listed.exit_code == 0
    rows = {r["run_id"]: r for r in json.loads(listed.stdout)}
    assert rows[good]["status"] == "done"
    assert rows[bad]["status"] == "damaged" and rows[bad]["error"].startswith(where)
    text = invoke("runs")
    assert text.exit_code == 0 and "damaged" in text.stdout and "done" in text.stdout
    assert f"run {bad} is damaged: {where}" in text.stderr
    assert not (sandbox / "a.txt").exists()  # nothing ran from a damaged journal


def test_a_context_no_run_could_have_had_is_refused_on_resume(tmp_path: Path, isolated_home: Path) -> None:
    sandbox = tmp_path / "sb"
    sandbox.mkdir()
    bad = declined_run(sandbox)
    journal = isolated_home / "runs" / bad / "journal.jsonl"
    lines = journal.read_bytes().split(b"\n")
    record = json.loads(lines[0])
    record["data"]["context"] = {"user": {"name": 5}, "fixed_now": "not a date"}
    lines[0] = json.dumps(record).encode()
    journal.write_bytes(b"\n".join(lines))
    result = invoke("runs", "resume", bad, "--yes")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {journal}:1: the run's context cannot be rebuilt")
    assert len(result.stderr.strip().splitlines()) == 1
