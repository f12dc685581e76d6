"""Contacts: vCards in `Contacts/`, the main book being `Contacts/contacts.vcf`.

Every `*.vcf` file in the folder is read, so a card exported from another program can
simply be dropped in; new contacts go into the main book, and a changed card is written
back to the file it came from. Removing a contact moves its card, as a file of its
own, to the sandbox trash, from where restoring it puts it back in `Contacts/`.
A file that cannot be parsed is reported by name and never written over.

Other apps turn names into addresses with `resolve_addresses` (mail recipients,
calendar attendees).
"""

from __future__ import annotations

import difflib
import re
import uuid
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any, NamedTuple

import vobject
from pydantic import BaseModel, Field

from intentos.app import App, Context
from intentos.errors import AppError
from intentos.function import Effect, function

CONTACTS_DIR = "Contacts"
CONTACTS_FILE = f"{CONTACTS_DIR}/contacts.vcf"
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")


class Contact(BaseModel):
    uid: str
    name: str
    email: str = Field("", description="primary email address")
    emails: list[str] = Field(default_factory=list)
    phone: str = ""
    phones: list[str] = Field(default_factory=list)
    organization: str = ""
    tags: list[str] = Field(default_factory=list)
    note: str = ""


class AddArgs(BaseModel):
    name: str
    email: str | None = None
    emails: list[str] = Field(default_factory=list, description="further email addresses")
    phone: str | None = None
    organization: str | None = None
    tags: list[str] = Field(default_factory=list, description="categories such as family, work")
    note: str | None = None


class FindArgs(BaseModel):
    query: str = Field("", description="words to find in name, email, organization, phone or tags; empty lists all")
    tag: str | None = Field(None, description="only contacts with this tag")
    limit: int = Field(50, gt=0)


class Contacts(BaseModel):
    contacts: list[Contact]
    count: int


class GetArgs(BaseModel):
    contact: str = Field(description="a name, email address or uid")


class UpdateArgs(BaseModel):
    contact: str = Field(description="the name, email address or uid of the contact to change")
    name: str | None = None
    email: str | None = Field(None, description="new primary email (replaces the current one)")
    phone: str | None = Field(None, description="new primary phone number")
    organization: str | None = None
    tags: list[str] | None = Field(None, description="replaces all tags")
    note: str | None = None


class RemoveArgs(BaseModel):
    contact: str = Field(description="the name, email address or uid of the contact to remove")


class Removed(BaseModel):
    uid: str
    name: str
    trash_id: str = Field(description="sandbox trash entry that restores the card")


class Address(NamedTuple):
    name: str
    email: str


@dataclass
class _Card:
    file: str  # sandbox-relative path of the .vcf it lives in
    card: Any  # a vobject vCard component


def resolve_addresses(ctx: Context, items: list[str]) -> list[Address]:
    """Emails as given ("a@b.org", "Ann <a@b.org>"); anything else is looked up in contacts."""
    out, book = [], None
    for item in items:
        text = item.strip()
        if "@" in text:
            name, email = parseaddr(text)
            if not _EMAIL.fullmatch(email):
                raise AppError(f"{item!r} is not a valid email address")
            out.append(Address(name, email))
            continue
        book = book or ContactsApp(ctx)
        contact = book.lookup(text)
        if not contact.email:
            raise AppError(f"contact {contact.name} has no email address (add one with contacts.update)")
        out.append(Address(contact.name, contact.email))
    return out


class ContactsApp(App):
    name = "contacts"
    description = "address book (vCard): add, find, get, update, remove people"

    # -- files -------------------------------------------------------------------------------

    def _load(self) -> list[_Card]:
        folder = self.sandbox.resolve(CONTACTS_DIR)
        cards: list[_Card] = []
        if not folder.is_dir():
            return cards
        for path in sorted(folder.glob("*.vcf")):
            cards.extend(self._read(path))
        return cards

    def _read(self, path: Path) -> list[_Card]:
        rel = self.sandbox.relative(self.sandbox.resolve(path))
        try:
            text = path.read_text(encoding="utf-8")
            found = [c for c in vobject.readComponents(text) if c.name == "VCARD"]
        except (vobject.base.ParseError, UnicodeDecodeError, ValueError) as exc:
            raise AppError(f"{rel} is not a valid vCard file ({exc}); it was left untouched") from None
        if text.strip() and not found:
            raise AppError(f"{rel} is not a valid vCard file (it holds no VCARD); it was left untouched")
        cards = []
        for card in found:
            if "fn" not in card.contents:
                raise AppError(f"{rel} is not a valid vCard file (a card has no FN name); it was left untouched")
            if "uid" not in card.contents:  # stable across reads, so a uid given out stays valid
                seed = f"{rel}:{card.fn.value}:{','.join(_values(card, 'email'))}"
                card.add("uid").value = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
            cards.append(_Card(rel, card))
        return cards

    def _write(self, file: str, cards: list[_Card]) -> None:
        self.sandbox.write_text(file, "".join(c.card.serialize() for c in cards if c.file == file))

    # -- lookup ---------------------------------------------------------------------------------

    def lookup(self, query: str) -> Contact:
        """The one contact `query` names (uid, email, full name, or a unique partial name)."""
        return _contact(self._find_one(self._load(), query).card)

    def _find_one(self, cards: list[_Card], query: str) -> _Card:
        text = query.strip()
        if not text:
            raise AppError("no contact given")
        _, email = parseaddr(text)
        key = (email if "@" in email else text).casefold()
        words = key.split()
        rounds = [
            lambda c: _value(c, "uid").casefold() == key,
            lambda c: key in (e.casefold() for e in _values(c, "email")),
            lambda c: c.fn.value.casefold() == key,
            lambda c: all(w in c.fn.value.casefold().split() for w in words),
            lambda c: key in _haystack(c),
        ]
        for match in rounds:
            hits = [c for c in cards if match(c.card)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                listed = "; ".join(_label(c.card) for c in hits[:10])
                raise AppError(f"{query!r} matches {len(hits)} contacts: {listed}. Say which one (by email)")
        names = [c.card.fn.value for c in cards]
        close = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else " (give an email address or add the contact first)"
        raise AppError(f"no contact matches {query!r}{hint}")

    # -- functions --------------------------------------------------------------------------------

    @function(Effect.WRITE)
    def add(self, args: AddArgs) -> Contact:
        """Add a person with email, phone, organization and tags."""
        cards = self._load()
        card = self._new_card(args, cards)
        cards.append(_Card(CONTACTS_FILE, card))
        self._write(CONTACTS_FILE, cards)
        return _contact(card)

    @function(Effect.READ)
    def find(self, args: FindArgs) -> Contacts:
        """Find contacts whose name, email, organization or tags contain the query words."""
        words = args.query.casefold().split()
        tag = (args.tag or "").casefold()
        hits = [c.card for c in self._load() if all(w in _haystack(c.card) for w in words)
                and (not tag or tag in (t.casefold() for t in _values(c.card, "categories")))]
        hits.sort(key=lambda card: card.fn.value.casefold())
        contacts = [_contact(card) for card in hits[: args.limit]]
        return Contacts(contacts=contacts, count=len(contacts))

    @function(Effect.READ)
    def get(self, args: GetArgs) -> Contact:
        """Get exactly one contact by name or email (fails, listing candidates, if ambiguous)."""
        return self.lookup(args.contact)

    @function(Effect.WRITE)
    def update(self, args: UpdateArgs) -> Contact:
        """Change a contact's name, primary email, phone, organization, tags or note."""
        cards = self._load()
        entry = self._find_one(cards, args.contact)
        card = entry.card
        if args.email is not None:
            email = _checked_email(args.email)
            for other in cards:
                if other is not entry and email.casefold() in (e.casefold() for e in _values(other.card, "email")):
                    raise AppError(f"{email} already belongs to {_label(other.card)}")
            _set_first(card, "email", email, type_param="INTERNET")
        if args.name is not None:
            _set_name(card, args.name)
        if args.phone is not None:
            _set_first(card, "tel", args.phone)
        if args.organization is not None:
            _replace(card, "org", [args.organization] if args.organization else None)
        if args.tags is not None:
            _replace(card, "categories", list(args.tags) or None)
        if args.note is not None:
            _replace(card, "note", args.note or None)
        self._write(entry.file, cards)
        return _contact(card)

    @function(Effect.DESTRUCTIVE)
    def remove(self, args: RemoveArgs) -> Removed:
        """Remove a contact (its card goes to the sandbox trash and can be restored)."""
        cards = self._load()
        entry = self._find_one(cards, args.contact)
        contact = _contact(entry.card)
        alone = [c for c in cards if c.file == entry.file] == [entry]
        if alone and entry.file != CONTACTS_FILE:
            trashed = self.sandbox.trash(entry.file)
        else:
            # The card first goes to the trash as a file of its own, then leaves the book:
            # if anything fails between the two, it exists twice, never zero times.
            single = _free_name(self.sandbox.resolve(CONTACTS_DIR), contact)
            self.sandbox.write_text(single, entry.card.serialize())
            trashed = self.sandbox.trash(single)
            cards.remove(entry)
            self._write(entry.file, cards)
        return Removed(uid=contact.uid, name=contact.name, trash_id=trashed.id)

    # -- fixtures and context ----------------------------------------------------------------

    def seed(self, data: Any) -> None:
        """Add contacts from a fixture.

        Shape: a list of {name, email? | emails?: [..], phone?, organization?, tags?, note?}.
        """
        if not isinstance(data, list):
            raise AppError("contacts fixture data must be a list of people")
        cards = self._load()
        for item in data:
            card = self._new_card(AddArgs.model_validate(item), cards)
            cards.append(_Card(CONTACTS_FILE, card))
        self._write(CONTACTS_FILE, cards)

    def summary(self) -> str:
        try:
            cards = self._load()
        except AppError as exc:
            return str(exc)
        return f"contacts: {len(cards)} people" if cards else "contacts: address book is empty"

    def _new_card(self, args: AddArgs, cards: list[_Card]) -> Any:
        if not args.name.strip():
            raise AppError("a contact needs a name")
        emails = [_checked_email(e) for e in ([args.email] if args.email else []) + list(args.emails)]
        for email in emails:
            for other in cards:
                if email.casefold() in (e.casefold() for e in _values(other.card, "email")):
                    raise AppError(f"{email} already belongs to {_label(other.card)} (use contacts.update)")
        card = vobject.vCard()
        card.add("uid").value = str(uuid.uuid4())
        _set_name(card, args.name)
        for email in emails:
            line = card.add("email")
            line.value, line.type_param = email, "INTERNET"
        if args.phone:
            card.add("tel").value = args.phone
        if args.organization:
            card.add("org").value = [args.organization]
        if args.tags:
            card.add("categories").value = list(args.tags)
        if args.note:
            card.add("note").value = args.note
        return card


# -- vCard helpers ---------------------------------------------------------------------------


def _values(card: Any, key: str) -> list[str]:
    out: list[str] = []
    for line in card.contents.get(key, []):
        value = line.value
        if isinstance(value, list):
            out.extend(str(v) for v in value if str(v))
        else:
            out.append(str(value))
    return out


def _value(card: Any, key: str) -> str:
    values = _values(card, key)
    return values[0] if values else ""


def _contact(card: Any) -> Contact:
    emails, phones = _values(card, "email"), _values(card, "tel")
    return Contact(uid=_value(card, "uid"), name=card.fn.value, email=emails[0] if emails else "", emails=emails,
                   phone=phones[0] if phones else "", phones=phones, organization=", ".join(_values(card, "org")),
                   tags=_values(card, "categories"), note=_value(card, "note"))


def _haystack(card: Any) -> str:
    parts = [card.fn.value, *_values(card, "email"), *_values(card, "org"), *_values(card, "tel"),
             *_values(card, "categories")]
    return " ".join(parts).casefold()


def _label(card: Any) -> str:
    email = _value(card, "email")
    return f"{card.fn.value} <{email}>" if email else card.fn.value


def _checked_email(text: str) -> str:
    email = text.strip()
    if not _EMAIL.fullmatch(email):
        raise AppError(f"{text!r} is not a valid email address")
    return email


def _set_name(card: Any, name: str) -> None:
    name = " ".join(name.split())
    if not name:
        raise AppError("a contact needs a name")
    given, _, family = name.rpartition(" ")
    _replace(card, "fn", name)
    _replace(card, "n", vobject.vcard.Name(family=family, given=given) if given else vobject.vcard.Name(given=name))


def _replace(card: Any, key: str, value: Any) -> None:
    for line in list(card.contents.get(key, [])):
        card.remove(line)
    if value is not None:
        card.add(key).value = value


def _set_first(card: Any, key: str, value: str, type_param: str | None = None) -> None:
    lines = card.contents.get(key, [])
    if lines:
        lines[0].value = value
        return
    line = card.add(key)
    line.value = value
    if type_param:
        line.type_param = type_param


def _free_name(folder: Path, contact: Contact) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", contact.name).strip("-.") or "contact"
    name = f"{slug}.vcf"
    if (folder / name).exists():
        name = f"{slug}-{contact.uid[:8]}.vcf"
    return f"{CONTACTS_DIR}/{name}"
