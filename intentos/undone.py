"""A plan that only looks things up when the request asks for an action.

Repairing a plan whose step failed, a small model sometimes keeps only the lookups: asked to send a
document to someone, a repair read the document and stopped (`"on_failure": "done"` even made the dry
run pass). When the request names what a listed function that acts does (most words of its verb, as in
`intentos.asking`: "send" for mail.send) and no step of the plan acts (it looks something up, and every
call reads or talks), that is a repair problem, once a stage. A plan that only talks is left to
`intentos.asking`: a question back may be a real clarification. Likewise a request that says to tell
someone ("... and let him know") while no step sends anything. A question ("did Yuki send the
questions?") asks for no action and is left alone, as is a plan that asks back or declines (a request may
be unclear or not to be done) and one that ends a stage to look at data first.
"""

from __future__ import annotations

import re

from intentos.asking import named_functions, verb_share
from intentos.function import Effect
from intentos.ranking import content_stems
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.validation import ASK_CALL, REFUSE_CALL, Problem
from intentos.workflow import Workflow

UNDONE = "undone"  # the problem's code
# Telling someone else ("let him know", "tell Laura", "notify the team"; "tell me" is the agent's to answer).
_TELLING = re.compile(r"\b(?:let\s+(?!me\b|us\b)\w+\s+know|(?:tell|notify|inform)\s+(?!me\b|myself\b|us\b)\w+)\b",
                      re.IGNORECASE)
_QUESTION = re.compile(r"\?\s*$|^\s*(who|what|when|where|which|why|how|is|are|was|were|do|does|did|can|could|"
                       r"will|would|should|have|has|had)\b", re.IGNORECASE)


def undone(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    """The problem of a plan with no acting step for a request that names an action, or of a plan that tells
    no one for a request that says to tell someone; or none."""
    if _QUESTION.search(intent) or any(s.call in (ASK_CALL, REFUSE_CALL) for s in workflow.states.values()):
        return []  # a question asks for no action; a plan that asks back or declines has its reason
    return _untold(workflow, intent, table) or _only_looks(workflow, intent, table)


def _untold(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    telling = _TELLING.search(intent)
    senders = [fn.name for fn in table if fn.effect == Effect.EXTERNAL and fn.app != TALK_APP
               and "send" in fn.verb]
    if telling is None or not senders:
        return []
    if any(table.functions.get(s.call) is None or table.get(s.call).effect == Effect.EXTERNAL
           for s in workflow.states.values()):
        return []
    return [Problem(code=UNDONE, message=(
        f"the request says {telling.group(0)!r}: someone is to be told, but no step sends anything; add a "
        f"step that does ({senders[0]}) after the others"))]


def _only_looks(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    request = content_stems(intent)
    acts = sorted((n for n in named_functions(intent, table) if table.get(n).effect != Effect.READ),
                  key=lambda n: -verb_share(table.get(n).verb, request))  # "send" before "send_draft"
    if not acts:
        return []
    looks = False
    for state in workflow.states.values():
        fn = table.functions.get(state.call)
        if fn is None or (fn.app != TALK_APP and fn.effect != Effect.READ):
            return []  # something acts (or a call the table lacks, which validation reports)
        looks = looks or fn.app != TALK_APP
    if not looks:
        return []  # a plan that only talks: asking back is intentos.asking's to judge
    named = " or ".join(acts[:2])
    return [Problem(code=UNDONE, message=(
        f"the request asks for an action ({named}), but every step of the plan only looks something up or "
        f"talks; add the step that does what is asked, using what the lookups find"))]
