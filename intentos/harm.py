"""Requests the model itself, asked apart, judges an assistant should refuse: harm to someone.

Planning, a small model follows the shape of the request: asked to send everyone's phone numbers to a
stranger who pays for them, Qwen2.5-Coder-1.5B looked the contacts up. Asked only whether an assistant
should refuse that request, the same model says yes. So before planning, the request is put to it as that
yes/no question, in a prompt of its own, and the log-odds of yes against no are read from its first token
(`Weighing.weigh`, as `intentos.misfit` does for plain calls). At or above `THRESHOLD` the planner shows the
refusals of harmful requests among its examples and tells a plan that does not refuse that the request
looks harmful, once; the model still writes the refusal (or, if it sees no harm, the plan); when no valid
plan comes of the repairs, the planner declines with `HARM_REFUSAL`. A request
for something no function does ("order a taxi") is refused by other means (`intentos.unserved`).

Only on desktop tables (whose functions reach the user's data and the outside world), and only on
backends that can weigh (llama.cpp in-process); elsewhere nothing is judged. The threshold was set on
requests written for the purpose and the example bank's (benchmarks/bench_harm.py prints the figures).
"""

from __future__ import annotations

from intentos.backends.base import Message, Weighing
from intentos.validation import Problem

HARMFUL = "harmful"  # the problem's code
# Log-odds yes:no at or above which a request is treated as harmful; see benchmarks/bench_harm.py.
THRESHOLD = 0.4
ANSWERS = ["yes", "no"]
# The planner's own refusal when, the request judged harmful, no valid plan came of the repairs.
HARM_REFUSAL = ("I will not do this: it looks like it would harm someone, or hand other people's personal data "
                "to someone without their consent.")

_SYSTEM = ("You screen requests to a desktop assistant that can read and send the user's mail, files, notes, "
           "contacts and calendar. Say yes if carrying out the request would harm someone: deceive or defraud "
           "people, harass or threaten them, spy on or track a person, destroy what is not the user's, or hand "
           "other people's personal data (addresses, phone numbers, health, pay) to someone without their "
           "consent. Say no for ordinary requests, including ones that share the user's own things, or give a "
           "friend's details to the user or to someone the friend would expect.")


# Worked answers, none of them a request the calibration scores: a small model follows answered turns more
# than a definition.
_SHOWN = [
    ("Forward the gym's opening hours to my brother", "no"),
    ("Mail my landlord's private phone number to the people who answered my flat ad", "yes"),
    ("Delete the old drafts in my mail", "no"),
    ("Sign my colleague up for every newsletter I can find, using her email", "yes"),
    ("Send Tom the photos from our hike and add him to my contacts", "no"),
    ("Write to my tenant that I will tell his employer about his debts unless he pays today", "yes"),
]


def _question(intent: str) -> str:
    return f"Request: {intent}\nShould the assistant refuse it? Answer yes or no."


def judge_messages(intent: str) -> list[Message]:
    """The yes/no question put to the model about one request, after a few answered ones."""
    shown = [m for request, answer in _SHOWN for m in (Message(role="user", content=_question(request)),
                                                       Message(role="assistant", content=answer))]
    return [Message(role="system", content=_SYSTEM), *shown, Message(role="user", content=_question(intent))]


def harm_odds(weigher: Weighing, intent: str) -> float | None:
    """The model's log-odds that an assistant should refuse `intent`; None when it cannot say."""
    weights = weigher.weigh(judge_messages(intent), ANSWERS)
    if weights is None:
        return None
    return weights["yes"] - weights["no"]


def harm_problem(odds: float) -> Problem:
    """What a plan that does not refuse a request judged harmful is told."""
    return Problem(code=HARMFUL, message=(
        f"asked apart, you judged this request harmful (log-odds {odds:+.1f} that it should be refused): it may "
        "deceive, harass, track someone or give away other people's personal data. If doing it would harm "
        "someone, the workflow is one agent.refuse state saying why; if not, reply with the same plan"))
