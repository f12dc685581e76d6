"""Completing a plan that acts on only some of the things a plural of the request names.

"File the invoices from my Downloads": grounding found three invoice files and the plan moves one. Told
which ones it left out (`intentos.overlooked`), Qwen2.5-Coder-1.5B added those and dropped the one it had,
three replies running. So where the plan's acting steps that name found items all make the same call and
no step loops, the plan is completed the way the told repair would complete it: that step once more for
each item left out, the item swapped in, one after the other after the last such step. Anything less clear
(acting steps of different calls naming the items, a loop) is told instead, as before.
"""

from __future__ import annotations

import json
from typing import Any

from intentos.function import Effect
from intentos.grounding import Grounded
from intentos.overlooked import plurals
from intentos.references import map_strings
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.workflow import Workflow


def complete_plurals(workflow: Workflow, intent: str, grounded: list[Grounded],
                     table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with a step for each found item of a plural it acts on only partly, and a note saying so;
    None when there is nothing to complete or it is not clear how."""
    if any(s.for_each is not None for s in workflow.states.values()):
        return None  # a loop decides its own items
    data = workflow.to_data()
    states: dict[str, dict[str, Any]] = data["states"]
    notes = []
    for plural, refs in plurals(intent, grounded).items():
        written = json.dumps([s["args"] for s in states.values()], ensure_ascii=False)
        done, left = [r for r in refs if r in written], [r for r in refs if r not in written]
        if not done or not left:
            continue
        holders = [name for name, s in states.items() if _acts(s["call"], table)
                   and any(r in json.dumps(s["args"], ensure_ascii=False) for r in done)]
        if not holders or len({states[n]["call"] for n in holders}) != 1:
            return None
        template = states[holders[0]]
        item = next(r for r in done if r in json.dumps(template["args"], ensure_ascii=False))
        states = _insert_after(states, holders[-1], [{**template, "args": _swapped(template["args"], item, other)}
                                                     for other in left])
        notes.append(f"the request says {plural!r}: {holders[0]!r} ({template['call']}) repeated for "
                     f"{', '.join(map(repr, left))}")
    if not notes:
        return None
    return Workflow.model_validate({**data, "states": states}), "; ".join(notes)


def _acts(call: str, table: FunctionTable) -> bool:
    fn = table.functions.get(call)
    return fn is not None and fn.effect != Effect.READ and fn.app != TALK_APP


def _swapped(args: dict[str, Any], item: str, other: str) -> dict[str, Any]:
    return map_strings(args, lambda text: text.replace(item, other))


def _insert_after(states: dict[str, dict[str, Any]], after: str,
                  added: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`states` with `added` run one after the other once `after` succeeded, then on to where it went."""
    names: list[str] = []
    for _ in added:
        n = 2
        while f"{after}_{n}" in states or f"{after}_{n}" in names:
            n += 1
        names.append(f"{after}_{n}")
    out: dict[str, dict[str, Any]] = {}
    for name, state in states.items():
        if name != after:
            out[name] = state
            continue
        out[name] = {**state, "next": names[0]}
        for i, (new, state_added) in enumerate(zip(names, added, strict=True)):
            out[new] = {**state_added, "next": names[i + 1] if i + 1 < len(names) else state["next"]}
    return out
