"""The Controller's parse → validate → repair loop, ranking and prompt, driven by recorded responses.

The ReplayBackend is the product's own offline backend (evals replay recorded model output
through it), so these tests pin the loop's behaviour exactly; tests/test_resolve_model.py
runs the same loop on the real embedded model.
"""

from __future__ import annotations

import json

import pytest

from intentos.apps.agent import AgentApp
from intentos.backends.replay import ReplayBackend
from intentos.controller import Controller, ControllerSettings, ResolutionFailed, extract_json, load_examples
from intentos.table import FunctionTable

GOOD = {"states": [{"name": "greet", "call": "agent.say", "args": {"message": "hello"}}]}


def controller(responses: list[str], ctx=None, **settings) -> Controller:
    return Controller(ReplayBackend(responses), FunctionTable([AgentApp]), ctx,
                      ControllerSettings(**settings), examples=[])


def test_valid_first_answer_is_one_attempt(ctx) -> None:
    resolution = controller([json.dumps(GOOD)], ctx).resolve("say hello")
    assert resolution.workflow.start == "greet"
    assert resolution.workflow.intent == "say hello"
    assert resolution.trace.ok and len(resolution.trace.attempts) == 1


def test_problems_are_fed_back_until_the_workflow_is_valid(ctx) -> None:
    broken_json = '{"states": [{"name": "greet", "call": "agent.say"'
    bad_ref = {"states": [
        {"name": "greet", "call": "agent.say", "args": {"message": "${later.result.message}"}},
        {"name": "later", "call": "agent.say", "args": {"message": "x"}},
    ]}
    backend = ReplayBackend([broken_json, json.dumps(bad_ref), "```json\n" + json.dumps(GOOD) + "\n```"])
    ctl = Controller(backend, FunctionTable([AgentApp]), ctx, examples=[])
    resolution = ctl.resolve("say hello")

    attempts = resolution.trace.attempts
    assert [bool(a.problems) for a in attempts] == [True, True, False]
    assert "not valid JSON" in attempts[0].problems[0]
    assert any("later" in p for p in attempts[1].problems)
    # Each repair turn carries the previous answer and its problems, and only the latest failed turn.
    second, third = backend.calls[1], backend.calls[2]
    assert second[-2].content == broken_json and "not valid JSON" in second[-1].content
    assert third[-2].content == json.dumps(bad_ref) and "later" in third[-1].content
    assert len(third) == len(second)


def test_gives_up_after_the_attempts_allowed_with_the_trace(ctx) -> None:
    ctl = controller(["no json here", '{"states": []}'], ctx, max_attempts=2)
    with pytest.raises(ResolutionFailed) as failed:
        ctl.resolve("say hello")
    trace = failed.value.trace
    assert len(trace.attempts) == 2 and not trace.ok
    assert "at least one state" in str(failed.value)


def test_unknown_function_is_a_problem_naming_the_state(ctx) -> None:
    wrong = {"states": [{"name": "go", "call": "agent.shout", "args": {}}]}
    ctl = controller([json.dumps(wrong)], ctx, max_attempts=1)
    with pytest.raises(ResolutionFailed, match="go"):
        ctl.resolve("shout")


def test_prompt_has_role_functions_and_context(ctx) -> None:
    ctl = controller([json.dumps(GOOD)], ctx)
    ctl.resolve("say hello")
    system = ctl.backend.calls[0][0].content
    assert "agent.say(message: str)" in system
    assert "Tuesday 2026-03-10 09:00 (Europe/Berlin)" in system
    assert "Alex Doe <alex@example.org>" in system
    assert ctl.backend.calls[0][-1].content == "say hello"


@pytest.mark.parametrize("raw, expected", [
    ('{"a": 1}', {"a": 1}),
    ('Here you go:\n```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
    ('{"a": 1} trailing words', {"a": 1}),
])
def test_extract_json_tolerates_chatter(raw: str, expected: dict) -> None:
    assert extract_json(raw) == expected


def test_built_in_examples_are_valid_workflows() -> None:
    from intentos.validation import validate
    from intentos.workflow import Workflow

    table = FunctionTable.discover()
    examples = load_examples()
    assert len(examples) >= 4
    for example in examples:
        workflow = Workflow.model_validate({**example.workflow, "intent": example.intent})
        assert validate(workflow, table) == [], example.intent


def _static_part(message) -> str:
    return message.content[: message.static_chars]


def test_whole_table_is_shown_byte_for_byte_the_same_for_every_intent(ctx) -> None:
    table = FunctionTable.discover()
    backend = ReplayBackend([json.dumps(GOOD)] * 2, n_ctx=16384)
    ctl = Controller(backend, table, ctx)
    first = ctl.resolve("say hello to the team").trace
    second = ctl.resolve("zip the website folder").trace
    assert first.shown == second.shown == list(table.functions)
    # The static prefix (role, rules, every function) is what the prompt cache keeps; it must not vary.
    assert _static_part(backend.calls[0][0]) == _static_part(backend.calls[1][0])
    # Retrieval still picks the examples: those for zipping use the files app.
    assert any("files." in m.content for m in backend.calls[1][1:-1] if m.role == "assistant")


def test_a_window_too_small_for_the_whole_table_shows_the_retrieved_functions(ctx) -> None:
    table = FunctionTable.discover()
    backend = ReplayBackend([json.dumps(GOOD)], n_ctx=6144)
    trace = Controller(backend, table, ctx).resolve("zip the website folder").trace
    assert "files.zip" in trace.shown and len(trace.shown) < len(table)
