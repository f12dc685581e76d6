"""The contacts app over real vCard files in Contacts/."""

from __future__ import annotations

import pytest
import vobject

from intentos.apps.contacts import (
    CONTACTS_FILE,
    AddArgs,
    ContactsApp,
    FindArgs,
    GetArgs,
    RemoveArgs,
    UpdateArgs,
    resolve_addresses,
)
from intentos.errors import AppError


@pytest.fixture
def book(ctx):
    app = ContactsApp(ctx)
    app.seed([
        {"name": "Anna Berg", "email": "anna@example.org", "phone": "+49 30 1234", "organization": "ACME"},
        {"name": "Anna Schmidt", "email": "a.schmidt@example.net", "tags": ["family"]},
        {"name": "Allianz Insurance", "emails": ["claims@allianz.example", "info@allianz.example"]},
    ])
    return app


def test_add_writes_a_vcard(ctx):
    app = ContactsApp(ctx)
    added = app.add(AddArgs(name="Bob Stone", email="bob@example.org", phone="555", organization="Stone Ltd",
                            tags=["work", "golf"]))
    assert (added.name, added.email, added.phone, added.organization, added.tags) == (
        "Bob Stone", "bob@example.org", "555", "Stone Ltd", ["work", "golf"])
    (card,) = vobject.readComponents(ctx.sandbox.resolve(CONTACTS_FILE).read_text())
    assert card.fn.value == "Bob Stone" and card.n.value.family == "Stone" and card.uid.value == added.uid


def test_add_refuses_duplicate_email_and_bad_email(book):
    with pytest.raises(AppError, match="already belongs to Anna Berg"):
        book.add(AddArgs(name="Other", email="ANNA@example.org"))
    with pytest.raises(AppError, match="not a valid email"):
        book.add(AddArgs(name="Other", email="nope"))


def test_find_matches_name_email_org_and_tag(book):
    assert [c.name for c in book.find(FindArgs(query="anna")).contacts] == ["Anna Berg", "Anna Schmidt"]
    assert [c.name for c in book.find(FindArgs(query="acme")).contacts] == ["Anna Berg"]
    assert [c.name for c in book.find(FindArgs(query="allianz.example")).contacts] == ["Allianz Insurance"]
    assert [c.name for c in book.find(FindArgs(tag="family")).contacts] == ["Anna Schmidt"]
    assert book.find(FindArgs()).count == 3
    # Several queries, separated by commas (a plan's list of attendees): the contacts of each.
    assert [c.name for c in book.find(FindArgs(query="info@allianz.example, anna schmidt")).contacts] == [
        "Allianz Insurance", "Anna Schmidt"]
    assert book.find(FindArgs(query="allianz schmidt")).count == 0  # words of one query: all in one contact


def test_get_exact_email_name_or_unique_part(book):
    assert book.get(GetArgs(contact="info@allianz.example")).name == "Allianz Insurance"
    assert book.get(GetArgs(contact="anna schmidt")).email == "a.schmidt@example.net"
    assert book.get(GetArgs(contact="Berg")).name == "Anna Berg"


def test_get_ambiguous_lists_candidates(book):
    with pytest.raises(AppError) as err:
        book.get(GetArgs(contact="Anna"))
    assert "matches 2 contacts" in str(err.value)
    assert "Anna Berg <anna@example.org>" in str(err.value) and "Anna Schmidt <a.schmidt@example.net>" in str(err.value)


def test_get_none_suggests(book):
    with pytest.raises(AppError, match="no contact matches 'Ana Berg'.*Anna Berg"):
        book.get(GetArgs(contact="Ana Berg"))


def test_update_changes_fields_in_place(book, ctx):
    updated = book.update(UpdateArgs(contact="anna@example.org", email="anna.berg@example.org", phone="999",
                                     tags=["friends"]))
    assert (updated.email, updated.phone, updated.tags, updated.organization) == (
        "anna.berg@example.org", "999", ["friends"], "ACME")
    again = ContactsApp(ctx).get(GetArgs(contact="anna.berg@example.org"))
    assert again.uid == updated.uid and again.name == "Anna Berg"
    renamed = book.update(UpdateArgs(contact=updated.uid, name="Anna Berg-Lind"))
    assert renamed.name == "Anna Berg-Lind"
    with pytest.raises(AppError, match="already belongs"):
        book.update(UpdateArgs(contact="Anna Schmidt", email="anna.berg@example.org"))


def test_remove_is_recoverable_from_the_trash(book, ctx):
    removed = book.remove(RemoveArgs(contact="Anna Schmidt"))
    assert removed.name == "Anna Schmidt"
    assert [c.name for c in book.find(FindArgs()).contacts] == ["Allianz Insurance", "Anna Berg"]
    restored = ctx.sandbox.restore(removed.trash_id)
    assert restored.startswith("Contacts/") and restored.endswith(".vcf")
    back = book.get(GetArgs(contact="a.schmidt@example.net"))
    assert back.uid == removed.uid
    # Removing it again trashes the restored file itself.
    again = book.remove(RemoveArgs(contact=back.uid))
    assert not ctx.sandbox.resolve(restored).exists() and again.trash_id


def test_cards_dropped_into_the_folder_are_read(book, ctx):
    ctx.sandbox.write_text("Contacts/import.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carl Imported\r\n"
                                                  "EMAIL:carl@example.com\r\nEND:VCARD\r\n")
    carl = book.get(GetArgs(contact="Carl"))
    assert carl.email == "carl@example.com" and carl.uid == book.get(GetArgs(contact="carl@example.com")).uid
    book.update(UpdateArgs(contact="Carl", phone="42"))
    assert "TEL:42" in ctx.sandbox.resolve("Contacts/import.vcf").read_text()


def test_corrupt_vcf_is_reported_and_never_overwritten(ctx):
    path = ctx.sandbox.resolve(CONTACTS_FILE)
    path.parent.mkdir(parents=True)
    garbage = "BEGIN:VCARD\nFN:Half a card\n"
    path.write_text(garbage)
    app = ContactsApp(ctx)
    with pytest.raises(AppError, match="Contacts/contacts.vcf is not a valid vCard"):
        app.find(FindArgs())
    with pytest.raises(AppError, match="left untouched"):
        app.add(AddArgs(name="New", email="new@example.org"))
    assert path.read_text() == garbage


def test_resolve_addresses(book, ctx):
    got = resolve_addresses(ctx, ["Anna Berg", "Someone <s@example.org>", "x@y.example"])
    assert [tuple(a) for a in got] == [("Anna Berg", "anna@example.org"), ("Someone", "s@example.org"),
                                       ("", "x@y.example")]
    with pytest.raises(AppError, match="Nobody"):
        resolve_addresses(ctx, ["Nobody"])
    # The user themself, where no contact has the name: their own address ("mail it to me", an attendee).
    me = ("Alex Doe", "alex@example.org")
    assert [tuple(a) for a in resolve_addresses(ctx, ["me", "Alex", "alex doe"])] == [me, me, me]


def test_summary(book, ctx):
    assert book.summary() == "contacts: 3 people"
