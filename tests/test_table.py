"""The Function Table: plugins by entry point, prompt text, the workflow schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema

from intentos.table import MAX_LIST_ITEMS, FunctionTable

BUILT_IN = {"agent", "files", "notes", "tasks", "calendar", "contacts", "mail", "clock"}


def test_built_in_apps_register_through_entry_points() -> None:
    table = FunctionTable.discover()
    assert BUILT_IN <= set(table.apps), table.problems
    assert table.problems == []
    for fn in table:
        assert fn.description and fn.name.count(".") == 1


def test_a_third_party_plugin_is_found(probe_plugin: Path) -> None:
    table = FunctionTable.discover()
    assert "probe.wait_for" in table and table.get("probe.mark").effect.value == "write"


def test_prompt_text_lists_every_function_compactly() -> None:
    table = FunctionTable.discover()
    text = table.prompt_text()
    for fn in table:
        assert fn.name + "(" in text
    assert len(text.splitlines()) == len(table) + len(table.apps)


def test_workflow_schema_is_a_valid_json_schema_with_one_member_per_function() -> None:
    table = FunctionTable.discover()
    schema = table.workflow_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    members = schema["properties"]["states"]["items"]["oneOf"]
    assert sorted(m["properties"]["call"]["const"] for m in members) == sorted(table.functions)


def test_a_list_argument_takes_a_bounded_number_of_items() -> None:
    schema = FunctionTable.discover().subset(["agent.sum"]).workflow_schema()
    validator = jsonschema.Draft202012Validator(schema)
    plan = {"states": [{"name": "total", "call": "agent.sum", "args": {"values": list(range(MAX_LIST_ITEMS))}}]}
    assert validator.is_valid(plan)
    plan["states"][0]["args"]["values"].append(MAX_LIST_ITEMS)
    assert not validator.is_valid(plan)  # a reply counting on and on is cut off by its grammar


def test_subset_keeps_only_named_functions() -> None:
    table = FunctionTable.discover()
    small = table.subset(["agent.say", "agent.sum"])
    assert list(small.functions) == ["agent.say", "agent.sum"]
    assert "files" not in small.prompt_text()
