"""The planner around the model: grounding, staged planning over observed data, dry-run repair.

The model's answers are scripted (ReplayBackend, the product's own offline backend) so each test
pins what the planner does with them; the apps, files, executor and journal are real. The office
fixture is the product's demo sandbox (workflows/fixtures/office.yaml).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from intentos.apps.mail import ListArgs as MailList
from intentos.apps.mail import MailApp
from intentos.apps.notes import CreateArgs, NotesApp
from intentos.apps.tasks import ListArgs, TasksApp
from intentos.backends.replay import ReplayBackend
from intentos.controller import FOUND_LABEL, Controller, ControllerSettings
from intentos.examples import Example
from intentos.executor import Executor
from intentos.fixture import Fixture
from intentos.journal import view_run
from intentos.repeats import RepeatWatch
from intentos.table import FunctionTable
from intentos.tidy import tidy_states

OFFICE = Path(__file__).resolve().parents[1] / "workflows" / "fixtures" / "office.yaml"
TABLE = FunctionTable.discover()


@pytest.fixture
def office(ctx):
    fixture = Fixture.load(OFFICE)
    ctx.fixed_now = fixture.now
    ctx.timezone = fixture.timezone or ctx.timezone
    fixture.apply(ctx, TABLE)
    return ctx


def planner(ctx, answers: list, **settings) -> Controller:
    texts = [a if isinstance(a, str) else json.dumps(a) for a in answers]
    return Controller(ReplayBackend(texts), TABLE, ctx, ControllerSettings(**settings), examples=[])


def state(name: str, call: str, **args) -> dict:
    return {"name": name, "call": call, "args": args}


# -- grounding -----------------------------------------------------------------------------------------


def test_grounding_shows_the_people_files_and_events_an_intent_is_about(office) -> None:
    ctl = planner(office, [])
    lines = [g.line for g in ctl.ground("Mail my insurer the ACME invoice and move lunch with Ben to Thursday")]
    text = "\n".join(lines)
    assert "Chris Meyer <chris.meyer@example.com>" in text and "insurance" in text  # by tag, not by name
    assert "Downloads/invoice-2026-01-acme.pdf" in text
    assert 'event "Lunch with Ben"' in text and "uid " not in text  # ids change with every seeding
    assert len(lines) <= 10 and sum(map(len, lines)) <= 1500

    # The folder a name lives in, with what it holds; a note by its title, with its text.
    folder = [g.line for g in ctl.ground("zip the website folder")]
    assert any(line.startswith("folder Projects/website/ holds:") and "index.html" in line for line in folder)
    note = [g.line for g in ctl.ground("what is on my packing list")]
    assert any('note "Packing list"' in line and "Passport" in line for line in note)


def test_grounding_reaches_the_prompt_as_quoted_data_and_opens_the_apps_it_names(office) -> None:
    ctl = planner(office, [{"states": [state("hi", "agent.say", message="ok")]}])
    resolution = ctl.resolve("Send the insurance company my policy")
    request = ctl.backend.calls[0][-1].content  # right after the request, where a small model reads it last
    assert request.startswith("Send the insurance company my policy\n\n" + FOUND_LABEL)
    assert FOUND_LABEL not in ctl.backend.calls[0][0].content
    found = request.split(FOUND_LABEL, 1)[1].splitlines()[1:]
    assert found and all(line.startswith('"') and line.endswith('"') for line in found)  # one JSON string each
    assert any("Chris Meyer" in line for line in found)
    assert "contacts.find" in resolution.trace.shown  # grounding found a contact: the contacts app is shown
    assert resolution.trace.grounding == [json.loads(line) for line in found]


def test_no_context_no_grounding() -> None:
    ctl = Controller(ReplayBackend([json.dumps({"states": [state("hi", "agent.say", message="ok")]})]), TABLE, None,
                     examples=[])
    assert ctl.ground("mail Chris") == []
    assert ctl.resolve("mail Chris").trace.grounding == []


# -- staged planning -----------------------------------------------------------------------------------

SHOPPING = "- oat milk\n- rye bread\n- apples"


def staged_answers() -> list[dict]:
    first = {"states": [state("list", "notes.read", note="Groceries"),
                        state("look", "agent.observe", reason="see the items")]}
    rest = {"states": [state(f"add{i}", "tasks.add", title=item, tags=["shopping"])
                       for i, item in enumerate(["oat milk", "rye bread", "apples"], 1)]}
    return [first, rest]


def test_a_staged_plan_reads_a_note_then_creates_one_task_per_line(office) -> None:
    NotesApp(office).create(CreateArgs(title="Groceries", body=SHOPPING))
    ctl = planner(office, staged_answers())
    resolution = ctl.resolve("make a task for each thing on my groceries note")

    # The second call shows the model what the first stage read, then asks for the rest.
    second = ctl.backend.calls[1][-1].content
    assert "oat milk" in second and "rye bread" in second and "notes.read" in second
    workflow = resolution.workflow
    assert list(workflow.states) == ["list", "add1", "add2", "add3"]  # the observe state is gone
    assert workflow.states["list"].next == "add1"
    trace = resolution.trace
    assert [s.get("name") for s in trace.stages[0].states] == ["list"]
    assert [a.stage for a in trace.attempts] == [1, 2]
    assert trace.summary()["stages"][0]["states"] == ["list"]
    assert trace.dry_run is not None and trace.dry_run.status == "done"
    # Planning wrote nothing: the stage and the dry run ran in scratch copies.
    assert TasksApp(office).list(ListArgs(tag="shopping")).count == 0

    asked = []
    view = Executor(TABLE, office, confirm=lambda r: asked.append(r.state) or True).run(
        workflow, intent=workflow.intent, resolution=trace.summary())
    assert view.status == "done" and asked == ["add1", "add2", "add3"]  # every write asked; the read did not
    titles = [t.title for t in TasksApp(office).list(ListArgs(tag="shopping")).tasks]
    assert sorted(titles) == ["Apples", "Oat milk", "Rye bread"] or sorted(titles) == ["apples", "oat milk",
                                                                                        "rye bread"]
    assert view.resolution["stages"][0]["observed"].startswith("list (notes.read) result:")


def test_a_stage_may_hold_only_read_steps_and_the_model_is_told(office) -> None:
    writes_first = {"states": [state("mk", "files.mkdir", path="Trips"), state("look", "agent.observe")]}
    plain = {"states": [state("mk", "files.mkdir", path="Trips")]}
    ctl = planner(office, [writes_first, plain])
    resolution = ctl.resolve("make a Trips folder")
    assert "only read steps may come before agent.observe" in resolution.trace.attempts[0].problems[0]
    assert not resolution.trace.stages
    assert office.sandbox.stat("Trips") is None  # nothing ran for real


def test_stages_are_bounded(office) -> None:
    again = {"states": [state("n", "notes.list"), state("look", "agent.observe")]}
    more = {"states": [state("n2", "notes.list"), state("look2", "agent.observe")]}
    done = {"states": [state("say", "agent.say", message="done")]}
    ctl = planner(office, [again, more, done], max_stages=2)
    resolution = ctl.resolve("look at my notes")
    assert len(resolution.trace.stages) == 1
    assert "no more stages" in resolution.trace.attempts[1].problems[0]


# -- dry run ------------------------------------------------------------------------------------------


def test_a_dry_run_catches_a_wrong_folder_and_the_repaired_plan_follows(office) -> None:
    wrong = {"states": [state("pack", "files.zip", paths=["website"], archive="website.zip")]}
    right = {"states": [state("pack", "files.zip", paths=["Projects/website"], archive="website.zip")]}
    ctl = planner(office, [wrong, right])
    resolution = ctl.resolve("zip the website")

    first = resolution.trace.attempts[0]
    assert first.problems == ["dry run: step 'pack' (files.zip) failed: website does not exist; "
                              "nearby: Projects/website"]
    assert "nearby: Projects/website" in ctl.backend.calls[1][-1].content  # the repair turn
    assert resolution.workflow.states["pack"].args["paths"] == ["Projects/website"]
    assert resolution.trace.dry_run.summary() == "dry run in a scratch copy: 1 step(s) ran, all fine"
    assert office.sandbox.stat("website.zip") is None  # the dry run's zip stayed in its copy


def test_an_empty_result_indexed_later_is_a_repair_problem(office) -> None:
    plan = {"states": [state("find", "files.find", pattern="*boarding-pass*"),
                       state("show", "files.read", path="${find.result.paths[0]}")]}
    ctl = planner(office, [plan], max_attempts=1)
    resolution = ctl.resolve("read my boarding pass")  # the last attempt: shown, with what the dry run found
    assert "found nothing" in resolution.trace.attempts[0].problems[0]
    assert "it failed at 'show'" in resolution.trace.dry_run.summary()


def test_mail_in_a_dry_run_stays_in_the_copy_and_other_outside_steps_are_not_tried(office) -> None:
    office.settings["smtp"] = {"host": "127.0.0.1", "port": 9}  # nothing listens: a real send would fail
    plan = {"states": [state("send", "mail.send", to=["chris.meyer@example.com"], subject="Hi", body="Hello")]}
    resolution = planner(office, [plan]).resolve("say hi to Chris by mail")
    dry = resolution.trace.dry_run
    assert dry.status == "done" and dry.steps[0].result["queued"] is True
    assert MailApp(office).list(MailList(folder="outbox")).count == 0  # the real sandbox's outbox is untouched

    start = {"states": [state("go", "training.start", config="jobs/none.yaml")]}
    dry = planner(office, [start]).resolve("start my training job").trace.dry_run
    assert dry.stopped_before == "go" and dry.steps[-1].status == "declined"
    assert "stopped before 'go' (it reaches outside)" in dry.summary()


# -- resume across stages ----------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    from intentos.app import Context, UserProfile
    from intentos.apps.notes import CreateArgs, NotesApp
    from intentos.backends.replay import ReplayBackend
    from intentos.controller import Controller
    from intentos.executor import Executor
    from intentos.sandbox import Sandbox
    from intentos.table import FunctionTable

    root, answers = sys.argv[1], json.loads(sys.argv[2])
    table = FunctionTable.discover()
    ctx = Context(sandbox=Sandbox(root), user=UserProfile())
    NotesApp(ctx).create(CreateArgs(title="Groceries", body=sys.argv[3]))
    resolution = Controller(ReplayBackend([json.dumps(a) for a in answers]), table, ctx, examples=[]).resolve(
        "a task per grocery")
    seen = []

    def confirm(request):
        seen.append(request.state)
        if len(seen) == 2:  # killed while the second write waits: one task is in, two are not
            os.kill(os.getpid(), signal.SIGKILL)
        return True

    Executor(table, ctx, confirm=confirm).run(resolution.workflow, intent="a task per grocery",
                                              run_id="staged-run", resolution=resolution.trace.summary())
""")


def test_a_staged_run_killed_with_sigkill_resumes_to_the_end(tmp_path, isolated_home, ctx) -> None:
    root = Path(ctx.sandbox.root)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), json.dumps(staged_answers()), SHOPPING],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "INTENTOS_HOME": str(isolated_home)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id = "staged-run"
    before = view_run(isolated_home / "runs" / run_id)
    assert before.status == "interrupted" and before.resolution["stages"][0]["states"] == ["list"]

    view = Executor(TABLE, ctx, confirm=lambda r: True).resume(run_id)
    assert view.status == "done"
    titles = sorted(t.title.lower() for t in TasksApp(ctx).list(ListArgs()).tasks)
    assert titles == ["apples", "oat milk", "rye bread"]  # each exactly once


# -- asking ends a plan --------------------------------------------------------------------------------


def test_an_ask_whose_answer_nothing_uses_is_dropped_before_validation(office) -> None:
    # Free decoding: no names, an echo of the request as a question, a habitual "next": "done".
    reply = {"states": [{"call": "agent.ask", "args": {"question": "Add a task to call the landlord?"}},
                        {"call": "tasks.add", "args": {"title": "Call the landlord"}, "next": "done"},
                        {"call": "agent.say", "args": {"message": "Added."}}]}
    resolution = planner(office, [reply]).resolve("add a task to call the landlord")
    assert [(n, s.call) for n, s in resolution.workflow.states.items()] == [("add", "tasks.add"),
                                                                          ("say", "agent.say")]
    tidied = resolution.trace.attempts[0].tidied
    assert any("dropped agent.ask" in note for note in tidied) and any("unreachable" in note for note in tidied)
    assert resolution.trace.repairs == 0


def test_an_ask_that_ends_the_plan_stays_and_its_answer_cannot_feed_a_step(office) -> None:
    alone = {"states": [state("which", "agent.ask", question="Which landlord?")]}
    assert list(planner(office, [alone]).resolve("call him").workflow.states) == ["which"]
    uses_answer = {"states": [state("due", "agent.ask", question="When is it due?"),
                              state("add", "tasks.add", title="Pay rent", due="${due.result.question}")]}
    fixed = {"states": [state("add", "tasks.add", title="Pay rent")]}
    resolution = planner(office, [uses_answer, fixed]).resolve("add a task to pay rent")
    assert "does not return the user's answer" in resolution.trace.attempts[0].problems[0]
    assert list(resolution.workflow.states) == ["add"]


def test_a_state_named_like_the_end_is_renamed() -> None:
    states, notes = tidy_states([{"call": "files.list", "args": {}, "name": "done"},
                                 {"call": "agent.say", "args": {"message": "ok"}, "name": "say"}])
    assert [s["name"] for s in states] == ["list", "say"] and notes == ["state 'done' renamed 'list'"]


def test_a_name_used_twice_is_renamed_the_second_time_and_references_keep_the_first() -> None:
    states, notes = tidy_states([{"call": "files.list", "args": {}, "name": "look"},
                                 {"call": "files.read", "args": {"path": "a.txt"}, "name": "look"},
                                 {"call": "agent.say", "args": {"message": "${look.result.entries}"}, "name": "say"}],
                                taken={"say"})
    assert [s["name"] for s in states] == ["look", "look_2", "say_2"]
    assert states[2]["args"]["message"] == "${look.result.entries}"
    assert notes == ["state 'look' renamed 'look_2'", "state 'say' renamed 'say_2'"]


def test_a_reply_that_repeats_a_state_is_cut_before_the_repeat() -> None:
    monday = state("monday", "clock.resolve", phrase="next monday")
    add = state("add", "tasks.add", title="Renew the gym pass", due="${monday.result.date}")
    looping = json.dumps({"states": [monday, add, add, add]})[:-30]  # cut off mid-state, as at max_tokens
    watch = RepeatWatch()
    assert watch(looping) and watch.repeated == add
    assert json.loads(watch.kept(looping)) == {"states": [monday, add]}
    fenced = "```json\n" + json.dumps({"states": [add, {**add, "name": "again"}]}, indent=2)
    watch = RepeatWatch()
    assert watch(fenced) and json.loads(watch.kept(fenced).removeprefix("```json\n")) == {"states": [add]}
    different = json.dumps({"states": [add, state("add", "tasks.add", title="Renew the gym pass")]})
    assert not RepeatWatch()(different)  # same call, other arguments: not a repeat


def test_the_planner_keeps_the_states_before_a_repeat(office) -> None:
    add = state("add", "tasks.add", title="Water the plants")
    resolution = planner(office, [json.dumps({"states": [add, add, add]})[:-5]]).resolve("add a plant task")
    assert list(resolution.workflow.states) == ["add"]
    assert resolution.trace.attempts[0].tidied[0].startswith("stopped at a state repeating tasks.add")


# -- how examples are shown and chosen -------------------------------------------------------------------


def test_examples_are_shown_in_writing_order(office) -> None:
    example = Example(intent="Add a task to water the plants",
                      workflow={"states": [{"next": "done", "call": "tasks.add", "args": {"title": "Water the plants"},
                                            "name": "add"}]})
    ctl = Controller(ReplayBackend([]), TABLE, office, examples=[example])
    messages = ctl.messages("add a task to feed the cat", TABLE, [example])
    shown = json.loads(messages[2].content)["states"][0]
    assert list(shown) == ["name", "call", "args", "next"]
    assert 'Each state is {"name": ..., "call": "app.verb", "args": {...}}' in messages[0].content
