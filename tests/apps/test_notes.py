"""The notes app, through its functions, on a real sandbox."""

from __future__ import annotations

import pytest
import yaml

from intentos.app import Context
from intentos.apps.notes import (
    AppendArgs,
    CreateArgs,
    ListArgs,
    NotesApp,
    ReadArgs,
    SearchArgs,
    TagArgs,
)
from intentos.errors import AppError
from intentos.executor import Executor
from intentos.table import FunctionTable
from intentos.workflow import Workflow


@pytest.fixture
def notes(ctx: Context) -> NotesApp:
    app = NotesApp(ctx)
    app.seed([
        {"title": "Trip to Lisbon", "body": "Flights booked.\nHotel near Alfama.", "tags": ["travel"],
         "created": "2026-03-01T10:00:00"},
        {"title": "Packing list", "body": "passport, charger", "tags": ["travel", "#Checklist"]},
        {"title": "Budget 2026", "body": "rent, food, flights", "tags": ["work"]},
    ])
    return app


def front_matter(ctx: Context, path: str) -> dict:
    text = (ctx.sandbox.root / path).read_text()
    return yaml.safe_load(text.split("---\n")[1])


def test_seed_and_summary(notes: NotesApp, ctx: Context) -> None:
    assert notes.summary() == "3 notes; tags: travel, checklist, work"
    meta = front_matter(ctx, "Notes/trip-to-lisbon.md")
    assert meta == {"title": "Trip to Lisbon", "tags": ["travel"], "created": "2026-03-01T10:00:00+01:00",
                    "updated": "2026-03-01T10:00:00+01:00"}
    assert NotesApp(Context(sandbox=ctx.sandbox.__class__(ctx.sandbox.root / "empty"))).summary() == "no notes"
    with pytest.raises(AppError, match="list of notes"):
        notes.seed({"title": "x"})


def test_create_writes_front_matter_and_slug_collisions_get_suffixes(notes: NotesApp, ctx: Context) -> None:
    ref = notes.create(CreateArgs(title="Shopping", body="milk\neggs", tags=["Home", "home"]))
    assert (ref.path, ref.title, ref.tags) == ("Notes/shopping.md", "Shopping", ["home"])
    text = (ctx.sandbox.root / ref.path).read_text()
    assert text.startswith("---\ntitle: Shopping\n") and text.endswith("---\nmilk\neggs\n")
    assert front_matter(ctx, ref.path)["created"] == "2026-03-10T09:00:00+01:00"
    assert notes.create(CreateArgs(title="Shopping!")).path == "Notes/shopping-2.md"
    assert notes.create(CreateArgs(title="shopping")).path == "Notes/shopping-3.md"
    assert notes.create(CreateArgs(title="Café über")).path == "Notes/cafe-uber.md"
    with pytest.raises(AppError, match="needs a title"):
        notes.create(CreateArgs(title="  "))


def test_append_and_read(notes: NotesApp, ctx: Context) -> None:
    notes.append(AppendArgs(note="packing list", text="- sunscreen"))
    note = notes.read(ReadArgs(note="Notes/packing-list.md"))
    assert note.title == "Packing list" and note.body == "passport, charger\n- sunscreen\n"
    assert note.tags == ["travel", "checklist"]
    assert note.updated == "2026-03-10T09:00:00+01:00"
    assert notes.read(ReadArgs(note="trip-to-lisbon.md")).created == "2026-03-01T10:00:00+01:00"


def test_unknown_and_ambiguous_titles(notes: NotesApp) -> None:
    with pytest.raises(AppError, match="no note titled 'Trip to Lisbo'; did you mean 'Trip to Lisbon'"):
        notes.read(ReadArgs(note="Trip to Lisbo"))
    notes.create(CreateArgs(title="Trip to Lisbon", body="second copy"))
    with pytest.raises(AppError, match="2 notes are titled 'Trip to Lisbon'.*trip-to-lisbon-2.md"):
        notes.append(AppendArgs(note="Trip to Lisbon", text="x"))
    assert notes.read(ReadArgs(note="Notes/trip-to-lisbon-2.md")).body == "second copy\n"
    # A word of several notes' titles or tags names none of them: both are listed, to ask which.
    notes.create(CreateArgs(title="Shopping", tags=["lists"]))
    notes.create(CreateArgs(title="Gift list"))
    with pytest.raises(AppError, match="no note is titled 'list', and 3 notes have it in their title or tags: "
                                       ".*if nothing says which, ask") as listed:
        notes.read(ReadArgs(note="list"))
    assert all(f"'{title}' (Notes/" in str(listed.value) for title in ("Packing list", "Shopping", "Gift list"))
    with pytest.raises(AppError, match="did you mean 'Gift list'"):
        notes.read(ReadArgs(note="gift"))
    with pytest.raises(AppError, match="there is no note Notes/nope.md"):
        notes.read(ReadArgs(note="Notes/nope.md"))


@pytest.mark.parametrize("ref", ["../x.md", "/etc/passwd"])
def test_paths_outside_the_sandbox_are_refused(notes: NotesApp, ref: str) -> None:
    with pytest.raises(AppError, match="outside the sandbox"):
        notes.read(ReadArgs(note=ref))


def test_a_file_outside_notes_is_not_a_note(notes: NotesApp, ctx: Context) -> None:
    ctx.sandbox.write_text("Documents/readme.md", "hello")
    with pytest.raises(AppError, match="not a note"):
        notes.read(ReadArgs(note="Documents/readme.md"))


def test_search_by_words_and_tag(notes: NotesApp) -> None:
    found = notes.search(SearchArgs(query="flights"))
    assert found.paths == ["Notes/budget-2026.md", "Notes/trip-to-lisbon.md"]  # newer first, no title match
    assert notes.search(SearchArgs(query="lisbon hotel")).paths == ["Notes/trip-to-lisbon.md"]
    assert notes.search(SearchArgs(query="LISBON hotel rent")).count == 0
    hit = notes.search(SearchArgs(query="alfama")).notes[0]
    assert "Alfama" in hit.snippet and hit.tags == ["travel"]
    travel = notes.search(SearchArgs(tag="#Travel"))
    assert sorted(n.title for n in travel.notes) == ["Packing list", "Trip to Lisbon"]
    assert notes.search(SearchArgs(query="flights", tag="work")).paths == ["Notes/budget-2026.md"]


def test_list_most_recent_first_and_by_tag(notes: NotesApp) -> None:
    assert notes.list(ListArgs()).paths[-1] == "Notes/trip-to-lisbon.md"
    assert notes.list(ListArgs(tag="work")).paths == ["Notes/budget-2026.md"]
    assert notes.list(ListArgs(tag="nothing")).count == 0


def test_tag_adds_and_removes(notes: NotesApp, ctx: Context) -> None:
    ref = notes.tag(TagArgs(note="Budget 2026", add=["Finance", "work"], remove=["work"]))
    assert ref.tags == ["finance"]
    assert front_matter(ctx, "Notes/budget-2026.md")["tags"] == ["finance"]
    with pytest.raises(AppError, match="needs tags"):
        notes.tag(TagArgs(note="Budget 2026"))


def test_delete_goes_to_trash_and_can_be_restored(notes: NotesApp, ctx: Context) -> None:
    gone = notes.delete(ReadArgs(note="Packing list"))
    assert gone.path == "Notes/packing-list.md" and not (ctx.sandbox.root / gone.path).exists()
    assert notes.list(ListArgs()).count == 2
    ctx.sandbox.restore(gone.trash_id)
    assert notes.read(ReadArgs(note="Packing list")).body.startswith("passport")


def test_plain_markdown_and_malformed_front_matter(notes: NotesApp, ctx: Context) -> None:
    ctx.sandbox.write_text("Notes/ideas.md", "# Big ideas\nsolar roof\n")
    assert notes.read(ReadArgs(note="Big ideas")).body == "# Big ideas\nsolar roof\n"
    broken = "---\ntitle: [unclosed\n---\nbody\n"
    ctx.sandbox.write_text("Notes/broken.md", broken)
    listing = notes.list(ListArgs())
    assert listing.count == 4 and len(listing.problems) == 1 and "Notes/broken.md" in listing.problems[0]
    with pytest.raises(AppError, match="Notes/broken.md has front matter that is not valid YAML"):
        notes.append(AppendArgs(note="Notes/broken.md", text="more"))
    assert (ctx.sandbox.root / "Notes/broken.md").read_text() == broken
    assert notes.summary() == "4 notes; tags: travel, checklist, work; 1 unreadable"
    notes.append(AppendArgs(note="Big ideas", text="heat pump"))
    assert front_matter(ctx, "Notes/ideas.md")["title"] == "Big ideas"  # gained front matter on first change


def test_through_the_executor(notes: NotesApp, ctx: Context) -> None:
    table = FunctionTable([NotesApp])
    workflow = Workflow.model_validate({"states": [
        {"name": "new", "call": "notes.create", "args": {"title": "Groceries", "body": "milk", "tags": ["home"]}},
        {"name": "more", "call": "notes.append", "args": {"note": "${new.result.path}", "text": "eggs"}},
        {"name": "find", "call": "notes.search", "args": {"tag": "home"}},
    ]})
    view = Executor(table, ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view.error
    assert view.results["find"]["paths"] == ["Notes/groceries.md"]
    assert notes.read(ReadArgs(note="Groceries")).body == "milk\neggs\n"
