"""How a request says that something repeats (intentos.recurrence)."""

from __future__ import annotations

import pytest

from intentos.recurrence import WORKDAYS, Repeat, named_repeat


@pytest.mark.parametrize(("intent", "repeat"), [
    ("Lunch run every weekday at noon", Repeat("WEEKLY", 1, WORKDAYS)),
    ("Gym on weekdays at 7", Repeat("WEEKLY", 1, WORKDAYS)),
    ("Yoga every Monday and Thursday at 7", Repeat("WEEKLY", 1, ("MO", "TH"))),
    ("Choir on Tuesdays, weekly, from next week", Repeat("WEEKLY", 1, ("TU",))),
    ("Check the plants every day", Repeat("DAILY")),
    ("Team sync every other week", Repeat("WEEKLY", 2)),
    ("Pay the rent monthly", Repeat("MONTHLY")),
    ("Mum's birthday on 2 May, every year", Repeat("YEARLY")),
    ("Dentist on Friday at 3pm", None),
    ("Remind me on Monday, not every day", None),
    ("Jog every day and swim every Sunday", None),  # two repetitions: the plan's to sort out
])
def test_the_one_repetition_a_request_names(intent: str, repeat: Repeat | None) -> None:
    assert named_repeat(intent) == repeat


def test_an_adjective_counts_only_when_asked_for() -> None:
    assert named_repeat("Move the weekly review to Friday") == Repeat("WEEKLY")
    assert named_repeat("Move the weekly review to Friday", adjectives=False) is None


def test_a_rule_fits_when_it_repeats_the_same_way_and_keeps_how_long_the_plan_ran() -> None:
    workdays = Repeat("WEEKLY", 1, WORKDAYS)
    assert workdays.fits("FREQ=WEEKLY;BYDAY=FR,MO,TU,WE,TH;COUNT=20")
    assert workdays.fits("RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR")
    assert not workdays.fits("FREQ=WEEKLY;BYDAY=MO")
    assert not Repeat("DAILY").fits("FREQ=DAILY;BYDAY=MO")
    assert workdays.rule("FREQ=WEEKLY;BYDAY=MON;COUNT=1") == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    until = "UNTIL=20261231T000000Z"
    assert Repeat("WEEKLY", 2).rule(f"FREQ=WEEKLY;{until}") == f"FREQ=WEEKLY;INTERVAL=2;{until}"
    assert Repeat("MONTHLY").rule("FREQ=WEEKLY;COUNT=6") == "FREQ=MONTHLY;COUNT=6"
