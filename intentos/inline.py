"""Lifting a call written inside a reference into a state of its own.

Small models write `"start": "${clock.resolve('next tuesday 10am')}"` where the workflow language
wants a state that makes the call and a reference to a field of its result. Told so, a 1.5B model
writes the same reply again, so a repair turn is lost and often the whole plan. When the call is
to a read-only function of the table with literal arguments, the fix is mechanical:
- a state placed just before the one that used the call makes it, positional arguments going to
  the function's parameters in order (arguments beyond them are dropped and the note says so;
  keyword arguments, `weeks=2` or `weeks: 2`, must name a parameter);
- the reference then points at the field written after the call (`${clock.resolve('monday').date}`), else at
  the first field of the result whose type fits where it is written (a string inside a longer text, else the
  parameter's type), e.g. `${when.result.iso}`.
Anything else (a write, an unknown function, a non-literal argument) is left for validation to
report. The arguments are parsed as Python syntax and only literal constants are taken from the
tree: nothing the model wrote is evaluated.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from intentos.function import Effect, Function, field_named
from intentos.table import FunctionTable
from intentos.tidy import fresh_name

# `${app.fn(...)}`, or with a field of its result, `${app.fn(...).date}`: the arguments may hold anything but a
# closing brace. Without parentheses (`${clock.now.iso}`) only for a function that needs no argument.
_INLINE = re.compile(r"\$\{\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*(?:\(([^{}]*)\))?"
                     r"(?:\.(?:result\.)?([A-Za-z_]\w*))?\s*\}")
_MAX_ARGS_CHARS = 300
_TRANSITIONS = ("next", "on_failure")


def lift_inline_calls(states: list[Any], table: FunctionTable, taken: set[str]) -> tuple[
        list[Any], list[str], dict[str, str]]:
    """The states with each liftable inline call made a state of its own, a note per lift, and the entries: for
    each state that gained lifted states, the first of them, which a transition (or `start`) to it now enters.
    `taken`: names already used (by earlier stages or these states)."""
    used = set(taken)
    out: list[Any] = []
    notes: list[str] = []
    entries: dict[str, str] = {}
    for state in states:
        if not isinstance(state, dict) or not isinstance(state.get("args"), dict):
            out.append(state)
            continue
        fn = table.get(state["call"]) if isinstance(state.get("call"), str) and state["call"] in table else None
        lifted: list[dict[str, Any]] = []
        args = dict(state["args"])
        for key, value in args.items():
            if isinstance(value, str) and "${" in value:
                whole = _INLINE.fullmatch(value.strip()) is not None
                wanted = _param_types(fn, key) if whole and fn is not None else {"string"}
                args[key], made = _lift_in(value, wanted, table, used, notes)
                lifted += made
        if lifted and isinstance(state.get("name"), str):
            entries[state["name"]] = lifted[0]["name"]
        out.extend(lifted)
        out.append({**state, "args": args} if lifted else state)
    if entries:  # a jump to a state that gained lifted states enters them first
        out = [{**s, **{k: entries.get(s[k], s[k]) for k in _TRANSITIONS if isinstance(s.get(k), str)}}
               if isinstance(s, dict) and s.get("name") not in entries.values() else s for s in out]
    return out, notes, entries


def _lift_in(value: str, wanted: set[str], table: FunctionTable, used: set[str],
             notes: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """`value` with each liftable call replaced by a reference, and the states that make those calls."""
    made: list[dict[str, Any]] = []
    parts: list[str] = []
    end = 0
    for m in _INLINE.finditer(value):
        lifted = _lifted_state(m, table, wanted, used, notes)
        parts += [value[end:m.start()], m.group(0) if lifted is None else lifted[1]]
        made += [lifted[0]] if lifted else []
        end = m.end()
    return "".join(parts) + value[end:], made


def _lifted_state(m: re.Match[str], table: FunctionTable, wanted: set[str], used: set[str],
                  notes: list[str]) -> tuple[dict[str, Any], str] | None:
    """The state making the call `m` and the reference that replaces it, or None when it cannot be lifted."""
    name = f"{m.group(1)}.{m.group(2)}"
    if name not in table or m.group(1) in used:  # `${clock.now.iso}` of a state named clock is the state's
        return None
    fn = table.get(name)
    written = m.group(3)
    if written is None and any(f.is_required() for f in fn.params.model_fields.values()):
        return None
    if fn.effect != Effect.READ or len(written or "") > _MAX_ARGS_CHARS:
        return None
    parsed = _literal_args(written or "")
    if parsed is None:
        return None
    positional, keywords = parsed
    params = list(fn.params.model_fields)
    # Arguments the function does not take are dropped, as extra positional ones are, and noted (the dry
    # run still runs the call): `clock.shift(when: "now", weeks: 2, timezone: "Europe/Berlin")`.
    unknown = [f"{k}={v!r}" for k, v in keywords.items() if k not in params]
    keywords = {k: v for k, v in keywords.items() if k in params}
    args = dict(zip(params, positional, strict=False)) | keywords
    written_field = m.group(4) or _fitting_field(fn, wanted)
    field = field_named(fn.result, written_field) if written_field else None  # `.text` of a note is its body
    if field is None:
        return None
    state_name = fresh_name(fn.verb, used)
    used.add(state_name)
    dropped = [repr(p) for p in positional[len(params):]] + unknown
    notes.append(f"the call {m.group(0)} became state {state_name!r}"
                 + (f" (extra arguments dropped: {', '.join(dropped)})" if dropped else ""))
    return {"name": state_name, "call": name, "args": args}, f"${{{state_name}.result.{field}}}"


# A quoted string, or a keyword written JSON-style (`weeks: 2`), which Python writes `weeks=2`.
_STRING_OR_COLON_KEYWORD = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|\b([A-Za-z_]\w*)\s*:(?!=)""")


def _literal_args(text: str) -> tuple[list[Any], dict[str, Any]] | None:
    """The positional and keyword arguments of a call's argument text when every one is a literal constant
    (keywords written `name=value` or, as models also write them, `name: value`)."""
    try:
        tree = ast.parse(f"f({text})", mode="eval")
    except (SyntaxError, ValueError):
        pythonic = _STRING_OR_COLON_KEYWORD.sub(lambda m: m.group(1) or f"{m.group(2)}=", text)
        try:
            tree = ast.parse(f"f({pythonic})", mode="eval")
        except (SyntaxError, ValueError):
            return None
    call = tree.body
    if not isinstance(call, ast.Call):
        return None
    values = [*call.args, *(k.value for k in call.keywords)]
    if not all(isinstance(v, ast.Constant) and isinstance(v.value, (str, int, float, bool)) for v in values):
        return None
    if any(k.arg is None for k in call.keywords):
        return None
    return [a.value for a in call.args], {k.arg: k.value.value for k in call.keywords}  # type: ignore[misc]


def _param_types(fn: Function, key: str) -> set[str]:
    schema = fn.params.model_json_schema()
    prop = schema.get("properties", {}).get(key, {})
    types = {o.get("type") for o in prop.get("anyOf", [prop])} - {None, "null"}
    return types or {"string"}


def _fitting_field(fn: Function, wanted: set[str]) -> str | None:
    schema = fn.result.model_json_schema()
    for field, prop in schema.get("properties", {}).items():
        types = {o.get("type") for o in prop.get("anyOf", [prop])}
        if types & wanted:
            return field
    return None
