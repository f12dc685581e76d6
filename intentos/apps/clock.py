"""The clock: what time it is, date arithmetic, natural phrases, time zones.

Every answer is computed from `ctx.now()` and the user's time zone, so a run with a
fixed clock is reproducible. Naive times are read as wall-clock times in the user's
zone. Arithmetic follows how people count across daylight-saving changes: days and
weeks move the calendar date and keep the wall-clock time (Saturday 09:00 + 1 day is
Sunday 09:00, even if that day has 23 hours), while hours and minutes are elapsed time.

The phrase grammar and the arithmetic live in `intentos.when`, which the other apps
and grounding share.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from intentos.app import App
from intentos.errors import AppError
from intentos.function import Effect, function
from intentos.grounding import Grounded, GroundingQuery, day_phrases
from intentos.when import (
    WEEKDAY_ALIASES,
    When,
    add_calendar,
    add_elapsed,
    elapsed_minutes,
    isoformat,
    localize,
    next_weekday,
    parse_when,
    request_zones,
    zone,
)


class Moment(BaseModel):
    iso: str = Field(description="ISO 8601 date-time with UTC offset")
    date: str
    time: str
    weekday: str
    timezone: str


def moment(value: datetime, zone_name: str) -> Moment:
    return Moment(iso=isoformat(value), date=value.date().isoformat(), time=value.strftime("%H:%M"),
                  weekday=value.strftime("%A"), timezone=zone_name)


class NowArgs(BaseModel):
    timezone: str | None = Field(None, description="IANA zone to show the time in; default the user's")


class ShiftArgs(BaseModel):
    when: str = Field(description="ISO date or date-time, or a phrase like 'tomorrow 3pm'")
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    weekday: str | None = Field(None, description="then move to the next such weekday, e.g. 'monday' or 'next monday'")


class ResolveArgs(BaseModel):
    phrase: str = Field(description="e.g. 'tomorrow 3pm', 'next friday', 'in 2 hours', '2026-04-01 14:00'")


class Resolved(Moment):
    iso: str = Field(description="ISO 8601 date-time with UTC offset; only the date when the phrase named only a day")
    phrase: str
    has_time: bool = Field(description="false when the phrase named only a day (time is then 00:00)")


class DiffArgs(BaseModel):
    start: str = Field(description="ISO date-time or phrase")
    end: str = Field(description="ISO date-time or phrase")


class Difference(BaseModel):
    total_minutes: int = Field(description="elapsed minutes from start to end; negative if end is earlier")
    total_hours: float
    days: int
    hours: int
    minutes: int
    calendar_days: int = Field(description="difference of the local calendar dates")
    negative: bool
    text: str


class ConvertArgs(BaseModel):
    when: str = Field(description="ISO date-time or phrase; naive times are in the user's zone")
    timezone: str = Field(description="target IANA zone, e.g. America/New_York")


DAY_SCORE = 4.0  # above a name or title match (2 a word): a day the request names is always worth its line



class ClockApp(App):
    name = "clock"
    description = "current date and time, date arithmetic, natural date phrases, time zones"

    def _parse(self, text: str) -> When:
        return parse_when(text, self.ctx.tz, self.ctx.now())

    @function(Effect.READ)
    def now(self, args: NowArgs) -> Moment:
        """The current date, time and weekday, in the user's time zone or another one ('America/Lima')."""
        name = args.timezone or self.ctx.timezone
        return moment(self.ctx.now().astimezone(zone(name)), name)

    @function(Effect.READ)
    def shift(self, args: ShiftArgs) -> Moment:
        """Add weeks/days (same clock time) and hours/minutes to a date, or move it to the next weekday."""
        at = self._parse(args.when).at
        at = add_calendar(at, weeks=args.weeks, days=args.days)
        at = add_elapsed(at, hours=args.hours, minutes=args.minutes)
        if args.weekday:
            words = args.weekday.lower().split()
            name = words[-1] if words else ""
            if name not in WEEKDAY_ALIASES or len(words) > 2:
                raise AppError(f"{args.weekday!r} is not a weekday (use e.g. 'monday' or 'next monday')")
            day = next_weekday(at.date(), WEEKDAY_ALIASES[name], words[0] if len(words) == 2 else "next")
            at = localize(datetime.combine(day, at.time()), self.ctx.tz)
        return moment(at, self.ctx.timezone)

    @function(Effect.READ)
    def resolve(self, args: ResolveArgs) -> Resolved:
        """Turn a phrase like 'tomorrow 3pm' or 'next friday' into an exact date-time."""
        when = self._parse(args.phrase)
        zone = getattr(when.at.tzinfo, "key", None) or self.ctx.timezone  # a place's zone when the phrase names one
        found = moment(when.at, zone).model_dump()
        if not when.has_time:
            # A day stays a day where the plan passes it on: "move the review to Friday" keeps its hour, "put the
            # offsite on Friday" is an all-day event; a midnight time would say otherwise.
            found["iso"] = found["date"]
        return Resolved(**found, phrase=args.phrase, has_time=when.has_time)

    @function(Effect.READ)
    def diff(self, args: DiffArgs) -> Difference:
        """How long from one date-time to another (days, hours, minutes)."""
        start, end = self._parse(args.start).at, self._parse(args.end).at
        elapsed = elapsed_minutes(start, end)
        total = int(elapsed) if elapsed >= 0 else -int(-elapsed)
        days, rest = divmod(abs(total), 24 * 60)
        hours, minutes = divmod(rest, 60)
        parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in ((days, "day"), (hours, "hour"),
                                                                        (minutes, "minute")) if n]
        text = " and ".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else (parts or ["0 minutes"])[0]
        return Difference(total_minutes=total, total_hours=round(total / 60, 2), days=days, hours=hours,
                          minutes=minutes, calendar_days=(end.date() - start.date()).days, negative=total < 0,
                          text=text + (" earlier" if total < 0 else ""))

    @function(Effect.READ)
    def convert(self, args: ConvertArgs) -> Moment:
        """Show a date-time in another time zone."""
        target = zone(args.timezone)
        return moment(self._parse(args.when).at.astimezone(target), args.timezone)

    def seed(self, data: object) -> None:
        """The clock has no state; a fixture sets the time with its top-level `now:` instead."""
        raise AppError("the clock takes no fixture data; set `now:` and `timezone:` at the top of the fixture")

    def ground(self, query: GroundingQuery) -> list[Grounded]:
        """The days the request names, worked out ("next Tuesday" is Tuesday 2026-03-17): a small model
        counts weekdays wrong, or writes today's date. And, for a request about a time, the time zones of the
        places it names ("Tokyo" is Asia/Tokyo): left to itself, a small model showed the user's own time."""
        days = [Grounded(f'"{phrase}" is {day:%A %Y-%m-%d}', DAY_SCORE, self.name)
                for phrase, day in dict(day_phrases(query.intent, query.now, self.ctx.tz)).items()]
        zones = [Grounded(f'"{place}" is the time zone {name}', DAY_SCORE, self.name)
                 for place, name in request_zones(query.intent)]
        return days + zones

    def summary(self) -> str:
        now = self.ctx.now()
        return f"now: {now.strftime('%A')} {isoformat(now)} ({self.ctx.timezone})"
