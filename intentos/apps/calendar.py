"""The calendar: events in one iCalendar file, `Calendar/calendar.ics`.

The file is the standard format any calendar program opens. Times are stored with
their time zone (and a VTIMEZONE definition); floating times in an imported file are
read in the user's zone. Weekly meetings and other RRULE recurrences are expanded
with dateutil, honouring EXDATE and RECURRENCE-ID overrides. Cancelling never
deletes: the event stays in the file with STATUS:CANCELLED. A file that cannot be
parsed is reported, by name, and never written over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import icalendar
from dateutil.rrule import rrulestr
from pydantic import BaseModel, Field

from intentos.app import App
from intentos.apps.clock import add_elapsed, elapsed_minutes, isoformat, localize, parse_when
from intentos.errors import AppError
from intentos.function import Effect, function

CALENDAR_FILE = "Calendar/calendar.ics"
DEFAULT_DAYS = 7
MAX_SLOT_DAYS = 62


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
    rrule: str | None = Field(None, description="repeat rule, e.g. FREQ=WEEKLY;BYDAY=MO;COUNT=10")


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


class MoveArgs(BaseModel):
    uid: str
    start: str = Field(description="new start; the duration is kept (a repeating event moves as a whole series)")


class CancelArgs(BaseModel):
    uid: str


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

    # -- the file -----------------------------------------------------------------------------

    def _load(self) -> icalendar.Calendar:
        path = self.sandbox.resolve(CALENDAR_FILE)
        if not path.exists():
            cal = icalendar.Calendar()
            cal.add("prodid", "-//intentos//calendar//EN")
            cal.add("version", "2.0")
            return cal
        try:
            cal = icalendar.Calendar.from_ical(path.read_bytes())
        except ValueError as exc:
            raise self._corrupt(str(exc)) from None
        if not isinstance(cal, icalendar.Calendar):
            raise self._corrupt("it holds no VCALENDAR")
        for comp in cal.walk():
            if comp.errors:
                prop, problem = comp.errors[0]
                raise self._corrupt(f"{comp.name} {prop}: {problem}")
        for comp in cal.walk("VEVENT"):
            try:
                self._times(comp)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                raise self._corrupt(f"event {comp.get('uid', '?')}: bad DTSTART/DTEND ({exc})") from None
        return cal

    def _corrupt(self, why: str) -> AppError:
        return AppError(f"{CALENDAR_FILE} is not a valid iCalendar file ({why}); it was left untouched")

    def _save(self, cal: icalendar.Calendar) -> None:
        cal.add_missing_timezones()
        self.sandbox.write_bytes(CALENDAR_FILE, cal.to_ical())

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
                overridden.setdefault(str(comp["uid"]), set()).add(self._aware(comp.decoded("recurrence-id")))
        found = []
        for comp in cal.walk("VEVENT"):
            if not include_cancelled and _status(comp) == "CANCELLED":
                continue
            start, end, all_day = self._times(comp)
            if "rrule" in comp and "recurrence-id" not in comp and lo is not None and hi is not None:
                skip = overridden.get(str(comp["uid"]), set()) | self._exdates(comp)
                for at in self._expand(comp, add_elapsed(lo, minutes=-elapsed_minutes(start, end)), hi):
                    if at not in skip:
                        found.append(_Occurrence(comp, at, _same_length(at, start, end, all_day), all_day))
            else:
                found.append(_Occurrence(comp, start, end, all_day))
        inside = [o for o in found if (lo is None or o.end > lo or o.start >= lo) and (hi is None or o.start < hi)]
        return sorted(inside, key=lambda o: (o.start, str(o.comp.get("summary", ""))))

    def _expand(self, comp: icalendar.Event, lo: datetime, hi: datetime) -> list[datetime]:
        raw = comp.decoded("dtstart")
        first = raw if isinstance(raw, datetime) else datetime.combine(raw, time())
        if first.tzinfo is None and isinstance(raw, datetime):
            first = localize(first, self.ctx.tz)  # floating time: the user's wall clock
        try:
            rule = rrulestr(comp["rrule"].to_ical().decode(), dtstart=first)
        except (ValueError, TypeError) as exc:
            raise self._corrupt(f"event {comp.get('uid', '?')}: bad RRULE ({exc})") from None
        if first.tzinfo is None:  # all-day: expand on dates, then place them in the user's zone
            window = rule.between(lo.replace(tzinfo=None) - timedelta(days=1), hi.replace(tzinfo=None), inc=True)
        else:
            window = rule.between(lo, hi, inc=True)
        return [self._aware(at) for at in window]

    def _exdates(self, comp: icalendar.Event) -> set[datetime]:
        lists = comp.get("exdate", [])
        out = set()
        for entry in lists if isinstance(lists, list) else [lists]:
            out.update(self._aware(d.dt) for d in entry.dts)
        return out

    def _event(self, occ: _Occurrence) -> Event:
        comp = occ.comp
        if occ.all_day:
            last = (occ.end - timedelta(days=1)).date() if occ.end > occ.start else occ.start.date()
            start, end = occ.start.date().isoformat(), last.isoformat()
        else:
            start, end = isoformat(occ.start), isoformat(occ.end)
        return Event(
            uid=str(comp.get("uid", "")),
            title=str(comp.get("summary", "")),
            start=start,
            end=end,
            all_day=occ.all_day,
            duration_minutes=(occ.end.date() - occ.start.date()).days * 1440 if occ.all_day
            else int(elapsed_minutes(occ.start, occ.end)),
            location=str(comp.get("location", "")),
            attendees=_attendees(comp),
            description=str(comp.get("description", "")),
            status=_status(comp),
            recurrence=comp["rrule"].to_ical().decode() if "rrule" in comp else None,
        )

    def _master(self, cal: icalendar.Calendar, uid: str) -> icalendar.Event:
        for comp in cal.walk("VEVENT"):
            if str(comp.get("uid", "")) == uid and "recurrence-id" not in comp:
                return comp
        raise AppError(f"no event with uid {uid!r} in {CALENDAR_FILE} (find it with calendar.find_events)")

    def _range(self, start: str | None, end: str | None, default_days: int) -> tuple[datetime, datetime]:
        now = self.ctx.now()
        lo = self._when(start, "start") if start else localize(datetime.combine(now.date(), time()), self.ctx.tz)
        if end:
            when = parse_when(end, self.ctx.tz, now)
            hi = when.at if when.has_time else self._aware(when.at.date() + timedelta(days=1))
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
            rule = args.rrule.strip().removeprefix("RRULE:")
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
        events = [self._event(o) for o in found]
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
        events = [self._event(o) for o in found if all(w in _haystack(o.comp) for w in words)]
        return Events(events=events, count=len(events))

    @function(Effect.WRITE)
    def move_event(self, args: MoveArgs) -> Event:
        """Move an event to a new start time, keeping its duration."""
        cal = self._load()
        comp = self._master(cal, args.uid)
        if _status(comp) == "CANCELLED":
            raise AppError(f"event {comp.get('summary', args.uid)!s} is cancelled; add it again instead")
        start, end, all_day = self._times(comp)
        when = parse_when(args.start, self.ctx.tz, self.ctx.now())
        if all_day:
            days = (when.at.date() - start.date()).days
            new_start, new_end = start.date() + timedelta(days=days), end.date() + timedelta(days=days)
            new = _Occurrence(comp, self._aware(new_start), self._aware(new_end), True)
        else:
            if not when.has_time:
                raise AppError(f"new start {args.start!r} has no time of day")
            new_start = when.at
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
