"""The clock app: fixed now (Tuesday 2026-03-10 09:00 Europe/Berlin), DST switch on 2026-03-29."""

from __future__ import annotations

import pytest

from intentos.apps.calendar import AddEventArgs, CalendarApp, RangeArgs
from intentos.apps.clock import ClockApp, ConvertArgs, DiffArgs, NowArgs, ResolveArgs, ShiftArgs
from intentos.errors import AppError


@pytest.fixture
def clock(ctx):
    return ClockApp(ctx)


def test_now_describes_the_fixed_clock(clock):
    now = clock.now(NowArgs())
    assert now.iso == "2026-03-10T09:00:00+01:00"
    assert (now.date, now.time, now.weekday, now.timezone) == ("2026-03-10", "09:00", "Tuesday", "Europe/Berlin")
    assert clock.now(NowArgs(timezone="UTC")).iso == "2026-03-10T08:00:00+00:00"


@pytest.mark.parametrize(
    ("phrase", "iso", "has_time"),
    [
        ("now", "2026-03-10T09:00:00+01:00", True),
        ("tomorrow 3pm", "2026-03-11T15:00:00+01:00", True),
        ("3pm tomorrow", "2026-03-11T15:00:00+01:00", True),
        ("next friday", "2026-03-13", False),
        ("next friday at 10:30", "2026-03-13T10:30:00+01:00", True),
        ("this tuesday", "2026-03-10", False),
        ("tuesday", "2026-03-17", False),
        ("last monday", "2026-03-09", False),
        ("in 2 hours", "2026-03-10T11:00:00+01:00", True),
        ("in a week", "2026-03-17T09:00:00+01:00", True),
        ("2 days ago", "2026-03-08T09:00:00+01:00", True),
        ("in 3 days at noon", "2026-03-13T12:00:00+01:00", True),
        ("tonight", "2026-03-10T20:00:00+01:00", True),
        ("next week", "2026-03-16", False),
        ("next month", "2026-04-01", False),
        ("2026-04-01 14:00", "2026-04-01T14:00:00+02:00", True),
        ("2026-04-01", "2026-04-01", False),
        ("April 3 2pm", "2026-04-03T14:00:00+02:00", True),
        ("2026-04-01T14:00:00Z", "2026-04-01T16:00:00+02:00", True),
        ("at 17:45", "2026-03-10T17:45:00+01:00", True),
        # A deadline's day, and a weekday with its date (as a mail writes them).
        ("by Friday, 20 March", "2026-03-20", False),
        ("until next monday", "2026-03-16", False),
        ("by tomorrow 5pm", "2026-03-11T17:00:00+01:00", True),
        ("friday 20 march 3pm", "2026-03-20T15:00:00+01:00", True),
        ("Friday 3pm", "2026-03-13T15:00:00+01:00", True),
    ],
)
def test_resolve_phrases(clock, phrase, iso, has_time):
    got = clock.resolve(ResolveArgs(phrase=phrase))
    assert (got.iso, got.has_time) == (iso, has_time)


@pytest.mark.parametrize("phrase", ["banana", "the day when pigs fly", "tomorrow at 13pm", "tomorrow 25:00", ""])
def test_resolve_refuses_what_it_does_not_understand(clock, phrase):
    with pytest.raises(AppError):
        clock.resolve(ResolveArgs(phrase=phrase))


def test_a_place_given_as_the_time_is_pointed_to_now_and_convert(clock):
    with pytest.raises(AppError, match=r"^'tokyo' is a place \(the time zone Asia/Tokyo\), not a date or time: .*"
                                       r"clock.now\(timezone='Asia/Tokyo'\).*clock.convert\(timezone='Asia/Tokyo'\)"):
        clock.resolve(ResolveArgs(phrase="tokyo"))
    with pytest.raises(AppError, match=r"^'Tokyo time' is a place"):
        clock.resolve(ResolveArgs(phrase="Tokyo time"))


@pytest.mark.parametrize("phrase, iso, time, zone", [
    ("thursday 10am New York time", "2026-03-12T10:00:00-04:00", "10:00", "America/New_York"),
    ("9:00 in Tokyo", "2026-03-10T09:00:00+09:00", "09:00", "Asia/Tokyo"),
    ("now in tokyo", "2026-03-10T17:00:00+09:00", "17:00", "Asia/Tokyo"),  # 09:00 in Berlin
])
def test_a_time_in_a_places_zone_is_read_and_given_there(clock, phrase, iso, time, zone):
    got = clock.resolve(ResolveArgs(phrase=phrase))
    assert (got.iso, got.time, got.timezone) == (iso, time, zone)


def test_an_event_at_a_places_time_is_stored_at_that_instant(ctx):
    cal = CalendarApp(ctx)
    start = ClockApp(ctx).resolve(ResolveArgs(phrase="thursday 10am New York time")).iso
    cal.add_event(AddEventArgs(title="Call", start=start, duration_minutes=30))
    assert [e.start for e in cal.list_events(RangeArgs(start="thursday", end="thursday")).events] == [
        "2026-03-12T15:00:00+01:00"]


def test_a_weekday_and_a_date_that_disagree_are_shown_not_settled(clock):
    with pytest.raises(AppError, match=r"^'thursday 20 march': 2026-03-20 is a Friday, not a Thursday$"):
        clock.resolve(ResolveArgs(phrase="thursday 20 march"))


def test_a_bare_hour_is_the_hour_of_the_working_day(clock):
    assert clock.resolve(ResolveArgs(phrase="tomorrow at 3")).iso == "2026-03-11T15:00:00+01:00"
    assert clock.resolve(ResolveArgs(phrase="next tuesday at 10")).iso == "2026-03-17T10:00:00+01:00"
    assert clock.resolve(ResolveArgs(phrase="friday at 12")).iso == "2026-03-13T12:00:00+01:00"
    assert clock.resolve(ResolveArgs(phrase="friday at 7")).iso == "2026-03-13T19:00:00+01:00"
    assert clock.resolve(ResolveArgs(phrase="friday at 7am")).iso == "2026-03-13T07:00:00+01:00"


def test_shift_days_keep_wall_clock_across_dst(clock):
    # Berlin springs forward in the night to Sunday 2026-03-29: a day is 23 hours long.
    moved = clock.shift(ShiftArgs(when="2026-03-28T09:00", days=1))
    assert moved.iso == "2026-03-29T09:00:00+02:00"
    assert clock.shift(ShiftArgs(when="2026-03-22 10:00", weeks=1)).iso == "2026-03-29T10:00:00+02:00"


def test_shift_hours_are_elapsed_time_across_dst(clock):
    assert clock.shift(ShiftArgs(when="2026-03-29T01:30", hours=1)).iso == "2026-03-29T03:30:00+02:00"
    assert clock.shift(ShiftArgs(when="2026-03-28T12:00", hours=24)).iso == "2026-03-29T13:00:00+02:00"


def test_shift_to_next_weekday(clock):
    got = clock.shift(ShiftArgs(when="2026-03-10T14:00", weekday="next monday"))
    assert (got.iso, got.weekday) == ("2026-03-16T14:00:00+01:00", "Monday")
    assert clock.shift(ShiftArgs(when="now", weekday="tuesday")).date == "2026-03-17"
    with pytest.raises(AppError, match="not a weekday"):
        clock.shift(ShiftArgs(when="now", weekday="someday"))


def test_diff_counts_elapsed_time_over_dst(clock):
    diff = clock.diff(DiffArgs(start="2026-03-28T12:00", end="2026-03-29T12:00"))
    assert (diff.total_minutes, diff.days, diff.hours, diff.calendar_days) == (23 * 60, 0, 23, 1)
    assert diff.text == "23 hours"
    later = clock.diff(DiffArgs(start="now", end="2026-03-12 10:30"))
    assert (later.days, later.hours, later.minutes, later.text) == (2, 1, 30, "2 days, 1 hour and 30 minutes")
    back = clock.diff(DiffArgs(start="2026-03-12 10:30", end="now"))
    assert back.negative and back.total_minutes == -later.total_minutes and back.text.endswith("earlier")


def test_convert_to_other_zone(clock):
    got = clock.convert(ConvertArgs(when="2026-03-10 09:00", timezone="America/New_York"))
    assert (got.iso, got.timezone) == ("2026-03-10T04:00:00-04:00", "America/New_York")
    with pytest.raises(AppError, match="unknown time zone"):
        clock.convert(ConvertArgs(when="now", timezone="Mars/Olympus"))


def test_summary_and_no_fixture(clock):
    assert "2026-03-10T09:00:00+01:00" in clock.summary()
    with pytest.raises(AppError):
        clock.seed({"anything": 1})
