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
    # The days a request names, worked out (the office fixture's now is Tuesday 2026-03-10).
    days = [g.line for g in ctl.ground("Set up a call with Anna next Tuesday and remind me tomorrow")]
    assert '"next Tuesday" is Tuesday 2026-03-17' in days and '"tomorrow" is Wednesday 2026-03-11' in days


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


def test_a_plan_that_leaves_out_a_file_the_request_names_is_told_once(office) -> None:
    intent = "Send my car title to Chris"
    bare = {"states": [state("send", "mail.send", to=["chris.meyer@example.com"], subject="Car title",
                             body="Here is my car title.")]}
    attached = {"states": [{**bare["states"][0], "args": {**bare["states"][0]["args"],
                                                          "attachments": ["Documents/car-title.pdf"]}}]}
    resolution = planner(office, [bare, attached]).resolve(intent)
    assert resolution.trace.attempts[0].problems == [
        "the request names 'Documents/car-title.pdf' (found for this request), but the plan does not use it; "
        "write 'Documents/car-title.pdf' where the request needs it, e.g. in state 'send' args.attachments "
        "(sandbox paths of files to attach)"]
    assert resolution.workflow.states["send"].args["attachments"] == ["Documents/car-title.pdf"]
    # Told once: a plan that still leaves it out stands (a request may name a thing without wanting it sent).
    assert list(planner(office, [bare, bare]).resolve(intent).workflow.states) == ["send"]
    # Looked for but not used: still left out.
    unused = {"states": [state("find", "files.find", pattern="*car-title*"), bare["states"][0]]}
    assert planner(office, [unused, attached]).resolve(intent).trace.repairs == 1
    # Reached through the files app (a find, then a reference), it is used.
    found = {"states": [state("find", "files.find", pattern="*car-title*"),
                        state("send", "mail.send", to=["chris.meyer@example.com"], subject="Car title",
                              body="Attached.", attachments=["${find.result.paths[0]}"])]}
    assert planner(office, [found]).resolve(intent).trace.repairs == 0


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


def test_a_plan_that_hands_the_request_back_is_repaired_without_that_function(office) -> None:
    echo = {"states": [state("ask", "agent.ask", question="Add a task to water the plants on Friday?")]}
    act = {"states": [state("add", "tasks.add", title="Water the plants")]}
    schemas = []

    class Constraining(ReplayBackend):  # records the grammar each turn was given
        def generate(self, messages, schema=None, options=None):
            schemas.append(json.dumps(schema))
            return super().generate(messages, schema, options)

    ctl = Controller(Constraining([json.dumps(echo), json.dumps(act)]), TABLE, office, examples=[])
    resolution = ctl.resolve("Add a task to water the plants on Friday")
    assert "only repeats what the request already says" in resolution.trace.attempts[0].problems[0]
    assert list(resolution.workflow.states) == ["add"]
    # The repair is the request again, with the problem, not a reply to copy; its grammar offers every
    # function shown but agent.ask and agent.say, and asks for the call before the state's name.
    first, repair = ctl.backend.calls
    assert len(repair) == len(first) and repair[-1].content.startswith(first[-1].content)
    assert "agent.ask only repeats this request" in repair[-1].content
    assert '"const": "agent.ask"' in schemas[0] and '"const": "agent.ask"' not in schemas[1]
    assert '"const": "agent.say"' not in schemas[1]
    assert '"const": "tasks.add"' in schemas[1] and '"const": "agent.refuse"' in schemas[1]
    assert schemas[0].index('"name"') < schemas[0].index('"call"')
    assert schemas[1].index('"call"') < schemas[1].index('"name"')
    # Decoding freely (the replay has no grammar), a repair that asks again stands.
    resolution = planner(office, [echo, echo]).resolve("Add a task to water the plants on Friday")
    assert [s.call for s in resolution.workflow.states.values()] == ["agent.ask"]
    assert resolution.trace.repairs == 1


def test_a_question_that_asks_for_something_new_stands(office) -> None:
    for question in ("What should the reminder say?",  # too few words to judge
                     "Which plants: the ones on the balcony or the office ones?",  # a choice
                     "When and where is the plant sale at the garden centre?"):  # words the request lacks
        reply = {"states": [state("ask", "agent.ask", question=question)]}
        resolution = planner(office, [reply]).resolve("Add a task about the plant sale")
        assert resolution.trace.repairs == 0, question
    # A question about something no function does: the request names no verb of the table.
    reply = {"states": [state("ask", "agent.ask", question="Where is the closest Italian restaurant?")]}
    assert planner(office, [reply]).resolve("Where is the closest Italian restaurant?").trace.repairs == 0
    # A plan that acts may close by restating what it did.
    acts = {"states": [state("add", "tasks.add", title="Water the plants"),
                       state("say", "agent.say", message="Added a task to water the plants on Friday")]}
    assert planner(office, [acts]).resolve("Add a task to water the plants on Friday").trace.repairs == 0


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


def test_a_table_whose_functions_return_nothing_is_not_told_about_passing_results_on(office) -> None:
    from intentos.eval.bfcl.suite import load_bfcl_suite, single_turn_table

    foreign, _ = single_turn_table(load_bfcl_suite("simple_python").case("simple_python_0"))
    ctl = Controller(ReplayBackend([]), foreign, None, examples=[])
    system = ctl.messages("Find the area of a triangle", foreign, [])[0].content
    assert "${STATE.result" not in system and "for_each" not in system
    # The agent's own functions come last, after the one the request is about.
    assert system.index("calculate_triangle_area(") < system.index("agent.ask(")
    desktop = Controller(ReplayBackend([]), TABLE, office, examples=[]).messages("add a task", TABLE, [])[0]
    assert "${STATE.result.FIELD}" in desktop.content and '"for_each"' in desktop.content
    assert desktop.content.index("agent.ask(") < desktop.content.index("tasks.add(")  # last, no refusals


def test_values_copied_from_a_worked_example_are_a_repair_problem(office) -> None:
    example = Example(intent="Put bouldering with Greta on Sunday in my calendar",
                      workflow={"states": [state("climb", "calendar.add_event", title="Bouldering",
                                                 start="2026-03-15T11:00", location="Bloc Valencia")]})
    copied = {"states": [state("event", "calendar.add_event", title="Bouldering", start="2026-03-20T09:00",
                               location="Bloc Valencia")]}
    own = {"states": [state("event", "calendar.add_event", title="Dentist", start="2026-03-20T09:00")]}
    ctl = Controller(ReplayBackend([json.dumps(copied), json.dumps(own)]), TABLE, office, examples=[example],
                     settings=ControllerSettings(examples=1))
    resolution = ctl.resolve("Put the dentist appointment on Friday at 9 in my calendar")
    assert resolution.trace.examples == [example.intent]
    problems = resolution.trace.attempts[0].problems
    assert any("'Bloc Valencia', 'Bouldering' comes from a worked example" in p for p in problems), problems
    assert resolution.workflow.states["event"].args["title"] == "Dentist"
    # A value the request itself offers may match an example's.
    ctl = Controller(ReplayBackend([json.dumps(copied)]), TABLE, office, examples=[example],
                     settings=ControllerSettings(examples=1, dry_run=False))
    resolution = ctl.resolve("Go bouldering at Bloc Valencia on Friday at 9")
    assert not any("worked example" in p for a in resolution.trace.attempts for p in a.problems)
