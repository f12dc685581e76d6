"""Item 14: workflow files are bounded before Python objects are built from them.

A 500-byte alias bomb, a 10,000-deep list, an alias into its own collection, a deep JSON workflow and an
oversized file are each one line naming the file (and line), exit code 2, quickly and in little memory;
a long linear workflow (1,100 or 10,000 states) validates without recursion.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from intentos.cli import app
from intentos.errors import WorkflowFileError
from intentos.table import FunctionTable
from intentos.validation import validate
from intentos.workflow import Workflow

BOMB = """\
name: lol
intent: laugh
workflow:
  start: a
  states:
    a: {call: agent.say, args: {message: hi}}
x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]
x1: &x1 [*x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0]
x2: &x2 [*x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1]
x3: &x3 [*x2, *x2, *x2, *x2, *x2, *x2, *x2, *x2, *x2]
x4: &x4 [*x3, *x3, *x3, *x3, *x3, *x3, *x3, *x3, *x3]
x5: &x5 [*x4, *x4, *x4, *x4, *x4, *x4, *x4, *x4, *x4]
x6: &x6 [*x5, *x5, *x5, *x5, *x5, *x5, *x5, *x5, *x5]
x7: &x7 [*x6, *x6, *x6, *x6, *x6, *x6, *x6, *x6, *x6]
x8: &x8 [*x7, *x7, *x7, *x7, *x7, *x7, *x7, *x7, *x7]
"""


def run_file(path: Path, *extra: str) -> tuple[int, str]:
    """`intentos run FILE --json`: the exit code and the error line."""
    result = CliRunner().invoke(app, ["run", str(path), "--json", *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    out = json.loads(result.stdout)
    return result.exit_code, out.get("error", "")


@pytest.mark.parametrize(("name", "text", "line", "says"), [
    ("bomb.yaml", BOMB, range(7, 16), "once aliases are expanded"),  # the line where the count runs over
    ("deep.yaml", "name: deep\nworkflow: " + "[" * 10_000 + "]" * 10_000 + "\n", 2, "nesting deeper than 64 levels"),
    ("deep.json", '{"name": "deep", "workflow": ' + "[" * 10_000 + "]" * 10_000 + "}", 1, "nesting deeper than 64"),
    ("cycle.yaml", "name: cycle\nworkflow: &w\n  start: a\n  states: *w\n", 4, "refers to a collection that contains"),
    ("deep-alias.yaml", "d: &d " + "[" * 40 + "x" + "]" * 40 + "\nworkflow: " + "[" * 30 + "*d" + "]" * 30 + "\n", 2,
     "through alias *d"),
], ids=["alias-bomb", "deep-yaml", "deep-json", "self-alias", "deep-through-alias"])
def test_hostile_yaml_is_one_line_naming_file_and_line(name: str, text: str, line: int | range, says: str,
                                                       tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    code, error = run_file(path)
    assert time.monotonic() - started < 5
    assert code == 2
    where, _, message = error.removeprefix(f"{path}:").partition(": ")
    assert where.isdigit() and int(where) in (line if isinstance(line, range) else [line]), error
    assert says in message and "\n" not in error, error


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"name: big\nnote: " + b"x" * (5 * 1024 * 1024) + b"\n")
    code, error = run_file(path)
    assert code == 2 and error == f"{path}: the file is larger than 5 MB, the most that is read"


def test_odd_scalars_are_errors_not_crashes(tmp_path: Path) -> None:
    for raw in (b"name: x\nwhen: 2026-02-30\n", b"name: x\nn: " + b"9" * 5000 + b"\n", b"? [a]\n: 1\n",
                b"name: !!python/object:os.system x\n", b"name: x\n\xff: 1\n"):
        path = tmp_path / "odd.yaml"
        path.write_bytes(raw)
        code, error = run_file(path)
        assert code == 2 and error.startswith(str(path)) and "\n" not in error, (raw, error)


def linear(n: int, loop: bool = False) -> dict[str, Any]:
    states = {f"s{i}": {"call": "agent.say", "args": {"message": f"after ${{s{i - 1}.result.message}}" if i else "go"},
                        "next": f"s{i + 1}" if i < n - 1 else ("s0" if loop else "done")} for i in range(n)}
    return {"start": "s0", "states": states}


@pytest.mark.parametrize("n", [1_100, 10_000])
def test_a_long_linear_workflow_validates(n: int) -> None:
    table = FunctionTable.discover()
    started = time.monotonic()
    assert validate(Workflow.model_validate(linear(n)), table) == []
    (problem,) = validate(Workflow.model_validate(linear(n, loop=True)), table)
    assert time.monotonic() - started < 5
    assert problem.code == "unbounded_loop" and f"{n - 9} more" in problem.message  # a long loop, abbreviated


def test_a_1100_state_workflow_file_runs(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(json.dumps({"name": "long", "workflow": linear(1_100)}), encoding="utf-8")  # JSON is YAML
    code, _ = run_file(path, "--dry-run")
    assert code == 0
    result = CliRunner().invoke(app, ["run", str(path), "--sandbox", str(tmp_path / "sb"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "done" and len(out["steps"]) == 1_100


def test_json_text_and_arguments_are_bounded_in_the_python_api() -> None:
    with pytest.raises(WorkflowFileError, match=r"^plan\.json: nesting deeper than 64 levels$"):
        Workflow.from_json("[" * 100_000 + "]" * 100_000, name="plan.json")
    with pytest.raises(WorkflowFileError, match=r"^plan\.json:3: malformed JSON"):
        Workflow.from_json('{\n"start": "a",\n}', name="plan.json")
    args: dict[str, Any] = {}
    inner = args
    for _ in range(100):
        inner["k"] = {}
        inner = inner["k"]
    with pytest.raises(ValidationError, match="nest deeper than 64 levels"):
        Workflow.model_validate({"start": "a", "states": {"a": {"call": "agent.say", "args": args}}})
