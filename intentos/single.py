"""A single value written where a function wants a list of them.

`"to": "${speaker.result.contacts[0].email}"` for mail.send, whose `to` is a list of addresses: validation
says the argument wants an array and a 1.5B model, told, often writes the same again. A string (literal or
reference) for a parameter whose type is an array of strings is the one-item list of it; the trace notes it.
"""

from __future__ import annotations

from typing import Any

from intentos.table import FunctionTable


def wrap_singles(states: list[Any], table: FunctionTable) -> tuple[list[Any], list[str]]:
    """The states with each such string made a one-item list, and a note per change."""
    notes: list[str] = []
    out = []
    for state in states:
        call = state.get("call") if isinstance(state, dict) else None
        if not isinstance(call, str) or call not in table or not isinstance(state.get("args"), dict):
            out.append(state)
            continue
        lists = _string_lists(table, call)
        args = dict(state["args"])
        for key, value in args.items():
            if key in lists and isinstance(value, str):
                args[key] = [value]
                notes.append(f"state {state.get('name')!r}: {key} {value!r} became a list of one")
        out.append({**state, "args": args})
    return out, notes


def _string_lists(table: FunctionTable, call: str) -> set[str]:
    """The parameters of `call` that take a list of strings (and nothing else but null)."""
    props = table.get(call).params.model_json_schema().get("properties", {})
    names = set()
    for name, prop in props.items():
        kinds = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        if len(kinds) == 1 and kinds[0].get("type") == "array" and kinds[0].get("items", {}).get("type") == "string":
            names.add(name)
    return names
