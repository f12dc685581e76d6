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
- an `agent.ask` for a yes/no ("Do you accept? (yes/no)") whose answer only `agent.check` states test, with
  other app calls after it: the ask, the checks and what only their failure branches led to are dropped.
  The person confirms the whole plan before it runs, and an ask's result is never the answer, so such a
  check could only fail;
- an `agent.ask` that offers a choice ("Which Chris?", "... or ...?") and whose answer a later state uses (a
  mail to `${ask.result}`): the plan ends at the ask. It cannot wait for the answer, so what follows would
  run on the question's text; the person answers with a new request, and the steps before the ask (the
  lookups that found the choices) stay. An ask for a value ("When is it due?") is left to validation: the
  request may well give the value, or need none;
- a reference closed with the bracket of its last index instead of a brace (`${find.result.paths[0]]`):
  closed with a brace; one that says result twice (`${find.result.result.phone}`): once (no function's
  result has a field named result);
- a `"next": "done"` in the middle of a list that leaves the state after it unreachable (nothing else
  leads there): dropped, so the plan runs on in the order written; so is a `next` or `on_failure` that
  names no state (the model wrote one branch of two, three replies running).
Each fix is described in a note that the trace keeps.
"""

from __future__ import annotations

import re
from typing import Any

from intentos.references import find_references, map_strings
from intentos.validation import ASK_CALL as ASK
from intentos.validation import CHECK_CALL as CHECK
from intentos.workflow import ARGS_MAX_DEPTH, TERMINALS
from intentos.yamlfile import nesting_depth

TALK_APP = "agent"
_CHOICE = re.compile(r"\bwhich\b|\bor\b", re.IGNORECASE)  # a question offering a choice
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
            fresh = fresh_name(name if reused else _verb(state.get("call")), used)
            used.add(fresh)
            state["name"] = fresh
            notes.append(f"states[{i}] named {fresh!r}" if name is None else f"state {name!r} renamed {fresh!r}")
        if isinstance(state.get("name"), str):
            seen.add(state["name"])
    states = _close_brackets(states, notes)
    states = _drop_unused_asks(states, notes)
    states = _end_at_answered_ask(states, notes)
    states = _drop_dangling_edges(states, taken, notes)
    return _link_stranded(states, notes), notes


# `${STATE.result.PATH]`: a reference whose closing brace was written as the bracket of its last index.
_BRACKET_CLOSED = re.compile(r"(\$\{\s*[A-Za-z_][\w-]*\.result(?:\.[A-Za-z_][\w-]*|\.\d+|\[\d+\])*)\](?![\]}])")


_RESULT_TWICE = re.compile(r"(\$\{\s*[A-Za-z_][\w-]*\.result)\.result\b")


def _close_brackets(states: list[Any], notes: list[str]) -> list[Any]:
    def fix(value: str) -> str:
        fixed = _BRACKET_CLOSED.sub(r"\1}", value)
        if fixed != value:
            notes.append(f"closed {value!r} with a brace")
        once = _RESULT_TWICE.sub(r"\1", fixed)
        if once != fixed:
            notes.append(f"{fixed!r} says result once")
        return once

    # Arguments nested too deeply for validation are left to it (map_strings recurses).
    return [{**s, "args": map_strings(s["args"], fix)} if isinstance(s, dict) and isinstance(s.get("args"), dict)
            and nesting_depth(s["args"], ARGS_MAX_DEPTH) <= ARGS_MAX_DEPTH else s for s in states]


def _verb(call: Any) -> str:
    return call.rsplit(".", 1)[-1] if isinstance(call, str) and call else "step"


def fresh_name(stem: str, used: set[str]) -> str:
    """A state name from `stem` (made a valid name) that is not in `used` nor a terminal: stem, stem_2, ..."""
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
    drop: dict[int, str] = {}  # index -> why
    for i, state in enumerate(states):
        if state.get("call") != ASK or not isinstance(state.get("name"), str):
            continue
        if not any(_app(s.get("call")) not in (TALK_APP, None) for s in states[i + 1:]):
            continue  # an ask that ends the plan (or only talk follows) is the plan's answer
        users = [j for j, s in enumerate(states) if j != i and _uses(s, state["name"])]
        if not users:
            drop[i] = "no state uses its answer and the plan goes on without it"
        elif all(states[j].get("call") == CHECK for j in users):
            # "Do you accept? (yes/no)" then a check of the answer: the person confirms the whole plan
            # before it runs, and an ask never returns the answer, so the check could only fail.
            drop[i] = "a yes/no question the plan's own confirmation asks"
            for j in users:
                drop[j] = f"it checked the answer to {state['name']!r}, which is asked by confirming the plan"
    if not drop:
        return states
    kept_after: dict[str, str] = {}
    for i in sorted(drop):
        name = states[i]["name"]
        following = next((states[j]["name"] for j in range(i + 1, len(states)) if j not in drop), "done")
        explicit = states[i].get("next") if states[i].get("call") == CHECK else None
        kept_after[name] = explicit if isinstance(explicit, str) and explicit not in kept_after else following
        notes.append(f"dropped {states[i].get('call')} {name!r}: {drop[i]}")
    kept = []
    for i, state in enumerate(states):
        if i in drop:
            continue
        for key in _TRANSITIONS:
            for _ in kept_after:  # a dropped check may lead to another dropped state; bounded against cycles
                if state.get(key) not in kept_after:
                    break
                state[key] = kept_after[state[key]]
        kept.append(state)
    # What only a dropped check's failure branch led to ("OK, I won't go") goes too.
    reached, before = _reachable(kept), _reachable(states)
    branch = [s for s in kept if s["name"] in before and s["name"] not in reached]
    for s in branch:
        notes.append(f"dropped {s.get('call')} {s['name']!r}: only a dropped check led there")
    return [s for s in kept if s not in branch]


def _end_at_answered_ask(states: list[Any], notes: list[str]) -> list[Any]:
    if not all(isinstance(s, dict) for s in states):
        return states
    for i, state in enumerate(states):
        name = state.get("name")
        question = state.get("args", {}).get("question") if isinstance(state.get("args"), dict) else None
        if state.get("call") != ASK or not isinstance(name, str) or not _CHOICE.search(str(question)):
            continue
        users = [s for s in states[i + 1:] if _uses(s, name) and s.get("call") != CHECK]
        if not users:
            continue
        dropped = {s.get("name") for s in states[i + 1:]}
        kept = [dict(s) for s in states[: i + 1]]
        kept[-1].pop("next", None)
        if any(s.get(key) in dropped for s in kept for key in _TRANSITIONS):
            return states  # a branch leads past the ask: validation says what is wrong with it
        notes.append(f"ended the plan at agent.ask {name!r}: {users[0].get('name')!r} used its answer, and a plan "
                     "does not wait for one; dropped the states after it")
        return kept
    return states


def _reachable(states: list[dict[str, Any]]) -> set[str]:
    """The names a list-form plan can reach from its first state (a state without `next` goes on to the one
    after it)."""
    names = [s.get("name") for s in states]
    following = dict(zip(names, [*names[1:], None], strict=True))
    by_name = {s.get("name"): s for s in states}
    seen: set[str] = set()
    todo = names[:1]
    while todo:
        name = todo.pop()
        if not isinstance(name, str) or name in seen or name not in by_name:
            continue
        seen.add(name)
        state = by_name[name]
        todo += [state.get("next", following[name]), state.get("on_failure")]
    return seen


def _drop_dangling_edges(states: list[Any], taken: set[str], notes: list[str]) -> list[Any]:
    """Drop a `next` or `on_failure` that names no state: the branch the model meant to write and did not
    (a check going to "answer_yes" and "answer_no" with only one of them written). Without it the plan runs
    on in the order written, and a failure ends it."""
    names = set(taken) | set(TERMINALS) | {s.get("name") for s in states if isinstance(s, dict)}
    for state in states:
        if not isinstance(state, dict):
            continue
        for key in _TRANSITIONS:
            target = state.get(key)
            if isinstance(target, str) and target not in names:
                del state[key]
                notes.append(f"state {state.get('name')!r}: dropped {key!r}: {target!r}, which names no state")
    return states


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


def _uses(state: dict[str, Any], name: str) -> bool:
    return any(ref.state == name for key in ("args", "for_each") for ref in find_references(state.get(key)))
