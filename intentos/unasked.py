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

A call is not asked for either when none of its required arguments' values comes from the request: a
number the request does not write (in digits or words, or scaled by a percent or a unit prefix), a text
none of whose content words the request has. "Who is the vice president?" beside `us_president_in_year`
gets `year: 2023`; "what is the average weight of a human brain?" gets `patient_id: "12345"`. Values that
say nothing (true, 0, 1, empty) are left out. BFCL's own answers to simple_python trip this in 1% of
cases (a deck's 52 cards, currency codes); the model's calls in 13 of the 38 irrelevance cases that
Qwen2.5-Coder-1.5B failed on 50 (seed 0) do, and with the first criterion 22.

And after the plan asks the user something (an `agent.say` with a question: plain tables offer no
`agent.ask`), a call with any required value the request does not give: the plan went on without the
answer ("What cooking method would you like?", then `get_cooking_time(ingredient_size="large")`). A plan
that asks for values the request gives and calls with them (BFCL's "What is the base?" before
`calculate_triangle_area(base=10, ...)`) is not told.

Such a call is told, and the function leaves the grammar of the next replies for the stage: told in
words, the 1.5B model wrote the same call again in each recorded case. Decoding freely, a repair that
makes it again stands.
"""

from __future__ import annotations

import math
import re
from typing import Any

from intentos.ranking import content_stems
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.validation import SAY_CALL, Problem
from intentos.workflow import Workflow

UNASKED = "unasked"  # the problem's code


def function_words(verb: str, description: str) -> set[str]:
    """The content stems of a function's verb (snake_case or camelCase split) and description."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", verb).replace("_", " ").replace(".", " ")
    return content_stems(f"{spaced} {description}")


def unasked(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    """A problem for each call outside the agent's own whose function shares no content word with the request,
    none of whose required arguments has a value the request gives, or, after the plan asked the user
    something, one of whose required arguments has a value the request does not give."""
    request = content_stems(intent)
    numbers = _numbers(intent)
    problems: dict[str, Problem] = {}
    asked: str | None = None  # the first question the plan puts to the user
    for name, state in workflow.states.items():
        if state.call == SAY_CALL and asked is None and "?" in str(state.args.get("message", "")):
            asked = str(state.args["message"])
        fn = table.functions.get(state.call)
        if fn is None or fn.app == TALK_APP or state.call in problems:
            continue
        if not function_words(fn.verb, fn.description) & request:
            problems[state.call] = Problem(code=UNASKED, state=name, message=(
                f"the request asks for nothing {state.call} does ({fn.description.strip()}): no word of the "
                f"request is in its name or description. {_INSTEAD}"))
            continue
        required = [k for k, f in fn.params.model_fields.items() if f.is_required()]
        values = {k: state.args[k] for k in required if k in state.args and _says_something(state.args[k])}
        made_up = {k: v for k, v in values.items() if not _given(v, intent.lower(), request, numbers)}
        shown = ", ".join(f"{k}={_short(repr(v))}" for k, v in made_up.items())
        if made_up and len(made_up) == len(values):
            problems[state.call] = Problem(code=UNASKED, state=name, message=(
                f"the request gives none of the values of this {state.call} call ({shown}): they are made up. "
                f"{_INSTEAD}"))
        elif made_up and asked is not None:
            # The plan asked for what it lacks and went on without the answer: a plan cannot wait for one.
            problems[state.call] = Problem(code=UNASKED, state=name, message=(
                f"the plan asks {_short(asked)!r} and then calls {state.call} with values the request does not "
                f"give ({shown}); a plan cannot wait for an answer. {_INSTEAD}"))
    return list(problems.values())


_INSTEAD = ("Call a function only if it does what is asked, with values the request gives; if no listed function "
            "does, answer with agent.say (what you know) or agent.refuse (why it cannot be done)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", re.IGNORECASE)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30, "fifty": 50,
                 "hundred": 100, "thousand": 1000, "million": 1e6, "billion": 1e9, "half": 0.5, "quarter": 0.25,
                 "dozen": 12, "twice": 2, "double": 2, "triple": 3}
# A number the request gives may reach a call as a share ("5%": 0.05) or in another unit ("50 mH": 0.05,
# "2 million": 2000000); some of the tens' powers cover those.
_SCALES = (1.0, 1e-2, 1e2, 1e-3, 1e3, 1e-6, 1e6, 1e9)


def _short(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _numbers(text: str) -> set[float]:
    """The numbers a text writes, in digits (thousands' commas dropped) or in words."""
    found = {float(m) for m in _NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3}\b)", "", text))}
    found |= {float(m) for m in _NUMBER.findall(text)}  # "[200,300]" is two numbers, not 200300
    found |= {float(n) for w in re.findall(r"[a-z]+", text.lower()) if (n := _NUMBER_WORDS.get(w)) is not None}
    return found


def _says_something(value: Any) -> bool:
    """Whether a value could only have come from somewhere: not a flag, a zero or one, or empty."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value not in (0, 1)
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return any(_says_something(v) for v in (value.values() if isinstance(value, dict) else value))
    return False


def _given(value: Any, request_text: str, request: set[str], numbers: set[float]) -> bool:
    """Whether the request gives a value: its number, a content word of its text, or (for a list or object)
    any of its parts."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return any(math.isclose(float(value), n * scale, rel_tol=1e-6) for n in numbers for scale in _SCALES)
    if isinstance(value, str):
        return (bool(content_stems(value) & request) or value.lower() in request_text
                or any(_given(float(m), request_text, request, numbers) for m in _NUMBER.findall(value)))
    if isinstance(value, list):
        return any(_given(v, request_text, request, numbers) for v in value)
    if isinstance(value, dict):
        return any(_given(v, request_text, request, numbers) for v in value.values())
    return False
