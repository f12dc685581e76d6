"""A request to do something none of the installed functions does: pay, order, phone, print.

A desktop agent's apps manage files, notes, tasks, events, contacts and mail; "order me a taxi" or "pay the
water bill" asks for an action in the world that none of them takes. Shown the nearest examples (which act),
a small model acts too: asked to pay a bill from a bank account, Qwen2.5-Coder-1.5B looked up the contact
tagged "finance" and told the user her phone number. The request's leading verb (its first word once
"please", "can you" and the like are set aside, in each sentence) names the action. When it is one of the
everyday actions below and no function of the whole table has it among the words of its name or
description, the request is unserved: refusal examples may be shown for it, and a plan that does not
refuse is told so, once a stage (a repair that acts again stands: a function may do it in other words).

The list holds only verbs that are seldom anything but such an action ("book" and "post" are left out: a
desktop books an event and posts a letter as a mail; "call off" is a cancellation). Of the 152 examples
in the bank it finds the six refusals of such requests and nothing else; of the 60 eval intents, the two
that must be refused. A plugin app whose function names one ("print_file", "order_food") makes it served.
"""

from __future__ import annotations

import re
from functools import cache

from intentos.ranking import content_stems
from intentos.table import FunctionTable
from intentos.unasked import function_words
from intentos.validation import REFUSE_CALL, Problem
from intentos.workflow import Workflow

UNSERVED = "unserved"  # the problem's code
ACTIONS = frozenset("""
    pay buy purchase order transfer wire donate withdraw deposit invest sell bet charge rent hire reserve
    call ring dial print tweet play stream install uninstall dim unlock cook drive deliver track subscribe
    vote ship
""".split())
# Phrasal verbs that mean something a desktop does: "call off the offsite" cancels an event.
_DESKTOP_PHRASES = frozenset({"call off"})
# Openers before the verb of a request: "please", "could you", "I'd like you to", "go and".
_OPENER = re.compile(r"^(?:(?:please|pls|kindly|just|now|hey|ok(?:ay)?|so|and|then)\b[,\s]*"
                     r"|(?:can|could|would|will)\s+you\s+|i\s*(?:'d|would)\s+like\s+(?:you\s+)?to\s+"
                     r"|i\s+(?:want|need)\s+(?:you\s+)?to\s+|go\s+(?:and\s+)?|help\s+me\s+)+", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")
_WORD = re.compile(r"[a-z]+")


def leading_verbs(intent: str) -> list[str]:
    """The first word of each sentence of the request, openers set aside, lower-cased (none for a sentence
    opening with a phrasal verb a desktop does, "call off")."""
    verbs = []
    for sentence in _SENTENCE.split(intent.strip()):
        words = _WORD.findall(_OPENER.sub("", sentence.strip().lower()))
        if words and " ".join(words[:2]) not in _DESKTOP_PHRASES:
            verbs.append(words[0])
    return verbs


@cache
def _covered(table_key: frozenset[tuple[str, str]]) -> frozenset[str]:
    return frozenset(w for verb, description in table_key for w in function_words(verb, description))


def unserved_verb(intent: str, table: FunctionTable) -> str | None:
    """The request's leading everyday action that no function of `table` names, if there is one."""
    covered = _covered(frozenset((fn.verb, fn.description) for fn in table))
    for verb in leading_verbs(intent):
        if verb in ACTIONS and not content_stems(verb) & covered:
            return verb
    return None


def unserved(workflow: Workflow, verb: str | None) -> list[Problem]:
    """A problem for a plan that does not refuse a request whose action (`verb`) no function takes."""
    if verb is None or any(state.call == REFUSE_CALL for state in workflow.states.values()):
        return []
    first = next(iter(workflow.states))
    return [Problem(code=UNSERVED, state=first, message=(
        f"the request asks to {verb}, and none of the listed functions can {verb}: if none does what is "
        "asked, the workflow is one agent.refuse state saying why (and what you can do instead); keep this "
        "plan only if it really does it"))]
