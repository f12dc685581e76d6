"""Choose the part of the Function Table a small model sees for an intent.

A small model with a short context cannot usefully read seventy signatures, and a grammar
over seventy call schemas is slow to build and to sample; but a function it is not shown is
a function it cannot call. Two ways to choose:

- `FunctionRanker.top(intent, k)`: the k functions whose documents match the intent best
  (BM25). Each function is a small document: its app's name and description, its verb,
  its description and its parameter names. Cheap, but a plan needs functions the intent
  does not name: "send my boat licence to the harbour office" names mail, yet the plan
  needs files.find for the licence and contacts.find for the office.
- `FunctionRanker.select(intent, extra_apps=...)`: whole apps. An app is shown with all its
  functions when the intent is about it:
  - its best function scores at least `app_ratio` of the best app's (BM25 over the intent's
    content words: a long English stop list drops "what", "how", "my" first);
  - or a cue in the intent points at it: general English and desktop conventions, one
    lexicon per built-in app (`CUES`: a day or time phrase is the clock's, a file name, a
    path or an XDG user folder the files', a verb of sending or telling the mail's, ...);
    a day or time with no other app to act on brings the calendar (what happens then);
  - or the caller names it in `extra_apps` (the apps where grounding found entities the
    intent names) and the intent's words match it at all; a named app the words do not
    match is shown by its lookups only (what the intent names is there, so look it up).
  Then companions: the apps whose entities a shown app's functions take (a mail's
  recipients and attachments, an event's attendees and start, a task's due date, a path)
  are shown by their lookups (read functions), so a plan can resolve a person, find a file
  or a note to attach, or turn "tomorrow" into a date. A person the intent mentions (a
  name after "to"/"with", "Ben's", "her", "mum", an email address) shows the address
  book's lookups too.

The agent's own functions (say, ask, refuse, check, ...) are always shown: they are how a
plan answers, branches, asks or declines. benchmarks/bench_retrieval.py measures recall (the
functions reference plans need, shown) and cost (characters of the shown table) per policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from intentos.function import Effect, Function
from intentos.table import FunctionTable

ALWAYS = ("agent.say", "agent.ask", "agent.refuse", "agent.check")
AGENT_APP = "agent"
# An app whose best function scores at least this share of the best app's is shown (see FunctionRanker).
# Lower shows more apps on weaker evidence: benchmarks/bench_retrieval.py --sweep prints the trade-off.
APP_RATIO = 0.8
# Built-in apps with a role of their own below; a table without one simply goes without that role.
PEOPLE_APP, TIME_APP, CALENDAR_APP = "contacts", "clock", "calendar"

# Companions: a parameter that takes an entity of some kind asks for the lookups (read functions) of the
# apps that provide that kind: recipients and attendees come from the address book, dates from the
# clock, paths from the files, and what is sent or packed (attachments, paths) from files or notes.
_PROVIDERS = {
    "person": (PEOPLE_APP,),
    "time": (TIME_APP,),
    "path": ("files",),
    "content": ("files", "notes"),
}
_PARAM_KINDS = {
    "to": "person", "cc": "person", "bcc": "person", "attendees": "person", "contact": "person",
    "sender": "person",
    "start": "time", "end": "time", "due": "time", "due_before": "time", "when": "time",
    "path": "path", "source": "path", "destination": "path", "archive": "path",
    "attachments": "content", "paths": "content",
}

# Cues: words and shapes that say an intent is about an app although BM25 over its functions' documents
# misses them (nobody writes "clock.resolve", they write "next Friday"). General English and desktop
# conventions (the XDG user folders), not the words of any one suite; each app's cue is a whole lexicon.
_MONTHS = "january|february|march|april|june|july|august|september|october|november|december"
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_UNITS = r"(?:minute|min|hour|hr|day|week|fortnight|month|year)s?"
CUES: dict[str, re.Pattern[str]] = {
    "clock": re.compile(
        rf"\b(?:today|tonight|tomorrow|yesterday|noon|midnight|morning|afternoon|evening|weekend|weekday|"
        rf"{_WEEKDAYS}|{_MONTHS}|{_UNITS}|until|till|ago|o'clock|time ?zone|time|date|"
        rf"\d{{1,2}}(?::\d\d)?\s*(?:am|pm)|\d{{1,2}}:\d\d|\d{{4}}-\d\d-\d\d)\b", re.IGNORECASE),
    "calendar": re.compile(
        r"\b(?:calendar|agenda|schedule[sd]?|reschedule|book|booked|booking|meetings?|appointments?|events?|"
        r"invit(?:e|es|ed|ation|ations)|conference|seminar|webinar|workshop|interview|"
        r"lunch|dinner|breakfast|coffee|party|holiday|vacation|busy|free slots?|free time)\b"
        rf"|\bevery\s+(?:day|weekday|week|month|year|morning|evening|{_WEEKDAYS})\b", re.IGNORECASE),
    "tasks": re.compile(
        r"\b(?:remind|reminders?|to-?dos?|tasks?|chores?|errands?|deadlines?|due|overdue|priority|urgent)\b"
        r"|\b(?:tick|check|cross|mark)\b[^.]{0,20}\boff\b", re.IGNORECASE),
    "files": re.compile(
        r"\b(?:desktop|documents|downloads|music|pictures|photos|videos|templates|home folder|"
        r"files?|folders?|director(?:y|ies)|pdfs?|zip|archives?|attachments?|spreadsheets?|scans?)\b"
        r"|[\w-]+\.[A-Za-z][A-Za-z0-9]{1,4}(?![\w@.-])"  # a file name with an extension, not an email address
        r"|\b\w+/[\w.-]+", re.IGNORECASE),  # a path
    "notes": re.compile(
        r"\b(?:notes?|notebook|memos?|jot(?:ted)?|journal|write (?:it|this|that) down)\b", re.IGNORECASE),
    "contacts": re.compile(
        r"\b(?:contacts?|address book|(?:phone|mobile|cell) numbers?|email address(?:es)?|vcards?)\b"
        r"|\+\d[\d ()/-]{6,}\d", re.IGNORECASE),  # a phone number in international form
    "mail": re.compile(
        r"\b(?:send|sent|forward|reply|replies|answer|e-?mails?|mails?|inbox|outbox|drafts?|messages?|"
        r"invit(?:e|es|ed|ation|ations)|notify|inform|newsletters?|cc)\b"
        r"|\b(?:tell|let)\s+(?!me\b)\w+"  # telling someone else ("tell me" is agent.say)
        r"|\bwrite\s+(?:to|back)\b", re.IGNORECASE),
}
# A person (a pronoun, a relative, an email address) asks for the address book's lookups.
_KIN = ("mum|mom|mother|dad|father|parents|sister|brother|wife|husband|partner|son|daughter|aunt|uncle|"
        "grandma|grandpa|boss|colleagues?|friends?|family|neighbou?rs?")
_PERSON = re.compile(rf"\b(?:him|her|he|she|{_KIN})\b|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
# A capitalised word after a word that introduces a person ("to Anna", "with Ben", "Email Chris") or
# before a possessive ("Ben's"). Weekdays, months and folders are capitalised too: not people.
_NAMED = re.compile(
    r"\b(?:to|with|from|for|tell|ask|invite|email|e-mail|mail|message|call|meet|send|forward|cc|by)\s+"
    r"([A-Z][a-z]+)\b|\b([A-Z][a-z]+)'s\b")
_NOT_NAMES = re.compile(rf"^(?:{_WEEKDAYS}|{_MONTHS}|may|desktop|documents|downloads|music|pictures|photos|"
                        r"videos|templates|i|the|my|a|an|this|that|it)$", re.IGNORECASE)


@cache
def _stemmer() -> Any:
    import Stemmer  # imported on first use: bm25s pulls in scipy, too slow for every CLI start

    return Stemmer.Stemmer("english")


@dataclass(frozen=True)
class Ranked:
    name: str
    score: float


@dataclass(frozen=True)
class Selection:
    """What `FunctionRanker.select` chose: the functions to show, the apps shown whole, and why."""

    names: list[str]  # the functions to show, in table order
    apps: list[str]  # the apps shown with all their functions, in table order
    ranking: list[Ranked]  # every function, best BM25 match first
    lookups: list[str] = field(default_factory=list)  # apps shown only by their read functions
    reasons: dict[str, list[str]] = field(default_factory=dict)  # app -> why it is shown


def _document(fn: Function, app_description: str) -> str:
    words = re.sub(r"[_.]", " ", f"{fn.app} {fn.verb}")
    params = " ".join(re.sub(r"_", " ", p) for p in fn.params.model_fields)
    return f"{words} {words} {app_description} {fn.description} {params}"


def stemmed_words(text: str) -> set[str]:
    """The stemmed content words of a text (English stop words dropped)."""
    tokens = _tokens([text])
    vocab = {i: w for w, i in tokens.vocab.items()}
    return {vocab[i] for i in tokens.ids[0]}


def content_stems(text: str) -> set[str]:
    """The stemmed words of a text that say what it is about (the longer stop list below dropped)."""
    return stemmed_words(text) - _stop_stems()


@cache
def _stop_stems() -> frozenset[str]:
    """The stems of a longer English stop list (NLTK's, as bm25s ships it): "what", "how", "my", "do" say
    nothing about which app an intent is about, yet match function descriptions."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(_stemmer().stemWords([w for w in STOPWORDS_EN_PLUS if "'" not in w]))


def _tokens(texts: list[str]) -> Any:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)


def cued_apps(intent: str) -> dict[str, str]:
    """The apps a cue in the intent points at, each with the text that cued it (built-in app names)."""
    cues = {}
    for app, pattern in CUES.items():
        match = pattern.search(intent)
        if match:
            cues[app] = match.group(0)
    return cues


def mentioned_person(intent: str) -> str | None:
    """The text that says the intent involves a person (a name, a pronoun, a relative, an address), or None."""
    match = _PERSON.search(intent)
    if match:
        return match.group(0)
    for match in _NAMED.finditer(intent):
        name = match.group(1) or match.group(2)
        if not _NOT_NAMES.match(name):
            return name
    return None


class FunctionRanker:
    """A BM25 index over one Function Table, and the choice of what to show from it."""

    def __init__(self, table: FunctionTable, *, app_ratio: float = APP_RATIO, cues: bool = True,
                 companions: bool = True) -> None:
        """`app_ratio`: an app matches an intent when its best function scores at least this share of the best
        app's (the agent's aside). `cues` and `companions` switch those parts of `select` off, to measure
        what each brings (benchmarks/bench_retrieval.py)."""
        self.table = table
        self.app_ratio = app_ratio
        self.use_cues = cues
        self.use_companions = companions
        self.names = [fn.name for fn in table]
        docs = [_document(fn, table.apps[fn.app].description) for fn in table]
        import bm25s

        self._index = bm25s.BM25()
        self._index.index(_tokens(docs), show_progress=False)

    def rank(self, intent: str, *, content_only: bool = False) -> list[Ranked]:
        """Every function, best match first (ties keep table order). `content_only` drops the words of a
        longer English stop list (pronouns, question words, auxiliaries) from the query first."""
        words = list(content_stems(intent) if content_only else stemmed_words(intent))
        scores = self._index.get_scores(words) if words else [0.0] * len(self.names)
        order = sorted(range(len(self.names)), key=lambda i: -float(scores[i]))
        return [Ranked(self.names[i], round(float(scores[i]), 4)) for i in order]

    def top(self, intent: str, k: int) -> tuple[list[str], list[Ranked]]:
        """The names of the k best functions plus the always-kept ones, and the ranking used."""
        ranking = self.rank(intent)
        keep = [r.name for r in ranking[:k] if r.score > 0]
        keep += [n for n in ALWAYS if n in self.table]
        return list(dict.fromkeys(keep)), ranking

    def select(self, intent: str, *, extra_apps: Iterable[str] = (), max_functions: int | None = None) -> Selection:
        """The functions to show for an intent: the agent's; every function of the apps the intent is about
        (by BM25, by a cue, or named in `extra_apps`); the lookups of the apps whose entities those take.

        `extra_apps`: apps the caller knows the intent concerns (say, where grounding found a person or a
        file it names); names not in the table are ignored. `max_functions` caps the count: lookups go
        first, then the chosen apps' lowest-scoring functions; the agent's functions always stay.
        """
        ranking = self.rank(intent, content_only=True)
        score = {r.name: r.score for r in ranking}
        app_score: dict[str, float] = {}
        for fn in self.table:
            app_score[fn.app] = max(app_score.get(fn.app, 0.0), score[fn.name])
        best = max((s for app, s in app_score.items() if app != AGENT_APP), default=0.0)

        reasons: dict[str, list[str]] = {}
        whole: set[str] = set()
        looked_up: set[str] = set()

        def show(app: str, why: str, *, lookups_only: bool = False) -> None:
            if app in self.table.apps:
                reasons.setdefault(app, []).append(why)
                (looked_up if lookups_only else whole).add(app)

        show(AGENT_APP, "always")
        for app, s in app_score.items():
            if best > 0 and s > 0 and s >= self.app_ratio * best:
                show(app, f"matches {s:.2f} (best {best:.2f})")
        if self.use_cues:
            for app, cue in cued_apps(intent).items():
                show(app, f"cue {cue!r}")
            person = mentioned_person(intent)
            if person:
                show(PEOPLE_APP, f"person {person!r}", lookups_only=True)
            if TIME_APP in whole and CALENDAR_APP in self.table.apps and not whole - {AGENT_APP, TIME_APP}:
                # A day or time and nothing else to act on: what happens then is on the calendar.
                show(CALENDAR_APP, "a time and no other app")
        for app in extra_apps:
            if app_score.get(app, 0.0) > 0:  # the data holds what the intent names, and its words fit the app
                show(app, "named by the caller; the intent's words match it")
            else:  # only what the intent names is there: show how to look it up
                show(app, "named by the caller", lookups_only=True)
        if self.use_companions:
            given: set[tuple[str, str]] = set()
            for app in sorted(whole):
                for fn in self._functions(app):
                    for param in fn.params.model_fields:
                        kind = _PARAM_KINDS.get(param)
                        for provider in _PROVIDERS.get(kind, ()) if kind else ():
                            if provider != app and (provider, kind) not in given:
                                given.add((provider, kind))
                                show(provider, f"{fn.name} takes {param}", lookups_only=True)

        shown = {fn.name for fn in self.table if fn.app in whole}
        shown |= {fn.name for fn in self.table if fn.app in looked_up and fn.effect == Effect.READ}
        shown |= {n for n in ALWAYS if n in self.table}
        if max_functions is not None and len(shown) > max_functions:
            fixed = {n for n in shown if self.table.get(n).app == AGENT_APP}
            rest = sorted(shown - fixed, key=lambda n: (self.table.get(n).app not in whole, -score[n]))
            shown = fixed | set(rest[: max(0, max_functions - len(fixed))])
        names = [n for n in self.names if n in shown]
        apps = [a for a in self.table.apps if a in whole]
        lookups = [a for a in self.table.apps if a in looked_up and a not in whole]
        return Selection(names=names, apps=apps, ranking=ranking, lookups=lookups,
                         reasons={a: reasons[a] for a in self.table.apps if a in reasons})

    def _functions(self, app: str) -> list[Function]:
        return [fn for fn in self.table if fn.app == app]
