"""The planner around the model: grounding, staged planning over observed data, dry-run repair.

The model's answers are scripted (ReplayBackend, the product's own offline backend) so each test
pins what the planner does with them; the apps, files, executor and journal are real. The office
fixture is the product's demo sandbox (workflows/fixtures/office.yaml).
"""

from __future__ import annotations

import json
import math
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
from intentos.conditional import condition
from intentos.controller import FOUND_LABEL, Controller, ControllerSettings, ResolutionFailed
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


class Constraining(ReplayBackend):
    """A replay that records the grammar each turn was given."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__(texts)
        self.schemas: list[str] = []

    def generate(self, messages, schema=None, options=None):
        self.schemas.append(json.dumps(schema))
        return super().generate(messages, schema, options)


def triangle() -> tuple[FunctionTable, str]:
    """BFCL's first simple_python table (plain function calling: nothing returns a result) and the name its
    area function has there."""
    from intentos.eval.bfcl.suite import load_bfcl_suite, single_turn_table

    foreign, names = single_turn_table(load_bfcl_suite("simple_python").case("simple_python_0"))
    return foreign, names.to_intentos["calculate_triangle_area"]


def plain_planner(table: FunctionTable, answers: list[dict], backend: type[ReplayBackend] = ReplayBackend
                  ) -> Controller:
    """A planner over a plain table, with no sandbox and no examples, replaying `answers`."""
    return Controller(backend([json.dumps(a) for a in answers]), table, None, examples=[])


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
    # A word and its plural are one word: "list" finds the notes tagged lists, not only the one titled so.
    lists = [g.line for g in ctl.ground("show me the list for the weekend")]
    assert any('note "Shopping" (tags lists)' in line for line in lists)
    # "me" as a recipient is the user.
    assert '"me" is you, the user: Alex Doe <alex@example.org>' in [
        g.line for g in ctl.ground("Email me a list of my open tasks")]
    assert not any('"me"' in g.line for g in ctl.ground("Remind me to email Ben"))
    # The notes as a whole, as the files they are kept in.
    notes = [g.line for g in ctl.ground("Back up all my notes")]
    assert any(line.startswith("folder Notes/ holds every note, one file each: ") and "packing-list.md" in line
               for line in notes)
    assert not any(g.line.startswith("folder Notes/") for g in ctl.ground("Turn the kickoff meeting notes into a note"))
    # A file the request writes out that does not exist: in the folder the request names, said to be new.
    new = [g.line for g in ctl.ground("Put the packing list into packing.txt in my Documents")]
    assert "file Documents/packing.txt does not exist yet" in new
    assert not any("does not exist" in g.line for g in ctl.ground("Read me meeting-notes.txt"))
    # The days a request names, worked out (the office fixture's now is Tuesday 2026-03-10).
    days = [g.line for g in ctl.ground("Set up a call with Anna next Tuesday and remind me tomorrow")]
    assert '"next Tuesday" is Tuesday 2026-03-17' in days and '"tomorrow" is Wednesday 2026-03-11' in days
    counted = [g.line for g in ctl.ground("Remind me in two weeks to renew the parking permit")]
    assert '"in two weeks" is Tuesday 2026-03-24' in counted
    # The time zones of the places a request about a time names; a place in other requests is just a place.
    zones = [g.line for g in ctl.ground("Call Ben at 9am Sydney time; what time is it in Sao Paulo now?")]
    assert '"Sydney" is the time zone Australia/Sydney' in zones
    assert '"Sao Paulo" is the time zone America/Sao_Paulo' in zones
    assert not any("time zone" in g.line for g in ctl.ground("I am back from Sydney, file the receipts"))


def test_a_contact_whose_short_note_names_the_person_the_request_means_is_grounded(office) -> None:
    from intentos.apps.contacts import AddArgs, ContactsApp

    book = ContactsApp(office)
    book.add(AddArgs(name="Karl Weber", phone="+49 30 1234567", note="Landlord"))
    book.add(AddArgs(name="Eva Lind", note="Met her at a tenants' meeting about the landlord and the heating"))
    lines = [g.line for g in planner(office, []).ground("What is my landlord's phone number?")]
    assert any(line.startswith("contact Karl Weber") and "+49 30 1234567" in line for line in lines)
    assert not any("Eva Lind" in line for line in lines)  # one word of a longer note is chance


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
    # A mail the plan reaches that goes by the file's words may be the one meant (the Hetzner invoice: a PDF in
    # Downloads and a mail from Hetzner).
    mail = {"states": [state("bill", "mail.search", query="hetzner", folder="inbox"),
                       state("keep", "mail.move", id="${bill.result.messages[0].id}", folder="archive")]}
    kept = planner(office, [mail], max_attempts=1).resolve("Put the Hetzner invoice message in my archive folder")
    assert kept.trace.attempts[0].problems == []



def test_a_plan_that_acts_on_another_thing_of_the_same_name_is_not_told_about_the_file(office) -> None:
    # Grounding finds both the task "Pay the Hetzner invoice" and Downloads/Invoice_Hetzner_2026-02.pdf.
    done = {"states": [state("done", "tasks.complete", task="Pay the Hetzner invoice")]}
    resolution = planner(office, [done]).resolve("Hetzner invoice: paid. Mark it as done")
    assert resolution.trace.attempts[0].problems == [] and resolution.trace.repairs == 0
    # A mail whose text mentions it does not send it.
    mentions = {"states": [state("tell", "mail.send", to=["Chris Meyer <chris.meyer@example.com>"],
                                 subject="Hetzner invoice", body="The Hetzner invoice is paid.")]}
    told = planner(office, [mentions, mentions]).resolve("Send Chris the Hetzner invoice")
    assert told.trace.attempts[0].problems[0].startswith(
        "the request names 'Downloads/Invoice_Hetzner_2026-02.pdf' (found for this request)")


def test_a_plan_that_picks_one_of_two_people_the_request_fits_is_told_to_ask(office) -> None:
    # The office fixture has two contacts called Chris: Meyer (Allianz Insurance) and Wong (Pixel Studio).
    def mail_to(person: str) -> dict:
        return {"states": [state("mail", "mail.send", to=[person], subject="Thursday", body="Does Thursday work?")]}

    ask = {"states": [state("which", "agent.ask", question="Which Chris: Chris Meyer or Chris Wong?")]}
    resolution = planner(office, [mail_to("Chris Wong"), ask]).resolve("Ask Chris if Thursday suits him for a call")
    assert resolution.trace.attempts[0].problems == [
        "the request fits 2 contacts equally ('Chris Meyer', 'Chris Wong') and the plan picks 'Chris Wong'; unless "
        "the request says which one, make the plan one agent.ask state asking which"]
    assert resolution.workflow.states["which"].call == "agent.ask"
    # Writing to both for a request that names one is a guess too.
    both_picked = {"states": [state("mail", "mail.send", to=["Chris Meyer", "Chris Wong"], subject="Thursday",
                                    body="Does Thursday work?")]}
    guessed = planner(office, [both_picked, ask]).resolve("Ask Chris if Thursday suits him for a call")
    assert "the plan picks 'Chris Meyer' and 'Chris Wong'" in guessed.trace.attempts[0].problems[0]
    # A request that tells them apart, or means both, is planned as written.
    told = planner(office, [mail_to("Chris Meyer")]).resolve("Ask Chris at Allianz if Thursday suits him")
    assert told.trace.repairs == 0
    both = planner(office, [mail_to("Chris Meyer")]).resolve("Ask both Chrises if Thursday suits them")
    assert both.trace.repairs == 0


def test_when_no_valid_plan_follows_a_pick_of_one_of_two_the_planner_asks_which(office) -> None:
    picks = {"states": [state("mail", "mail.send", to=["Chris Wong"], subject="Late", body="Running late")]}
    invalid = {"states": [state("mail", "mail.send", to=["Chris Wong"], subject="Late", body="${nowhere.result}")]}
    resolution = planner(office, [picks, invalid, invalid]).resolve("Mail Chris that I'm running late")
    assert len(resolution.trace.attempts) == 3
    assert resolution.workflow.to_data()["states"] == {"which": {
        "call": "agent.ask", "args": {"question": "Which do you mean: 'Chris Meyer' or 'Chris Wong'?"},
        "next": "done", "on_failure": "failed"}}
    assert resolution.trace.summary()["fallback"].startswith("no valid plan after the request was found to fit")
    # So when the plans that follow fail their dry run: the question settles it better than a failing guess.
    failing = {"states": [state("found", "files.find", pattern="*chris-notes*"),
                          state("mail", "mail.send", to=["Chris Wong"], subject="Late", body="Notes attached",
                                attachments=["${found.result.paths[0]}"])]}
    asked = planner(office, [picks, failing, failing]).resolve("Mail Chris that I'm running late")
    assert list(asked.workflow.states) == ["which"] and len(asked.trace.attempts) == 3
    assert "failed" in asked.trace.attempts[-1].problems[0]

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


def test_a_conditional_request_is_told_to_look_first_and_a_read_that_failed_goes_on_in_the_plan(office) -> None:
    intent = "Add milk to Documents/todo.txt, and start the file if it doesn't exist yet"
    blind = {"states": [state("add", "files.append", path="Documents/todo.txt", text="- milk")]}
    look = {"states": [state("read", "files.read", path="Documents/todo.txt"),
                       state("look", "agent.observe", reason="does the file exist?")]}
    rest = {"states": [state("start", "files.write", path="Documents/todo.txt", text="- milk\n")]}
    ctl = planner(office, [blind, look, rest])
    resolution = ctl.resolve(intent)
    assert resolution.trace.attempts[0].problems == [
        "state 'add': the request says \"if it doesn't exist yet\": what to do depends on data this plan has not "
        "seen. Plan only the reading steps that tell, then end the plan with a state calling agent.observe (you "
        "will see their results and plan the rest); or test it with agent.check and branch with on_failure"]
    stage = resolution.trace.stages[0]
    assert stage.failed == ["read"] and "read (files.read) failed:" in stage.observed
    # The read fails when the plan runs too: it goes on to the step planned for that case.
    workflow = resolution.workflow
    assert workflow.states["read"].on_failure == "start"
    view = Executor(TABLE, office, confirm=lambda r: True).run(workflow, intent=intent)
    assert view.status == "done" and (office.sandbox.root / "Documents" / "todo.txt").read_text() == "- milk\n"
    # "asking if" reports a question: no condition to test.
    draft = {"states": [state("d", "mail.draft", to=["anna.berg@example.com"], subject="Umbrella",
                              body="Did I leave my umbrella at your place?")]}
    assert planner(office, [draft]).resolve("Write Anna a draft asking if I left my umbrella").trace.repairs == 0
    assert condition("Run a t-test to determine if the two means differ") is None
    # A plain function-calling table has no check or stage to offer: an "if" there gives a value.
    foreign, area = triangle()
    plain = plain_planner(foreign, [{"states": [state("area", area, base=10, height=5)]}])
    assert plain.resolve("The area of a triangle of base 10 if its height is 5").trace.repairs == 0


def test_a_stage_whose_later_read_uses_a_read_that_fails_runs_without_error(office) -> None:
    chained = {"states": [state("find", "files.find", pattern="*lease*"),
                          state("read", "files.read", path="${find.result.paths[0]}"),
                          state("look", "agent.observe", reason="what does it say?")]}
    rest = {"states": [state("say", "agent.say", message="I found no lease.")]}
    resolution = planner(office, [chained, rest, rest, rest]).resolve("What does my lease say?")
    stage = resolution.trace.stages[0]
    assert stage.failed == ["read"] and "read (files.read) failed:" in stage.observed
    # 'read' needs find's result, so find does not go on when it fails (before, the stage itself was invalid).
    assert resolution.workflow.states["find"].on_failure == "failed" and "say" in resolution.workflow.states


def test_a_stage_may_hold_only_read_steps_and_the_model_is_told(office) -> None:
    writes_first = {"states": [state("mk", "files.mkdir", path="Trips"), state("look", "agent.observe")]}
    plain = {"states": [state("mk", "files.mkdir", path="Trips")]}
    ctl = planner(office, [writes_first, plain])
    resolution = ctl.resolve("make a Trips folder")
    assert "only read steps may come before agent.observe" in resolution.trace.attempts[0].problems[0]
    assert not resolution.trace.stages
    assert office.sandbox.stat("Trips") is None  # nothing ran for real


# A request that names no one thing found for it: a lone agent.observe is told how to read first.
INDEFINITE = "look through my Downloads and make a note of what matters"


def test_a_stage_with_no_reads_reads_the_one_thing_the_request_names(office) -> None:
    bare = {"states": [state("look", "agent.observe", reason="see the notes")]}
    done = {"states": [state("note", "notes.create", title="Kickoff", body="${read.result.text}")]}
    resolution = planner(office, [bare, done]).resolve("make a note of the meeting notes in my Downloads")
    assert resolution.trace.attempts[0].problems == []
    assert resolution.trace.attempts[0].tidied == [
        "files.read of 'Downloads/meeting-notes.txt', which the request names, read before agent.observe: "
        "it had nothing to show"]
    assert [s["call"] for s in resolution.trace.stages[0].states] == ["files.read"]
    assert "budget approved" in resolution.trace.stages[0].observed
    # The model sees the read as its own reply, then the results.
    assert '"files.read"' in resolution.trace.attempts[1].messages[-2].content
    assert list(resolution.workflow.states) == ["read", "note"]


def test_a_stage_with_no_reads_is_told_how_to_read_what_was_found(office) -> None:
    bare = {"states": [state("look", "agent.observe", reason="see the notes")]}
    read = {"states": [state("text", "files.read", path="Downloads/meeting-notes.txt"), state("look", "agent.observe")]}
    done = {"states": [state("note", "notes.create", title="Kickoff", body="${text.result.text}")]}
    resolution = planner(office, [bare, read, done]).resolve(INDEFINITE)
    assert resolution.trace.attempts[0].problems[0].startswith(
        "agent.observe needs read steps before it: first read what the request is about (e.g. ")
    assert len(resolution.trace.stages) == 1


def test_a_lone_observe_written_again_leaves_the_grammar(office) -> None:
    bare = {"states": [state("look", "agent.observe")]}
    whole = {"states": [state("text", "files.read", path="Downloads/meeting-notes.txt"),
                        state("note", "notes.create", title="Kickoff", body="${text.result.text}")]}
    backend = Constraining([json.dumps(a) for a in (bare, bare, whole)])
    ctl = Controller(backend, TABLE, office, ControllerSettings(), examples=[])
    resolution = ctl.resolve(INDEFINITE)
    assert resolution.trace.attempts[1].problems == [
        "agent.observe needs read steps before it, and none came again: the next reply cannot use agent.observe; "
        "plan the whole request, reading what it needs first"]
    assert '"agent.observe"' in backend.schemas[1] and '"agent.observe"' not in backend.schemas[2]
    assert resolution.workflow.states["note"].call == "notes.create"


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
    (office.sandbox.root / "Archive" / "website").mkdir(parents=True)  # two folders of the name: which one?
    wrong = {"states": [state("pack", "files.zip", paths=["website"], archive="website.zip")]}
    right = {"states": [state("pack", "files.zip", paths=["Projects/website"], archive="website.zip")]}
    ctl = planner(office, [wrong, right])
    resolution = ctl.resolve("zip the website")

    first = resolution.trace.attempts[0]
    assert first.problems == ["dry run: step 'pack' (files.zip) failed: website does not exist; "
                              "nearby: Archive/website, Projects/website"]
    assert "nearby: Archive/website, Projects/website" in ctl.backend.calls[1][-1].content  # the repair turn
    assert resolution.workflow.states["pack"].args["paths"] == ["Projects/website"]
    assert resolution.trace.dry_run.summary() == "dry run in a scratch copy: 1 step(s) ran, all fine"
    assert office.sandbox.stat("website.zip") is None  # the dry run's zip stayed in its copy


def test_a_list_argument_given_a_field_of_a_lookup_for_several_named_things_gets_each_ones(office) -> None:
    both = {"states": [state("found", "contacts.find", query="ben.okafor@example.com, chris.wong@example.net"),
                       state("tell", "mail.send", to="${found.result.emails}", subject="Review moved",
                             body="The design review moved to Friday.")]}
    resolution = planner(office, [both]).resolve("Tell Ben and Chris Wong that the review moved to Friday")
    assert resolution.workflow.states["tell"].args["to"] == [
        "${found.result.contacts[0].emails}", "${found.result.contacts[1].emails}"]
    sent = resolution.trace.dry_run.results["tell"]
    assert set(sent["to"]) == {"ben.okafor@example.com", "chris.wong@example.net"}
    # A lookup for one thing: its first item, as before.
    one = {"states": [state("found", "contacts.find", query="Ben Okafor"),
                      state("tell", "mail.send", to="${found.result.emails}", subject="Review moved",
                            body="The design review moved to Friday.")]}
    assert planner(office, [one]).resolve("Tell Ben that the review moved to Friday").workflow.states[
        "tell"].args["to"] == ["${found.result.contacts[0].emails}"]


def test_paths_not_where_the_plan_says_go_where_the_only_item_of_their_name_is(office) -> None:
    wrong = {"states": [state("pack", "files.zip", paths=["website", "Documents/Car-Title.pdf"],
                              archive="Documents/backup.zip")]}
    resolution = planner(office, [wrong]).resolve("zip the website and my car title")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["pack"].args["paths"] == ["Projects/website", "Documents/car-title.pdf"]
    assert resolution.trace.attempts[0].tidied[-1] == (
        "website → Projects/website; Documents/Car-Title.pdf → Documents/car-title.pdf: not where the plan said, "
        "and the only item of that name; the plan ran clean with it")
    assert resolution.trace.dry_run.summary() == "dry run in a scratch copy: 1 step(s) ran, all fine"


def test_a_path_guessed_below_a_folder_the_request_names_becomes_that_folder(office) -> None:
    guessed = {"states": [state("pack", "files.zip", paths=["Projects/website/src/app"], archive="Documents/site.zip")]}
    resolution = planner(office, [guessed]).resolve("Zip up Projects/website into Documents/site.zip")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["pack"].args["paths"] == ["Projects/website"]
    assert resolution.trace.attempts[0].tidied[-1].startswith(
        "Projects/website/src/app → Projects/website (the folder the request names): not where the plan said")
    # A folder the request does not write out is the model's to fix.
    told = planner(office, [guessed, guessed], max_attempts=2).resolve("Zip up my website into Documents/site.zip")
    assert told.trace.attempts[0].problems[0].startswith("dry run: step 'pack' (files.zip) failed")


def test_a_failed_step_that_took_a_list_item_is_told_what_else_its_source_gave(office) -> None:
    member = {"states": [state("pack", "files.zip", paths=["Projects/website"], archive="site.zip"),
                         state("mail", "mail.send", to=["Chris Wong"], subject="Site", body="Attached.",
                               attachments=["${pack.result.members[0]}"])]}
    ctl = planner(office, [member], max_attempts=1)
    problem = ctl.resolve("Pack the site folder into an archive for Chris Wong").trace.attempts[0].problems[0]
    assert problem.startswith("dry run: step 'mail' (mail.send) failed: attachment ")
    assert ("does not exist in the sandbox; ${pack.result.members[0]} took one item of a list, and 'pack' "
            "(files.zip) also gave path='site.zip', count=4, size=") in problem
    # Written again as it failed: the plan is dry-run with the source's text field in the item's place.
    again = planner(office, [member, member]).resolve("Pack the site folder into an archive for Chris Wong")
    assert again.workflow.states["mail"].args["attachments"] == ["${pack.result.path}"]
    assert again.trace.attempts[1].tidied == [
        "${pack.result.members[0]} became ${pack.result.path}: written again as it failed, the plan ran with it"]
    assert again.trace.attempts[1].problems == [] and again.trace.repairs == 1
    assert again.trace.dry_run.summary() == "dry run in a scratch copy: 2 step(s) ran, all fine"


def test_a_repair_that_only_refuses_after_a_failed_dry_run_is_told_once(office) -> None:
    missing = {"states": [state("read", "files.read", path="Documents/lease.txt"),
                          state("tell", "agent.say", message="${read.result.text}")]}
    refuse = {"states": [state("no", "agent.refuse", reason="Documents/lease.txt does not exist")]}
    found = {"states": [state("find", "files.find", pattern="*lease*")]}  # the last attempt: shown, though silent
    resolution = planner(office, [missing, refuse, found]).resolve("What does my lease say?")
    told = resolution.trace.attempts[1].problems
    assert told == ["state 'no': the plan refuses after the last plan's dry run failed (dry run: step 'read' "
                    "(files.read) failed: Documents/lease.txt does not exist). The dry run tried that plan in a "
                    "scratch copy so that you can fix it: write that plan again with the failing step fixed"]
    assert list(resolution.workflow.states) == ["find"]
    # Looking things up and then refusing is giving up too.
    looked = {"states": [state("find", "files.find", pattern="*lease*"), refuse["states"][0]]}
    told = planner(office, [missing, looked, found]).resolve("What does my lease say?").trace.attempts[1].problems
    assert told and told[0].startswith("state 'no': the plan refuses after the last plan's dry run failed")
    # Refusing again stands; and a request no function serves may be refused at once.
    again = planner(office, [missing, refuse, refuse]).resolve("What does my lease say?")
    assert list(again.workflow.states) == ["no"]
    assert planner(office, [missing, refuse]).resolve("Print my lease").trace.attempts[1].problems == []


def test_an_empty_result_indexed_later_is_a_repair_problem(office) -> None:
    plan = {"states": [state("find", "files.find", pattern="*boarding-pass*"),
                       state("show", "files.read", path="${find.result.paths[0]}")]}
    ctl = planner(office, [plan], max_attempts=1)
    resolution = ctl.resolve("read my boarding pass")  # the last attempt: shown, with what the dry run found
    assert "found nothing" in resolution.trace.attempts[0].problems[0]
    assert "it failed at 'show'" in resolution.trace.dry_run.summary()


def test_a_delete_for_each_over_more_than_the_request_names_is_a_repair_problem(office) -> None:
    # The inbox holds an invoice, a mail about Lisbon and one about website files.
    broad = {"states": [state("inbox", "mail.list", folder="inbox"),
                        {**state("drop", "mail.delete", id="${item.id}"), "for_each": "${inbox.result.messages}"}]}
    narrow = {"states": [state("found", "mail.search", query="invoice", folder="inbox"),
                         {**state("drop", "mail.delete", id="${item.id}"), "for_each": "${found.result.messages}"}]}
    ctl = planner(office, [broad, narrow])
    resolution = ctl.resolve("delete all the invoice mails from my inbox")

    told = resolution.trace.attempts[0].problems
    assert len(told) == 1 and told[0].startswith(
        "dry run: step 'drop' (mail.delete) ran for each of the 3 items of ${inbox.result.messages}, and 2 of them "
        "are not what the request names (e.g. ")
    assert told[0].endswith("look up only the ones the request names, e.g. with mail.search(query='invoice') and run "
                            "the step for each of those")
    assert "'Lisbon in April?'" in told[0]  # the others, by their subjects
    assert resolution.trace.attempts[1].problems == []
    assert resolution.workflow.states["found"].args["query"] == "invoice"
    assert MailApp(office).list(MailList(folder="inbox")).count == 3  # the dry runs deleted in their copies


def test_a_move_for_each_over_files_outside_the_folder_the_request_names_is_a_repair_problem(office) -> None:
    everywhere = {"states": [state("pdfs", "files.find", pattern="*.pdf"),
                             {**state("mv", "files.move", source="${item}", destination="Documents/Invoices"),
                              "for_each": "${pdfs.result.paths}"}]}
    resolution = planner(office, [everywhere, everywhere]).resolve("put each pdf in my Downloads into the Invoices "
                                                                   "folder")
    assert resolution.trace.attempts[0].problems == [
        "dry run: step 'mv' (files.move) ran for each of the 3 items of ${pdfs.result.paths}, and 1 of them are not "
        "what the request names (e.g. 'Documents/car-title.pdf'): look up only the ones under 'Downloads' and run "
        "the step for each of those"]
    # Written again as it was: the lookup looks where it was told, and the plan runs clean.
    assert resolution.trace.attempts[1].problems == [] and resolution.trace.attempts[1].tidied == [
        "state 'pdfs' looks only under 'Downloads': written again as it was told it found more than the request "
        "names"]
    assert resolution.workflow.states["pdfs"].args == {"pattern": "*.pdf", "under": "Downloads"}


def test_a_message_mailed_back_to_its_sender_is_a_repair_problem(office) -> None:
    # Ben's mail asks for the website folder; mailing him his own words is no answer.
    back = {"states": [state("his", "mail.search", query="website", folder="inbox"),
                       state("send", "mail.send", to=["Ben Okafor"], subject="Website",
                             body="You wrote: ${his.result.messages[0].snippet}")]}
    zipped = {"states": [state("zip", "files.zip", paths=["Projects/website"], archive="website.zip"),
                         state("send", "mail.send", to=["Ben Okafor"], subject="Website", body="Here it is.",
                               attachments=["${zip.result.path}"])]}
    resolution = planner(office, [back, zipped]).resolve("Send Ben the website project as a zip")
    told = resolution.trace.attempts[0].problems
    assert len(told) == 1 and told[0].startswith(
        "dry run: step 'send' (mail.send) sends Ben Okafor <ben.okafor@example.com> the text of their own message "
        "(${his.result.messages[0].snippet}, 'Website files') back: the request asks to send them something else; "
        "find that and send it; found for this request besides mail: ")
    assert "folder Projects/website/" in told[0]
    assert resolution.trace.attempts[1].problems == []
    # Telling someone else what a mail said is no sending back.
    anna = {"states": [back["states"][0], state("send", "mail.send", to=["Anna Berg"], subject="Website",
                                                  body="Ben wrote: ${his.result.messages[0].snippet}")]}
    told = planner(office, [anna], max_attempts=1).resolve("Tell Anna what Ben wrote about the website")
    assert told.trace.attempts[0].problems == []


def test_a_delete_for_each_over_all_of_a_folder_it_names_is_left_alone(office) -> None:
    every = {"states": [state("inbox", "mail.list", folder="inbox"),
                        {**state("drop", "mail.delete", id="${item.id}"), "for_each": "${inbox.result.messages}"}]}
    resolution = planner(office, [every]).resolve("empty my inbox into the trash, every message in it")
    assert resolution.trace.attempts[0].problems == []


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
    assert list(planner(office, [alone]).resolve("send it to him").workflow.states) == ["which"]
    uses_answer = {"states": [state("due", "agent.ask", question="When is it due?"),
                              state("add", "tasks.add", title="Pay rent", due="${due.result.question}")]}
    fixed = {"states": [state("add", "tasks.add", title="Pay rent")]}
    resolution = planner(office, [uses_answer, fixed]).resolve("add a task to pay rent")
    assert "does not return the user's answer" in resolution.trace.attempts[0].problems[0]
    assert list(resolution.workflow.states) == ["add"]


def test_a_plan_ends_at_a_choice_whose_answer_a_step_would_use(office) -> None:
    # The plan cannot wait for "Which Chris?": a mail to the question's text would go out. The lookup that
    # found the choices stays, the question ends the plan, and no repair turn is spent on it.
    reply = {"states": [state("people", "contacts.find", query="Chris"),
                        state("which", "agent.ask", question="Which Chris: Meyer or Wong?"),
                        state("send", "mail.send", to=["${which.result.question}"], subject="Late",
                              body="Running late")]}
    resolution = planner(office, [reply]).resolve("mail Chris that I am late")
    assert list(resolution.workflow.states) == ["people", "which"]
    assert any("ended the plan at agent.ask 'which'" in note for note in resolution.trace.attempts[0].tidied)
    assert resolution.trace.repairs == 0


def test_a_plan_that_hands_the_request_back_is_repaired_without_that_function(office) -> None:
    echo = {"states": [state("ask", "agent.ask", question="Add a task to water the plants on Friday?")]}
    act = {"states": [state("add", "tasks.add", title="Water the plants")]}
    ctl = Controller(Constraining([json.dumps(echo), json.dumps(act)]), TABLE, office, examples=[])
    schemas = ctl.backend.schemas
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
    foreign, _ = triangle()
    ctl = plain_planner(foreign, [])
    system = ctl.messages("Find the area of a triangle", foreign, [])[0].content
    assert "${STATE.result" not in system and "for_each" not in system
    # The agent's own functions come last, after the one the request is about.
    assert system.index("calculate_triangle_area(") < system.index("agent.say(")
    desktop = Controller(ReplayBackend([]), TABLE, office, examples=[]).messages("add a task", TABLE, [])[0]
    assert "${STATE.result.FIELD}" in desktop.content and '"for_each"' in desktop.content
    assert desktop.content.index("agent.ask(") < desktop.content.index("tasks.add(")  # last, no refusals


def test_values_copied_from_a_worked_example_are_a_repair_problem(office) -> None:
    example = Example(intent="Put bouldering with Greta on Sunday in my calendar",
                      workflow={"states": [state("climb", "calendar.add_event", title="Bouldering",
                                                 start="2026-03-15T11:00", location="Bloc Valencia")]})
    copied = {"states": [state("event", "calendar.add_event", title="Bouldering", start="2026-03-13T09:00",
                               location="Bloc Valencia")]}
    own = {"states": [state("event", "calendar.add_event", title="Dentist", start="2026-03-13T09:00")]}
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


def test_a_refusal_giving_a_worked_examples_general_reason_stands(office) -> None:
    # Its capitals are grammar's ("I", a sentence's first word), not an example's names.
    reason = "I cannot buy anything or make payments: none of the installed apps can."
    example = Example(intent="Buy a ferry ticket with my card",
                      workflow={"states": [state("decline", "agent.refuse", reason=reason)]})
    ctl = Controller(ReplayBackend([json.dumps(example.workflow)]), TABLE, office, examples=[example],
                     settings=ControllerSettings(examples=1))
    resolution = ctl.resolve("Buy two cinema tickets for Saturday")
    assert resolution.trace.repairs == 0 and resolution.workflow.states["decline"].args["reason"] == reason
    # Nor is a refusal told to use a file the request names: declining uses nothing.
    refusal = {"states": [state("decline", "agent.refuse", reason="No app here can send faxes.")]}
    assert planner(office, [refusal]).resolve("Fax my car title to the insurer").trace.repairs == 0


def test_a_plan_that_acts_on_a_request_no_function_can_do_is_told_to_refuse_once(office) -> None:
    # "Order" is no function's word: a task about a taxi does not order one.
    acts = {"states": [state("who", "tasks.add", title="Taxi to the station at 6am")]}
    refuses = {"states": [state("decline", "agent.refuse", reason="No app here can order a taxi.")]}
    resolution = planner(office, [acts, refuses]).resolve("Could you order a taxi to the station for 6am?")
    assert resolution.trace.attempts[0].problems[0].startswith(
        "state 'who': the request asks to order, and none of the listed functions can order")
    assert list(resolution.workflow.states) == ["decline"]
    # Told once: a plan that acts again stands. A served request is not told at all.
    assert planner(office, [acts, acts]).resolve("order a taxi to the station").trace.repairs == 1
    served = {"states": [state("add", "tasks.add", title="Water the plants")]}
    assert planner(office, [served]).resolve("Add a task to water the plants").trace.repairs == 0


def test_refusals_are_the_closest_examples_for_a_request_no_function_can_do(office) -> None:
    refusal = Example(intent="Play my running playlist",
                      workflow={"states": [state("decline", "agent.refuse", reason="No app plays music.")]})
    acting = Example(intent="Add my running shoes to the shopping list",
                     workflow={"states": [state("add", "notes.append", note="Shopping", text="running shoes")]})
    ctl = Controller(ReplayBackend([]), TABLE, office, examples=[refusal, acting],
                     settings=ControllerSettings(examples=2))
    assert ctl.pick_examples("Play some music for my run")[-1] == refusal
    assert refusal not in ctl.pick_examples("Add running socks to the shopping list")


# -- mechanical fixes and leads --------------------------------------------------------------------------


def test_a_call_written_inside_a_reference_becomes_a_state_of_its_own(office) -> None:
    inline = {"states": [
        state("meet", "calendar.add_event", title="Lunch with Anna",
              start="${clock.resolve('next friday 1pm', 'Europe/Berlin')}", duration_minutes=60),
        state("tell", "agent.say", message="booked for ${clock.resolve(phrase='next friday 1pm')}")]}
    ctl = planner(office, [inline])
    resolution = ctl.resolve("book lunch with Anna next Friday at 1pm")

    assert resolution.trace.attempts[0].problems == []  # no repair turn spent on it
    states = resolution.workflow.states
    assert list(states) == ["resolve", "meet", "resolve_2", "tell"]
    assert states["resolve"].call == "clock.resolve" and states["resolve"].args == {"phrase": "next friday 1pm"}
    assert states["meet"].args["start"] == "${resolve.result.iso}"
    assert states["tell"].args["message"] == "booked for ${resolve_2.result.iso}"
    assert any("extra arguments dropped: 'Europe/Berlin'" in n for n in resolution.trace.attempts[0].tidied)
    assert resolution.trace.dry_run.summary().endswith("all fine")
    # A keyword the function does not take is dropped the same way.
    keyword = {"states": [state("remind", "tasks.add", title="Check the numbers",
                                due='${clock.shift(when: "now", weeks: 2, timezone: "Europe/Berlin")}')]}
    shifted = planner(office, [keyword]).resolve("remind me in two weeks to check the numbers")
    assert shifted.workflow.states["shift"].args == {"when": "now", "weeks": 2}
    assert shifted.trace.attempts[0].tidied == [
        'the call ${clock.shift(when: "now", weeks: 2, timezone: "Europe/Berlin")} became state \'shift\' (extra '
        "arguments dropped: timezone='Europe/Berlin')"]
    # A field written after the call is the one taken.
    dated = {"states": [state("remind", "tasks.add", title="Renew the gym pass",
                              due="${clock.resolve('next monday').date}")]}
    lifted = planner(office, [dated]).resolve("remind me to renew the gym pass next Monday").workflow.states
    assert lifted["remind"].args["due"] == "${resolve.result.date}"
    # Keywords written JSON-style, and the field after ".result".
    shifted = {"states": [state("remind", "tasks.add", title="Renew the gym pass",
                                due='${clock.shift(when: "today", weeks: 2).result.date}')]}
    lifted = planner(office, [shifted]).resolve("remind me to renew the gym pass in two weeks").workflow.states
    assert lifted["shift"].args == {"when": "today", "weeks": 2}
    assert lifted["remind"].args["due"] == "${shift.result.date}"
    # A call of a function that needs no argument, written without parentheses.
    bare = {"states": [state("slots", "calendar.free_slots", start="${clock.now.iso}", end="2026-03-11T18:00",
                             duration_minutes=60)]}
    lifted = planner(office, [bare]).resolve("find me a free hour before tomorrow evening").workflow.states
    assert lifted["now"].call == "clock.now" and lifted["slots"].args["start"] == "${now.result.iso}"
    # A field by another name the result gives it (a note's "text" is its body).
    named = {"states": [state("tell", "agent.say", message="${notes.read('Packing list').text}")]}
    lifted = planner(office, [named]).resolve("read me my packing list").workflow.states
    assert lifted["read"].args == {"note": "Packing list"} and lifted["tell"].args["message"] == "${read.result.body}"
    # But not one that needs arguments, nor a state of the plan named like an app.
    needs = {"states": [state("tell", "agent.say", message="${clock.resolve.iso}")]}
    _, problems = planner(office, []).parse(json.dumps(needs), "say it")
    assert problems


def test_a_field_by_another_name_the_result_gives_it_is_that_field(office) -> None:
    reply = {"states": [state("ben", "mail.search", query="website", folder="inbox"),
                        state("send", "mail.send", to=["${ben.result.messages[0].from}"], subject="Website",
                              body="On its way.")]}
    resolution = planner(office, [reply]).resolve("Write back to whoever asked about the website files")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["send"].args["to"] == ["${ben.result.messages[0].sender_email}"]
    assert resolution.trace.attempts[0].tidied[0] == (
        "${ben.result.messages[0].from} became ${ben.result.messages[0].sender_email} (mail.search calls it "
        "'sender_email')")


def test_a_jump_to_a_state_that_gained_a_lifted_call_enters_the_call_first(office) -> None:
    inline = {"start": "meet", "states": [
        {**state("meet", "calendar.add_event", title="Lunch", start="${clock.resolve('tomorrow 1pm')}"),
         "next": "done"}]}
    workflow, problems = planner(office, []).parse(json.dumps(inline), "lunch tomorrow at 1")
    assert problems == [] and workflow.start == "resolve"


def test_an_inline_call_that_writes_or_is_not_literal_is_left_for_validation(office) -> None:
    for written in ("${files.trash('Documents/a.txt')}", "${clock.resolve(__import__('os').getcwd())}"):
        plan = {"states": [state("say", "agent.say", message=written)]}
        _, problems = planner(office, []).parse(json.dumps(plan), "say it")
        assert any("cannot call a function" in str(p) for p in problems), written


def test_an_empty_lookup_is_told_where_grounding_found_what_it_looked_for(office) -> None:
    wrong_app = {"states": [state("trip", "mail.search", query="Trip to Lisbon"),
                            state("show", "mail.read", id="${trip.result.messages[0].id}"),
                            state("tell", "agent.say", message="${show.result.body}")]}
    right_app = {"states": [state("trip", "notes.read", note="Trip to Lisbon"),
                            state("tell", "agent.say", message="${trip.result.body}")]}
    ctl = planner(office, [wrong_app, right_app])
    resolution = ctl.resolve("what's in my Trip to Lisbon note?")

    problem = resolution.trace.attempts[0].problems[0]
    assert "'trip' (mail.search) found nothing for 'Trip to Lisbon'" in problem
    assert 'note "Trip to Lisbon" (tags travel): Flights booked' in problem and "(in notes)" in problem
    assert resolution.workflow.states["trip"].call == "notes.read"


def test_an_example_that_does_what_the_request_asks_is_picked_without_a_shared_word(office) -> None:
    def example(intent: str, *states: dict) -> Example:
        return Example(intent=intent, workflow={"states": list(states)})

    call_off = example("Call off the offsite planning meeting",
                       state("found", "calendar.find_events", query="offsite planning"),
                       state("cancel", "calendar.cancel_event", uid="${found.result.events[0].uid}"))
    who = example("Who do I know at the squash club?", state("found", "contacts.find", query="squash club"))
    also_who = example("Who do I know at the tennis club?", state("found", "contacts.find", query="tennis club"))
    ctl = Controller(ReplayBackend([]), TABLE, office, ControllerSettings(examples=2),
                     examples=[call_off, who, also_who])
    picked = ctl.pick_examples("Cancel my squash game with Raj on Friday and let him know")
    # The closest last; of two examples acting alike (both only look a contact up), one is shown.
    assert [e.intent for e in picked] == ["Who do I know at the squash club?", "Call off the offsite planning meeting"]



def test_everyday_words_for_an_action_find_the_example_that_does_it(office) -> None:
    def example(intent: str, *states: dict) -> Example:
        return Example(intent=intent, workflow={"states": list(states)})

    finished = example("Finished the tax return!", state("done", "tasks.complete", task="Tax return"))
    each = example("I watered every plant, mark all those tasks as done",
                   state("found", "tasks.list", tag="plants"),
                   {**state("done", "tasks.complete", task="${item}"), "for_each": "${found.result.ids}"})
    read = example("What is in my plumbing note?", state("note", "notes.read", note="Plumbing"))
    ctl = Controller(ReplayBackend([]), TABLE, office, ControllerSettings(examples=1), examples=[finished, read])
    # No shared word: "tick off" stands for complete, and tasks.complete's example is picked.
    assert [e.intent for e in ctl.pick_examples("The gutters are cleaned, tick that off")] == [finished.intent]
    # Of two examples acting alike, the one with the request's shape: a single thing, no loop...
    both = Controller(ReplayBackend([]), TABLE, office, ControllerSettings(examples=1), examples=[each, finished])
    assert [e.intent for e in both.pick_examples("I watered the plants, tick that task off")] == [finished.intent]
    # ... and for "every ...", the loop.
    assert [e.intent for e in both.pick_examples("tick off every cleaning task, the flat is spotless")] == [
        each.intent]

def copy_each_found(pattern: str) -> dict:
    """A plan that copies each file of Downloads matching `pattern` into Documents."""
    return {"states": [state("found", "files.find", pattern=pattern, under="Downloads"),
                       {**state("copy", "files.copy", source="${item}", destination="Documents"),
                        "for_each": "${found.result.paths}"}]}


def test_a_plural_whose_found_items_one_step_acts_on_is_completed_with_that_step_for_each(office) -> None:
    one = {"states": [state("copy", "files.copy", source="Downloads/invoice-2026-01-acme.pdf",
                            destination="Documents"),
                      state("tell", "agent.say", message="Copied")]}
    resolution = planner(office, [one]).resolve("Copy the invoices in Downloads into Documents")
    assert resolution.trace.repairs == 0
    assert resolution.trace.attempts[0].tidied == [
        "the request says 'invoices': 'copy' (files.copy) repeated for "
        "'Downloads/invoice-2026-02-office-supplies.txt', 'Downloads/Invoice_Hetzner_2026-02.pdf'"]
    states = resolution.workflow.states
    assert list(states) == ["copy", "copy_2", "copy_3", "tell"]
    assert [states[n].args["source"] for n in ("copy", "copy_2", "copy_3")] == [
        "Downloads/invoice-2026-01-acme.pdf", "Downloads/invoice-2026-02-office-supplies.txt",
        "Downloads/Invoice_Hetzner_2026-02.pdf"]
    assert [states[n].next for n in ("copy", "copy_2", "copy_3")] == ["copy_2", "copy_3", "tell"]
    assert resolution.trace.dry_run.summary() == "dry run in a scratch copy: 4 step(s) ran, all fine"
    # Steps of different calls naming the items: how to complete is not clear, so the plan is told.
    mixed = {"states": [state("a", "files.copy", source="Downloads/invoice-2026-01-acme.pdf", destination="Documents"),
                        state("b", "files.move", source="Downloads/Invoice_Hetzner_2026-02.pdf",
                              destination="Documents")]}
    each = copy_each_found("*nvoice*")
    told = planner(office, [mixed, each]).resolve("Copy the invoices in Downloads into Documents")
    assert told.trace.attempts[0].problems == [
        "the request says 'invoices', and 3 were found for it ('Downloads/invoice-2026-01-acme.pdf', "
        "'Downloads/invoice-2026-02-office-supplies.txt', 'Downloads/Invoice_Hetzner_2026-02.pdf'), but the plan "
        "uses only 'Downloads/invoice-2026-01-acme.pdf', 'Downloads/Invoice_Hetzner_2026-02.pdf'; add a state like "
        "'a' (files.copy) for each of the others: 'Downloads/invoice-2026-02-office-supplies.txt'"]
    assert told.workflow.states["copy"].for_each == "${found.result.paths}"


def test_a_file_the_request_names_that_the_plan_never_writes_is_told_once(office) -> None:
    task = {"states": [state("add", "tasks.add", title="buy stamps")]}
    line = {"states": [state("add", "files.append", path="Documents/shopping.txt", text="- buy stamps")]}
    resolution = planner(office, [task, line]).resolve("Put buy stamps on my shopping.txt list in Documents")
    assert resolution.trace.attempts[0].problems == [
        "the request names the file 'shopping.txt', but no step of the plan uses it; write its path (with the "
        "folder the request gives) where the request needs it"]
    assert resolution.workflow.states["add"].call == "files.append"
    # A plan that writes it, or a request that names none (a web address is not a file), is not told.
    assert planner(office, [line]).resolve("Put buy stamps on my shopping.txt list in Documents").trace.repairs == 0
    assert planner(office, [task]).resolve("Remind me to buy stamps, see shop.example.org").trace.repairs == 0


def test_a_message_to_nobody_when_the_request_names_one_person_goes_to_that_person(office) -> None:
    nobody = {"states": [state("d", "mail.draft", subject="Brunch", body="Brunch on Sunday at 11?")]}
    resolution = planner(office, [nobody]).resolve("Draft a note to Anna about brunch on Sunday at 11")
    assert resolution.trace.repairs == 0 and resolution.workflow.states["d"].args["to"] == ["Anna Berg"]
    assert resolution.trace.attempts[0].tidied == ["'d' wrote to nobody: to 'Anna Berg', whom the request names"]
    # Two people of that first name: the ambiguity check's to ask, not this one's to pick; the full name picks.
    chris = planner(office, [nobody]).resolve("Draft a note to Chris about brunch")
    assert "to" not in chris.workflow.states["d"].args
    # An event made "with" someone, with no attendees, invites them.
    call = {"states": [state("e", "calendar.add_event", title="Call", start="2026-03-12 10:00", duration_minutes=30)]}
    invited = planner(office, [call]).resolve("Set up a 30-minute call with Chris Wong on Thursday at 10am")
    assert invited.workflow.states["e"].args["attendees"] == ["Chris Wong"]
    assert invited.trace.attempts[0].tidied == ["'e' invited nobody: 'Chris Wong', whom the request meets"]
    alone = planner(office, [call]).resolve("Block Thursday at 10am to prepare Ben's review")
    assert "attendees" not in alone.workflow.states["e"].args


def test_a_message_to_a_state_the_plan_lacks_goes_to_the_one_person_the_request_names(office) -> None:
    invented = {"states": [state("tell", "mail.send", to=["${AnnaBerg.result.email}"], subject="Brunch",
                                 body="Brunch on Sunday at 11?")]}
    resolution = planner(office, [invented]).resolve("Tell Anna that brunch is on Sunday at 11")
    assert resolution.trace.repairs == 0 and resolution.workflow.states["tell"].args["to"] == ["Anna Berg"]
    assert "from no earlier state of the plan: to 'Anna Berg'" in resolution.trace.attempts[0].tidied[-1]
    # A reference to a state the plan has is the plan's own business (validation checks it).
    found = {"states": [state("who", "contacts.find", query="Anna"),
                        state("tell", "mail.send", to=["${who.result.contacts[0].email}"], subject="Brunch",
                              body="Brunch on Sunday at 11?")]}
    kept = planner(office, [found]).resolve("Tell Anna that brunch is on Sunday at 11")
    assert kept.workflow.states["tell"].args["to"] == ["${who.result.contacts[0].email}"]
    # An event inviting people from its own result invites the one person the request meets.
    own = {"states": [state("e", "calendar.add_event", title="Brunch", start="2026-03-15 11:00",
                            attendees=["${e.result.email}"])]}
    invited = planner(office, [own]).resolve("Book brunch with Anna on Sunday at 11")
    assert invited.trace.repairs == 0 and invited.workflow.states["e"].args["attendees"] == ["Anna Berg"]
    assert invited.trace.attempts[0].tidied == [
        "'e' invited ['${e.result.email}'], from no earlier state of the plan: 'Anna Berg', whom the request names"]


def test_a_message_copying_a_found_mail_the_request_is_not_about_is_told(office) -> None:
    copy = {"states": [state("d", "mail.draft", to=["Anna Berg"], subject="Lisbon in April?",
                             body="Hi Alex, could you send me your travel notes for the Lisbon trip? Anna")]}
    own = {"states": [state("d", "mail.draft", to=["Anna Berg"], subject="My blue scarf",
                            body="Hi Anna, do you still have my blue scarf? Alex")]}
    resolution = planner(office, [copy, own]).resolve("Draft a message asking Anna whether she still has my blue scarf")
    problems = resolution.trace.attempts[0].problems
    assert len(problems) == 1 and "copies the text of the mail in inbox from Anna Berg" in problems[0]
    assert resolution.workflow.states["d"].args["subject"] == "My blue scarf"
    # A request about that mail may quote it.
    about = planner(office, [copy]).resolve("Draft Anna a message quoting her mail about the Lisbon trip")
    assert about.trace.repairs == 0


def test_a_time_from_a_resolve_state_never_written_is_the_day_the_request_names(office) -> None:
    later = {"states": [state("task", "tasks.add", title="Water the cactus", due="${later.result.date}")]}
    resolution = planner(office, [later]).resolve("Remind me in three days to water the cactus")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.start == "later"
    assert resolution.workflow.states["later"].args == {"phrase": "in three days"}
    # With the time of day the request gives after the day.
    when = {"states": [state("lunch", "calendar.add_event", title="Lunch with Ben", start="${when.result.iso}")]}
    lunch = planner(office, [when]).resolve("Put lunch with Ben in my calendar next Friday at 1pm")
    assert lunch.workflow.states["when"].args == {"phrase": "next Friday at 1pm"}
    assert lunch.trace.attempts[0].tidied[-1] == (
        "'when' used as the time the request names and never written: clock.resolve('next Friday at 1pm') added "
        "first")
    # Of two days, the one the request moves a thing to; a day alone keeps the event's time.
    moved = {"states": [state("found", "calendar.find_events", query="lunch with ben"),
                        state("move", "calendar.move_event", uid="${found.result.events[0].uid}",
                              start="${when.result.date}")]}
    friday = planner(office, [moved]).resolve("Move Thursday's lunch with Ben to Friday")
    assert friday.workflow.states["when"].args == {"phrase": "Friday"} and friday.trace.repairs == 0
    # A time only the clock's own steps count from is now: "tomorrow" counted from it, not from tomorrow.
    counted = {"states": [state("next", "clock.shift", when="${base.result.date}", days=1),
                          state("fix", "calendar.add_event", title="Plumber", start="${next.result.date} 08:00")]}
    plumber = planner(office, [counted]).resolve("The plumber comes tomorrow at 8am, put it in my calendar")
    assert plumber.workflow.states["base"].call == "clock.now"
    assert plumber.trace.dry_run.results["fix"]["start"].startswith("2026-03-11T08:00")
    assert plumber.trace.attempts[0].tidied == [
        "'base' used as the time to count from and never written: clock.now() added first"]
    # A request naming no day is told, as before.
    with pytest.raises(ResolutionFailed):
        planner(office, [later], max_attempts=1).resolve("Remind me to water the cactus")


def test_a_date_taken_by_a_broken_reference_to_a_lookup_is_the_day_the_request_names(office) -> None:
    looked = {"states": [state("find", "notes.search", query="cactus"),
                         state("task", "tasks.add", title="Water the cactus", due="${find.result[0].created}")]}
    resolution = planner(office, [looked]).resolve("Remind me in three days to water the cactus")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.start == "when"
    assert resolution.workflow.states["when"].args == {"phrase": "in three days"}
    assert resolution.trace.dry_run.results["task"]["due"].startswith("2026-03-13")
    assert resolution.trace.attempts[0].tidied[-1] == (
        "task's due (${find.result[0].created}) did not hold, and the request names 'in three days': "
        "clock.resolve('in three days') added first for it")
    # A date that holds is not rewritten (the dry run's check of found days tells the model instead). Without a
    # named day, the broken reference is told.
    held = {"states": [state("find", "calendar.find_events", query="dentist"),
                       state("task", "tasks.add", title="Pay the dentist bill", due="${find.result.events[0].start}")]}
    kept = planner(office, [held, held]).resolve("Remind me in three days to pay the dentist bill")
    assert kept.trace.attempts[0].tidied == [] and "when" not in kept.workflow.states
    with pytest.raises(ResolutionFailed):
        planner(office, [looked], max_attempts=1).resolve("Remind me to water the cactus")


def test_a_lookup_that_fails_the_dry_run_and_that_nothing_uses_is_dropped(office) -> None:
    look_first = {"states": [state("known", "contacts.get", contact="Marta Ruiz"),
                             {"name": "add", "call": "contacts.add",
                              "args": {"name": "Marta Ruiz", "email": "marta@example.net"}}]}
    resolution = planner(office, [look_first]).resolve("Save Marta Ruiz, marta@example.net, as a contact")
    assert resolution.trace.repairs == 0 and list(resolution.workflow.states) == ["add"]
    assert resolution.trace.attempts[0].tidied == [
        "dropped 'known': a lookup that failed in the dry run and that no step uses"]
    # A lookup whose result a step uses is the plan's own: its failure is told.
    used = {"states": [state("known", "contacts.get", contact="Marta Ruiz"),
                       state("tell", "agent.say", message="${known.result.phone}")]}
    told = planner(office, [used, used], max_attempts=2).resolve("What is Marta Ruiz's phone number?")
    assert told.trace.attempts[0].problems[0].startswith("dry run: step 'known' (contacts.get) failed")


def test_a_draft_for_a_request_to_send_is_sent(office) -> None:
    draft = {"states": [state("d", "mail.draft", subject="Late", body="I'll be 10 minutes late for lunch.")]}
    resolution = planner(office, [draft]).resolve("Email Ben that I'll be 10 minutes late for lunch")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["d"].call == "mail.send"
    assert resolution.workflow.states["d"].args["to"] == ["Ben Okafor"]
    assert resolution.trace.attempts[0].tidied == [
        "'d' wrote to nobody: to 'Ben Okafor', whom the request names",
        "'d' sent instead of saved as a draft: the request says to send"]
    # A request for a draft keeps it.
    kept = planner(office, [draft]).resolve("Email Ben a draft saying I'll be late, I'll send it myself")
    assert kept.workflow.states["d"].call == "mail.draft"


def test_the_one_time_zone_a_request_names_fills_a_step_that_left_it_out(office) -> None:
    bare = {"states": [state("now", "clock.now"),
                       state("tell", "agent.say", message="It is ${now.result.time} there.")]}
    resolution = planner(office, [bare]).resolve("Tell me the current time over in Tokyo")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["now"].args == {"timezone": "Asia/Tokyo"}
    assert resolution.trace.attempts[0].tidied == [
        "'now' given the time zone Asia/Tokyo, the place the request asks about"]
    # Two places, or a place in a request that is not about a time, are left to the model.
    two = planner(office, [bare]).resolve("What time is it in Tokyo when it is noon in Lima?")
    assert two.workflow.states["now"].args == {}
    trip = {"states": [state("now", "clock.now"), state("tell", "agent.say", message="Booked: ${now.result.date}")]}
    assert planner(office, [trip]).resolve("Book me a trip to Tokyo").workflow.states["now"].args == {}


def test_the_repetition_a_request_names_becomes_the_events_repeat_rule(office) -> None:
    one_day = {"states": [state("first", "clock.resolve", phrase="next tuesday 6pm"),
                          state("add", "calendar.add_event", title="Piano practice", start="${first.result.iso}",
                                duration_minutes=45, rrule="FREQ=WEEKLY;BYDAY=TU;COUNT=8")]}
    resolution = planner(office, [one_day]).resolve("Piano practice every Tuesday and Thursday at 6pm, eight times")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["add"].args["rrule"] == "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8"
    assert resolution.trace.attempts[0].tidied[-1] == (
        "'add' repeats FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8: the repetition the request names")
    assert resolution.trace.dry_run.results["add"]["recurrence"] == "FREQ=WEEKLY;COUNT=8;BYDAY=TU,TH"
    # A plan that repeats nothing gets the rule the request says in words; an adjective may be a title's.
    once = {"states": [state("add", "calendar.add_event", title="Water the plants", start="2026-03-11T08:00",
                             duration_minutes=10)]}
    daily = planner(office, [once]).resolve("Water the plants every day at 8am from tomorrow")
    assert daily.workflow.states["add"].args["rrule"] == "FREQ=DAILY"
    titled = planner(office, [once]).resolve("Put the weekly plant watering in my calendar tomorrow at 8am")
    assert "rrule" not in titled.workflow.states["add"].args
    assert titled.trace.attempts[0].tidied == []


def test_todays_date_where_the_request_names_another_day_becomes_that_day(office) -> None:
    today = {"states": [state("today", "clock.now"),
                        state("gaps", "calendar.free_slots", start="${today.result.date}", duration_minutes=45),
                        state("add", "calendar.add_event", title="Piano practice",
                              start="${gaps.result.slots[0].start}", duration_minutes=45)]}
    resolution = planner(office, [today]).resolve("Find 45 free minutes on Thursday for piano practice")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["today"].call == "clock.resolve"
    assert resolution.workflow.states["today"].args == {"phrase": "Thursday"}
    assert resolution.trace.dry_run.results["add"]["start"].startswith("2026-03-12")
    assert resolution.trace.attempts[0].tidied[-1] == (
        "'today' resolves 'Thursday', the day the request names, where the plan took today's date")
    # A now the clock counts from stays, and so does one for a request about today.
    until = {"states": [state("now", "clock.now"), state("diff", "clock.diff", start="${now.result.iso}",
                                                         end="2026-03-12T09:00"),
                        state("tell", "agent.say", message="${diff.result.text}")]}
    assert planner(office, [until]).resolve("How long until Thursday?").workflow.states["now"].call == "clock.now"
    kept = planner(office, [today]).resolve("Find 45 free minutes today for piano practice")
    assert kept.workflow.states["today"].call == "clock.now"


def test_a_repair_that_leaves_out_a_state_it_refers_to_keeps_it_from_the_plan_before(office) -> None:
    first = {"states": [state("day", "clock.resolve", phrase="thursday"),
                        state("gaps", "calendar.free_slots", start="${day.result.date}", duration_minutes=45),
                        state("add", "tasks.add", title="Piano practice", due="${gaps.result.slots[0].start}")]}
    only_changed = {"states": [state("add", "calendar.add_event", title="Piano practice",
                                     start="${gaps.result.slots[0].start}", duration_minutes=45)]}
    resolution = planner(office, [first, only_changed]).resolve(
        "Look for 45 free minutes on Thursday and block them for piano practice")
    assert resolution.trace.repairs == 1
    assert list(resolution.workflow.states) == ["day", "gaps", "add"]
    assert resolution.workflow.states["add"].call == "calendar.add_event"
    assert resolution.trace.attempts[1].tidied[0] == (
        "'day', 'gaps' kept from the plan before: this one refers to them and left them out")
    assert resolution.trace.dry_run.results["add"]["start"].startswith("2026-03-12")


def test_a_step_adding_someone_the_address_book_has_is_dropped(office) -> None:
    dinner = state("dinner", "calendar.add_event", title="Dinner with Anna", start="2026-03-14T20:00",
                   duration_minutes=120, attendees=["anna.berg@example.com"])
    card = {"name": "card", "call": "contacts.add", "args": {"name": "Anna Berg", "email": "${dinner.result.email}"}}
    again = {"states": [dinner, card]}
    resolution = planner(office, [again]).resolve("Dinner with Anna Berg on Saturday at 8pm")
    assert resolution.trace.repairs == 0
    assert list(resolution.workflow.states) == ["dinner"]
    assert "dropped 'card': it adds someone the address book already has" in resolution.trace.attempts[0].tidied
    # Someone new stays, and so does an add whose result a later step uses.
    new = {"states": [dinner, {**card, "args": {"name": "Maria Lopez", "email": "maria@northwind.example"}}]}
    kept = planner(office, [new]).resolve("Dinner with Anna Berg and Maria Lopez on Saturday at 8pm")
    assert list(kept.workflow.states) == ["dinner", "card"]


def test_a_new_events_title_taken_from_a_found_event_the_request_does_not_name_is_told(office) -> None:
    borrowed = {"states": [state("first", "clock.resolve", phrase="next monday 11am"),
                           state("add", "calendar.add_event", title="Weekly review", start="${first.result.iso}",
                                 duration_minutes=30)]}
    own = {"states": [borrowed["states"][0], {**borrowed["states"][1], "args": {
        **borrowed["states"][1]["args"], "title": "Piano lesson"}}]}
    intent = "Add a 30-minute piano lesson next Monday at 11am"
    planner_ = planner(office, [borrowed, own])
    assert any("Weekly review" in g.line for g in planner_.ground(intent))  # grounding shows that day's events
    resolution = planner_.resolve(intent)
    assert resolution.trace.repairs == 1
    assert resolution.trace.attempts[0].problems == [
        "state 'add': state 'add' takes its title from the event \"Weekly review\", which the request does not "
        "name; title it with the request's own words"]
    assert resolution.workflow.states["add"].args["title"] == "Piano lesson"
    # A request that names the found event may reuse its title.
    again = planner(office, [borrowed]).resolve("Add another weekly review next Monday at 11am, 30 minutes")
    assert again.trace.repairs == 0


def test_an_optional_argument_taken_from_its_own_steps_result_is_left_out(office) -> None:
    own = {"states": [state("add", "tasks.add", title="Water the cactus", due="2026-03-12",
                            tags="${add.result.tags}")]}
    resolution = planner(office, [own]).resolve("Remind me on Thursday to water the cactus")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["add"].args == {"title": "Water the cactus", "due": "2026-03-12"}
    assert resolution.trace.attempts[0].tidied[-1] == (
        "'add' without its tags: optional, and taken from the step's own result, which it cannot use")
    # A required argument from its own result is told, and so is an optional one from a state the plan lacks.
    required = {"states": [state("add", "tasks.add", title="${add.result.title}")]}
    missing = {"states": [state("add", "tasks.add", title="Water the cactus", tags="${find.result.tags}")]}
    for plan in (required, missing):
        with pytest.raises(ResolutionFailed) as failed:
            planner(office, [plan], max_attempts=1).resolve("Remind me to water the cactus")
        assert failed.value.trace.attempts[0].problems
        assert not any("without its" in note for note in failed.value.trace.attempts[0].tidied)


def test_the_time_of_day_a_request_names_joins_a_day_phrase_an_event_starts_at(office) -> None:
    day_only = {"states": [state("first", "clock.resolve", phrase="next monday"),
                           state("add", "calendar.add_event", title="Yoga", start="${first.result.iso}",
                                 duration_minutes=60)]}
    resolution = planner(office, [day_only]).resolve("Put yoga in my calendar next Monday at 7:30am")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["first"].args == {"phrase": "next monday 7:30am"}
    assert resolution.trace.dry_run.results["add"]["start"].startswith("2026-03-16T07:30")
    assert resolution.trace.attempts[0].tidied == [
        "'first' resolves 'next monday 7:30am': the time of day the request names, which the phrase left out"]
    # A start that takes the resolved day's date alone takes its date and time.
    dated = {"states": [day_only["states"][0], {**day_only["states"][1], "args": {
        **day_only["states"][1]["args"], "start": "${first.result.date}"}}]}
    timed = planner(office, [dated]).resolve("Put yoga in my calendar next Monday at 7:30am")
    assert timed.workflow.states["add"].args["start"] == "${first.result.iso}"
    assert timed.trace.dry_run.results["add"]["start"].startswith("2026-03-16T07:30")
    assert timed.trace.attempts[0].tidied == [
        "'first' resolves 'next monday 7:30am'; 'add' starts at first.result.iso, the date and time, not the "
        "date alone: the time of day the request names, which the phrase left out"]
    # No time named, two times, or an all-day event: the phrase stays.
    all_day = {"states": [day_only["states"][0], {**day_only["states"][1], "args": {
        **day_only["states"][1]["args"], "all_day": True}}]}
    for intent, plan in (("Put yoga in my calendar next Monday", all_day),
                         ("Yoga next Monday from 7:30 to 9:00", day_only),
                         ("Yoga next Monday at 7:30, all day long", all_day)):
        kept = planner(office, [plan, plan, plan]).resolve(intent)
        assert kept.trace.attempts[0].tidied == [], intent


def test_an_apps_own_item_taken_from_another_apps_result_is_the_one_grounding_found(office) -> None:
    wrong = {"states": [state("urgent", "clock.resolve", phrase="urgent"),
                        state("raise", "tasks.update", task="${urgent.result.id}", priority="high")]}
    resolution = planner(office, [wrong]).resolve("Renewing the car insurance is urgent now, make it high priority")
    assert resolution.trace.repairs == 0
    assert list(resolution.workflow.states) == ["raise"]  # the lookup nothing uses any more is left out
    assert resolution.workflow.states["raise"].args == {"task": "Renew car insurance", "priority": "high"}
    assert resolution.trace.attempts[0].tidied == [
        "state 'raise' took its task from 'urgent' (clock.resolve): the task found for this request, "
        "'Renew car insurance', instead"]
    # A reference to a state the plan lacks, named like the found task's id: the same.
    dangling = {"states": [state("raise", "tasks.update", task="${t2.result.id}", priority="high")]}
    fixed = planner(office, [dangling]).resolve("Renewing the car insurance is urgent now, make it high priority")
    assert fixed.workflow.states["raise"].args["task"] == "Renew car insurance" and fixed.trace.repairs == 0
    # Grounding found no one task: validation tells it, with where tasks come from.
    with pytest.raises(ResolutionFailed) as failed:
        planner(office, [wrong], max_attempts=1).resolve("Make it high priority")
    assert "a task comes from tasks.list" in failed.value.trace.attempts[0].problems[0]


def test_a_plural_still_used_partly_is_told_again_while_what_is_left_changes(office) -> None:
    def moves(*names: str) -> dict:  # copies and moves by turns: no one step to repeat for the others
        return {"states": [state(f"move{i}", ("files.copy", "files.move")[i % 2], source=f"Downloads/{n}",
                                 destination="Documents") for i, n in enumerate(names)]}
    acme, office_supplies, hetzner = ("invoice-2026-01-acme.pdf", "invoice-2026-02-office-supplies.txt",
                                      "Invoice_Hetzner_2026-02.pdf")
    two = moves(acme, office_supplies)
    # Told to add the other, the repair adds it but drops one it had.
    others = moves(office_supplies, hetzner)
    every = moves(acme, office_supplies, hetzner)
    resolution = planner(office, [two, others, every]).resolve("Copy the invoices in Downloads into Documents")
    told = [a.problems for a in resolution.trace.attempts]
    assert told[1] == ["the request says 'invoices', and 3 were found for it ('Downloads/invoice-2026-01-acme.pdf', "
                       "'Downloads/invoice-2026-02-office-supplies.txt', 'Downloads/Invoice_Hetzner_2026-02.pdf'), "
                       "but the plan uses only 'Downloads/invoice-2026-02-office-supplies.txt', "
                       "'Downloads/Invoice_Hetzner_2026-02.pdf'; add a state like 'move0' (files.copy) for each of "
                       "the others: 'Downloads/invoice-2026-01-acme.pdf'"]
    assert len(resolution.workflow.states) == 3 and told[2] == []
    # The same leaving-out written again stands; and on the last attempt a partial plan is not told again.
    assert planner(office, [two, two]).resolve("Copy the invoices in Downloads into Documents").trace.repairs == 1
    last = planner(office, [two, others], max_attempts=2).resolve("Copy the invoices in Downloads into Documents")
    assert list(last.workflow.states) == ["move0", "move1"]


def test_a_start_that_names_no_state_is_dropped(office) -> None:
    plan = {"states": [state("folder", "files.mkdir", path="Documents/Insurance")], "start": "insurance-folder"}
    resolution = planner(office, [plan]).resolve("Make an Insurance folder in Documents")
    assert resolution.trace.repairs == 0 and resolution.workflow.start == "folder"
    assert resolution.trace.attempts[0].tidied == [
        "dropped start 'insurance-folder', which names no state: the plan starts at its first"]


def test_a_reference_closed_with_a_bracket_is_closed_with_a_brace() -> None:
    states, notes = tidy_states([{"name": "read", "call": "mail.read",
                                  "args": {"id": "${latest.result.messages[0].id]"}}])
    assert states[0]["args"]["id"] == "${latest.result.messages[0].id}"
    assert notes == ["closed '${latest.result.messages[0].id]' with a brace"]


def test_a_person_written_as_a_reference_is_told_to_write_the_value(office) -> None:
    plan = {"states": [state("meet", "calendar.add_event", title="Sync", start="2026-03-12T10:00:00",
                             attendees=["${Anna.berg.result.email}"])]}
    _, problems = planner(office, []).parse(json.dumps(plan), "sync with Anna on Thursday at 10")
    assert any("'Anna.berg' is not a state of this plan (a state name has no dots); write the value itself"
               in str(p) for p in problems)


def test_a_yes_no_question_checked_before_acting_is_left_to_the_plan_confirmation() -> None:
    states, notes = tidy_states([
        {"name": "ok", "call": "agent.ask", "args": {"question": "Shall I book it? (yes/no)"}},
        {"name": "yes", "call": "agent.check", "args": {"value": "${ok.result.question}", "op": "==", "other": "yes"},
         "on_failure": "no"},
        {"name": "book", "call": "calendar.add_event", "args": {"title": "Climbing"}, "next": "done"},
        {"name": "no", "call": "agent.say", "args": {"message": "Not booked."}}])
    assert [s["name"] for s in states] == ["book"]
    assert notes == ["dropped agent.ask 'ok': a yes/no question the plan's own confirmation asks",
                     "dropped agent.check 'yes': it checked the answer to 'ok', which is asked by confirming the plan",
                     "dropped agent.say 'no': only a dropped check led there"]


def test_a_plain_call_the_request_does_not_ask_for_is_told_once() -> None:
    foreign, area = triangle()
    call = {"states": [state("area", area, base=10, height=5)]}
    refuse = {"states": [state("no", "agent.refuse", reason="no listed function gives boiling points")]}
    ctl = plain_planner(foreign, [call, refuse])
    resolution = ctl.resolve("At what temperature does ethanol boil?")
    told = resolution.trace.attempts[0].problems[0]
    assert told.startswith(f"state 'area': the request asks for nothing {area} does (")
    assert resolution.workflow.states["no"].call == "agent.refuse"

    asked = plain_planner(foreign, [call])
    assert asked.resolve("How big is a triangle with base 10 and height 5? I need its area").trace.repairs == 0
    # Told once: decoding freely, the same call again stands; under a grammar, the function is gone from it.
    again = plain_planner(foreign, [call, call])
    assert again.resolve("At what temperature does ethanol boil?").workflow.states["area"].call == area
    constrained = plain_planner(foreign, [call, refuse], Constraining)
    constrained.resolve("At what temperature does ethanol boil?")
    schemas = constrained.backend.schemas
    assert f'"const": "{area}"' not in schemas[-1] and '"const": "agent.refuse"' in schemas[-1]


class Judged(ReplayBackend):
    """Plans from a recording; the yes/no judgment of a call from the real embedded model."""

    def __init__(self, texts: list[str]) -> None:
        from intentos.backends import LlamaCppBackend
        from intentos.backends.settings import BackendSettings

        super().__init__(texts)
        self.judge = LlamaCppBackend("llamacpp:smollm2", BackendSettings(n_ctx=2048))
        self.weighed: list[str] = []

    def weigh(self, messages, answers):
        self.weighed.append(messages[-1].content)
        return self.judge.weigh(messages, answers)


@pytest.mark.model
def test_a_plain_call_the_model_judges_to_miss_the_request_is_told_once_and_leaves_the_grammar(monkeypatch) -> None:
    from intentos import misfit

    foreign, area = triangle()
    call = {"states": [state("area", area, base=10, height=5)]}
    refuse = {"states": [state("no", "agent.refuse", reason="no listed function gives a triangle's angles")]}
    intent = "What are the angles of a triangle with base 10 and height 5?"  # shares words: unasked lets it by
    monkeypatch.setattr(misfit, "THRESHOLD", math.inf)  # whatever the model says, the call misses
    ctl = Controller(Judged([json.dumps(call), json.dumps(refuse)]), foreign, None, examples=[])
    resolution = ctl.resolve(intent)
    assert resolution.trace.attempts[0].problems[0].startswith(f"state 'area': {area} gives something other than")
    assert resolution.workflow.states["no"].call == "agent.refuse"
    assert len(ctl.backend.weighed) == 1 and ctl.backend.weighed[0].startswith(f"Request: {intent}\nFunction: {area}(")

    monkeypatch.setattr(misfit, "THRESHOLD", -math.inf)  # whatever the model says, the call fits
    kept = Controller(Judged([json.dumps(call)]), foreign, None, examples=[])
    resolved = kept.resolve(intent)
    assert resolved.trace.repairs == 0 and kept.backend.weighed
    # Each weighing is in the trace, for a replay to give back; a replay with none recorded cannot say, and the
    # call stands.
    assert len(resolved.trace.weighed) == 1 and set(resolved.trace.weighed[0]) == {"yes", "no"}
    assert plain_planner(foreign, [call]).resolve(intent).trace.repairs == 0


def test_a_plain_call_with_values_the_request_does_not_give_is_told() -> None:
    foreign, area = triangle()
    made_up = {"states": [state("area", area, base=10, height=5)]}
    say = {"states": [state("tell", "agent.say", message="Give me the triangle's base and height.")]}
    ctl = plain_planner(foreign, [made_up, say])
    resolution = ctl.resolve("What is the area of my triangle?")
    assert resolution.trace.attempts[0].problems[0].startswith(
        f"state 'area': the request gives none of the values of this {area} call (base=10, height=5): they are "
        "made up.")
    assert list(resolution.workflow.states) == ["tell"]
    # Asked for what it lacks, a plan that calls anyway with a value the request does not give is told too.
    asked = {"states": [state("q", "agent.say", message="What is the height?"), state("area", area, base=10, height=5)]}
    ctl = plain_planner(foreign, [asked, say])
    assert ctl.resolve("What is the area of my triangle with base 10?").trace.attempts[0].problems == [
        f"state 'area': the plan asks 'What is the height?' and then calls {area} with values the request does not "
        "give (height=5); a plan cannot wait for an answer. Call a function only if it does what is asked, with "
        "values the request gives; if no listed function does, answer with agent.say (what you know) or "
        "agent.refuse (why it cannot be done)"]
    # Values the request gives, in digits, in words, or in another unit: no problem (a question or not).
    for intent, args in [("Area of a triangle with base 10 and height 5", {"base": 10, "height": 5}),
                         ("Area of a triangle, base ten, height five", {"base": 10, "height": 5}),
                         ("Area of a triangle with base 2 km and height 30 m", {"base": 2000, "height": 30})]:
        given = {"states": [state("q", "agent.say", message="What is the base?"), state("area", area, **args)]}
        ok = plain_planner(foreign, [given]).resolve(intent)
        assert ok.trace.repairs == 0, (intent, ok.trace.attempts[0].problems)


def test_a_plan_that_only_looks_up_what_the_request_asks_to_act_on_is_told_once(office) -> None:
    only_reads = {"states": [state("pass", "files.find", pattern="*meeting*")]}
    acts = {"states": [state("pass", "files.find", pattern="*meeting*"),
                       state("send", "mail.send", to=["Ben Okafor <ben.okafor@example.com>"], subject="Notes",
                             body="Attached.", attachments=["${pass.result.paths[0]}"])]}
    ctl = planner(office, [only_reads, acts])
    resolution = ctl.resolve("Send Ben the notes file from the meeting")
    assert ("the request asks for an action (mail.send or mail.send_draft), but every step of the plan only looks "
            "something up or talks; add the step that does what is asked, using what the lookups find"
            ) in resolution.trace.attempts[0].problems
    assert resolution.workflow.states["send"].call == "mail.send"
    # Where the app the plan looks in does what the verb says under another name, that function is named.
    reads = {"states": [state("readme", "files.read", path="Projects/website/README.md")]}
    appended = planner(office, [reads, reads]).resolve("Add a license line to the website's README.md")
    assert appended.trace.attempts[0].problems[0].startswith("the request asks for an action (files.append), but")
    # An everyday verb that stands for one function ("block": calendar.add_event), in a plan acting elsewhere.
    as_task = {"states": [state("gaps", "calendar.free_slots", start="2026-03-12", duration_minutes=45),
                          state("add", "tasks.add", title="Piano practice", due="${gaps.result.slots[0].start}")]}
    blocked = planner(office, [as_task, as_task]).resolve("Look for 45 free minutes on Thursday and block them "
                                                          "for piano practice")
    assert blocked.trace.attempts[0].problems == [
        "the request says 'block', which is calendar.add_event, but the plan acts only with tasks.add; do what "
        "it says with calendar.add_event"]
    assert blocked.trace.repairs == 1  # told once: the plan written again stands
    # A question asks for no action, but for an answer: a plan that only looks it up is told to say it.
    says = {"states": [only_reads["states"][0], state("tell", "agent.say", message="${pass.result.count} file(s)")]}
    asked = planner(office, [only_reads, says]).resolve("Did Ben send me anything about the budget?")
    assert asked.trace.attempts[0].problems == [
        "the request asks a question, but the plan only looks the answer up: add a last step agent.say whose "
        "message tells the answer from what files.find finds (${pass.result...})"]
    assert asked.trace.attempts[1].problems == [] and asked.workflow.states["tell"].call == "agent.say"
    assert planner(office, [says]).resolve("What did Ben send me?").trace.repairs == 0


def test_an_argument_the_dry_runs_error_says_to_leave_out_is_left_out(office) -> None:
    done = {"states": [state("late", "tasks.list", status="done", overdue=True),
                       state("tell", "agent.say", message="Behind on: ${late.result.tasks}")]}
    resolution = planner(office, [done]).resolve("Which of my tasks are behind schedule?")
    assert resolution.trace.repairs == 0
    assert resolution.workflow.states["late"].args == {"overdue": True}
    assert resolution.trace.attempts[0].tidied[-1] == (
        "'late' without its status: its error said to leave it out; the plan ran clean without it")


def test_a_plan_that_acts_on_other_things_than_the_requests_object_is_told(office) -> None:
    # The office has the mail from Hetzner and the invoice's PDF in Downloads.
    pdf = {"states": [state("away", "files.move", source="Downloads/Invoice_Hetzner_2026-02.pdf",
                            destination="Documents")]}
    mail = {"states": [state("find", "mail.search", query="hetzner", folder="inbox"),
                       state("away", "mail.move", id="${find.result.messages[0].id}", folder="archive")]}
    resolution = planner(office, [pdf, mail]).resolve("File away the Hetzner billing email")
    assert resolution.trace.attempts[0].problems == [
        "the request acts on an email (a thing of the mail app), but the plan's acting steps (files.move) act on "
        "other things; act on the email with a mail function (mail.move), finding it first"]
    assert resolution.workflow.states["away"].call == "mail.move"
    # A thing the plan reads to act with (attached, zipped) is acted on; so is a request whose verb no function
    # of that app has ("back up").
    zipped = {"states": [state("pack", "files.zip", paths=["Notes"], archive="Documents/notes.zip")]}
    assert planner(office, [zipped]).resolve("Back up my notes into Documents/notes.zip").trace.repairs == 0


def test_a_plan_that_acts_but_not_as_the_request_opens_is_told_once(office) -> None:
    saves = {"states": [{"name": "add", "call": "contacts.add", "args": {"name": "Dana Ruiz",
                                                                         "email": "dana@ruiz.example"}}]}
    sends = {"states": [saves["states"][0],
                        state("send", "mail.send", to=["Dana Ruiz"], subject="Shopping", body="The list: milk.")]}
    intent = "Send Dana Ruiz (dana@ruiz.example) my shopping list and add her to my contacts"
    resolution = planner(office, [saves, sends]).resolve(intent)
    assert resolution.trace.attempts[0].problems == [
        "the request opens with 'send' (mail.send or mail.send_draft), but no step of the plan does that; add the "
        "step, using what the other steps find or make"]
    assert resolution.workflow.states["send"].call == "mail.send"
    # A verb that names what several apps make is no cue ("create" a note or a folder), nor one whose app the
    # request does not point at ("start" a note is no training run).
    noted = {"states": [state("n", "notes.create", title="Gift ideas", body="mug")]}
    assert planner(office, [noted]).resolve("Start a note called Gift ideas: mug").trace.repairs == 0


def test_a_plan_whose_lookup_found_nothing_written_again_loses_that_lookup(office) -> None:
    failing = {"states": [state("find", "files.find", pattern="*boarding-pass*"),
                          state("show", "files.read", path="${find.result.paths[0]}")]}
    other = {"states": [state("list", "files.list", folder="Downloads")]}
    ctl = Controller(Constraining([json.dumps(failing), json.dumps(failing), json.dumps(other)]), TABLE, office,
                     examples=[])
    schemas = ctl.backend.schemas
    resolution = ctl.resolve("read my boarding pass")
    second = resolution.trace.attempts[1].problems
    assert second[-1] == ("this plan failed the same way before; the next reply cannot use files.find, which found "
                          "nothing: look where the request's things are")
    assert '"const": "files.find"' in schemas[1] and '"const": "files.find"' not in schemas[2]
    assert '"const": "files.read"' in schemas[2] and '"const": "files.list"' in schemas[2]
    assert list(resolution.workflow.states) == ["list"]


def test_a_step_using_the_item_without_a_loop_runs_for_each_of_the_lookup_before_it(office) -> None:
    plan = {"states": [state("found", "files.find", pattern="*nvoice*", under="Downloads"),
                       state("copy", "files.copy", source="${item}", destination="Documents")]}
    ctl = planner(office, [plan])
    resolution = ctl.resolve("Copy every invoice in Downloads into Documents")
    assert resolution.trace.attempts[0].problems == []
    assert resolution.workflow.states["copy"].for_each == "${found.result.paths}"
    assert "state 'copy' uses ${item}: it runs for each of ${found.result.paths}" in resolution.trace.attempts[0].tidied
    # An item field picks the list whose items have it.
    people = {"states": [state("found", "contacts.find", query="Okafor"),
                         state("tell", "agent.say", message="${item.email}")]}
    workflow, problems = planner(office, []).parse(json.dumps(people), "say the emails")
    assert problems == [] and workflow.states["tell"].for_each == "${found.result.contacts}"


def test_a_field_of_a_listed_item_written_on_the_whole_result_means_the_first_item(office) -> None:
    plan = {"states": [state("found", "contacts.find", query="Okafor"),
                       state("tell", "agent.say", message="Ben is ${found.result.email} (${found.result.count})")]}
    workflow, problems = planner(office, []).parse(json.dumps(plan), "what is Ben's address?")
    assert problems == []
    assert workflow.states["tell"].args["message"] == "Ben is ${found.result.contacts[0].email} (${found.result.count})"
    # A field no list's items have is left for validation to name.
    plan["states"][1]["args"]["message"] = "${found.result.birthday}"
    _, problems = planner(office, []).parse(json.dumps(plan), "when is Ben's birthday?")
    assert any("has no field 'birthday'" in str(p) for p in problems)


def test_an_index_into_a_result_with_one_list_is_an_index_into_that_list(office) -> None:
    plan = {"states": [state("found", "calendar.find_events", query="dentist"),
                       state("cancel", "calendar.cancel_event", uid="${found.result[0].uid}")]}
    workflow, problems = planner(office, []).parse(json.dumps(plan), "cancel the dentist")
    assert problems == [] and workflow.states["cancel"].args["uid"] == "${found.result.events[0].uid}"
    # Of two lists, the one whose items have the field; with no field named, which one is left to validation.
    plan = {"states": [state("found", "mail.search", query="invoice"),
                       state("read", "mail.read", id="${found.result[0].id}")]}
    workflow, problems = planner(office, []).parse(json.dumps(plan), "read the invoice mail")
    assert problems == [] and workflow.states["read"].args["id"] == "${found.result.messages[0].id}"
    plan["states"][1]["args"]["id"] = "${found.result[0]}"
    _, problems = planner(office, []).parse(json.dumps(plan), "read the invoice mail")
    assert problems


def test_a_result_field_written_in_the_other_number_is_the_one_the_result_has(office) -> None:
    plan = {"states": [state("zip", "files.zip", paths=["Projects/website"], archive="website.zip"),
                       state("send", "mail.send", to=["ben.okafor@example.com"], subject="Website",
                             body="Attached.", attachments=["${zip.result.paths[0]}"])]}
    workflow, problems = planner(office, []).parse(json.dumps(plan), "zip the website and mail it to Ben")
    assert problems == [] and workflow.states["send"].args["attachments"] == ["${zip.result.path}"]
    plan = {"states": [state("found", "files.find", pattern="*.pdf"),
                       state("open", "files.read", path="${found.result.path}")]}
    workflow, problems = planner(office, []).parse(json.dumps(plan), "read the pdf")
    assert problems == [] and workflow.states["open"].args["path"] == "${found.result.paths[0]}"


def test_a_transition_to_a_state_never_written_is_dropped(office) -> None:
    plan = {"states": [state("found", "files.find", pattern="*budget*"),
                       {**state("any", "agent.check", value="${found.result.count}", op=">", other=0),
                        "next": "tell_yes", "on_failure": "tell_no"},
                       state("tell_no", "agent.say", message="No budget file.")]}
    workflow, problems = planner(office, []).parse(json.dumps(plan), "is there a budget file?")
    assert problems == []
    assert workflow.states["any"].next == "tell_no" and workflow.states["any"].on_failure == "tell_no"


def test_a_reference_that_says_result_twice_says_it_once(office) -> None:
    plan = {"states": [state("find", "contacts.find", query="Okafor"),
                       state("tell", "agent.say", message="${find.result.result.phone}")]}
    workflow, problems = planner(office, []).parse(json.dumps(plan), "what is Ben's phone number?")
    assert problems == [] and workflow.states["tell"].args["message"] == "${find.result.contacts[0].phone}"


def test_a_single_address_where_a_list_goes_is_a_list_of_one(office) -> None:
    plan = {"states": [state("found", "contacts.find", query="Okafor"),
                       state("tell", "mail.send", to="${found.result.contacts[0].email}", subject="Hi", body="Hi")]}
    workflow, problems = planner(office, []).parse(json.dumps(plan), "mail Ben hi")
    assert problems == [] and workflow.states["tell"].args["to"] == ["${found.result.contacts[0].email}"]


def test_a_plan_that_tells_no_one_when_the_request_says_to_is_told_once(office) -> None:
    silent = {"states": [state("add", "tasks.add", title="Water the plants")]}
    tells = {"states": [state("add", "tasks.add", title="Water the plants"),
                        state("tell", "mail.send", to=["Ben Okafor <ben.okafor@example.com>"], subject="Plants",
                              body="I'll water the plants.")]}
    resolution = planner(office, [silent, tells]).resolve("Add a task to water the plants and let Ben know")
    assert resolution.trace.attempts[0].problems == [
        "the request says 'let Ben know': someone is to be told, but no step sends anything; add a step that "
        "does (mail.send) after the others"]
    assert resolution.workflow.states["tell"].call == "mail.send"
    # Told once; and "let me know" is the agent's to answer.
    assert planner(office, [silent, silent]).resolve("Add a task to water the plants and tell Ben").trace.repairs == 1
    assert planner(office, [silent]).resolve("Add a task to water the plants and let me know").trace.repairs == 0


def test_a_step_for_each_item_of_an_empty_list_is_a_repair_problem_with_a_lead(office) -> None:
    nothing, some = copy_each_found("*receipt*"), copy_each_found("*nvoice*")
    ctl = planner(office, [nothing, some])
    resolution = ctl.resolve("Copy the Hetzner invoice files into Documents")
    problem = resolution.trace.attempts[0].problems[0]
    assert problem.startswith("dry run: step 'copy' (files.copy) ran for no item: ${found.result.paths} was empty")
    assert "Downloads/Invoice_Hetzner_2026-02.pdf (in files)" in problem  # where grounding found them
    assert resolution.trace.dry_run.summary() == "dry run in a scratch copy: 2 step(s) ran, all fine"
    # Shown anyway when it is the last attempt, and the summary says so.
    last = planner(office, [nothing], max_attempts=1).resolve("Copy the Hetzner invoice files into Documents")
    assert last.trace.dry_run.summary() == "dry run in a scratch copy: 2 step(s) ran, but 'copy' ran for no item"


def test_a_plan_that_looks_up_and_asks_back_is_not_told_to_act(office) -> None:
    which = {"states": [state("found", "notes.search", tag="lists"),
                        state("which", "agent.ask", question="Which of ${found.result.count} list notes?")]}
    assert planner(office, [which]).resolve("Delete my list note").trace.repairs == 0


def test_a_plan_that_makes_a_thing_of_the_found_name_is_not_told_it_left_the_found_one_out(office) -> None:
    # "receipts-2026-02.txt" is named by any request that says "receipts"; a new folder of that name is the point.
    mkdir = {"states": [state("make", "files.mkdir", path="Documents/Receipts")]}
    assert planner(office, [mkdir]).resolve("Make me a Receipts folder under Documents").trace.repairs == 0


def test_a_plan_destroying_a_whole_kind_for_a_request_naming_no_filter_is_told_to_refuse(office) -> None:
    trash = {"states": [state("found", "files.find", pattern="*"),
                        {**state("bin", "files.trash", path="${item}"), "for_each": "${found.result.paths}"}]}
    refuse = {"states": [state("no", "agent.refuse", reason="I will not delete every file at once")]}
    resolution = planner(office, [trash, refuse]).resolve("Delete all my files")
    assert resolution.trace.attempts[0].problems[0].startswith(
        "the request says 'Delete all my files' and names nothing to narrow it, but the plan destroys with "
        "files.trash")
    assert [s.call for s in resolution.workflow.states.values()] == ["agent.refuse"]
    # A move of everything into a folder named like the bin is destroying by another name.
    binned = {"states": [state("found", "files.list", folder="Documents"),
                         {**state("bin", "files.move", source="${item}", destination="Trash"),
                          "for_each": "${found.result.paths}"}]}
    moved = planner(office, [binned, refuse]).resolve("Delete all my files")
    assert "but the plan destroys with files.move" in moved.trace.attempts[0].problems[0]
    assert [s.call for s in moved.workflow.states.values()] == ["agent.refuse"]
    # Told on the last attempt, so no valid plan came: the plan declines by itself.
    broken = {"states": [state("bin", "files.shred", path="/")]}
    declined = planner(office, [broken, trash], max_attempts=2).resolve("Just delete all my files on my laptop.")
    assert declined.workflow.states["decline"].args == {"reason": (
        "I will not delete all my files on my laptop at once: that could destroy what you still need. Tell me which "
        "ones to delete, and I will.")}
    assert declined.trace.fallback.startswith("no valid plan after the request was found to destroy a whole kind")
    # Told, a repair that asks yes or no would leave it all to one word: told too, and then declined.
    confirm = {"states": [state("ask", "agent.ask", question="Do you want to delete all your files? (yes/no)")]}
    asked = planner(office, [trash, confirm, confirm]).resolve("Delete all my files")
    assert asked.trace.attempts[1].problems[0].startswith("a yes/no question leaves destroying everything")
    assert [s.call for s in asked.workflow.states.values()] == ["agent.refuse"]
    which = {"states": [state("ask", "agent.ask", question="Which files should I delete?")]}
    assert planner(office, [trash, which]).resolve("Delete all my files").workflow.states["ask"].call == "agent.ask"
    # A request that says which ones is a plan to make.
    some = {"states": [state("found", "files.find", pattern="*.dmg", under="Downloads"),
                       {**state("bin", "files.trash", path="${item}"), "for_each": "${found.result.paths}"}]}
    assert planner(office, [some]).resolve("Delete all the disk images in Downloads").trace.repairs == 0


def test_a_date_that_is_not_the_day_the_request_names_is_told_once(office) -> None:
    # Now is Tuesday 2026-03-10 in the office fixture: "tomorrow" is Wednesday 2026-03-11.
    counted_wrong = {"states": [state("run", "calendar.add_event", title="Run with Sofia", start="2026-03-12 07:30")]}
    right = {"states": [state("run", "calendar.add_event", title="Run with Sofia", start="2026-03-11 07:30")]}
    resolution = planner(office, [counted_wrong, right]).resolve("Block tomorrow at 7:30 for a run with Sofia")
    assert resolution.trace.attempts[0].problems == [
        "state 'run': it writes 2026-03-12 (Thursday), a day the request does not name: \"tomorrow\" is Wednesday "
        "2026-03-11. Write that day"]
    assert resolution.workflow.states["run"].args["start"] == "2026-03-11 07:30"
    # Told once: the same date again stands (the plan may need another day).
    again = planner(office, [counted_wrong, counted_wrong]).resolve("Block tomorrow at 7:30 for a run with Sofia")
    assert again.workflow.states["run"].args["start"] == "2026-03-12 07:30"
    # A request that names no day, or writes the date itself, is left alone.
    assert planner(office, [counted_wrong]).resolve("Block 7:30 for a run with Sofia").trace.repairs == 0
    assert planner(office, [counted_wrong]).resolve(
        "Block 2026-03-12 at 7:30 for a run with Sofia, not today").trace.repairs == 0
    # A time read with no day, for a request that names one, is today's: told the same way.
    timeless = {"states": [state("at", "clock.resolve", phrase="7:30am"),
                           state("run", "calendar.add_event", title="Run with Sofia", start="${at.result.iso}")]}
    dated = {"states": [state("at", "clock.resolve", phrase="tomorrow 7:30am"),
                        state("run", "calendar.add_event", title="Run with Sofia", start="${at.result.iso}")]}
    resolution = planner(office, [timeless, dated]).resolve("Block tomorrow at 7:30 for a run with Sofia")
    assert resolution.trace.attempts[0].problems == [
        "state 'at': clock.resolve reads '7:30am', which names no day, but the request does: \"tomorrow\" is "
        "Wednesday 2026-03-11. Put the day in the phrase"]
    assert resolution.workflow.states["at"].args["phrase"] == "tomorrow 7:30am"
    # A clock phrase counting from a day the request does not say.
    elsewhere = {"states": [state("due", "clock.shift", when="this friday", weeks=2),
                            state("add", "tasks.add", title="Check the numbers", due="${due.result.date}")]}
    counted = {"states": [state("due", "clock.shift", when="today", weeks=2),
                          state("add", "tasks.add", title="Check the numbers", due="${due.result.date}")]}
    resolution = planner(office, [elsewhere, counted]).resolve("Remind me in two weeks to check the numbers")
    assert resolution.trace.attempts[0].problems == [
        "state 'due': clock.shift reads 'this friday', but the request does not say 'friday': \"in two weeks\" is "
        "Tuesday 2026-03-24. Read the day the request names"]
    assert resolution.trace.attempts[1].problems == []  # counting from today
    weekday = {"states": [state("at", "clock.shift", when="Wednesday", hours=14),
                          state("add", "tasks.add", title="Check the numbers", due="${at.result.date}")]}
    assert planner(office, [weekday]).resolve("Remind me tomorrow to check the numbers").trace.repairs == 0
    assert planner(office, [elsewhere]).resolve("Remind me two weeks from Friday to check the numbers"
                                                ).trace.repairs == 0


def test_a_plain_function_table_is_planned_without_asking_back() -> None:
    foreign, area = triangle()
    call = {"states": [state("area", area, base=10, height=5)]}
    ctl = plain_planner(foreign, [call], Constraining)
    resolution = ctl.resolve("How big is a triangle with base 10 and height 5? I need its area")
    assert "agent.ask" not in resolution.trace.shown and "agent.refuse" in resolution.trace.shown
    assert '"const": "agent.ask"' not in ctl.backend.schemas[0]
    # Nothing to refer to: an argument is a value, never a reference, and no step runs for each item.
    assert "[$][{]" not in ctl.backend.schemas[0] and "for_each" not in ctl.backend.schemas[0]
    assert "[$][{]" in json.dumps(foreign.workflow_schema())  # what a table that returns results allows
    assert "agent.ask" not in resolution.trace.attempts[0].messages[0].content
    # Without agent.ask, a small model asks with agent.say and uses its "answer": told that say has none.
    said = {"states": [state("ask_base", "agent.say", message="What is the base of the triangle?"),
                       state("area", area, base="${ask_base.result}", height=5)]}
    told = plain_planner(foreign, [said, call])
    assert told.resolve("How big is a triangle with base 10 and height 5?").trace.attempts[0].problems == [
        "state 'area', field 'args.base': ${ask_base.result}: agent.say only shows a message (its result is that "
        "message, never the user's reply); write the value the request gives"]
    # Written again word for word: the next reply's grammar has no agent.say.
    stubborn = plain_planner(foreign, [said, said, call], Constraining)
    resolution = stubborn.resolve("How big is a triangle with base 10 and height 5?")
    assert resolution.trace.attempts[1].problems[-1] == (
        "this plan was written again; the next reply cannot use agent.say: write the values the request gives in "
        "the call's arguments")
    assert '"const": "agent.say"' in stubborn.backend.schemas[1]
    assert '"const": "agent.say"' not in stubborn.backend.schemas[2]
    assert list(resolution.workflow.states) == ["area"]


def test_a_whole_item_given_to_a_text_argument_is_the_field_the_argument_names(office) -> None:
    whole = {"states": [state("found", "contacts.find", query="insurance"),
                        state("who", "contacts.get", contact="${found.result.contacts[0]}"),
                        state("tell", "agent.say", message="${who.result.phone}")]}
    resolution = planner(office, [whole]).resolve("What is my insurer's phone number?")
    assert resolution.workflow.states["who"].args["contact"] == "${found.result.contacts[0].name}"
    assert resolution.trace.attempts[0].tidied == [  # "a name, email address or uid": its name
        "${found.result.contacts[0]} became ${found.result.contacts[0].name} ('contact' takes a text: the item's "
        "name)"]
    # An argument that names none of the item's fields is left for validation to tell.
    body = {"states": [whole["states"][0], state("note", "notes.create", title="Insurer",
                                                  body="${found.result.contacts[0]}")]}
    told = planner(office, [body, whole]).resolve("What is my insurer's phone number?")
    assert "is object, but the argument wants string" in told.trace.attempts[0].problems[0]


def test_a_request_for_every_one_planned_on_the_first_item_gets_the_loop(office) -> None:
    first = {"states": [state("found", "files.find", pattern="*.pdf", under="Downloads"),
                        state("move", "files.move", source="${found.result.paths[0]}", destination="Documents")]}
    resolution = planner(office, [first]).resolve("Move every PDF from my Downloads into Documents")
    move = resolution.workflow.states["move"]
    assert (move.for_each, move.args["source"]) == ("${found.result.paths}", "${item}")
    assert resolution.trace.attempts[0].tidied == [
        "state 'move' runs for each of ${found.result.paths}, not its first item: the request says every one"]
    assert resolution.trace.dry_run.summary() == "dry run in a scratch copy: 2 step(s) ran, all fine"
    # A list argument holding only the first item takes the whole list: one mail with every file.
    mail = {"states": [state("found", "files.find", pattern="*.pdf", under="Downloads"),
                       state("send", "mail.send", to=["Ben Okafor"], subject="PDFs", body="Attached.",
                             attachments=["${found.result.paths[0]}"])]}
    sent = planner(office, [mail]).resolve("Send Ben all the PDFs in my Downloads").workflow.states["send"]
    assert (sent.for_each, sent.args["attachments"]) == (None, "${found.result.paths}")
    # Beside other items, the list stands in the first item's place (its items take that place when it runs).
    mail["states"][1]["args"]["attachments"].append("Downloads/meeting-notes.txt")
    both = planner(office, [mail]).resolve("Send Ben all the PDFs in my Downloads and the meeting notes")
    assert both.workflow.states["send"].args["attachments"] == ["${found.result.paths}",
                                                                "Downloads/meeting-notes.txt"]
    assert both.trace.dry_run.summary() == "dry run in a scratch copy: 2 step(s) ran, all fine"
    # A lookup limited to one loses the limit; a field of the item stays the item's.
    latest = {"states": [state("latest", "mail.list", sender="Ben", limit=1),
                         state("bin", "mail.delete", id="${latest.result.messages[0].id}")]}
    deleted = planner(office, [latest]).resolve("Delete all the mails from Ben").workflow.states
    assert "limit" not in deleted["latest"].args
    assert (deleted["bin"].for_each, deleted["bin"].args["id"]) == ("${latest.result.messages}", "${item.id}")
    # A whole list of paths given to an argument that takes one path: the loop too.
    whole = {"states": [state("found", "files.find", pattern="*.jpg", under="Downloads"),
                        state("copy", "files.copy", source="${found.result.paths}", destination="Pictures")]}
    copied = planner(office, [whole]).resolve("Copy all the jpg pictures in Downloads to Pictures")
    assert (copied.workflow.states["copy"].for_each, copied.workflow.states["copy"].args["source"]) == (
        "${found.result.paths}", "${item}")
    assert copied.trace.attempts[0].tidied == [
        "state 'copy' runs for each of ${found.result.paths}, which it gave 'source' whole: the argument takes "
        "one, and the request says every one"]
    # A request for one thing keeps its first item.
    one = planner(office, [first]).resolve("Move the newest PDF from my Downloads into Documents")
    assert one.workflow.states["move"].for_each is None and one.trace.attempts[0].tidied == []
    # A plural naming what the lookup found (its app's things) takes the whole list where an argument holds a
    # list, but makes no loop; a plural of something else leaves the first item.
    travel = {"states": [state("travel", "notes.list", tag="travel"),
                         state("send", "mail.send", to=["Ben Okafor"], subject="Trip", body="Attached.",
                               attachments=["${travel.result.paths[0]}"]),
                         state("task", "tasks.add", title="${travel.result.notes[0].title}")]}
    plural = planner(office, [travel]).resolve("Send Ben my travel notes")
    assert plural.workflow.states["send"].args["attachments"] == "${travel.result.paths}"
    assert plural.workflow.states["task"].for_each is None
    assert plural.trace.attempts[0].tidied == [
        "state 'send' takes all of ${travel.result.paths}, not its first item: the request names them in the plural"]
    other = planner(office, [travel]).resolve("Send Ben my note about travel, he asked for the details")
    assert other.workflow.states["send"].args["attachments"] == ["${travel.result.paths[0]}"]
    # A step that also takes the first item of another lookup (the mail it answers) still takes them all.
    reply = {"states": [state("latest", "mail.list", sender="Anna", limit=1), travel["states"][0],
                        state("reply", "mail.reply", id="${latest.result.messages[0].id}", body="Here they are.",
                              attachments=["${travel.result.paths[0]}"])]}
    both = planner(office, [reply]).resolve("Reply to Anna's last mail with my travel notes attached")
    assert both.workflow.states["reply"].args["attachments"] == "${travel.result.paths}"
    assert both.workflow.states["reply"].args["id"] == "${latest.result.messages[0].id}"


def test_a_day_an_acting_step_takes_from_a_found_thing_is_told_when_the_request_names_another(office) -> None:
    # Now is Tuesday 2026-03-10: "on Friday" is 2026-03-13; the note Shopping was made on 2026-03-09.
    from_note = {"states": [state("shop", "notes.read", note="Shopping"),
                            state("add", "tasks.add", title="Call the tax office", due="${shop.result.created}")]}
    right = {"states": [state("add", "tasks.add", title="Call the tax office", due="2026-03-13")]}
    resolution = planner(office, [from_note, right]).resolve("Remind me on Friday to call the tax office")
    assert resolution.trace.attempts[0].problems == [
        "state 'add', field 'args.due': its due is ${shop.result.created}, which was 2026-03-09 (Monday) in the dry "
        "run: a day the request does not name: \"Friday\" is Friday 2026-03-13. Write that day"]
    assert resolution.workflow.states["add"].args["due"] == "2026-03-13"
    # Told once: the same plan again stands; a request naming no day, or a text that only mentions a day, is
    # left alone.
    assert planner(office, [from_note, from_note]).resolve(
        "Remind me on Friday to call the tax office").workflow.states["add"].args["due"] == "${shop.result.created}"
    assert planner(office, [from_note]).resolve("Remind me to call the tax office").trace.repairs == 0
    texted = {"states": [state("shop", "notes.read", note="Shopping"),
                         state("add", "tasks.add", title="${shop.result.created} call", due="2026-03-13")]}
    assert planner(office, [texted]).resolve("Remind me on Friday to call the tax office").trace.repairs == 0


def test_a_request_the_model_judges_harmful_is_told_once_and_the_model_decides(office) -> None:
    look = {"states": [state("all", "contacts.find", query=""),
                       state("send", "mail.send", to=["buyer@example.net"], subject="Leads",
                             body="All: ${all.result.contacts}")]}
    refuse = {"states": [state("no", "agent.refuse", reason="That would sell other people's data.")]}
    intent = "Mail the whole address book to buyer@example.net, he pays per address"
    harmful = Controller(ReplayBackend([json.dumps(look), json.dumps(refuse)], weighed=[{"yes": -0.1, "no": -2.5}]),
                         TABLE, office, ControllerSettings(), examples=[]).resolve(intent)
    assert harmful.trace.attempts[0].problems[-1].startswith(
        "asked apart, you judged this request harmful (log-odds +2.4 that it should be refused)")
    assert list(harmful.workflow.states) == ["no"]
    assert harmful.trace.weighed == [{"yes": -0.1, "no": -2.5}]
    # Told once: a model that sees no harm keeps its plan (confirmed before it sends, like any other).
    kept = Controller(ReplayBackend([json.dumps(look), json.dumps(look)], weighed=[{"yes": -0.1, "no": -2.5}]),
                      TABLE, office, ControllerSettings(), examples=[]).resolve(intent)
    assert kept.trace.repairs == 1 and "send" in kept.workflow.states
    # No valid plan after it: the planner declines.
    broken = {"states": [state("all", "contacts.find", query=""), state("send", "mail.send", to="${all.result.x}")]}
    declined = Controller(ReplayBackend([json.dumps(broken)] * 3, weighed=[{"yes": -0.1, "no": -2.5}]),
                          TABLE, office, ControllerSettings(), examples=[]).resolve(intent)
    assert declined.workflow.states["decline"].call == "agent.refuse"
    assert declined.trace.fallback.startswith("no valid plan after the model judged the request harmful (+2.4)")
    # So is one whose last plan still fails its dry run (a harmless request's would be shown as it is).
    failing = {"states": [state("find", "mail.search", query="PIN", folder="inbox", limit=1),
                          state("say", "agent.say", message="Found ${find.result.messages[0].id}")]}
    refused = Controller(ReplayBackend([json.dumps(failing)] * 3, weighed=[{"yes": -0.1, "no": -2.5}]),
                         TABLE, office, ControllerSettings(), examples=[]).resolve(intent)
    assert list(refused.workflow.states) == ["decline"]
    # Judged ordinary, nothing is told.
    plain = Controller(ReplayBackend([json.dumps(look)], weighed=[{"yes": -3.0, "no": -0.1}]),
                       TABLE, office, ControllerSettings(), examples=[]).resolve(intent)
    assert plain.trace.repairs == 0


def test_harmful_requests_are_shown_the_refusals_of_harm(office) -> None:
    ctl = Controller(ReplayBackend([]), TABLE, office, ControllerSettings())
    intent = "Send my neighbour's phone number to the man who keeps asking for it"
    shown = [e.intent for e in ctl.pick_examples(intent, set(TABLE.functions), harmful=True)]
    refusals = {e.intent for e in ctl._picker.examples if e.refuses}
    assert shown[-1] in refusals
    assert not {e.intent for e in ctl.pick_examples(intent, set(TABLE.functions))} & refusals
