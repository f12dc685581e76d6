"""Dates and times as people write them: the phrase grammar the apps share, and DST-aware arithmetic.

`parse_when` reads a date argument or a phrase of this grammar:

    now | today | tonight | tomorrow | yesterday | day after tomorrow
    [this|next|last] <weekday>            "this" includes today; bare and "next" mean the first one after today
    next week | next month | next year    the Monday / the 1st / January 1st
    in <n> <unit> | <n> <unit> ago        units: minutes, hours, days, weeks, months, years; n may be "a"/"an"/"two"
    <day> [at] <time> | <time> [on] <day> times: 15:00, 3pm, 3:30 pm, noon, midnight, morning, afternoon, evening
    anything python-dateutil reads without guessing: 2026-04-01, 2026-04-01 14:00, April 3 2pm, 2026-04-01T14:00+02:00
    <any of these> <place> time | <any of these> in <place>
                                          read and given in that place's zone: "monday 9am chicago time"

Naive times are read as wall-clock times in the given zone. Arithmetic follows how
people count across daylight-saving changes: days and weeks move the calendar date and
keep the wall-clock time, hours and minutes are elapsed time. The clock app
(`intentos.apps.clock`) serves this to models; grounding and the other apps use it directly.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil import parser as dateparser
from dateutil.relativedelta import relativedelta

from intentos.errors import AppError

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAY_ALIASES = {name[:3]: i for i, name in enumerate(WEEKDAYS)} | {name: i for i, name in enumerate(WEEKDAYS)}
WEEKDAY_ALIASES |= {"tues": 1, "weds": 2, "thur": 3, "thurs": 3}
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_UNIT = r"(minute|min|hour|hr|day|week|month|year)s?"
_NUMBER = r"(\d+|" + "|".join(_NUMBER_WORDS) + ")"
_WEEKDAY = "(" + "|".join(sorted(WEEKDAY_ALIASES, key=len, reverse=True)) + ")"
_NAMED_TIMES = {"noon": time(12), "midday": time(12), "midnight": time(0), "morning": time(9),
                "afternoon": time(14), "evening": time(18), "night": time(20), "end of day": time(17)}

_RELATIVE = re.compile(rf"in {_NUMBER} {_UNIT}|{_NUMBER} {_UNIT} (ago|from now|later)")
_DAY = (rf"(?:the )?day after tomorrow|today|tonight|tomorrow|yesterday|next (?:week|month|year)"
        rf"|(?:(?:this|next|last|coming|on) )?{_WEEKDAY}|in {_NUMBER} (?:day|week|month|year)s?")
_DEADLINE = re.compile(r"^(?:due\s+)?(?:by|until|till|before|no later than)\s+")
_WEEKDAY_DATE = re.compile(r"(?:on )?(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday) "
                           r"(?:the )?(?P<date>\d.*|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d.*)")
_DAY_THEN_TIME = re.compile(rf"(?P<day>{_DAY})(?: (?:at )?(?P<time>.+))?")
_TIME_THEN_DAY = re.compile(rf"(?:at )?(?P<time>.+?) (?:on )?(?P<day>{_DAY})")
_CLOCK_TIME = re.compile(r"(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?")


@dataclass(frozen=True)
class When:
    """A parsed moment: aware, in the user's zone; `has_time` is False for a bare date."""

    at: datetime
    has_time: bool


# -- helpers the other apps share ----------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or an AppError that says how to spell one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AppError(f"unknown time zone {name!r} (use an IANA name like Europe/Berlin or UTC)") from None


def localize(value: datetime, tz: ZoneInfo) -> datetime:
    """`value` as an aware time in `tz`: naive values are wall-clock times there.

    A wall-clock time skipped by a daylight-saving change (02:30 on the night clocks go
    forward) moves forward by the gap, as a clock would show it.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC).astimezone(tz)


def isoformat(value: datetime) -> str:
    """ISO 8601 with offset, to the second: 2026-03-10T09:00:00+01:00."""
    return value.replace(microsecond=0).isoformat()


def add_calendar(value: datetime, *, years: int = 0, months: int = 0, weeks: int = 0, days: int = 0) -> datetime:
    """Move the calendar date, keeping the wall-clock time (DST-aware)."""
    tz = value.tzinfo
    naive = value.replace(tzinfo=None) + relativedelta(years=years, months=months, weeks=weeks, days=days)
    return localize(naive, tz) if isinstance(tz, ZoneInfo) else naive.replace(tzinfo=tz)


def add_elapsed(value: datetime, *, hours: float = 0, minutes: float = 0) -> datetime:
    """Add real elapsed time (an hour is always 60 minutes, whatever the clocks do)."""
    moved = value.astimezone(UTC) + timedelta(hours=hours, minutes=minutes)
    return moved.astimezone(value.tzinfo)


def elapsed_minutes(start: datetime, end: datetime) -> float:
    """Real minutes from `start` to `end` (Python subtracts wall times when both share a zone)."""
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 60


def parse_when(text: str | datetime | date, tz: ZoneInfo, now: datetime) -> When:
    """Read a date, a date and time, or a phrase of the grammar in the module docstring."""
    if isinstance(text, datetime):
        return When(localize(text, tz), True)
    if isinstance(text, date):
        return When(localize(datetime.combine(text, time()), tz), False)
    phrase = " ".join(str(text).lower().replace(",", " ").split()).rstrip(".!?")
    if not phrase:
        raise AppError("no date or time given")
    phrase = _DEADLINE.sub("", phrase)  # "by friday 20 march": the day is the day
    if (there := _in_zone(phrase)) is not None:
        # "monday 9am chicago time", "now in sydney": read, and given, in that zone (the same instant
        # for whoever stores it; the wall time there for whoever shows it).
        return parse_when(there[0], there[1], now)
    now = now.astimezone(tz)
    if phrase in ("now", "right now"):
        return When(now, True)
    if m := _RELATIVE.fullmatch(phrase):
        return When(_relative(m, now), True)
    if (m := _WEEKDAY_DATE.fullmatch(phrase)) and _clock_time(m.group("date"), strict=False) is None:
        return _weekday_date(m.group("weekday"), m.group("date"), str(text), tz, now)
    for pattern in (_DAY_THEN_TIME, _TIME_THEN_DAY):
        if m := pattern.fullmatch(phrase):
            return _day_and_time(m.group("day"), m.group("time"), now, tz)
    if (at := _clock_time(phrase.removeprefix("at "), strict=False)) is not None:
        return When(localize(datetime.combine(now.date(), at), tz), True)
    return _absolute(phrase, str(text), tz, now)


def _weekday_date(weekday: str, rest: str, original: str, tz: ZoneInfo, now: datetime) -> When:
    """"friday 20 march": the date, which must fall on that weekday (a plan's two ways of saying a day
    disagreeing is a mistake to show, not to settle)."""
    when = _absolute(rest, original, tz, now)
    if f"{when.at:%A}".lower() != weekday:
        raise AppError(f"{original!r}: {when.at:%Y-%m-%d} is a {when.at:%A}, not a {weekday.capitalize()}")
    return when


def _in_zone(phrase: str) -> tuple[str, ZoneInfo] | None:
    """A phrase ending in a place's time ("9am chicago time", "9:00 in sydney"), as the rest of the phrase
    and that place's zone; None for any other phrase, or one that is only a place."""
    places = zone_places()
    words = phrase.split()
    marked = bool(words) and words[-1] == "time"
    words = words[:-1] if marked else words
    for n in range(min(MAX_PLACE_WORDS, len(words) - 1), 0, -1):
        place = " ".join(words[-n:])
        if place in places:
            rest = words[:-n]
            if rest[-1] == "in":
                rest, marked = rest[:-1], True
            return (" ".join(rest), ZoneInfo(places[place])) if marked and rest else None
    return None


# -- the grammar -----------------------------------------------------------------------------


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _relative(m: re.Match[str], now: datetime) -> datetime:
    if m.group(1) is not None:
        amount, unit, sign = _number(m.group(1)), m.group(2), 1
    else:
        amount, unit, sign = _number(m.group(3)), m.group(4), -1 if m.group(5) == "ago" else 1
    return _offset(now, unit, sign * amount)


def _offset(value: datetime, unit: str, amount: int) -> datetime:
    if unit in ("minute", "min"):
        return add_elapsed(value, minutes=amount)
    if unit in ("hour", "hr"):
        return add_elapsed(value, hours=amount)
    return add_calendar(value, **{unit + "s": amount})


def _day_and_time(day_text: str, time_text: str | None, now: datetime, tz: ZoneInfo) -> When:
    day, keeps_time = _day(day_text, now)
    if time_text is not None:
        at = _clock_time(time_text.removeprefix("at ").removeprefix("in the "), strict=True)
        return When(localize(datetime.combine(day, at), tz), True)
    if day_text == "tonight":
        return When(localize(datetime.combine(day, _NAMED_TIMES["night"]), tz), True)
    if keeps_time:  # "in 3 days" is three days from this moment
        return When(localize(datetime.combine(day, now.time()), tz), True)
    return When(localize(datetime.combine(day, time()), tz), False)


def _day(text: str, now: datetime) -> tuple[date, bool]:
    """The date a day expression names, and whether it keeps the current time of day."""
    today = now.date()
    fixed = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1, "day after tomorrow": 2,
             "the day after tomorrow": 2}
    if text in fixed:
        return today + timedelta(days=fixed[text]), False
    if text == "next week":
        return today + timedelta(days=7 - today.weekday()), False
    if text == "next month":
        return today.replace(day=1) + relativedelta(months=1), False
    if text == "next year":
        return date(today.year + 1, 1, 1), False
    if m := re.fullmatch(rf"in {_NUMBER} (day|week|month|year)s?", text):
        return today + relativedelta(**{m.group(2) + "s": _number(m.group(1))}), True
    qualifier, _, name = text.rpartition(" ")
    return next_weekday(today, WEEKDAY_ALIASES[name], qualifier or "next"), False


def next_weekday(start: date, weekday: int, qualifier: str = "next") -> date:
    """`this` X: today or the next X; `next`/`coming`/`on` X: the first X after today; `last` X: before."""
    if qualifier == "last":
        return start - timedelta(days=(start.weekday() - weekday - 1) % 7 + 1)
    ahead = (weekday - start.weekday()) % 7
    if ahead == 0 and qualifier != "this":
        ahead = 7
    return start + timedelta(days=ahead)


def _clock_time(text: str, *, strict: bool) -> time | None:
    """15:00, 3pm, 3:30 p.m., noon... None (or an AppError when `strict`) if it is no time of day."""
    text = text.strip()
    if text in _NAMED_TIMES:
        return _NAMED_TIMES[text]
    m = _CLOCK_TIME.fullmatch(text)
    if m is None:
        if strict:
            raise AppError(f"cannot read the time {text!r} (use e.g. 15:00, 3pm or noon)")
        return None
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), (m.group(3) or "").replace(".", "")
    if not half and m.group(2) is None:
        if not strict:
            return None  # a bare number alone is not a time ("5" may be a day of the month)
        if 1 <= hour <= 12:
            # "at 10", "at 3": the hour of the working day, as people plan them (and calendars read them):
            # 8 to 11 in the morning, 12 noon, 1 to 7 in the afternoon or evening. The plan shows the time.
            hour = hour + 12 if hour < 8 else hour
    if half:
        if not 1 <= hour <= 12:
            raise AppError(f"the time {text!r} is not a valid 12-hour time")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise AppError(f"the time {text!r} does not exist")
    return time(hour, minute)


def _absolute(phrase: str, original: str, tz: ZoneInfo, now: datetime) -> When:
    """A calendar date with or without a time, read by dateutil; missing parts come from today."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    try:
        first = dateparser.parse(phrase, default=midnight)
        second = dateparser.parse(phrase, default=midnight.replace(hour=1))
    except (ValueError, OverflowError):
        place = zone_places().get(phrase.strip().lower().removeprefix("in ").removesuffix(" time"))
        if place is not None:  # "sydney" for "the time in Sydney": the model put the place where the time goes
            raise AppError(
                f"{original!r} is a place (the time zone {place}), not a date or time: for the time there now use "
                f"clock.now(timezone={place!r}); for another time, resolve that time ('tomorrow 3pm') and show it "
                f"there with clock.convert(timezone={place!r})") from None
        raise AppError(
            f"cannot understand the date or time {original!r}; use ISO 8601 (2026-04-01 or 2026-04-01 14:00) "
            "or a phrase like 'tomorrow 3pm', 'next friday', 'in 2 hours'"
        ) from None
    has_time = first == second
    if first.tzinfo is not None:
        return When(first.astimezone(tz), True)
    return When(localize(first, tz), has_time)


# -- places and their zones ------------------------------------------------------------------------


_REGIONS = ("Africa/", "America/", "Asia/", "Atlantic/", "Australia/", "Europe/", "Indian/", "Pacific/")
# A request about a time: only then is a city it names a time zone ("at 10am New York time", "what time is it in
# Lima"), not a trip or a project.
_ABOUT_TIME = re.compile(r"\b(?:time|zone|o'clock|now|\d{1,2}(?::\d{2})?\s*(?:am|pm)|\d{1,2}:\d{2})\b", re.IGNORECASE)
MAX_PLACE_WORDS = 3  # "Port of Spain"


@cache
@functools.cache
def zone_places() -> dict[str, str]:
    """Each place an IANA zone is named for, lower-cased, with the zone: "new york" → America/New_York."""
    places: dict[str, str] = {}
    for name in sorted(available_timezones()):
        if name.startswith(_REGIONS):
            places.setdefault(name.rsplit("/", 1)[-1].replace("_", " ").lower(), name)
    return places


_PLACE_BEFORE = frozenset({"in", "at", "for", "from", "to"})  # "in Tokyo"; "Call Sofia" is a person


def named_zones(text: str) -> list[tuple[str, str]]:
    """The places of IANA zones a text names as places ("in Tokyo", "New York time"), with their zones."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    places = zone_places()
    found: dict[str, tuple[str, str]] = {}
    for i in range(len(words)):
        for n in range(MAX_PLACE_WORDS, 0, -1):
            phrase = words[i:i + n]
            key = " ".join(phrase).lower()
            as_place = (i > 0 and words[i - 1].lower() in _PLACE_BEFORE) or (
                i + n < len(words) and words[i + n].lower() in ("time", "timezone"))
            if len(phrase) == n and as_place and key in places and places[key] not in found:
                found[places[key]] = (" ".join(phrase), places[key])
                break
    return list(found.values())


def request_zones(intent: str) -> list[tuple[str, str]]:
    """The places of IANA zones a request about a time names, with their zones (none for a request about
    something else: "my Lisbon flight" is a trip)."""
    return named_zones(intent) if _ABOUT_TIME.search(intent) else []
