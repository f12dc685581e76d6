"""Validation reports every problem at once, each naming its state and field."""

from __future__ import annotations

import jsonschema
import pytest

from intentos.apps.agent import AgentApp
from intentos.table import FunctionTable
from intentos.validation import WorkflowInvalid, check, validate
from intentos.workflow import Workflow


@pytest.fixture(scope="module")
def table() -> FunctionTable:
    return FunctionTable([AgentApp])


def codes(wf: Workflow, table: FunctionTable) -> list[tuple[str, str | None, str | None]]:
    return sorted((p.code, p.state, p.field) for p in validate(wf, table))


def wf(states: dict, start: str = "a") -> Workflow:
    return Workflow.model_validate({"start": start, "states": states})


def test_a_valid_workflow_with_a_branch_has_no_problems(table: FunctionTable) -> None:
    good = wf({
        "a": {"call": "agent.sum", "args": {"values": [1, 2]}, "next": "b"},
        "b": {"call": "agent.check", "args": {"value": "${a.result.total}", "op": ">", "other": 2},
              "next": "big", "on_failure": "small"},
        "big": {"call": "agent.say", "args": {"message": "big: ${a.result.total}"}},
        "small": {"call": "agent.say", "args": {"message": "small"}},
    })
    assert validate(good, table) == []
    assert check(good, table) is good


def test_every_problem_is_reported_together(table: FunctionTable) -> None:
    bad = wf({
        "a": {"call": "agent.sum", "args": {"values": "${b.result.total}", "extra": 1}, "next": "b",
              "on_failure": "nowhere"},
        "b": {"call": "agent.say", "args": {"message": "${a.result.nope}"}, "next": "a"},
        "c": {"call": "agent.teleport"},
        "d": {"call": "agent.check", "args": {"value": 1, "op": "~"}},
    })
    assert codes(bad, table) == sorted([
        ("unknown_state", "a", "on_failure"),
        ("unknown_argument", "a", "args.extra"),
        ("reference_may_not_have_run", "a", "args.values"),
        ("reference_field", "b", "args.message"),
        ("unbounded_loop", "a", "max_visits"),
        ("unknown_function", "c", "call"),
        ("unreachable", "c", None),
        ("unreachable", "d", None),
        ("wrong_type", "d", "args.op"),
    ])
    with pytest.raises(WorkflowInvalid) as info:
        check(bad, table)
    assert "state 'c', field 'call': unknown function 'agent.teleport'" in str(info.value)


def test_missing_argument_and_wrong_literal_type(table: FunctionTable) -> None:
    bad = wf({"a": {"call": "agent.sum", "args": {"values": True}, "next": "b"},
              "b": {"call": "agent.say", "args": {}}})
    assert codes(bad, table) == [("missing_argument", "b", "args.message"), ("wrong_type", "a", "args.values")]


def test_a_reference_through_a_failure_edge_may_not_have_run(table: FunctionTable) -> None:
    bad = wf({
        "a": {"call": "agent.sum", "args": {"values": [1]}, "next": "b", "on_failure": "b"},
        "b": {"call": "agent.say", "args": {"message": "total: ${a.result.total}"}},
    })
    assert codes(bad, table) == [("reference_may_not_have_run", "b", "args.message")]


def test_reference_type_mismatch_and_start(table: FunctionTable) -> None:
    bad = wf({
        "a": {"call": "agent.sum", "args": {"values": [1]}, "next": "b"},
        "b": {"call": "agent.sum", "args": {"values": "${a.result.total}"}},
    })
    problems = validate(bad, table)
    assert [(p.code, p.state) for p in problems] == [("wrong_type", "b")]
    assert "number" in problems[0].message and "array" in problems[0].message
    assert codes(wf({"a": {"call": "agent.say", "args": {"message": "x"}}}, start="zz"), table)[0][0] == "start"


def test_a_bounded_loop_is_allowed(table: FunctionTable) -> None:
    retry = wf({
        "a": {"call": "agent.check", "args": {"value": 1, "op": "==", "other": 1}, "next": "done",
              "on_failure": "a", "max_visits": 3},
    })
    assert validate(retry, table) == []


def test_workflow_schema_accepts_valid_and_rejects_ill_typed_calls(table: FunctionTable) -> None:
    schema = table.workflow_schema()
    good = {"start": "a", "states": [
        {"name": "a", "call": "agent.sum", "args": {"values": [1.5, 2]}, "next": "b", "on_failure": "failed"},
        {"name": "b", "call": "agent.say", "args": {"message": "${a.result.total}"}, "next": "done",
         "on_failure": "failed"},
        {"name": "c", "call": "agent.sum", "args": {"values": "${a.result.total}"}, "next": "done",
         "on_failure": "failed"},
    ]}
    jsonschema.validate(good, schema)
    for broken in (
        {"name": "a", "call": "agent.sum", "args": {"values": True}, "next": "done", "on_failure": "failed"},
        {"name": "a", "call": "agent.nope", "args": {}, "next": "done", "on_failure": "failed"},
        {"name": "a", "call": "agent.say", "args": {"message": "x", "loud": True}, "next": "done",
         "on_failure": "failed"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"start": "a", "states": [broken]}, schema)


def test_a_state_that_uses_its_own_result_is_told_where_such_a_value_comes_from() -> None:
    full = FunctionTable.discover()
    plan = Workflow.model_validate({"states": [
        {"name": "invite", "call": "mail.read", "args": {"id": "${invite.result.message_id}"}}]})
    assert [str(p) for p in validate(plan, full)] == [
        "state 'invite', field 'args.id': ${invite.result.message_id}: a state cannot use its own result; get the "
        "value in an earlier state, e.g. with mail.list or mail.search and then ${STATE.result.messages[0].id}"]


def test_an_apps_own_item_taken_from_another_apps_result_is_told_where_such_items_come_from() -> None:
    full = FunctionTable.discover()
    plan = Workflow.model_validate({"states": [
        {"name": "urgent", "call": "clock.resolve", "args": {"phrase": "urgent"}},
        {"name": "raise", "call": "tasks.update", "args": {"task": "${urgent.result.id}", "priority": "high"}}]})
    assert [str(p) for p in validate(plan, full)] == [
        "state 'raise', field 'args.task': ${urgent.result.id}: the result has no field 'id' (it has: iso, date, "
        "time, weekday, timezone, phrase, has_time); clock.resolve finds no task: a task comes from tasks.list, or "
        "write the task itself (its id or title, as found for this request)"]
    # An address from a contact is another app's value, as it should be: only the missing field is named.
    mail = Workflow.model_validate({"states": [
        {"name": "who", "call": "contacts.find", "args": {"query": "Ben"}},
        {"name": "send", "call": "mail.send", "args": {"to": ["${who.result.mail}"], "subject": "a", "body": "b"}}]})
    assert [str(p) for p in validate(mail, full)] == [
        "state 'send', field 'args.to': ${who.result.mail}: the result has no field 'mail' (it has: contacts, "
        "count)"]


def test_an_index_into_an_object_holding_one_list_is_told_that_list() -> None:
    full = FunctionTable.discover()
    plan = Workflow.model_validate({"states": [
        {"name": "find", "call": "notes.search", "args": {"query": "goals"}},
        {"name": "say", "call": "agent.say", "args": {"message": "${find.result[0].title}"}}]})
    assert [str(p) for p in validate(plan, full)] == [
        "state 'say', field 'args.message': ${find.result[0].title}: [0] indexes an object, not a list: its lists "
        "are 'notes', 'paths', 'problems', indexed as .notes[0]"]
    one = Workflow.model_validate({"states": [
        {"name": "who", "call": "contacts.find", "args": {"query": "Ben"}},
        {"name": "say", "call": "agent.say", "args": {"message": "${who.result[0].email}"}}]})
    assert [str(p) for p in validate(one, full)] == [
        "state 'say', field 'args.message': ${who.result[0].email}: [0] indexes an object, not a list: its list "
        "is 'contacts', indexed as .contacts[0]"]
