"""Workflow data: YAML/JSON round trips, the list form models emit, file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from intentos.errors import WorkflowFileError
from intentos.script import IntentFile
from intentos.workflow import Workflow

YAML = """\
intent: add and report
start: add
states:
  add:
    call: agent.sum
    args: {values: [1, 2]}
    next: report
  report:
    call: agent.say
    args: {message: "total ${add.result.total}"}
    max_visits: 2
"""


def test_yaml_and_json_round_trip() -> None:
    wf = Workflow.from_yaml(YAML)
    assert Workflow.from_yaml(wf.to_yaml()) == wf
    assert Workflow.from_json(wf.to_json()) == wf
    assert wf.states["add"].on_failure == "failed" and wf.states["report"].next == "done"


def test_list_form_is_the_same_workflow() -> None:
    wf = Workflow.model_validate({
        "start": "add",
        "states": [
            {"name": "add", "call": "agent.sum", "args": {"values": [1, 2]}, "next": "report"},
            {"name": "report", "call": "agent.say", "args": {"message": "total ${add.result.total}"},
             "max_visits": 2},
        ],
    })
    assert wf.model_copy(update={"intent": "add and report"}) == Workflow.from_yaml(YAML)


def test_duplicate_and_terminal_names_are_refused() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        Workflow.model_validate({"start": "a", "states": [{"name": "a", "call": "x.y"}, {"name": "a", "call": "x.y"}]})
    with pytest.raises(ValueError, match="terminal"):
        Workflow.model_validate({"start": "done", "states": {"done": {"call": "x.y"}}})


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("start: a\nstates:\n  a:\n    call: agent.say\n    args: {message: 'unclosed\n")
    with pytest.raises(WorkflowFileError) as info:
        Workflow.load(path)
    assert str(path) in str(info.value) and info.value.line is not None and info.value.line >= 5
    assert "malformed YAML" in str(info.value)


def test_structural_error_points_at_the_offending_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("start: a\nstates:\n  a:\n    call: agent.say\n    bogus: 1\n")
    with pytest.raises(WorkflowFileError) as info:
        Workflow.load(path)
    assert info.value.line == 5 and "bogus" in str(info.value)


def test_intent_file_with_inline_fixture_and_unknown_key(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("intent: say hi\nfixture:\n  timezone: Europe/Berlin\nworkflow:\n  start: s\n  states:\n"
                    "    s: {call: agent.say, args: {message: hi}}\n")
    spec = IntentFile.load(good)
    assert spec.pinned and spec.workflow.intent == "say hi" and spec.fixture.timezone == "Europe/Berlin"
    bad = tmp_path / "bad.yaml"
    bad.write_text("intent: x\nfixtures: nope\n")
    with pytest.raises(WorkflowFileError, match=r"bad.yaml:2: unknown key 'fixtures'"):
        IntentFile.load(bad)
    missing = tmp_path / "missing.yaml"
    missing.write_text("intent: x\nfixture: nowhere.yaml\n")
    with pytest.raises(WorkflowFileError, match="missing.yaml:2: fixture file 'nowhere.yaml' not found"):
        IntentFile.load(missing)


def test_list_form_defaults_to_a_linear_plan() -> None:
    wf = Workflow.model_validate({"states": [
        {"name": "a", "call": "agent.sum", "args": {"values": [1]}},
        {"name": "b", "call": "agent.say", "args": {"message": "x"}, "on_failure": "a"},
        {"name": "c", "call": "agent.say", "args": {"message": "y"}},
    ]})
    assert wf.start == "a"
    assert [(s.next, s.on_failure) for s in wf.states.values()] == [("b", "failed"), ("c", "a"), ("done", "failed")]
