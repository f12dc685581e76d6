"""A request for every thing of a kind, planned for the first one: the loop it asked for.

Asked to move every file of a kind into a folder, Qwen2.5-Coder-1.5B found the files and moved
`${found.result.paths[0]}`; asked to delete all the mails of a sender, it listed them with `limit: 1` and
deleted `messages[0]`. When the request says every, all or each, an acting step that takes item 0 of one
lookup's list (and no other item of it), with no loop of its own, gets the loop: `for_each` over that list
and `${item}` for the item; the lookup loses a limit of 1. A list argument holding that item
(`"attachments": ["${found.result.paths[0]}"]`) takes the whole list in its place instead, and then there is
no loop: one mail with every file, not a mail for each. An acting step that gives a whole list of texts to an argument
taking one (`"source": "${found.result.paths}"`) gets the loop the same way. Without every/all/each, a
plural naming the lookup's things ("attach my travel notes": the notes app, its `notes` or `paths`) still
makes such a list argument take the whole list, but makes no loop.
"""

from __future__ import annotations

import json
import re
from typing import Any

from intentos.function import Effect
from intentos.looping import result_lists
from intentos.references import replace_text, whole_reference
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP

_EVERY = re.compile(r"\b(?:every|all|each)\b", re.IGNORECASE)
# Plurals that name what an app's lookup finds: its name, or its result's list ("my travel notes").
_KINDS = frozenset({"notes", "files", "paths", "tasks", "contacts", "events", "messages", "mails"})
_FIRST = re.compile(r"\$\{(\w+)\.result\.(\w+)\[0\]")
LIMIT_ARG = "limit"


def loop_every(states: list[Any], intent: str, table: FunctionTable,
               calls_before: dict[str, str]) -> tuple[list[Any], list[str]]:
    """The states with each acting step on a lookup's first item made a step on all its items, where the
    request says every/all/each; and a note per change. `calls_before`: earlier stages' states' calls."""
    every = _EVERY.search(intent) is not None
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", intent)}
    if not every and not words & _KINDS:
        return states, []
    calls = {**calls_before, **{s["name"]: s["call"] for s in states if isinstance(s, dict)
                                and isinstance(s.get("name"), str) and isinstance(s.get("call"), str)}}
    out: list[Any] = []
    notes: list[str] = []
    unlimited: set[str] = set()
    for state in states:
        if not every:
            # "attach my travel notes": a plural naming what the lookup found takes them all where an
            # argument holds a list, but makes no loop (that takes every/all/each). The step may take
            # the first item of another lookup too (the id of the mail it answers).
            named = [(src, field) for src, field in _firsts_of(state, calls, table)
                     if {app := calls.get(src, "").split(".", 1)[0], f"{app}s", field} & words & _KINDS]
            whole_in = _whole_in_list(state, *named[0]) if len(named) == 1 else None
            if whole_in is not None:
                state = whole_in[0]
                notes.append(f"{whole_in[1]}: the request names them in the plural")
            out.append(state)
            continue
        source = _first_of(state, calls, table)
        whole_in = _whole_list_in_text(state, calls, table) if source is None else None
        if whole_in is not None:
            key, whole = whole_in
            out.append({**state, "args": {**state["args"], key: "${item}"}, "for_each": whole})
            notes.append(f"state {state.get('name')!r} runs for each of {whole}, which it gave {key!r} whole: the "
                         "argument takes one, and the request says every one")
            continue
        if source is None:
            out.append(state)
            continue
        src, field = source
        whole_in = _whole_in_list(state, src, field)
        if whole_in is not None:
            state = whole_in[0]
            notes.append(f"{whole_in[1]}: the request says every one")
        else:
            # The first item, any field after it kept (`${found.result.paths[0]` → `${item`).
            whole = f"${{{src}.result.{field}}}"
            state = {**state, "args": replace_text(state["args"], f"${{{src}.result.{field}[0]", "${item"),
                     "for_each": whole}
            notes.append(f"state {state.get('name')!r} runs for each of {whole}, not its first item: the request "
                         "says every one")
        unlimited.add(src)
        out.append(state)
    for i, state in enumerate(out):
        if isinstance(state, dict) and state.get("name") in unlimited and isinstance(state.get("args"), dict) \
                and state["args"].get(LIMIT_ARG) == 1:
            out[i] = {**state, "args": {k: v for k, v in state["args"].items() if k != LIMIT_ARG}}
            notes.append(f"state {state['name']!r} lost its limit of 1: every one is wanted")
    return out, notes


def _whole_in_list(state: dict[str, Any], src: str, field: str) -> tuple[dict[str, Any], str] | None:
    """The state with each list argument that holds item 0 of the list (`["${found.result.paths[0]}"]`)
    holding the whole list instead (beside the argument's other items, the list's items take its place when
    the step runs), and what changed; None when no argument is such a list."""
    whole, first = f"${{{src}.result.{field}}}", f"${{{src}.result.{field}[0]}}"
    args = {key: (whole if value == [first] else [whole if v == first else v for v in value])
            if isinstance(value, list) and first in value else value for key, value in state["args"].items()}
    if args == state["args"]:
        return None
    return {**state, "args": args}, f"state {state.get('name')!r} takes all of {whole}, not its first item"


def _first_of(state: Any, calls: dict[str, str], table: FunctionTable) -> tuple[str, str] | None:
    """The (state, list field) whose item 0, and no other item, an acting step without a loop takes."""
    if not isinstance(state, dict) or "for_each" in state or not isinstance(state.get("args"), dict):
        return None
    written = json.dumps(state["args"], ensure_ascii=False)
    firsts = set(_FIRST.findall(written))
    if len(firsts) != 1:
        return None
    found = _firsts_of(state, calls, table)
    return found[0] if found else None


def _firsts_of(state: Any, calls: dict[str, str], table: FunctionTable) -> list[tuple[str, str]]:
    """Each (state, list field) whose item 0, and no other item, an acting step without a loop takes."""
    if not isinstance(state, dict) or "for_each" in state or not isinstance(state.get("args"), dict):
        return []
    fn = table.functions.get(state.get("call"))  # type: ignore[arg-type]
    if fn is None or fn.app == TALK_APP or fn.effect == Effect.READ:
        return []
    written = json.dumps(state["args"], ensure_ascii=False)
    found = []
    for src, field in sorted(set(_FIRST.findall(written))):
        source = table.functions.get(calls.get(src, ""))
        if source is not None and field in result_lists(source) and not re.search(
                rf"\$\{{{re.escape(src)}\.result\.{re.escape(field)}\[[1-9]", written):
            found.append((src, field))
    return found


def _whole_list_in_text(state: Any, calls: dict[str, str], table: FunctionTable) -> tuple[str, str] | None:
    """The (argument, list reference) of an acting step without a loop that gives a whole list of texts to an
    argument taking one text (`"source": "${found.result.paths}"`), when it is the only such argument."""
    if not isinstance(state, dict) or "for_each" in state or not isinstance(state.get("args"), dict):
        return None
    fn = table.functions.get(state.get("call"))  # type: ignore[arg-type]
    if fn is None or fn.app == TALK_APP or fn.effect == Effect.READ:
        return None
    params = fn.params.model_json_schema().get("properties", {})
    found = []
    for key, value in state["args"].items():
        ref = whole_reference(value)
        source = table.functions.get(calls.get(ref.state, "")) if ref is not None else None
        if ref is None or source is None or len(ref.path) != 1 or params.get(key, {}).get("type") != "string":
            continue
        if result_lists(source).get(str(ref.path[0]), {}).get("type") == "string":
            found.append((key, ref.text))
    return found[0] if len(found) == 1 else None
