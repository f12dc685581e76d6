"""A request to destroy a whole kind of thing, planned as if it named which.

"Delete all my files" says nothing about which files; a small model shown an example that deletes one
thing plans `files.find` for a pattern it makes up and trashes what that finds. Every destructive step
is confirmed before it runs, but a plan for a request like this should decline, or ask which ones, not
guess. A request whose destructive verb (delete, remove, trash, wipe, erase, ...) takes "all", "every"
or "everything" over a whole kind (files, notes, mail, contacts, ...) with nothing narrowing it, and a
plan with a destructive step (or a write into a folder named like the bin: a move to "Trash"), is a repair
problem, once a stage: refuse, or ask which. "Delete all the
newsletters from that shoe shop" names which, and is left alone.
"""

from __future__ import annotations

import re

from intentos.function import Effect
from intentos.references import strings
from intentos.table import FunctionTable
from intentos.validation import ASK_CALL, Problem
from intentos.workflow import Workflow

WHOLESALE = "wholesale"  # the problem's code
_KINDS = (r"files?|folders?|documents|data|notes?|mails?|e-?mails?|messages?|contacts?|tasks?|events?|"
          r"calendars?|photos?|pictures?|stuff|things")
_WHOLESALE = re.compile(
    r"\b(?:delete|remove|trash|wipe|erase|destroy|clear|empty|get rid of)\s+"
    rf"(?:(?:all|every(?:thing)?|each)(?:\s+(?:of\s+)?(?:my|the|your))?(?:\s+(?:{_KINDS}))?|everything)"
    r"(?:\s+(?:on|in|from)\s+(?:my|the|this|it)(?:\s+(?:computer|laptop|machine|disk|drive|system|home|account))?)?"
    r"\s*(?:[.!,]|$)", re.IGNORECASE)


# A write into a folder named like the bin is destroying by another name: asked to delete all files, the 1.5B
# model moved every document to "Trash".
_BIN = re.compile(r"(?:^|/)(?:trash|bin|recycle(?: ?bin)?|deleted(?: items)?|\.trash)/?$", re.IGNORECASE)


def wholesale(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    """The problem of a destructive plan for a request to destroy a whole kind of thing, or none."""
    match = _WHOLESALE.search(intent)
    if match is None:
        return []
    destroying = [s.call for s in workflow.states.values()
                  if (fn := table.functions.get(s.call)) is not None and (fn.effect == Effect.DESTRUCTIVE or (
                      fn.effect == Effect.WRITE and any(_BIN.search(v) for v in strings(s.args))))]
    if not destroying:
        return []
    return [Problem(code=WHOLESALE, message=(
        f"the request says {match.group(0).strip(' .!,')!r} and names nothing to narrow it, but the plan "
        f"destroys with {destroying[0]}: make the plan one agent.refuse state saying it will not destroy "
        "everything at once, or one agent.ask state asking which ones"))]


# "Do you want me to delete all your files? (yes/no)": a question whose yes would mean destroying it all.
_YES_NO = re.compile(r"^\s*(?:do|shall|should|are|can|may|would)\s+(?:you|i|we)\b|\(\s*y(?:es)?\s*/\s*n(?:o)?\s*\)",
                     re.IGNORECASE)


def confirms_wholesale(workflow: Workflow, intent: str) -> list[Problem]:
    """For a request to destroy a whole kind of thing, a plan that asks a yes/no question instead of which
    ones: a yes would leave everything to one word. Told once the wholesale problem was (Qwen2.5-Coder-1.5B,
    told to refuse or ask which, asked whether to go ahead)."""
    if _WHOLESALE.search(intent) is None:
        return []
    questions = [s.args.get("question") for s in workflow.states.values() if s.call == ASK_CALL]
    if not any(isinstance(q, str) and _YES_NO.search(q) for q in questions):
        return []
    return [Problem(code=WHOLESALE, message=(
        "a yes/no question leaves destroying everything to one word: make the plan one agent.refuse state "
        "saying it will not destroy everything at once, or ask which ones to delete"))]


def wholesale_refusal(intent: str) -> str | None:
    """Why a plan declines the request to destroy a whole kind of thing, in words for the user; None when it
    names no such thing."""
    match = _WHOLESALE.search(intent)
    if match is None:
        return None
    phrase = match.group(0).strip(" .!,")
    return (f"I will not {phrase[:1].lower()}{phrase[1:]} at once: that could destroy what you still need. "
            "Tell me which ones to delete, and I will.")
