"""Calls of a function the request does not ask for, in plain function calling.

Given a table where no function does what is asked ("what is the mass of an electron?" beside
`calculate_magnetic_field`), a small model calls the nearest function anyway, filling its arguments
with made-up values. A call whose function shares no content word (stemmed, stop words dropped) with
the request, neither in its verb nor in its description, is a repair problem, once a stage: a repair
that makes the same call stands, since the request may ask for it in other words.

Only on tables whose functions return nothing (plain function calling, as in BFCL). A desktop plan
calls lookups and senders the request never names (a contact's address to "tell Laura"), and its
apps' cues and grounding already say which apps the request is about.

Measured on BFCL's data with the tables the planner is shown (no model involved): the function BFCL's
answer calls shares a word with the request in 98.8% of simple_python cases (395 of 400), while in
53% of irrelevance cases no given function does, so any call there is told
(benchmarks/bench_unasked.py).
"""

from __future__ import annotations

import re

from intentos.ranking import content_stems
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.validation import Problem
from intentos.workflow import Workflow

UNASKED = "unasked"  # the problem's code


def function_words(verb: str, description: str) -> set[str]:
    """The content stems of a function's verb (snake_case or camelCase split) and description."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", verb).replace("_", " ").replace(".", " ")
    return content_stems(f"{spaced} {description}")


def unasked(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    """A problem for each call outside the agent's own whose function shares no content word with the request."""
    request = content_stems(intent)
    problems: dict[str, Problem] = {}
    for name, state in workflow.states.items():
        fn = table.functions.get(state.call)
        if fn is None or fn.app == TALK_APP or state.call in problems:
            continue
        if not function_words(fn.verb, fn.description) & request:
            problems[state.call] = Problem(code=UNASKED, state=name, message=(
                f"the request asks for nothing {state.call} does ({fn.description.strip()}): no word of the "
                "request is in its name or description. Call it only if it does what is asked; if no listed "
                "function does, answer with agent.say (what you know) or agent.refuse (why it cannot be done)"))
    return list(problems.values())
