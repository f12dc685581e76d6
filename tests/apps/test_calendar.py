"""The calendar app over a real Calendar/calendar.ics (now: Tuesday 2026-03-10 09:00 Europe/Berlin)."""

from __future__ import annotations

import icalendar
import pytest

from intentos.apps.calendar import (
    CALENDAR_FILE,
    AddEventArgs,
    CalendarApp,
    CancelArgs,
    FindArgs,
    FreeSlotsArgs,
    MoveArgs,
    RangeArgs,
)
from intentos.apps.contacts import AddArgs, ContactsApp
from intentos.errors import AppError


@pytest.fixture
def cal(ctx):
    return CalendarApp(ctx)


def test_add_event_writes_a_standard_ics_file(cal, ctx):
    event = cal.add_event(AddEventArgs(title="Dentist", start="2026-03-12 10:00", duration_minutes=45,
                                       location="Main St 1", attendees=["dr@clinic.example"]))
    assert (event.start, event.end, event.duration_minutes) == ("2026-03-12T10:00:00+01:00",
                                                                 "2026-03-12T10:45:00+01:00", 45)
    assert event.uid and event.attendees == ["dr@clinic.example"] and event.conflicts == []
    parsed = icalendar.Calendar.from_ical(ctx.sandbox.resolve(CALENDAR_FILE).read_bytes())
    (stored,) = parsed.walk("VEVENT")
    assert str(stored["summary"]) == "Dentist" and str(stored["uid"]) == event.uid
    assert stored["dtstart"].params["TZID"] == "Europe/Berlin"
    assert parsed.walk("VTIMEZONE")


def test_add_event_accepts_phrases_and_reports_conflicts(cal):
    cal.add_event(AddEventArgs(title="Standup", start="tomorrow 10:00", end="tomorrow 10:30"))
    clash = cal.add_event(AddEventArgs(title="Review", start="tomorrow 10:15"))
    assert clash.start == "2026-03-11T10:15:00+01:00" and clash.duration_minutes == 60
    assert clash.conflicts == ["Standup"]


def test_add_event_errors(cal):
    with pytest.raises(AppError, match="before it starts"):
        cal.add_event(AddEventArgs(title="x", start="2026-03-12 10:00", end="2026-03-12 09:00"))
    with pytest.raises(AppError, match="no time of day"):
        cal.add_event(AddEventArgs(title="x", start="2026-03-12", duration_minutes=30))
    with pytest.raises(AppError, match="repeat rule"):
        cal.add_event(AddEventArgs(title="x", start="2026-03-12 10:00", rrule="FREQ=SOMETIMES"))
    with pytest.raises(AppError, match="^the repeat rule 'FREQ=WEEKLY;BYDAY=MON;COUNT=1' has COUNT=1, which repeats"):
        cal.add_event(AddEventArgs(title="x", start="2026-03-12 10:00", rrule="FREQ=WEEKLY;BYDAY=MON;COUNT=1"))
    assert cal.add_event(AddEventArgs(title="x", start="2026-03-12 10:00", rrule="FREQ=DAILY;COUNT=10")).recurrence


def test_attendee_names_resolve_through_contacts(cal, ctx):
    ContactsApp(ctx).add(AddArgs(name="Anna Berg", email="anna@example.org"))
    event = cal.add_event(AddEventArgs(title="Lunch", start="2026-03-12 12:00", attendees=["Anna"]))
    assert event.attendees == ["anna@example.org"]
    with pytest.raises(AppError, match="Zed"):
        cal.add_event(AddEventArgs(title="Lunch", start="2026-03-12 12:00", attendees=["Zed"]))


def test_list_events_defaults_to_the_coming_week(cal):
    cal.seed([
        {"title": "Past", "start": "2026-03-09 10:00", "duration_minutes": 30},
        {"title": "Today", "start": "2026-03-10 15:00", "duration_minutes": 30},
        {"title": "Next week", "start": "2026-03-16 10:00", "duration_minutes": 30},
        {"title": "Far", "start": "2026-03-17 10:00", "duration_minutes": 30},
    ])
    listed = cal.list_events(RangeArgs())
    assert [e.title for e in listed.events] == ["Today", "Next week"] and listed.count == 2
    day = cal.list_events(RangeArgs(start="2026-03-09", end="2026-03-09"))
    assert [e.title for e in day.events] == ["Past"]


def test_all_day_events(cal):
    event = cal.add_event(AddEventArgs(title="Anna's birthday", start="2026-03-13"))
    assert (event.all_day, event.start, event.end, event.duration_minutes) == (True, "2026-03-13", "2026-03-13", 1440)
    assert [e.title for e in cal.list_events(RangeArgs(start="friday", end="friday")).events] == ["Anna's birthday"]


def test_weekly_recurrence_expands_with_dst_correct_wall_time(cal):
    cal.seed([{"title": "Team sync", "start": "2026-03-23 09:00", "duration_minutes": 30,
               "rrule": "FREQ=WEEKLY;COUNT=3"}])
    events = cal.list_events(RangeArgs(start="2026-03-20", end="2026-04-30")).events
    assert [e.start for e in events] == ["2026-03-23T09:00:00+01:00", "2026-03-30T09:00:00+02:00",
                                         "2026-04-06T09:00:00+02:00"]
    assert events[0].uid == events[1].uid and events[0].recurrence == "FREQ=WEEKLY;COUNT=3"


def test_weekdays_in_a_repeat_rule_may_be_written_out(cal):
    cal.add_event(AddEventArgs(title="Standup", start="2026-03-16 09:15", duration_minutes=15,
                               rrule="FREQ=WEEKLY;BYDAY=MON,Wednesday;COUNT=3"))
    events = cal.list_events(RangeArgs(start="2026-03-16", end="2026-03-31")).events
    assert [e.start for e in events] == ["2026-03-16T09:15:00+01:00", "2026-03-18T09:15:00+01:00",
                                         "2026-03-23T09:15:00+01:00"]
    assert events[0].recurrence == "FREQ=WEEKLY;COUNT=3;BYDAY=MO,WE"


def test_find_events_matches_text_and_range(cal):
    cal.seed([
        {"title": "Dentist", "start": "2026-03-12 10:00", "duration_minutes": 30, "location": "Smile Clinic"},
        {"title": "Lunch", "start": "2026-03-12 12:00", "duration_minutes": 60, "description": "at the clinic cafe"},
        {"title": "Dentist follow-up", "start": "2026-04-20 10:00", "duration_minutes": 30},
    ])
    assert cal.find_events(FindArgs(query="clinic")).count == 2
    assert [e.title for e in cal.find_events(FindArgs(query="dentist")).events] == ["Dentist", "Dentist follow-up"]
    ranged = cal.find_events(FindArgs(query="dentist", start="2026-04-01", end="2026-04-30"))
    assert [e.title for e in ranged.events] == ["Dentist follow-up"]
    # A range that starts and ends at the same moment (one time read for both) is the rest of that day.
    same = cal.find_events(FindArgs(query="", start="2026-03-12 11:00", end="2026-03-12 11:00"))
    assert [e.title for e in same.events] == ["Lunch"]
    with pytest.raises(AppError, match="before it starts"):
        cal.find_events(FindArgs(query="", start="2026-03-12 11:00", end="2026-03-12 10:00"))


def test_move_event_keeps_duration_across_dst(cal):
    event = cal.add_event(AddEventArgs(title="Call", start="2026-03-12 10:00", duration_minutes=90))
    moved = cal.move_event(MoveArgs(uid=event.uid, start="2026-03-30 16:00"))
    assert (moved.start, moved.end, moved.duration_minutes) == ("2026-03-30T16:00:00+02:00",
                                                                 "2026-03-30T17:30:00+02:00", 90)
    assert cal.list_events(RangeArgs(start="2026-03-30", end="2026-03-30")).events[0].start == moved.start
    with pytest.raises(AppError, match="no event with uid"):
        cal.move_event(MoveArgs(uid="nope", start="2026-03-30 16:00"))


def test_an_event_may_be_named_by_its_title_when_one_event_has_it(cal):
    cal.add_event(AddEventArgs(title="Dentist", start="2026-03-11 15:00", duration_minutes=45))
    moved = cal.move_event(MoveArgs(uid="dentist", start="2026-03-18 15:00"))
    assert (moved.title, moved.start) == ("Dentist", "2026-03-18T15:00:00+01:00")
    cal.add_event(AddEventArgs(title="Standup", start="2026-03-12 09:00", duration_minutes=15))
    cal.add_event(AddEventArgs(title="Standup", start="2026-03-13 09:00", duration_minutes=15))
    with pytest.raises(AppError, match=r"^2 events are titled 'Standup': .*2026-03-12T09:00.*2026-03-13T09:00"):
        cal.cancel_event(CancelArgs(uid="Standup"))
    assert cal.cancel_event(CancelArgs(uid="Dentist")).title == "Dentist"
    with pytest.raises(AppError, match="no event with uid or title 'Dentist'"):
        cal.cancel_event(CancelArgs(uid="Dentist"))  # cancelled: no longer the one of that title


def test_an_event_moves_by_weeks_or_days_at_the_same_time(cal):
    event = cal.add_event(AddEventArgs(title="Dentist", start="2026-03-11 15:00", duration_minutes=45))
    # Across the change to summer time (29 March in Berlin) the clock time stays.
    later = cal.move_event(MoveArgs(uid="Dentist", weeks=3))
    assert (later.start, later.duration_minutes) == ("2026-04-01T15:00:00+02:00", 45)
    assert cal.move_event(MoveArgs(uid=event.uid, days=-1)).start == "2026-03-31T15:00:00+02:00"
    trip = cal.add_event(AddEventArgs(title="Trip", start="2026-03-20"))
    assert cal.move_event(MoveArgs(uid=trip.uid, days=2)).start.startswith("2026-03-22")
    with pytest.raises(AppError, match=r"^give either the new start, or weeks or days to move the event by"):
        cal.move_event(MoveArgs(uid=event.uid))
    with pytest.raises(AppError, match=r"^give either the new start, or weeks or days to move the event by"):
        cal.move_event(MoveArgs(uid=event.uid, start="2026-04-02 15:00", weeks=1))


def test_a_day_the_clock_resolved_moves_an_event_at_its_hour_and_adds_an_all_day_one(cal, ctx):
    from intentos.apps.clock import ClockApp, ResolveArgs

    friday = ClockApp(ctx).resolve(ResolveArgs(phrase="friday")).iso  # what `${friday.result.iso}` passes on
    review = cal.add_event(AddEventArgs(title="Design review", start="2026-03-12 14:00", duration_minutes=60))
    assert cal.move_event(MoveArgs(uid=review.uid, start=friday)).start == "2026-03-13T14:00:00+01:00"
    offsite = cal.add_event(AddEventArgs(title="Team offsite", start=friday))
    assert offsite.all_day and offsite.start.startswith("2026-03-13")


def test_a_move_that_changes_nothing_says_what_to_give(cal):
    event = cal.add_event(AddEventArgs(title="Dentist", start="2026-03-11 15:00", duration_minutes=45))
    # The old start taken for the new one: an error a dry run shows, not a silent no-op.
    with pytest.raises(AppError, match=r"Dentist already starts at 2026-03-11T15:00\+01:00; give the new start"):
        cal.move_event(MoveArgs(uid=event.uid, start=event.start))
    with pytest.raises(AppError, match=r"Dentist already starts at 2026-03-11T15:00\+01:00"):
        cal.move_event(MoveArgs(uid=event.uid, start="2026-03-11"))  # its own day: the same time, no move
    # A day alone keeps the time of day, across the change to summer time too.
    assert cal.move_event(MoveArgs(uid=event.uid, start="2026-03-18")).start == "2026-03-18T15:00:00+01:00"
    assert cal.move_event(MoveArgs(uid=event.uid, start="friday")).start == "2026-03-13T15:00:00+01:00"
    assert cal.move_event(MoveArgs(uid=event.uid, start="2026-04-03")).start == "2026-04-03T15:00:00+02:00"
    day = cal.add_event(AddEventArgs(title="Holiday", start="2026-03-20", all_day=True))
    with pytest.raises(AppError, match="Holiday is already on 2026-03-20; give the day it moves to"):
        cal.move_event(MoveArgs(uid=day.uid, start="2026-03-20"))


def test_cancel_event_keeps_it_recoverable_in_the_file(cal, ctx):
    event = cal.add_event(AddEventArgs(title="Gym", start="2026-03-11 18:00"))
    cancelled = cal.cancel_event(CancelArgs(uid=event.uid))
    assert cancelled.status == "CANCELLED" and cancelled.title == "Gym"
    assert cal.list_events(RangeArgs()).count == 0
    kept = cal.list_events(RangeArgs(include_cancelled=True)).events
    assert [(e.title, e.status) for e in kept] == [("Gym", "CANCELLED")]
    assert "STATUS:CANCELLED" in ctx.sandbox.resolve(CALENDAR_FILE).read_text()


def test_free_slots_around_existing_events(cal):
    cal.seed([
        {"title": "A", "start": "2026-03-11 10:00", "end": "2026-03-11 11:00"},
        {"title": "B", "start": "2026-03-11 10:30", "end": "2026-03-11 12:00"},
        {"title": "C", "start": "2026-03-11 13:00", "end": "2026-03-11 13:20"},
        {"title": "Holiday", "start": "2026-03-11"},  # all-day events do not block time
    ])
    slots = cal.free_slots(FreeSlotsArgs(start="2026-03-11", duration_minutes=30))
    assert [(s.start[11:16], s.end[11:16], s.minutes) for s in slots.slots] == [
        ("09:00", "10:00", 60), ("12:00", "13:00", 60), ("13:20", "17:00", 220)]
    longer = cal.free_slots(FreeSlotsArgs(start="2026-03-11", duration_minutes=90))
    assert longer.count == 1 and longer.slots[0].start == "2026-03-11T13:20:00+01:00"


def test_free_slots_today_starts_now_and_skips_weekends(cal):
    today = cal.free_slots(FreeSlotsArgs())
    assert today.slots[0].start == "2026-03-10T09:00:00+01:00" and today.slots[0].end == "2026-03-10T17:00:00+01:00"
    week = cal.free_slots(FreeSlotsArgs(start="2026-03-13", end="2026-03-16", day_start="08:00", day_end="12:00"))
    assert [s.start[:10] for s in week.slots] == ["2026-03-13", "2026-03-16"]


def test_corrupt_ics_is_reported_and_never_overwritten(cal, ctx):
    path = ctx.sandbox.resolve(CALENDAR_FILE)
    path.parent.mkdir(parents=True)
    garbage = b"this is not a calendar\n"
    path.write_bytes(garbage)
    with pytest.raises(AppError, match="Calendar/calendar.ics"):
        cal.list_events(RangeArgs())
    with pytest.raises(AppError, match="left untouched"):
        cal.add_event(AddEventArgs(title="x", start="2026-03-12 10:00"))
    assert path.read_bytes() == garbage
    broken = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:2026XX\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    path.write_bytes(broken)
    with pytest.raises(AppError, match="DTSTART"):
        cal.add_event(AddEventArgs(title="x", start="2026-03-12 10:00"))
    assert path.read_bytes() == broken


def test_summary(cal):
    assert "no events" in cal.summary()
    cal.add_event(AddEventArgs(title="Dentist", start="2026-03-12 10:00"))
    assert "Dentist" in cal.summary()


IMPORTED = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//other//app//EN
BEGIN:VEVENT
UID:yoga@other
DTSTART:20260311T180000
DTEND:20260311T190000
SUMMARY:Yoga
RRULE:FREQ=WEEKLY
EXDATE:20260318T180000
END:VEVENT
BEGIN:VEVENT
UID:yoga@other
RECURRENCE-ID:20260325T180000
DTSTART:20260325T200000
DTEND:20260325T210000
SUMMARY:Yoga (late)
END:VEVENT
BEGIN:VEVENT
UID:utc@other
DTSTART:20260312T120000Z
DURATION:PT30M
SUMMARY:UTC call
END:VEVENT
END:VCALENDAR
"""


def test_imported_file_with_floating_times_exdate_and_override(cal, ctx):
    ctx.sandbox.write_text(CALENDAR_FILE, IMPORTED.replace("\n", "\r\n"))
    events = cal.list_events(RangeArgs(start="2026-03-10", end="2026-03-31")).events
    assert [(e.title, e.start) for e in events] == [
        ("Yoga", "2026-03-11T18:00:00+01:00"),
        ("UTC call", "2026-03-12T13:00:00+01:00"),
        ("Yoga (late)", "2026-03-25T20:00:00+01:00"),
    ]
    assert events[1].duration_minutes == 30
    # Writing keeps what was there.
    cal.add_event(AddEventArgs(title="New", start="2026-03-13 10:00"))
    assert cal.list_events(RangeArgs(start="2026-03-10", end="2026-03-31")).count == 4
