"""Grounding: the entities an intent is likely about, found in the apps' data before planning.

A small model cannot plan "send my boat licence to the harbour office" without knowing that
a contact is tagged harbour and a file is called boat-licence.pdf; it asks or invents a name
instead. Each app offers the entities that match an intent through one hook,
`App.ground(query) -> list[Grounded]`, so a plugin app grounds the same way as a built-in.
The planner gathers what every app offers, keeps the best within a budget of lines and
characters, and shows them as quoted data (they come from the user's files).

Matching is deliberately plain: the intent's content words against an entity's words, where
two words match when equal or when they share a five-letter stem ("insurance"/"insurer",
"accountant"/"accounting"). Dates the intent mentions ("tomorrow", "on Friday") are resolved
so calendar-like apps can offer what falls on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

MAX_LINES = 10
# A mail's line is sender, subject and the body's start; at 180 characters an invitation's body was cut
# before the date and place it gives, which a plan then had to invent.
MAX_LINE_CHARS = 260
MAX_CHARS = 1800
MIN_SCORE = 2.0  # a name, title or tag word (weight 2), or two words of a text: one word of a text is chance

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Words that say what to do rather than what it is about: matching them finds noise ("send" in a subject).
_ACTION_WORDS = frozenset("""
    send sent mail email e-mail forward reply answer write put add make create set get give tell let know
    please find show look search need want can could would should will just also again now new
    thanks thank hi hello dear okay ok yes sure quick quickly move copy delete remove rename update
    change book schedule remind reminder due one two all every each anything something everything
    my me mine him her his hers them their our us you your it its i i'm i'll we he she they
    next this last coming today tonight tomorrow yesterday week day morning afternoon evening am pm
    date time hour minute minutes hours days weeks month year
""".split())
_DAY_PHRASE = re.compile(
    r"\b(?:(?:next|this|coming|last)\s+)?(?:today|tonight|tomorrow|yesterday|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun)\b|\b\d{4}-\d{2}-\d{2}\b|\bnext week\b"
    # "in two weeks", "in 3 days": a day counted from today, which small models miscount
    r"|\bin\s+(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d{1,3})\s+(?:days?|weeks?)\b",
    re.IGNORECASE)


_MORE_STOP_WORDS = frozenset("from about into onto over under than via per".split())


@cache
def _stop_words() -> frozenset[str]:
    try:
        from bm25s.stopwords import STOPWORDS_EN
    except ImportError:  # bm25s is a dependency; this only keeps grounding alive if that ever changes
        STOPWORDS_EN = ()
    # bm25s's list is short (33 words); these prepositions say nothing of what a request is about either.
    return frozenset(w.lower() for w in STOPWORDS_EN) | _MORE_STOP_WORDS


def words_of(text: str) -> list[str]:
    """Lower-cased words of a text, split at anything that is not a letter or digit (so car-title.pdf
    gives car, title, pdf)."""
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> frozenset[str]:
    stop = _stop_words()
    return frozenset(w for w in words_of(text) if w not in stop and w not in _ACTION_WORDS and len(w) > 1
                     and not w.isdigit())  # numbers (years, times) match file names everywhere


def one_or_more(a: str, b: str) -> bool:
    """Two lower-cased words that are the same, a plural "s" aside (list, lists)."""
    return a == b or a + "s" == b or b + "s" == a


def same_word(a: str, b: str) -> bool:
    """Two lower-cased words that are the same, a plural "s" aside (list, lists), or share their first five
    letters (insurer, insurance)."""
    if one_or_more(a, b):
        return True
    return len(a) >= 5 and len(b) >= 5 and a[:5] == b[:5]


@dataclass(frozen=True)
class Grounded:
    """One entity an app offers: a line for the prompt and how well it matched; `ref`, how a plan names it
    (a path), and `named`, whether the request names it (every word of its name is a word of the request);
    `name` and `aka` for the things plans name otherwise."""

    line: str
    score: float
    app: str = ""
    ref: str = ""
    named: bool = False
    name: str = ""  # what a plan calls a thing that is not a file: a contact's name, a note's or open task's title
    aka: tuple[str, ...] = ()  # what else it goes by: tags, an organization, an email


@dataclass(frozen=True)
class GroundingQuery:
    """An intent as the apps see it when grounding: its content words and the days it mentions."""

    intent: str
    now: datetime
    words: frozenset[str] = field(default_factory=frozenset)
    days: tuple[date, ...] = ()
    limit: int = 6  # entities per app
    data_folders: frozenset[str] = frozenset()  # apps' own storage folders: their files are not offered as files

    @classmethod
    def of(cls, intent: str, now: datetime, tz: ZoneInfo, limit: int = 6,
           data_folders: Iterable[str] = ()) -> GroundingQuery:
        return cls(intent=intent, now=now, words=content_words(intent), days=mentioned_days(intent, now, tz),
                   limit=limit, data_folders=frozenset(data_folders))

    def matches(self, *texts: str) -> set[str]:
        """The intent's words found among the words of `texts`."""
        found: set[str] = set()
        theirs = {w for t in texts if t for w in words_of(t)}
        for mine in self.words:
            if any(same_word(mine, other) for other in theirs):
                found.add(mine)
        return found

    def score(self, *texts: str, weight: float = 1.0) -> float:
        """How many intent words `texts` contain, times `weight` (0 when none)."""
        return weight * len(self.matches(*texts))

    def names(self, name: str) -> bool:
        """Whether every word of `name` is a word of the intent: its words of letters, extension left out
        ("receipts-2026-02.txt" → receipts)."""
        stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
        words = {w for w in words_of(stem) if w.isalpha() and len(w) > 1}
        return bool(words) and all(any(same_word(w, mine) for mine in self.words) for w in words)

    def top(self, offers: Iterable[Grounded]) -> list[Grounded]:
        """An app's best `limit` offers, best first: what `App.ground` returns."""
        return sorted(offers, key=lambda g: -g.score)[: self.limit]

    def on_mentioned_day(self, start: datetime, end: datetime | None = None) -> bool:
        end = end or start
        return any(start.date() <= day <= end.date() for day in self.days)


def mentioned_days(intent: str, now: datetime, tz: ZoneInfo) -> tuple[date, ...]:
    """The dates an intent names ("tomorrow", "Friday", "next Tuesday", "2026-04-01", "next week")."""
    days: list[date] = []
    for phrase, day in day_phrases(intent, now, tz, weeks=True):
        if phrase.lower() == "next week":
            days.extend(day + timedelta(days=i) for i in range(7))
        else:
            days.append(day)
    return tuple(dict.fromkeys(days))


def names_a_day(text: str) -> bool:
    """Whether `text` has a phrase naming a day ("tomorrow", "next Tuesday", "2026-03-17", "in two weeks")."""
    return _DAY_PHRASE.search(text) is not None


def day_phrases(intent: str, now: datetime, tz: ZoneInfo, weeks: bool = False) -> list[tuple[str, date]]:
    """Each phrase of an intent that names a day, as written, with that day ("next Tuesday", 2026-03-17);
    with `weeks`, "next week" too, with its Monday."""
    from intentos.when import parse_when  # here, not above: dateutil would slow every `import intentos.app`

    found: list[tuple[str, date]] = []
    for match in _DAY_PHRASE.finditer(intent):
        phrase = match.group(0).lower()
        if phrase == "next week":
            if weeks:
                found.append((match.group(0), now.date() + timedelta(days=7 - now.weekday())))
            continue
        try:
            found.append((match.group(0), parse_when("today" if phrase == "tonight" else phrase, tz, now).at.date()))
        except Exception:  # a phrase the clock does not read is just not a day
            continue
    return found


# A file's name as a request writes it: "todo.txt", "Q3-report.pdf"; not a web or mail address.
_FILE_NAME = re.compile(r"(?<![\w@/.-])[\w-]+\.(?:txt|md|pdf|csv|json|ya?ml|docx?|xlsx?|pptx?|odt|ods|zip|tar|gz|"
                        r"png|jpe?g|gif|svg|html?|log|ics|vcf|eml|py|sh|ini|toml|xml)\b(?![\w/.-]*\w)", re.IGNORECASE)


def file_names(intent: str) -> list[str]:
    """The file names a request writes out (kept even when no such file exists yet: "start todo.txt")."""
    return list(dict.fromkeys(_FILE_NAME.findall(intent)))


def clip(text: str, limit: int = MAX_LINE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def best(offers: Iterable[Grounded], *, max_lines: int = MAX_LINES, max_chars: int = MAX_CHARS) -> list[Grounded]:
    """The best-scoring offers within the budget, best first (ties keep the order they came in)."""
    ranked = sorted((g for g in offers if g.score >= MIN_SCORE), key=lambda g: -g.score)
    kept: list[Grounded] = []
    used = 0
    for offer in ranked:
        line = clip(offer.line)
        if len(kept) == max_lines or used + len(line) > max_chars:
            break
        kept.append(replace(offer, line=line))
        used += len(line)
    return kept
