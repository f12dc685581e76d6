"""Tidying a model's list of states before validation: fixes that change nothing a plan would do.

Small models make a few slips that cost a whole repair turn (seconds to tens of seconds on a CPU) and
that have one obvious fix:
- a state without a name (free decoding; the grammar asks for one): it gets one from its call's verb;
- a state named like a terminal ("done", "failed"): it is renamed, and a transition to that name keeps
  meaning the end of the plan, as the model wrote it;
- a state with the name of an earlier state (or of an earlier stage's): it is renamed, so references and
  transitions to that name keep meaning the first one;
- an `agent.ask` that some other app's call follows, whose answer no state uses: dropped. An ask does not
  wait for the answer (it shows the question and the plan goes on), so such an ask only restates the
  request before the plan does what was asked anyway; it is the commonest slip of a 1.5B model on plain
  function calling. An ask whose answer a state uses, or that ends the plan, stays;
- a `"next": "done"` in the middle of a list that leaves the state after it unreachable (nothing else
  leads there): dropped, so the plan runs on in the order written.
Each fix is described in a note that the trace keeps.
"""

from __future__ import annotations

from typing import Any

from intentos.references import find_references
from intentos.validation import ASK_CALL as ASK
from intentos.workflow import TERMINALS

TALK_APP = "agent"
_TRANSITIONS = ("next", "on_failure")


def tidy_states(states: list[Any], taken: set[str] = frozenset()) -> tuple[list[Any], list[str]]:
    """The states with the fixes above, and one note per fix; `taken` are names earlier stages used."""
    states = [dict(s) if isinstance(s, dict) else s for s in states]
    notes: list[str] = []
    used = set(taken) | {s["name"] for s in states if isinstance(s, dict) and isinstance(s.get("name"), str)}
    seen = set(taken)
    for i, state in enumerate(states):
        if not isinstance(state, dict):
            continue
        name = state.get("name")
        reused = isinstance(name, str) and name in seen
        if name is None or reused or name in TERMINALS:
            fresh = _fresh_name(name if reused else _verb(state.get("call")), used)
            used.add(fresh)
            state["name"] = fresh
            notes.append(f"states[{i}] named {fresh!r}" if name is None else f"state {name!r} renamed {fresh!r}")
        if isinstance(state.get("name"), str):
            seen.add(state["name"])
    states = _drop_unused_asks(states, notes)
    return _link_stranded(states, notes), notes


def _verb(call: Any) -> str:
    return call.rsplit(".", 1)[-1] if isinstance(call, str) and call else "step"


def _fresh_name(stem: str, used: set[str]) -> str:
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in stem) or "step"
    if not (base[0].isalpha() or base[0] == "_"):
        base = f"s_{base}"
    name, n = base, 2
    while name in used or name in TERMINALS:
        name, n = f"{base}_{n}", n + 1
    return name


def _drop_unused_asks(states: list[Any], notes: list[str]) -> list[Any]:
    if not all(isinstance(s, dict) for s in states):
        return states
    drop: set[int] = set()
    for i, state in enumerate(states):
        if state.get("call") != ASK or not isinstance(state.get("name"), str):
            continue
        acts_after = any(_app(s.get("call")) not in (TALK_APP, None) for s in states[i + 1:])
        if acts_after and not _answer_used(state["name"], states):
            drop.add(i)
    if not drop:
        return states
    kept_after: dict[str, str] = {}
    for i in sorted(drop):
        following = next((states[j]["name"] for j in range(i + 1, len(states)) if j not in drop), "done")
        kept_after[states[i]["name"]] = following
        notes.append(f"dropped agent.ask {states[i]['name']!r}: no state uses its answer and the plan goes on "
                     "without it")
    kept = []
    for i, state in enumerate(states):
        if i in drop:
            continue
        for key in _TRANSITIONS:
            if state.get(key) in kept_after:
                state[key] = kept_after[state[key]]
        kept.append(state)
    return kept


def _link_stranded(states: list[Any], notes: list[str]) -> list[Any]:
    """Drop a `"next": "done"` that strands the state after it (nothing else leads there): written by habit."""
    if not all(isinstance(s, dict) for s in states):
        return states
    targets = {s.get(key) for s in states for key in _TRANSITIONS}  # dropping a "done" changes none
    for i, state in enumerate(states[:-1]):
        following = states[i + 1].get("name")
        if state.get("next") == "done" and following not in targets:
            del state["next"]
            notes.append(f"state {state.get('name')!r}: dropped \"next\": \"done\", which left "
                         f"{following!r} unreachable")
    return states


def _app(call: Any) -> str | None:
    return call.split(".", 1)[0] if isinstance(call, str) and "." in call else None


def _answer_used(name: str, states: list[dict[str, Any]]) -> bool:
    return any(ref.state == name for s in states if s.get("name") != name
               for key in ("args", "for_each") for ref in find_references(s.get(key)))
