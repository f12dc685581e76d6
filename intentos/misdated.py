"""Dates a plan writes that are not the days the request names.

Told '"tomorrow" is Wednesday 2026-03-11' under "Found for this request", Qwen2.5-Coder-1.5B still wrote
`"start": "2026-03-12 08:00"` for "tomorrow at 8am": a small model counts days from the dates it read last
(an example's, an event's) rather than copying. When the request names days ("tomorrow", "next Tuesday",
"2026-04-01"; "next week" adds its seven days to those allowed but names none alone), a literal date in the
arguments of a call outside the agent's own that is none of those days and is not written in the request is
a repair problem, once a stage (`SelfCheck`): a repair that writes it again stands, since a plan may need
another day ("the day after", an end date). So is a clock.resolve phrase that names no day ("10am", which
is today) for such a request: repairing an ambiguous "next tuesday 10", the 1.5B model wrote "10am" and
booked the meeting for today. And so is a clock phrase with a day word the request lacks: "in ten days"
became clock.shift(when="this friday", days=10). A request that names no day is left alone: its dates
may come from anywhere.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from intentos.function import Effect
from intentos.grounding import names_a_day
from intentos.references import UnresolvedReference, follow, map_strings, whole_reference
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.validation import Problem
from intentos.workflow import Workflow

MISDATED = "misdated"  # the problem's code
# Functions that turn a phrase into a time: a phrase with a time and no day ("10am") is today's.
DAY_READERS = frozenset({"clock.resolve"})
PHRASE_ARG = "phrase"
_LONGER = re.compile(r"\b(?:weeks?|months?|years?)\b", re.IGNORECASE)  # "next month": a span, not today
_DATE = re.compile(r"(?<![\w-])(\d{4})-(\d{2})-(\d{2})(?!\d)")  # also in "2026-03-12T07:30"
_A_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")  # a value that is a day or a time
CLOCK_APP = "clock"
# Words that name a day other than today by themselves: a clock phrase with one the request lacks counts from
# another day ("in ten days" read as clock.shift(when="this friday", days=10)). Today is where counting starts.
_DAY_WORD = re.compile(r"\b(?:tomorrow|yesterday|monday|tuesday|wednesday|thursday|friday|"
                       r"saturday|sunday)\b", re.IGNORECASE)


class NamedDays:
    """The days a request names: each phrase as written with its day, and every day meant (a week's seven)."""

    def __init__(self, phrases: list[tuple[str, date]], days: tuple[date, ...] | list[date]) -> None:
        self.phrases = phrases
        self.days = set(days) | {day for _, day in phrases}

    def said(self) -> str:
        """'"tomorrow" is Wednesday 2026-03-11', for each phrase."""
        return "; ".join(f'"{phrase}" is {day:%A %Y-%m-%d}' for phrase, day in self.phrases)


def literal_dates(value: Any) -> list[date]:
    """The calendar dates written out in an argument value (inside references too: they are rare there)."""
    found: list[date] = []

    def collect(text: str) -> str:
        for match in _DATE.finditer(text):
            try:
                found.append(date(*(int(g) for g in match.groups())))
            except ValueError:  # 2026-02-30 is no date; validation or the app says so
                continue
        return text

    map_strings(value, collect)
    return found


def misdated(workflow: Workflow, intent: str, named: NamedDays) -> list[Problem]:
    """A problem for the first state that writes a date the request does not name; none when the request names
    no day."""
    if not named.phrases:
        return []
    written = set(literal_dates(intent))
    for name, state in workflow.states.items():
        phrase = state.args.get(PHRASE_ARG) if state.call in DAY_READERS else None
        if isinstance(phrase, str) and "${" not in phrase and not names_a_day(phrase) \
                and not _LONGER.search(phrase):
            return [Problem(code=MISDATED, state=name, message=(
                f"{state.call} reads {phrase!r}, which names no day, but the request does: {named.said()}. "
                "Put the day in the phrase"))]
        if state.call.split(".", 1)[0] == TALK_APP:
            continue
        other = _other_day_word(state.args, intent, named) if state.call.split(".", 1)[0] == CLOCK_APP else None
        if other is not None:
            return [Problem(code=MISDATED, state=name, message=(
                f"{state.call} reads {other[0]!r}, but the request does not say {other[1]!r}: {named.said()}. "
                "Read the day the request names"))]
        wrong = [d for d in literal_dates(state.args) if d not in named.days and d not in written]
        if wrong:
            return [Problem(code=MISDATED, state=name, message=(
                f"it writes {wrong[0]:%Y-%m-%d} ({wrong[0]:%A}), a day the request does not name: "
                f"{named.said()}. Write that day"))]
    return []


def misdated_found(workflow: Workflow, results: dict[str, Any], intent: str, named: NamedDays,
                   table: FunctionTable) -> list[Problem]:
    """A problem for the first state that acts with a day taken whole from something a lookup found
    (`"due": "${find.result.notes[0].created}"`, a note's date, for "in two weeks, remind me"), when the
    request names days and the dry run's value is none of them; none when the request names no day (then a
    found thing's day may be the one meant: "a day before the dentist")."""
    if not named.phrases:
        return []
    written = set(literal_dates(intent))
    for name, state in workflow.states.items():
        if state.call.split(".", 1)[0] in (TALK_APP, CLOCK_APP) or state.call not in table \
                or table.get(state.call).effect == Effect.READ:
            continue
        for field, value in state.args.items():
            ref = whole_reference(value)
            source = workflow.states.get(ref.state) if ref is not None else None
            if ref is None or source is None or source.call.split(".", 1)[0] == CLOCK_APP:
                continue
            try:
                got = follow(ref, results)
            except UnresolvedReference:  # a value the dry run did not reach
                continue
            if not isinstance(got, str) or not _A_TIME.fullmatch(got.strip()):
                continue  # a text that mentions a day (a note's body) is not a day
            wrong = [d for d in literal_dates(got) if d not in named.days and d not in written]
            if wrong:
                return [Problem(code=MISDATED, state=name, field=f"args.{field}", message=(
                    f"its {field} is {value}, which was {wrong[0]:%Y-%m-%d} ({wrong[0]:%A}) in the dry run: a day "
                    f"the request does not name: {named.said()}. Write that day"))]
    return []


def _other_day_word(args: dict[str, Any], intent: str, named: NamedDays) -> tuple[str, str] | None:
    """A phrase among a clock call's arguments with a day word the request does not have (nor is the weekday of
    a day it names: "Wednesday" for "tomorrow" on a Tuesday), and that word."""
    said = {w.lower() for w in _DAY_WORD.findall(intent)} | {f"{d:%A}".lower() for d in named.days}
    for value in args.values():
        if isinstance(value, str) and "${" not in value:
            for word in _DAY_WORD.findall(value):
                if word.lower() not in said:
                    return value, word
    return None
