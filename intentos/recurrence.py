"""How a request says that something repeats, as the parts of an RFC 5545 repeat rule.

"every weekday", "on Mondays and Thursdays", "daily", "every other week", "monthly". Only the rule's
frequency, interval and days: how long it runs (COUNT, UNTIL) is left to the plan, which reads "ten
lessons" or "until June" better than a pattern does. A request that says two different repetitions, or
negates the one it says ("not every day"), has none here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from intentos.negation import affirmed

_DAYS = {"monday": "MO", "tuesday": "TU", "wednesday": "WE", "thursday": "TH", "friday": "FR",
         "saturday": "SA", "sunday": "SU"}
WORKDAYS = ("MO", "TU", "WE", "TH", "FR")
_DAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
# "every Monday", "every Monday and Thursday", "on Tuesdays", "Mondays and Fridays".
_AND = r"\s*(?:,|and|&)\s*"
_EVERY_DAYS = re.compile(rf"\bevery\s+({_DAY}(?:{_AND}{_DAY})*)\b|\b({_DAY}s(?:{_AND}{_DAY}s)*)\b", re.IGNORECASE)
_WORKDAYS = re.compile(r"\b(?:every\s+(?:work|week)[\s-]?day|(?:on\s+)?weekdays|(?:each|every)\s+work(?:ing)?\s+day|"
                       r"monday\s+(?:to|through|-)\s+friday)\b", re.IGNORECASE)
_PLAIN = (  # (phrase, adjective, FREQ, INTERVAL)
    (r"every\s+other\s+week|every\s+two\s+weeks", r"biweekly|fortnightly", "WEEKLY", 2),
    (r"every\s+day|each\s+day", r"daily", "DAILY", 1),
    (r"every\s+week|each\s+week", r"weekly", "WEEKLY", 1),
    (r"every\s+month|each\s+month", r"monthly", "MONTHLY", 1),
    (r"every\s+year|each\s+year", r"yearly|annually", "YEARLY", 1),
)


@dataclass(frozen=True)
class Repeat:
    """The repetition a request names: FREQ, INTERVAL and BYDAY of a repeat rule."""

    freq: str
    interval: int = 1
    days: tuple[str, ...] = ()

    def fits(self, rule: str) -> bool:
        """Whether a plan's repeat rule repeats this way (its COUNT or UNTIL aside)."""
        parts = _parts(rule)
        days = tuple(d[-2:] for d in parts.get("BYDAY", "").split(",") if d)
        if self.days:  # "every Monday": weekly on Mondays, or daily kept to Mondays, repeat alike
            return parts.get("FREQ") in {"WEEKLY", "DAILY"} and sorted(days) == sorted(self.days) and \
                int(parts.get("INTERVAL", "1")) == self.interval
        return parts.get("FREQ") == self.freq and int(parts.get("INTERVAL", "1")) == self.interval and not days

    def rule(self, kept_from: str = "") -> str:
        """The repeat rule, keeping how long `kept_from` (the plan's rule) ran: its COUNT (if over one) or UNTIL."""
        out = [f"FREQ={self.freq}"]
        if self.interval != 1:
            out.append(f"INTERVAL={self.interval}")
        if self.days:
            out.append("BYDAY=" + ",".join(self.days))
        parts = _parts(kept_from)
        if parts.get("COUNT", "1") != "1":
            out.append(f"COUNT={parts['COUNT']}")
        elif "UNTIL" in parts:
            out.append(f"UNTIL={parts['UNTIL']}")
        return ";".join(out)


def _parts(rule: str) -> dict[str, str]:
    text = rule.strip().removeprefix("RRULE:")
    return {k.strip().upper(): v.strip().upper() for k, _, v in (p.partition("=") for p in text.split(";")) if v}


def named_repeat(intent: str, adjectives: bool = True) -> Repeat | None:
    """The one repetition the request names, or None (none, several, or negated). `adjectives`: count "daily",
    "weekly" and the like too, which also name things ("the weekly review") rather than say they repeat."""
    text = affirmed(intent)
    found: set[Repeat] = set()
    if _WORKDAYS.search(text):
        found.add(Repeat("WEEKLY", 1, WORKDAYS))
        text = _WORKDAYS.sub(" ", text)
    for match in _EVERY_DAYS.finditer(text):
        words = re.findall(_DAY, (match.group(1) or match.group(2)).lower())
        found.add(Repeat("WEEKLY", 1, tuple(dict.fromkeys(_DAYS[w] for w in words))))
    text = _EVERY_DAYS.sub(" ", text)
    for phrase, adjective, freq, interval in _PLAIN:
        pattern = re.compile(rf"\b(?:{phrase}|{adjective})\b" if adjectives else rf"\b(?:{phrase})\b", re.IGNORECASE)
        if pattern.search(text):
            found.add(Repeat(freq, interval))
            text = pattern.sub(" ", text)
    if len(found) == 2 and (weekly := {r for r in found if r.days}) and \
            {r.freq for r in found - weekly} == {"WEEKLY"}:  # "weekly, on Tuesdays": the days say more
        found = weekly
    return found.pop() if len(found) == 1 else None
