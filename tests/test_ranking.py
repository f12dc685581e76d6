"""What the planner is shown: FunctionRanker.select on the built-in Function Table."""

from __future__ import annotations

import pytest

from intentos.ranking import ALWAYS, FunctionRanker, Selection
from intentos.table import FunctionTable


@pytest.fixture(scope="module")
def table() -> FunctionTable:
    return FunctionTable.discover()


@pytest.fixture(scope="module")
def ranker(table: FunctionTable) -> FunctionRanker:
    return FunctionRanker(table)


def agent_functions(table: FunctionTable) -> set[str]:
    return {fn.name for fn in table if fn.app == "agent"}


def test_mailing_a_file_to_a_person_shows_mail_files_and_contacts(ranker: FunctionRanker) -> None:
    chosen = ranker.select("Email the signed lease contract to my landlord Priya")
    assert "mail" in chosen.apps
    assert {"mail.send", "files.find", "files.read", "contacts.find", "contacts.get"} <= set(chosen.names)


def test_a_relative_day_shows_the_clock(ranker: FunctionRanker) -> None:
    chosen = ranker.select("Add 'renew passport' to my to-do list for tomorrow")
    assert {"tasks", "clock"} <= set(chosen.apps)
    assert {"tasks.add", "clock.resolve", "clock.shift"} <= set(chosen.names)
    assert any("tomorrow" in why for why in chosen.reasons["clock"])


def test_a_day_with_nothing_else_to_act_on_shows_the_calendar(ranker: FunctionRanker) -> None:
    chosen = ranker.select("Am I free on Thursday afternoon?")
    assert {"clock", "calendar"} <= set(chosen.apps)
    assert "calendar.free_slots" in chosen.names


def test_a_chosen_app_is_shown_whole_and_its_entities_by_their_lookups(table: FunctionTable,
                                                                         ranker: FunctionRanker) -> None:
    chosen = ranker.select("Schedule a meeting with the design team")
    assert "calendar" in chosen.apps
    assert {fn.name for fn in table if fn.app == "calendar"} <= set(chosen.names)
    # attendees come from the address book: shown by its read functions, not its writes
    assert "contacts" in chosen.lookups
    assert "contacts.get" in chosen.names and "contacts.remove" not in chosen.names


def test_extra_apps_are_honoured(ranker: FunctionRanker) -> None:
    plain = ranker.select("How long is the drive to Porto?")
    assert "notes.search" not in plain.names
    # named by the caller (grounding found a note about Porto): at least how to look it up
    grounded = ranker.select("How long is the drive to Porto?", extra_apps=["notes", "no-such-app"])
    assert {"notes.search", "notes.read"} <= set(grounded.names)
    assert any("caller" in why for why in grounded.reasons["notes"])
    assert "no-such-app" not in grounded.reasons
    # named, and the intent's words fit the app: every function of it, writes included
    acting = ranker.select("Add the ferry times to my Porto trip", extra_apps=["notes"])
    assert "notes" in acting.apps and "notes.append" in acting.names


@pytest.mark.parametrize("intent", [
    "Email the signed lease contract to my landlord Priya",
    "Zip the holiday photos in Pictures",
    "Which anomalies are in the proxy log?",
    "",
])
def test_agent_functions_are_always_shown(table: FunctionTable, ranker: FunctionRanker, intent: str) -> None:
    chosen = ranker.select(intent)
    assert set(ALWAYS) <= agent_functions(table) <= set(chosen.names)


def test_an_intent_matching_nothing_shows_the_agent_functions(table: FunctionTable, ranker: FunctionRanker) -> None:
    chosen = ranker.select("xyzzy plugh")
    assert set(chosen.names) == agent_functions(table)
    assert chosen.apps == ["agent"] and chosen.lookups == []


def test_names_keep_table_order_and_exist(table: FunctionTable, ranker: FunctionRanker) -> None:
    chosen = ranker.select("Move the March invoices from Downloads to Documents/Invoices and tell Ben")
    order = list(table.functions)
    assert chosen.names == sorted(chosen.names, key=order.index)
    assert chosen.apps == [a for a in table.apps if a in chosen.apps]
    table.subset(chosen.names)  # raises on an unknown name
    assert isinstance(chosen, Selection) and len(chosen.ranking) == len(table)


def test_a_skill_is_chosen_by_its_words(ranker: FunctionRanker) -> None:
    chosen = ranker.select("Which anomalies are in the proxy log?")
    assert "logs" in chosen.apps and "logs.detect_anomalies" in chosen.names
    assert "training" not in chosen.apps and "dataflow" not in chosen.apps


def test_max_functions_caps_but_keeps_the_agent(table: FunctionTable, ranker: FunctionRanker) -> None:
    intent = "Send Ben the quarterly report from Documents and put a review meeting on Friday"
    full = ranker.select(intent)
    capped = ranker.select(intent, max_functions=12)
    assert len(full.names) > 12
    assert agent_functions(table) <= set(capped.names) <= set(full.names)
    assert len(capped.names) == max(12, len(agent_functions(table)))


def test_top_still_returns_the_best_k_and_the_always_kept(ranker: FunctionRanker) -> None:
    names, ranking = ranker.top("Zip the holiday photos in Pictures", 5)
    assert set(ALWAYS) <= set(names) and len(names) <= 5 + len(ALWAYS)
    assert "files.zip" in names and ranking[0].score >= ranking[-1].score
