"""A step written for each item without saying which list: the loop it meant.

Told to do a step for each file found, a small model writes `"source": "${item}"` in the step after a
lookup, and leaves out `for_each` (once it even named the lookup state "for_each"). Validation would
reject `${item}` outside a loop, and the repair repeats the slip. When the state just before is a call
whose result has a list that fits the item (a list of strings for `${item}`, a list of objects with
the field for `${item.FIELD}`), the step gets `for_each: ${BEFORE.result.LIST}`: the only loop its
writing can mean. Otherwise validation reports it as before.
"""

from __future__ import annotations

from typing import Any

from intentos.function import Function
from intentos.references import find_item_references
from intentos.table import FunctionTable


def loop_items(states: list[Any], table: FunctionTable) -> tuple[list[Any], list[str]]:
    """The states with `for_each` added where a step uses `${item}` without it, and a note per addition."""
    out: list[Any] = []
    notes: list[str] = []
    for i, state in enumerate(states):
        before = states[i - 1] if i else None
        if (isinstance(state, dict) and "for_each" not in state and isinstance(before, dict)
                and isinstance(before.get("name"), str) and isinstance(before.get("call"), str)
                and before["call"] in table):
            items = find_item_references(state.get("args"))
            if items:
                field = _list_field(table.get(before["call"]), {str(r.path[0]) for r in items if r.path})
                if field is not None:
                    loop = f"${{{before['name']}.result.{field}}}"
                    state = {**state, "for_each": loop}
                    notes.append(f"state {state.get('name')!r} uses ${{item}}: it runs for each of {loop}")
        out.append(state)
    return out, notes


def _list_field(fn: Function, item_fields: set[str]) -> str | None:
    """The first list in `fn`'s result whose items fit: strings when no item field is used, else objects
    with every field used."""
    for name, items in result_lists(fn).items():
        if not item_fields and items.get("type") == "string":
            return name
        if item_fields and item_fields <= set(items.get("properties", {})):
            return name
    return None


def result_lists(fn: Function) -> dict[str, dict[str, Any]]:
    """The list fields of `fn`'s result, in order, each with the JSON schema of its items ($ref followed)."""
    schema = fn.result.model_json_schema()
    defs = schema.get("$defs", {})
    lists = {}
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") == "array":
            items = prop.get("items", {})
            lists[name] = defs.get(items["$ref"].rsplit("/", 1)[-1], {}) if "$ref" in items else items
    return lists
