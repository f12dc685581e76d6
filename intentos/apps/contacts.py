"""Contacts: vCards in `Contacts/`, the main book being `Contacts/contacts.vcf`.

Every `*.vcf` file in the folder is read, so a card exported from another program can
simply be dropped in; new contacts go into the main book, and a changed card is written
back to the file it came from. Removing a contact moves its card, as a file of its
own, to the sandbox trash, from where restoring it puts it back in `Contacts/`.

Files are read only through the sandbox, with a size limit; a link in `Contacts/` is
never followed. A file that cannot be read or parsed (or a link) is named: listing
(contacts.find) fails with an error naming it, so nobody mistakes a partial list for the
whole book; looking one person up (contacts.get, mail recipients, calendar attendees)
still works with the other files and names the skipped file if nobody matches; and it is
never written over: a change that would have to write into it is refused, naming it.

Other apps turn names into addresses with `resolve_addresses` (mail recipients,
calendar attendees).
"""

from __future__ import annotations

import difflib
import re
import uuid
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, NamedTuple

import vobject
from pydantic import BaseModel, Field

from intentos.app import App, Context
from intentos.apps.problems import content_problem, shown_path
from intentos.errors import AppError, SandboxError
from intentos.function import Effect, function
from intentos.grounding import Grounded, GroundingQuery, words_of

CONTACTS_DIR = "Contacts"
CONTACTS_FILE = f"{CONTACTS_DIR}/contacts.vcf"
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")
MAX_VCF_BYTES = 50 * 1024 * 1024  # a bigger file is refused, not read


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
    query: str = Field("", description="words to find in name, email, organization, phone or tags; empty lists "
                                       "all; several, separated by commas, find the contacts of each")
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


class _Book(list[_Card]):
    """The cards of every readable .vcf file, and why each unreadable file (or link) was skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: dict[str, str] = {}


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
        # "me", the user's full name, or their first name where no contact has it: the user is at their own
        # event, and "mail it to me" goes to their address (a lookup of "me" would match any "...me...").
        me = Address(ctx.user.name, ctx.user.email)
        if _names_user(ctx, text, first=False):
            out.append(me)
            continue
        book = book or ContactsApp(ctx)
        try:
            contact = book.lookup(text)
        except AppError:
            if not _names_user(ctx, text, first=True):
                raise
            out.append(me)
            continue
        if not contact.email:
            raise AppError(f"contact {contact.name} has no email address (add one with contacts.update)")
        out.append(Address(contact.name, contact.email))
    return out


# A request that has something sent to the user ("email me", "please send it to myself", "can you forward me");
# "remind me" is not, nor "did Yuki send me" (someone else sends).
_TO_ME = re.compile(r"(?:^|[,.;:!?]\s*|\b(?:please|and|then|you|to)\s+)(?:e-?mail|mail|send|forward|text|cc)\s+"
                    r"(?:(?:it|this|that|them)\s+)?(?:to\s+)?(?:me|myself)\b", re.IGNORECASE)
_TO_ME_SCORE = 3.0  # as a contact named in the request
_LABEL_WORDS = 4  # a contact note this short names a relation or a role, not a story


def _names_user(ctx: Context, text: str, first: bool) -> bool:
    """Whether a recipient's text means the user: "me", "myself", their full name, or with `first` their first
    name."""
    said = " ".join(text.casefold().split())
    name = " ".join(ctx.user.name.casefold().split())
    return said in {"me", "myself", name} or (first and bool(name) and said == name.split(" ")[0])


class ContactsApp(App):
    name = "contacts"
    description = "address book (vCard): add, find, get, update, remove people"
    data_folder = CONTACTS_DIR

    # -- files -------------------------------------------------------------------------------

    def _load(self) -> _Book:
        book = _Book()
        try:
            if not self.sandbox.is_dir(CONTACTS_DIR):
                return book
            entries = self.sandbox.scandir(CONTACTS_DIR)
        except (OSError, SandboxError) as exc:
            raise _file_error(CONTACTS_DIR, exc) from None
        for entry in entries:
            if not entry.name.endswith(".vcf") or entry.name.startswith("."):
                continue
            if entry.kind != "file":
                what = "a link" if entry.kind == "link" else "not a regular file"
                book.problems[entry.path] = f"{shown_path(entry.path)} is {what}, not a vCard file; skipped"
                continue
            try:
                book.extend(self._read(entry.path))
            except AppError as exc:
                book.problems[entry.path] = str(exc)
        return book

    def _read(self, rel: str) -> list[_Card]:
        try:
            raw = self.sandbox.read_bytes(rel, limit=MAX_VCF_BYTES)
        except (OSError, SandboxError) as exc:
            raise _file_error(rel, exc) from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise AppError(f"{rel} is not a valid vCard file (not UTF-8 text: {exc.reason} at byte {exc.start}); "
                           "it was left untouched") from None
        try:
            found = [c for c in vobject.readComponents(text) if c.name == "VCARD"]
        except Exception as exc:  # noqa: BLE001 - vobject raises all sorts (RecursionError too) on a hostile file
            raise AppError(f"{rel} is not a valid vCard file ({content_problem(exc)}); "
                           "it was left untouched") from None
        if text.strip() and not found:
            raise AppError(f"{rel} is not a valid vCard file (it holds no VCARD); it was left untouched")
        cards = []
        try:
            for card in found:
                if "fn" not in card.contents or not isinstance(card.fn.value, str):
                    raise AppError(f"{rel} is not a valid vCard file (a card has no FN name); it was left untouched")
                if "uid" not in card.contents:  # stable across reads, so a uid given out stays valid
                    seed = f"{rel}:{card.fn.value}:{','.join(_values(card, 'email'))}"
                    card.add("uid").value = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
                _contact(card)  # every field it will be shown with can be read
                cards.append(_Card(rel, card))
        except AppError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise AppError(f"{rel} is not a valid vCard file ({content_problem(exc)}); "
                           "it was left untouched") from None
        return cards

    def _write(self, file: str, cards: list[_Card]) -> None:
        problems = getattr(cards, "problems", {})
        if file in problems:
            raise AppError(f"{file} could not be read, so it is not written over; nothing was changed "
                           f"({problems[file]})")
        try:
            text = "".join(c.card.serialize() for c in cards if c.file == file)
        except Exception as exc:  # noqa: BLE001 - a card vobject read but cannot write back
            raise AppError(f"{file} cannot be written back ({content_problem(exc)}); "
                           "it was left untouched") from None
        try:
            self.sandbox.write_text(file, text)
        except (OSError, SandboxError) as exc:
            raise _file_error(file, exc) from None

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
                # Read by a person and by the planner's repair turn alike: a guess between two people is wrong.
                raise AppError(f"{query!r} matches {len(hits)} contacts: {listed}. Say which one (by email); "
                               "if nothing says which, ask")
        names = [c.card.fn.value for c in cards]
        close = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else " (give an email address or add the contact first)"
        problems = getattr(cards, "problems", {})
        skipped = f"; {_unreadable(problems)}" if problems else ""
        raise AppError(f"no contact matches {query!r}{hint}{skipped}")

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
        # "ben@x.com, chris@y.net" (a plan's attendees): each part is a query of its own.
        queries = [q.split() for q in re.split(r"[,;]", args.query.casefold())]
        queries = [q for q in queries if q] or [[]]
        tag = (args.tag or "").casefold()
        book = self._load()
        if book.problems:
            raise AppError(_listing_error(book.problems))
        hits = [c.card for c in book if any(all(w in _haystack(c.card) for w in words) for words in queries)
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
        try:
            if alone and entry.file != CONTACTS_FILE:
                trashed = self.sandbox.trash(entry.file)
            else:
                # The card first goes to the trash as a file of its own, then leaves the book:
                # if anything fails between the two, it exists twice, never zero times.
                single = self._free_name(contact)
                self.sandbox.write_text(single, entry.card.serialize())
                trashed = self.sandbox.trash(single)
                cards.remove(entry)
                self._write(entry.file, cards)
        except (OSError, SandboxError) as exc:
            raise _file_error(entry.file, exc) from None
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
        line = f"contacts: {len(cards)} people" if cards else "contacts: address book is empty"
        return line + (f"; {_unreadable(cards.problems)}" if cards.problems else "")

    def ground(self, query: GroundingQuery) -> list[Grounded]:
        try:
            book = self._load()
        except AppError:
            return []
        offers = []
        for card in book:
            c = _contact(card.card)
            # A name or tag the intent says is worth more than a word that happens to be in a note; a note of a
            # few words is a label ("Mum", "landlord"), as good as a tag.
            label = len(words_of(c.note or "")) <= _LABEL_WORDS
            score = (query.score(c.name, *c.tags, c.organization, *c.emails, weight=2)
                     + query.score(c.note, weight=2 if label else 1))
            if score:
                details = [f"org {c.organization}" if c.organization else "", f"tags {', '.join(c.tags)}" if c.tags
                           else "", f"phone {c.phone}" if c.phone else "", f"note: {c.note}" if c.note else ""]
                line = f"contact {c.name} <{c.email}>" + "".join(f"; {d}" for d in details if d)
                offers.append(Grounded(line, score, self.name, name=c.name,
                                       aka=tuple(a for a in (c.email, c.organization, *c.tags) if a)))
        user = self.ctx.user
        if user.email and _TO_ME.search(query.intent):
            # "Email me the list": the recipient is the user. Not told, the 1.5B model mailed "your phone number".
            offers.append(Grounded(f'"me" is you, the user: {user.name} <{user.email}>', _TO_ME_SCORE, self.name))
        return query.top(offers)

    def _free_name(self, contact: Contact) -> str:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", contact.name).strip("-.") or "contact"
        name = f"{CONTACTS_DIR}/{slug}.vcf"
        if self.sandbox.lstat(name) is not None:
            name = f"{CONTACTS_DIR}/{slug}-{contact.uid[:8]}.vcf"
        return name

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


def _unreadable(problems: dict[str, str]) -> str:
    files = sorted(problems)
    listed = ", ".join(shown_path(f) for f in files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return f"{len(files)} unreadable vCard file{'s' if len(files) != 1 else ''} skipped: {listed}"


def _listing_error(problems: dict[str, str]) -> str:
    if len(problems) == 1:
        return next(iter(problems.values()))
    files = sorted(problems)
    shown = "; ".join(problems[f] for f in files[:3]) + (f"; and {len(files) - 3} more" if len(files) > 3 else "")
    return f"{len(files)} vCard files in {CONTACTS_DIR}/ could not be read: {shown}"


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _file_error(path: str, exc: BaseException) -> AppError:
    """One line naming the file for a sandbox or OS error on it."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, FileNotFoundError):
        reason = f"{path} does not exist"
    elif isinstance(exc, IsADirectoryError):
        reason = f"{path} is a folder, not a file"
    elif isinstance(exc, OSError) and not isinstance(exc, SandboxError) and exc.strerror:
        reason = f"{path} cannot be read: {exc.strerror}"
    else:
        reason = _first_line(exc)
        if shown_path(path) not in reason:
            reason = f"{path}: {reason}"
    return AppError(" ".join(shown_path(reason).split()))

