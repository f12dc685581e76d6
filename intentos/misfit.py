"""Plain calls of a function that the model itself, asked apart, judges to miss what the request asks for.

`intentos.unasked` catches a call whose function shares no word with the request. What it cannot catch is
the near miss: a function on the same subject that gives another thing ("the freezing point" beside
`calculate_boiling_point`, "sell my guitar" beside `tune_instrument`). A small model writes such a call
when asked to plan, yet tells the two apart when asked only whether the function gives what the request
asks for. So the plan's call is put to it as that yes/no question, in a prompt of its own, and the
log-odds of yes against no are read from its first token (`Weighing.weigh`): a call below `THRESHOLD` is
told, once a stage, and its function leaves the grammar for the stage like an unasked one.

Only on plain function-calling tables (no function returns anything), where one call is the whole
answer; and only on backends that can weigh (llama.cpp in-process); elsewhere nothing is told.

The threshold was set on BFCL cases outside the seeded samples the evals measure
(benchmarks/bench_misfit.py prints the figures): the log-odds the 1.5B model gives the right function of
simple_python cases, and the function of irrelevance cases, which asks for something no function gives.
"""

from __future__ import annotations

import re

from intentos.backends.base import Message, Weighing
from intentos.function import Function
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.validation import Problem
from intentos.workflow import Workflow

MISFIT = "misfit"  # the problem's code
# Log-odds yes:no below which a call is told. On held-out BFCL cases (benchmarks/bench_misfit.py,
# Qwen2.5-Coder-1.5B) it kept 138 of 140 right simple_python calls (98.6%) and caught 17 of 65 (26%) functions
# of irrelevance cases that share a word with the request; -0.6 caught 42% but dropped 3.6% of right calls.
THRESHOLD = -0.9
ANSWERS = ["yes", "no"]

# The contrasts are the judge's own, on subjects none of BFCL's questions ask about: a near miss on the same
# subject is still a miss.
_SYSTEM = ("You check a planned function call before it runs. Say yes only if the function's result is exactly "
           "the thing the request asks for. Say no if the function computes or finds something else, even on the "
           "same subject: a loan's total interest is not its monthly payment; a train's departure time is not its "
           "arrival time; a file's size is not its age.")
_FIRST_SENTENCE = re.compile(r"^.+?[.!?](?=\s|$)", re.DOTALL)


def judge_messages(intent: str, fn: Function) -> list[Message]:
    """The yes/no question put to the model about one function for one request."""
    params = ", ".join(fn.params.model_fields)
    # Only what the function does: its arguments' descriptions, which repeat the request's words ("the type of
    # the instrument, e.g. 'acoustic guitar'"), pulled the judge towards yes.
    found = _FIRST_SENTENCE.match(fn.description.strip())
    does = found.group(0) if found else fn.description.strip()
    return [Message(role="system", content=_SYSTEM),
            Message(role="user", content=(f"Request: {intent}\nFunction: {fn.name}({params}): {does}\n"
                                          "Does this function give exactly what the request asks for? Answer yes "
                                          "or no."))]


def fit_odds(weigher: Weighing, intent: str, fn: Function) -> float | None:
    """The model's log-odds that `fn` gives what `intent` asks for; None when it cannot say."""
    weights = weigher.weigh(judge_messages(intent, fn), ANSWERS)
    if weights is None:
        return None
    return weights["yes"] - weights["no"]


def misfit(workflow: Workflow, intent: str, table: FunctionTable, weigher: Weighing,
           skip: set[str] | frozenset[str] = frozenset()) -> list[Problem]:
    """A problem for each call outside the agent's own (and `skip`) whose function the model judges not to give
    what the request asks for."""
    problems: dict[str, Problem] = {}
    for name, state in workflow.states.items():
        fn = table.functions.get(state.call)
        if fn is None or fn.app == TALK_APP or state.call in problems or state.call in skip:
            continue
        odds = fit_odds(weigher, intent, fn)
        if odds is not None and odds < THRESHOLD:
            problems[state.call] = Problem(code=MISFIT, state=name, message=(
                f"{state.call} gives something other than what the request asks for ({fn.description.strip()}). "
                "Call a function only if its result is what is asked; if no listed function gives it, answer "
                "with agent.say (what you know) or agent.refuse (why it cannot be done)"))
    return list(problems.values())
