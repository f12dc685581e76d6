"""The calendar: events in one iCalendar file, `Calendar/calendar.ics`.

The file is the standard format any calendar program opens. Times are stored with
their time zone (and a VTIMEZONE definition); floating times in an imported file are
read in the user's zone. Weekly meetings and other RRULE recurrences are expanded
with dateutil, honouring EXDATE and RECURRENCE-ID overrides, and only within the
window asked about: at most MAX_OCCURRENCES occurrences of one event per query, the
expansion starting just before the window (not at a first occurrence years ago) and
stopping at its end, so no rule (FREQ=SECONDLY, a filter that never matches...) can
keep a call busy. Cancelling never deletes: the event stays in the file with
STATUS:CANCELLED. The file is read through the sandbox with a size limit; a file that
cannot be parsed is reported, by name, in one line, and never written over.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import MAXYEAR, date, datetime, time, timedelta
from typing import Any

import icalendar
from dateutil.rrule import DAILY, HOURLY, MINUTELY, SECONDLY, WEEKLY, YEARLY, rrule, rrulestr
from pydantic import BaseModel, Field

from intentos.app import App
from intentos.apps.problems import content_problem, one_line
from intentos.errors import AppError, SandboxError
from intentos.function import Effect, function
from intentos.grounding import Grounded, GroundingQuery
from intentos.when import When, add_calendar, add_elapsed, elapsed_minutes, isoformat, localize, parse_when

CALENDAR_FILE = "Calendar/calendar.ics"
DEFAULT_DAYS = 7
MAX_SLOT_DAYS = 62
MAX_CALENDAR_BYTES = 50 * 1024 * 1024  # a bigger file is refused, not read
MAX_OCCURRENCES = 10_000  # occurrences of one repeating event in one query's window
_STEP_SECONDS = {SECONDLY: 1, MINUTELY: 60, HOURLY: 3600, DAILY: 86400, WEEKLY: 7 * 86400}
MAX_TOTAL_OCCURRENCES = 20_000  # all repeating events of one query together
MAX_LOOKED_AT = 500_000  # occurrences dateutil may hand over in one query, kept or not
_LEAD = timedelta(hours=3)  # expansion stops this much after the window (wall-clock against real time)


class Event(BaseModel):
    uid: str
    title: str
    start: str = Field(description="ISO date-time with offset; a date for all-day events")
    end: str = Field(description="ISO date-time with offset; for all-day events the last day")
    all_day: bool = False
    duration_minutes: int
    location: str = ""
    attendees: list[str] = Field(default_factory=list)
    description: str = ""
    status: str = "CONFIRMED"
    recurrence: str | None = Field(None, description="RRULE of a repeating event")


class AddEventArgs(BaseModel):
    title: str
    start: str = Field(description="ISO date-time or phrase like 'tomorrow 3pm'; a bare date makes an all-day event")
    end: str | None = Field(None, description="end date-time; or give duration_minutes (default 60)")
    duration_minutes: int | None = Field(None, gt=0)
    all_day: bool = False
    location: str = ""
    attendees: list[str] = Field(default_factory=list, description="emails, or names from contacts")
    description: str = ""
    rrule: str | None = Field(None, description="repeat rule, e.g. FREQ=WEEKLY;BYDAY=MO;COUNT=10 (Monday to "
                                                "Friday: BYDAY=MO,TU,WE,TH,FR; no COUNT: for good)")


class AddedEvent(Event):
    conflicts: list[str] = Field(default_factory=list, description="titles of events overlapping this one")


class RangeArgs(BaseModel):
    start: str | None = Field(None, description="date or date-time; default today")
    end: str | None = Field(None, description="a date includes that whole day; default 7 days after start")
    include_cancelled: bool = False


class Events(BaseModel):
    events: list[Event]
    count: int


class FindArgs(BaseModel):
    query: str = Field(description="words to find in title, location, description or attendees")
    start: str | None = Field(None, description="only occurrences from this date or date-time")
    end: str | None = Field(None, description="only occurrences until this date (inclusive) or date-time")


EVENT_REF = "the event's uid, or its exact title when one event has it"


class MoveArgs(BaseModel):
    uid: str = Field(description=EVENT_REF)
    start: str | None = Field(None, description="new start (a day alone keeps the time of day); the duration is "
                                                "kept (a repeating event moves as a whole series)")
    # "Push it back a week": said as a shift, not a date; a small model given only `start` moved the event to
    # the time it already had, or replaced the move with a clock.shift.
    weeks: int = Field(0, description="instead of start: move it this many weeks (negative: earlier), same time")
    days: int = Field(0, description="instead of start: move it this many days, same time")


class CancelArgs(BaseModel):
    uid: str = Field(description=EVENT_REF)


class Cancelled(BaseModel):
    uid: str
    title: str
    start: str
    status: str = "CANCELLED"


class FreeSlotsArgs(BaseModel):
    start: str | None = Field(None, description="day or date-time to search from; default now")
    end: str | None = Field(None, description="last day (inclusive) or date-time; default the start's day")
    duration_minutes: int = Field(30, gt=0, description="shortest free interval worth listing")
    day_start: str = Field("09:00", description="working hours begin")
    day_end: str = Field("17:00", description="working hours end")
    weekends: bool = False


class Slot(BaseModel):
    start: str
    end: str
    minutes: int


class Slots(BaseModel):
    slots: list[Slot]
    count: int


@dataclass
class _Occurrence:
    """One concrete occurrence of an event, with aware start and end in the user's zone."""

    comp: icalendar.Event
    start: datetime
    end: datetime
    all_day: bool


class CalendarApp(App):
    name = "calendar"
    description = "events in an iCalendar file: add, list, find, move, cancel, free time slots"
    data_folder = "Calendar"

    # -- the file -----------------------------------------------------------------------------

    def _load(self) -> icalendar.Calendar:
        try:
            raw = self.sandbox.read_bytes(CALENDAR_FILE, limit=MAX_CALENDAR_BYTES)
        except FileNotFoundError:
            cal = icalendar.Calendar()
            cal.add("prodid", "-//intentos//calendar//EN")
            cal.add("version", "2.0")
            return cal
        except IsADirectoryError:
            raise AppError(f"{CALENDAR_FILE} is a folder, not an iCalendar file") from None
        except (OSError, SandboxError) as exc:
            raise AppError(one_line(f"{CALENDAR_FILE} cannot be read: {_reason(exc)}")) from None
        try:
            cal = icalendar.Calendar.from_ical(raw)
            if not isinstance(cal, icalendar.Calendar):
                raise self._corrupt("it holds no VCALENDAR")
            for comp in cal.walk():
                if comp.errors:
                    prop, problem = comp.errors[0]
                    raise self._corrupt(f"{comp.name} {prop}: {problem}")
            events = cal.walk("VEVENT")
        except AppError:
            raise
        except Exception as exc:  # noqa: BLE001 - icalendar raises all sorts (RecursionError too) on a hostile file
            raise self._corrupt(content_problem(exc)) from None
        for comp in events:
            try:
                self._times(comp)
            except Exception as exc:  # noqa: BLE001
                raise self._corrupt(f"event {_uid(comp)}: bad DTSTART/DTEND ({exc})") from None
        return cal

    def _corrupt(self, why: str) -> AppError:
        why = one_line(why)
        why = why if len(why) <= 300 else why[:300] + "…"  # a parser may quote a whole (huge) line
        return AppError(f"{CALENDAR_FILE} is not a valid iCalendar file ({why}); it was left untouched")

    def _save(self, cal: icalendar.Calendar) -> None:
        try:
            cal.add_missing_timezones()
            data = cal.to_ical()
        except Exception as exc:  # noqa: BLE001
            raise self._corrupt(f"it cannot be written back: {content_problem(exc)}") from None
        try:
            self.sandbox.write_bytes(CALENDAR_FILE, data)
        except (OSError, SandboxError) as exc:
            raise AppError(one_line(f"{CALENDAR_FILE} cannot be written: {_reason(exc)}")) from None

    # -- reading events -------------------------------------------------------------------------

    def _times(self, comp: icalendar.Event) -> tuple[datetime, datetime, bool]:
        """Aware start and end of an event's first occurrence, and whether it is all-day."""
        raw = comp.decoded("dtstart")
        all_day = not isinstance(raw, datetime)
        start = self._aware(raw)
        if "dtend" in comp:
            end = self._aware(comp.decoded("dtend"))
        elif "duration" in comp:
            length = comp.decoded("duration")
            end = self._aware(raw + length) if all_day else add_elapsed(start, minutes=length.total_seconds() / 60)
        else:
            end = self._aware(raw + timedelta(days=1)) if all_day else start
        return start, end, all_day

    def _aware(self, value: date | datetime) -> datetime:
        if not isinstance(value, datetime):
            value = datetime.combine(value, time())
        return localize(value, self.ctx.tz)

    def _occurrences(self, cal: icalendar.Calendar, lo: datetime | None, hi: datetime | None,
                     *, include_cancelled: bool = False) -> list[_Occurrence]:
        """Occurrences overlapping [lo, hi), repeating events expanded; without bounds, each event once."""
        overridden: dict[str, set[datetime]] = {}
        for comp in cal.walk("VEVENT"):
            if "recurrence-id" in comp:
                try:
                    at = self._aware(comp.decoded("recurrence-id"))
                except Exception as exc:  # noqa: BLE001
                    raise self._corrupt(f"event {_uid(comp)}: bad RECURRENCE-ID ({exc})") from None
                overridden.setdefault(str(comp["uid"]), set()).add(at)
        found = []
        budget = _Budget()
        for comp in cal.walk("VEVENT"):
            if not include_cancelled and _status(comp) == "CANCELLED":
                continue
            start, end, all_day = self._times(comp)
            if "rrule" in comp and "recurrence-id" not in comp and lo is not None and hi is not None:
                try:
                    skip = overridden.get(str(comp["uid"]), set()) | self._exdates(comp)
                    for at in self._expand(comp, add_elapsed(lo, minutes=-elapsed_minutes(start, end)), hi, budget):
                        if at not in skip:
                            found.append(_Occurrence(comp, at, _same_length(at, start, end, all_day), all_day))
                except AppError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a rule dateutil cannot follow is the file's problem
                    raise self._corrupt(f"event {_uid(comp)}: bad RRULE or EXDATE ({content_problem(exc)})") from None
            else:
                found.append(_Occurrence(comp, start, end, all_day))
        inside = [o for o in found if (lo is None or o.end > lo or o.start >= lo) and (hi is None or o.start < hi)]
        return sorted(inside, key=lambda o: (o.start, str(o.comp.get("summary", ""))))

    def _expand(self, comp: icalendar.Event, lo: datetime, hi: datetime,
                budget: _Budget | None = None) -> list[datetime]:
        """Starts of a repeating event's occurrences in [lo, hi]: at most MAX_OCCURRENCES per rule."""
        raw = comp.decoded("dtstart")
        first = raw if isinstance(raw, datetime) else datetime.combine(raw, time())
        if first.tzinfo is None and isinstance(raw, datetime):
            first = localize(first, self.ctx.tz)  # floating time: the user's wall clock
        rules = []
        for text in _rrule_texts(comp):
            try:
                rule = rrulestr(text, dtstart=first)
            except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
                raise self._corrupt(f"event {_uid(comp)}: bad RRULE ({exc})") from None
            if not isinstance(rule, rrule):
                raise self._corrupt(f"event {_uid(comp)}: bad RRULE ({text!r} is not one rule)")
            rules.append(rule)
        zone = first.tzinfo
        if zone is None:  # all-day: expand on dates, then place them in the user's zone
            lo_b, hi_b = lo.replace(tzinfo=None) - timedelta(days=1), hi.replace(tzinfo=None)
        else:
            lo_b, hi_b = lo, hi
        found: set[datetime] = set()
        for rule in rules:
            found.update(_window(rule, first.replace(tzinfo=None), zone, lo_b, hi_b, budget or _Budget()))
        return [self._aware(at.replace(tzinfo=zone) if zone else at) for at in sorted(found)]

    def _exdates(self, comp: icalendar.Event) -> set[datetime]:
        lists = comp.get("exdate", [])
        out = set()
        for entry in lists if isinstance(lists, list) else [lists]:
            out.update(self._aware(d.dt) for d in entry.dts)
        return out

    def _event(self, occ: _Occurrence, fixed: dict[int, dict[str, Any]] | None = None) -> Event:
        """An occurrence as shown; `fixed` caches what all occurrences of one event share."""
        comp = occ.comp
        if fixed is None or id(comp) not in fixed:
            shared = dict(uid=str(comp.get("uid", "")), title=str(comp.get("summary", "")),
                          location=str(comp.get("location", "")), attendees=_attendees(comp),
                          description=str(comp.get("description", "")), status=_status(comp),
                          recurrence="\n".join(_rrule_texts(comp)) or None)
            if fixed is not None:
                fixed[id(comp)] = shared
        else:
            shared = fixed[id(comp)]
        if occ.all_day:
            last = (occ.end - timedelta(days=1)).date() if occ.end > occ.start else occ.start.date()
            start, end = occ.start.date().isoformat(), last.isoformat()
        else:
            start, end = isoformat(occ.start), isoformat(occ.end)
        return Event(
            start=start,
            end=end,
            all_day=occ.all_day,
            duration_minutes=(occ.end.date() - occ.start.date()).days * 1440 if occ.all_day
            else int(elapsed_minutes(occ.start, occ.end)),
            **shared,
        )

    def _master(self, cal: icalendar.Calendar, uid: str) -> icalendar.Event:
        """The event with this uid, else the one event (not cancelled) with this title, as tasks and notes
        take a title; several of that title are named with their uids."""
        masters = [c for c in cal.walk("VEVENT") if "recurrence-id" not in c]
        for comp in masters:
            if str(comp.get("uid", "")) == uid:
                return comp
        titled = [c for c in masters if str(c.get("summary", "")).strip().casefold() == uid.strip().casefold()
                  and _status(c) != "CANCELLED"]
        if len(titled) == 1:
            return titled[0]
        if titled:
            listed = ", ".join(f"{c.get('uid')} ({self._times(c)[0].isoformat(timespec='minutes')})"
                               for c in titled[:5])
            raise AppError(f"{len(titled)} events are titled {uid!r}: {listed}; give the uid of the one meant "
                           "(calendar.find_events with the day narrows them)")
        raise AppError(f"no event with uid or title {uid!r} in {CALENDAR_FILE} (find it with calendar.find_events)")

    def _range(self, start: str | None, end: str | None, default_days: int) -> tuple[datetime, datetime]:
        now = self.ctx.now()
        lo = self._when(start, "start") if start else localize(datetime.combine(now.date(), time()), self.ctx.tz)
        if end:
            when = parse_when(end, self.ctx.tz, now)
            hi = when.at if when.has_time else self._aware(when.at.date() + timedelta(days=1))
            if hi == lo:  # start and end the same moment ("friday afternoon" for both): the rest of that day
                hi = self._aware(lo.date() + timedelta(days=1))
        else:
            hi = self._aware(lo.date() + timedelta(days=default_days))
        if hi <= lo:
            raise AppError(f"the range ends ({isoformat(hi)}) before it starts ({isoformat(lo)})")
        return lo, hi

    def _when(self, text: str, what: str) -> datetime:
        try:
            return parse_when(text, self.ctx.tz, self.ctx.now()).at
        except AppError as exc:
            raise AppError(f"{what}: {exc}") from None

    # -- writing events -------------------------------------------------------------------------

    def _new_event(self, args: AddEventArgs) -> icalendar.Event:
        now = self.ctx.now()
        when = parse_when(args.start, self.ctx.tz, now)
        all_day = args.all_day or (not when.has_time and args.end is None and args.duration_minutes is None)
        comp = icalendar.Event()
        comp.add("uid", f"{uuid.uuid4()}@intentos")
        comp.add("dtstamp", now)
        comp.add("summary", args.title)
        if all_day:
            first = when.at.date()
            last = parse_when(args.end, self.ctx.tz, now).at.date() if args.end else first
            if last < first:
                raise AppError(f"the event ends ({last}) before it starts ({first})")
            comp.add("dtstart", first)
            comp.add("dtend", last + timedelta(days=1))
        else:
            if not when.has_time:
                raise AppError(f"start {args.start!r} has no time of day; give one (e.g. "
                               f"{when.at.date()} 10:00) or set all_day")
            comp.add("dtstart", when.at)
            comp.add("dtend", self._end(args, when.at))
        for key, value in (("location", args.location), ("description", args.description)):
            if value:
                comp.add(key, value)
        if args.attendees:
            from intentos.apps.contacts import resolve_addresses  # contacts may use the calendar one day

            for address in resolve_addresses(self.ctx, args.attendees):
                attendee = icalendar.vCalAddress(f"mailto:{address.email}")
                if address.name:
                    attendee.params["CN"] = address.name
                comp.add("attendee", attendee)
            comp.add("organizer", icalendar.vCalAddress(f"mailto:{self.ctx.user.email}"))
        if args.rrule:
            rule = _two_letter_days(args.rrule.strip().removeprefix("RRULE:"))
            if _ONCE.search(rule):
                raise AppError(f"the repeat rule {args.rrule!r} has COUNT=1, which repeats nothing: leave COUNT out "
                               "to repeat for good, or give how many times")
            try:
                rrulestr(rule, dtstart=when.at if not all_day else datetime.combine(when.at.date(), time()))
                comp.add("rrule", icalendar.vRecur.from_ical(rule))
            except (ValueError, TypeError) as exc:
                raise AppError(f"bad repeat rule {args.rrule!r}: {exc} (e.g. FREQ=WEEKLY;BYDAY=MO;COUNT=10)") from None
        return comp

    def _end(self, args: AddEventArgs, start: datetime) -> datetime:
        if args.end is not None:
            end = parse_when(args.end, self.ctx.tz, self.ctx.now()).at
            if args.duration_minutes is not None and end != add_elapsed(start, minutes=args.duration_minutes):
                raise AppError(f"end {args.end!r} and duration_minutes {args.duration_minutes} disagree; give one")
        else:
            end = add_elapsed(start, minutes=args.duration_minutes or 60)
        if end <= start:
            raise AppError(f"the event ends ({isoformat(end)}) before it starts ({isoformat(start)})")
        return end

    def _touch(self, comp: icalendar.Event) -> None:
        """Record a change the way calendar programs expect (SEQUENCE, LAST-MODIFIED)."""
        sequence = int(comp.get("sequence", 0)) + 1
        for key in ("sequence", "last-modified", "dtstamp"):
            comp.pop(key, None)
        comp.add("sequence", sequence)
        comp.add("last-modified", self.ctx.now())
        comp.add("dtstamp", self.ctx.now())

    # -- functions -------------------------------------------------------------------------------

    @function(Effect.WRITE)
    def add_event(self, args: AddEventArgs) -> AddedEvent:
        """Add an event (start plus end or duration; a bare date makes an all-day event)."""
        cal = self._load()
        comp = self._new_event(args)
        start, end, all_day = self._times(comp)
        clashes = [] if all_day else [o for o in self._occurrences(cal, start, end) if not o.all_day]
        cal.add_component(comp)
        self._save(cal)
        event = self._event(_Occurrence(comp, start, end, all_day))
        return AddedEvent(**event.model_dump(), conflicts=[str(o.comp.get("summary", "")) for o in clashes])

    @function(Effect.READ)
    def list_events(self, args: RangeArgs) -> Events:
        """List events between two dates (default: today and the next 7 days)."""
        lo, hi = self._range(args.start, args.end, DEFAULT_DAYS)
        found = self._occurrences(self._load(), lo, hi, include_cancelled=args.include_cancelled)
        fixed: dict[int, dict[str, Any]] = {}
        events = [self._event(o, fixed) for o in found]
        return Events(events=events, count=len(events))

    @function(Effect.READ)
    def find_events(self, args: FindArgs) -> Events:
        """Find events whose title, location, description or attendees contain the query words."""
        cal = self._load()
        if args.start or args.end:
            lo, hi = self._range(args.start, args.end, 366)
            found = self._occurrences(cal, lo, hi)
        else:
            found = self._occurrences(cal, None, None)
        words = args.query.lower().split()
        fixed: dict[int, dict[str, Any]] = {}
        events = [self._event(o, fixed) for o in found if all(w in _haystack(o.comp) for w in words)]
        return Events(events=events, count=len(events))

    @function(Effect.WRITE)
    def move_event(self, args: MoveArgs) -> Event:
        """Move an event to a new start time, or by weeks or days, keeping its duration."""
        cal = self._load()
        comp = self._master(cal, args.uid)
        if _status(comp) == "CANCELLED":
            raise AppError(f"event {comp.get('summary', args.uid)!s} is cancelled; add it again instead")
        start, end, all_day = self._times(comp)
        if (args.start is None) == (not args.weeks and not args.days):
            raise AppError("give either the new start, or weeks or days to move the event by (not both)")
        if args.start is None and all_day:
            day = start.date() if isinstance(start, datetime) else start
            when = When(datetime.combine(day + timedelta(weeks=args.weeks, days=args.days), time()), False)
        elif args.start is None:
            when = When(add_calendar(start, weeks=args.weeks, days=args.days), True)
        else:
            when = parse_when(args.start, self.ctx.tz, self.ctx.now())
        if all_day:
            days = (when.at.date() - start.date()).days
            if days == 0:
                raise AppError(f"event {comp.get('summary', args.uid)!s} is already on {start.date().isoformat()}; "
                               "give the day it moves to")
            new_start, new_end = start.date() + timedelta(days=days), end.date() + timedelta(days=days)
            new = _Occurrence(comp, self._aware(new_start), self._aware(new_end), True)
        else:
            # A day without a time keeps the event's time of day: "move the review to Friday" means the same
            # hour on Friday.
            new_start = when.at if when.has_time else localize(
                datetime.combine(when.at.date(), start.astimezone(self.ctx.tz).time().replace(tzinfo=None)),
                self.ctx.tz)
            if new_start == start:
                # A move to where the event is changes nothing: the plan took the old start for the new one.
                raise AppError(f"event {comp.get('summary', args.uid)!s} already starts at "
                               f"{start.isoformat(timespec='minutes')}; give the new start, or weeks or days to "
                               "move it by instead of start")
            new_end = add_elapsed(new_start, minutes=elapsed_minutes(start, end))
            new = _Occurrence(comp, new_start, new_end, False)
        for key in ("dtstart", "dtend", "duration"):
            comp.pop(key, None)
        comp.add("dtstart", new_start)
        comp.add("dtend", new_end)
        self._touch(comp)
        self._save(cal)
        return self._event(new)

    @function(Effect.DESTRUCTIVE)
    def cancel_event(self, args: CancelArgs) -> Cancelled:
        """Cancel an event (it stays in the calendar file marked cancelled, so it can be recovered)."""
        cal = self._load()
        comp = self._master(cal, args.uid)
        start, end, all_day = self._times(comp)
        comp.pop("status", None)
        comp.add("status", "CANCELLED")
        self._touch(comp)
        self._save(cal)
        shown = self._event(_Occurrence(comp, start, end, all_day))
        return Cancelled(uid=shown.uid, title=shown.title, start=shown.start)

    @function(Effect.READ)
    def free_slots(self, args: FreeSlotsArgs) -> Slots:
        """Free intervals within working hours on a day or range, at least duration_minutes long."""
        now = self.ctx.now()
        lo, hi = self._range(args.start, args.end, 1) if args.start else (now, self._range(None, None, 1)[1])
        lo = max(lo, now)  # time already past is not free
        if (hi - lo).days > MAX_SLOT_DAYS:
            raise AppError(f"search at most {MAX_SLOT_DAYS} days for free slots at a time")
        opens, closes = _hour(args.day_start, "day_start"), _hour(args.day_end, "day_end")
        if closes <= opens:
            raise AppError(f"working hours {args.day_start}-{args.day_end} end before they begin")
        busy = [(o.start, o.end) for o in self._occurrences(self._load(), lo, hi) if _blocks(o)]
        slots = []
        day = lo.date()
        while self._aware(day) < hi:
            if args.weekends or day.weekday() < 5:
                begin = max(lo, localize(datetime.combine(day, opens), self.ctx.tz))
                finish = min(hi, localize(datetime.combine(day, closes), self.ctx.tz))
                for a, b in _subtract(begin, finish, busy):
                    minutes = int(elapsed_minutes(a, b))
                    if minutes >= args.duration_minutes:
                        slots.append(Slot(start=isoformat(a), end=isoformat(b), minutes=minutes))
            day += timedelta(days=1)
        return Slots(slots=slots, count=len(slots))

    # -- fixtures and context --------------------------------------------------------------------

    def seed(self, data: Any) -> None:
        """Add events from a fixture.

        Shape: a list of {title, start, end | duration_minutes, location?, attendees?, description?,
        all_day?, rrule?}; start and end are ISO date-times (or YAML timestamps) or phrases.
        """
        if not isinstance(data, list):
            raise AppError("calendar fixture data must be a list of events")
        cal = self._load()
        for item in data:
            if not isinstance(item, dict):
                raise AppError(f"calendar fixture: each event must be a mapping, not {item!r}")
            fields = {k: v.isoformat() if isinstance(v, date) else v for k, v in item.items()}
            cal.add_component(self._new_event(AddEventArgs.model_validate(fields)))
        self._save(cal)

    def summary(self) -> str:
        try:
            lo, hi = self._range(None, None, DEFAULT_DAYS)
            upcoming = [o for o in self._occurrences(self._load(), lo, hi) if o.end > self.ctx.now()]
        except AppError as exc:
            return str(exc)
        if not upcoming:
            return "calendar: no events in the next 7 days"
        nxt = self._event(upcoming[0])
        return f"calendar: {len(upcoming)} events in the next 7 days; next: {nxt.title} at {nxt.start}"


    def ground(self, query: GroundingQuery) -> list[Grounded]:
        """Events on the days the intent names, and events within a month that share its words."""
        now = self.ctx.now()
        try:
            occurrences = self._occurrences(self._load(), now - timedelta(days=7), now + timedelta(days=31))
        except AppError:
            return []
        offers, fixed = [], {}
        for occ in occurrences:
            event = self._event(occ, fixed)
            score = query.score(event.title, event.location, *event.attendees, weight=2) \
                + query.score(event.description)
            if query.on_mentioned_day(occ.start, occ.end):
                score += 2  # on a day the intent names: shown even without a shared word
            if score and event.status != "cancelled":
                who = f"; attendees {', '.join(event.attendees)}" if event.attendees else ""
                where = f"; at {event.location}" if event.location else ""
                when = f"{occ.start:%a} {event.start}" + (f" to {event.end[11:16]}" if not event.all_day else "")
                # No uid: a fixture's uids differ on every seeding, and a plan finds the event by its title anyway.
                offers.append(Grounded(f'event "{event.title}" {when}{where}{who}', score, self.name))
        return query.top(offers)

@dataclass
class _Budget:
    """What one query may spend expanding repeating events, all events together."""

    occurrences: int = MAX_TOTAL_OCCURRENCES
    looked_at: int = MAX_LOOKED_AT


def _window(rule: rrule, start: datetime, zone: Any, lo: datetime, hi: datetime, budget: _Budget) -> list[datetime]:
    """Naive wall-clock starts (in `zone`, or dates for all-day) of `rule`'s occurrences in [lo, hi].

    `start` is the first occurrence, naive. The work is bounded whatever the rule says:
    - a rule without COUNT is expanded from a start moved (by whole periods, so the same
      occurrences follow) to just before the window, and ends at the window's end (UNTIL);
    - a WEEKLY-or-finer rule whose day filters let no day of the window through is not expanded
      at all, and an HOURLY/MINUTELY/SECONDLY one has its day filters applied here instead of by
      dateutil (which looks for the next allowed day minute by minute, for seconds on end);
    - the whole problem is moved by 400-year Gregorian cycles (which keep every weekday and leap
      day) to just before year 9999, where dateutil gives up looking;
    - at most MAX_OCCURRENCES are kept, and the query as a whole keeps and looks at no more than
      its budget.
    """
    def wall(value: datetime) -> datetime:
        if value.tzinfo is None:
            return value
        return value.astimezone(zone).replace(tzinfo=None) if zone is not None else value.replace(tzinfo=None)

    lo_w, hi_w = wall(lo), wall(hi)
    # Private attributes of dateutil's rrule, stable since 2.x: how the rule was given.
    freq, interval, original = rule._freq, rule._interval, rule._original_rule  # noqa: SLF001
    until = wall(rule._until) if rule._until is not None else None  # noqa: SLF001
    until = min(until, hi_w + _LEAD) if until is not None else hi_w + _LEAD
    # A wall-clock time skipped by a DST change near the window's start can still fall inside it.
    lead = timedelta(0)
    if zone is not None and lo.tzinfo is not None:
        offsets = {(lo - timedelta(days=1)).astimezone(zone).utcoffset(), lo.astimezone(zone).utcoffset()}
        if len(offsets) > 1:
            lead = max(offsets) - min(offsets) + timedelta(hours=1)
    count = rule._count  # noqa: SLF001
    begin = start
    if count is None:
        begin = _moved_start(start, freq, interval, lo_w, lead)
    elif freq in _STEP_SECONDS and not any(original.values()):
        # One occurrence per period and no filter: the n-th is n periods on, so COUNT moves along too.
        begin = _moved_start(start, freq, interval, lo_w, lead)
        count -= (begin - start) // timedelta(seconds=_STEP_SECONDS[freq] * interval)
        if count <= 0:
            return []
    if begin > until:
        return []
    allowed = _allowed_days(rule, max(lo_w, begin), until) if freq >= WEEKLY else None
    if allowed is not None and not allowed:
        return []
    cycles = 0 if rule._byeaster else (MAXYEAR - until.year) // 400 * 400  # noqa: SLF001 - Easter has no cycle
    if allowed is not None and freq in (HOURLY, MINUTELY, SECONDLY) and count is None:
        # The day filters only limit at these frequencies: each run of allowed days is expanded
        # without them, from just before its first day to the end of its last.
        spans = []
        for first, last in _runs(sorted(allowed)):
            run_start = _moved_start(start, freq, interval, datetime.combine(first, time()), lead=timedelta(0))
            spans.append((max(begin, run_start), min(until, datetime.combine(last + timedelta(days=1), time()))))
        changes: dict[str, Any] = {k: None for k in _DAY_FILTERS}
    else:
        spans, changes = [(begin, until)], {}
    out: list[datetime] = []
    for span_start, span_end in spans:
        if span_start > span_end:
            continue
        # With COUNT, dateutil wants no UNTIL: the loop below stops at the window's end itself.
        expanded = rule.replace(dtstart=_years_later(span_start, cycles), count=count,
                                until=None if count is not None else _years_later(span_end, cycles), **changes)
        for shifted in expanded:
            budget.looked_at -= 1
            if budget.looked_at < 0 or budget.occurrences <= 0:
                return out
            at = _years_later(shifted, -cycles)
            key = at.replace(tzinfo=zone) if zone is not None and lo.tzinfo is not None else at
            if key > hi or at > span_end:
                break
            if key < lo or (allowed is not None and at.date() not in allowed):
                continue
            out.append(at)
            budget.occurrences -= 1
            if len(out) >= MAX_OCCURRENCES or budget.occurrences <= 0:
                return out
    return out


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped: [(first, last), ...]."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


_DAY_FILTERS = ("bymonth", "bymonthday", "byyearday", "byweekno", "byweekday", "byeaster")


def _allowed_days(rule: rrule, lo: datetime, hi: datetime) -> set[date] | None:
    """The days from `lo` to `hi` that pass the day filters of a WEEKLY-or-finer rule; None: no filters.

    For these frequencies the day filters (BYMONTH, BYMONTHDAY, BYYEARDAY, BYWEEKNO, BYDAY) only
    limit, so the days they let through are those of a YEARLY rule with the same filters; one with
    an INTERVAL past year 9999 looks at exactly one year.
    """
    original = rule._original_rule  # noqa: SLF001 - the BY parts as given (defaults are None)
    filters = {k: original[k] for k in _DAY_FILTERS if original.get(k)}
    first, last = (lo - timedelta(days=1)).date(), (hi + timedelta(days=1)).date()
    if not filters or (last - first).days > 4000:
        return None  # no filter, or a window so long that looking is no cheaper than expanding
    if "byweekday" in filters:  # finer than MONTHLY, dateutil ignores an ordinal (1MO): so does the check
        filters["byweekday"] = tuple(getattr(d, "weekday", d) for d in filters["byweekday"])
    if set(filters) == {"bymonth"}:  # alone, YEARLY would add the start's day of the month
        filters["bymonthday"] = tuple(range(1, 32))
    days: set[date] = set()
    for year in range(first.year, last.year + 1):
        for day in rrule(YEARLY, dtstart=datetime(year, 1, 1), interval=MAXYEAR + 1, wkst=rule._wkst,  # noqa: SLF001
                         byhour=0, byminute=0, bysecond=0, **filters):
            if first <= day.date() <= last:
                days.add(day.date())
    return days


def _moved_start(start: datetime, freq: int, interval: int, window: datetime, lead: timedelta) -> datetime:
    """`start` moved forward by whole periods of the rule to at least two periods (and `lead`) before `window`."""
    target = window - lead
    if target <= start:
        return start
    if freq in _STEP_SECONDS:
        step = timedelta(seconds=_STEP_SECONDS[freq] * interval)
        periods = (target - start) // step - 2
        return start + periods * step if periods > 0 else start
    months = 12 * interval if freq == YEARLY else interval
    periods = ((target.year - start.year) * 12 + target.month - start.month) // months - 2
    for n in range(periods, max(periods - 60, 0), -1):  # the 31st or 29 February: a period earlier
        total = start.month - 1 + n * months
        try:
            return start.replace(year=start.year + total // 12, month=total % 12 + 1)
        except ValueError:
            continue
    return start


def _years_later(value: datetime, years: int) -> datetime:
    return value.replace(year=value.year + years) if years else value


def _rrule_texts(comp: icalendar.Event) -> list[str]:
    raw = comp.get("rrule")
    if raw is None:
        return []
    return [r.to_ical().decode() for r in (raw if isinstance(raw, list) else [raw])]


def _uid(comp: icalendar.Event) -> str:
    return one_line(str(comp.get("uid", "?")))[:200]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, SandboxError) and exc.strerror:
        return exc.strerror
    return one_line(str(exc)) or type(exc).__name__


def _status(comp: icalendar.Event) -> str:
    return str(comp.get("status", "CONFIRMED")).upper()


def _attendees(comp: icalendar.Event) -> list[str]:
    raw = comp.get("attendee", [])
    return [str(a).removeprefix("mailto:").removeprefix("MAILTO:") for a in (raw if isinstance(raw, list) else [raw])]


def _haystack(comp: icalendar.Event) -> str:
    parts = [str(comp.get(key, "")) for key in ("summary", "location", "description")] + _attendees(comp)
    return " ".join(parts).lower()


def _same_length(at: datetime, start: datetime, end: datetime, all_day: bool) -> datetime:
    """End of an occurrence starting `at`: all-day events span the same days, others the same elapsed time."""
    if all_day:
        return localize(datetime.combine(at.date() + (end.date() - start.date()), time()), at.tzinfo)
    return add_elapsed(at, minutes=elapsed_minutes(start, end))


def _blocks(occ: _Occurrence) -> bool:
    """Timed events block time unless TRANSPARENT; all-day events (birthdays...) only if marked OPAQUE."""
    transp = str(occ.comp.get("transp", "")).upper()
    return transp == "OPAQUE" if occ.all_day else transp != "TRANSPARENT"


def _hour(text: str, what: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise AppError(f"{what} {text!r} is not a time like 09:00") from None


def _subtract(lo: datetime, hi: datetime, busy: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The parts of [lo, hi) not covered by any busy interval."""
    free, cursor = [], lo
    for a, b in sorted(busy):
        if b <= cursor or a >= hi:
            continue
        if a > cursor:
            free.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < hi:
        free.append((cursor, hi))
    return free


_BYDAY = re.compile(r"(BYDAY=)([^;]*)", re.IGNORECASE)
_DAY_NAME = re.compile(r"\b([+-]?\d*)(MO|TU|WE|TH|FR|SA|SU)[A-Z]*\b", re.IGNORECASE)


_ONCE = re.compile(r"(?:^|;)COUNT=0*1(?:;|$)", re.IGNORECASE)


def _two_letter_days(rule: str) -> str:
    """A repeat rule with its BYDAY days as RFC 5545 writes them: "BYDAY=MON,TUESDAY" → "BYDAY=MO,TU" (what a
    person, and a small model, writes for a weekday is not what the standard spells)."""
    return _BYDAY.sub(lambda m: m.group(1) + _DAY_NAME.sub(lambda d: d.group(1) + d.group(2).upper(), m.group(2)),
                      rule)
