"""A plan that only looks things up when the request asks for an action.

Repairing a plan whose step failed, a small model sometimes keeps only the lookups: asked to send a
document to someone, a repair read the document and stopped (`"on_failure": "done"` even made the dry
run pass). When the request names what a listed function that acts does (most words of its verb, as in
`intentos.asking`: "send" for mail.send) and no step of the plan acts (it looks something up, and every
call reads or talks), that is a repair problem, once a stage; so is a plan that acts, but not as the
request's first word says, for a verb of functions that reach outside, all of one app ("send"). A plan
that only talks is left to `intentos.asking`: a question back may be a real clarification. Likewise a
request that says to tell someone ("... and let him know") while no step sends anything. A question ("did Yuki send the
questions?") asks for no action but for an answer: a plan that only looks it up and says nothing is told
to say it. A plan that asks back or declines is left alone (a request may be unclear or not to be done),
as is one that ends a stage to look at data first.
"""

from __future__ import annotations

import re

from intentos.asking import action_words, implied_phrases, named_functions, verb_share
from intentos.function import Effect
from intentos.ranking import content_stems, cued_apps
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.unserved import leading_verbs
from intentos.validation import ASK_CALL, REFUSE_CALL, SAY_CALL, Problem
from intentos.workflow import Workflow

UNDONE = "undone"  # the problem's code
UNANSWERED = "unanswered"  # the code of a question's plan that says nothing
# Telling someone else ("let him know", "let the attendees know", "tell Laura", "notify the team"; "tell me" is the
# agent's to answer).
_TELLING = re.compile(r"\b(?:let\s+(?!me\b|us\b)(?:\w+\s+){1,2}know"
                      r"|(?:tell|notify|inform)\s+(?!me\b|myself\b|us\b)\w+)\b", re.IGNORECASE)
_QUESTION = re.compile(r"\?\s*$|^\s*(who|what|when|where|which|why|how|is|are|was|were|do|does|did|can|could|"
                       r"will|would|should|have|has|had)\b", re.IGNORECASE)


def undone(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    """The problem of a plan with no acting step for a request that names an action, or of a plan that tells
    no one for a request that says to tell someone; or none."""
    if any(s.call in (ASK_CALL, REFUSE_CALL) for s in workflow.states.values()):
        return []  # a plan that asks back or declines has its reason
    if _QUESTION.search(intent):
        return _unanswered(workflow, table)  # a question asks for no action, but for an answer
    return _untold(workflow, intent, table) or _only_looks(workflow, intent, table) or _lead_left(
        workflow, intent, table) or _other_thing(workflow, intent, table) or _implied_left(workflow, intent, table)


def _unanswered(workflow: Workflow, table: FunctionTable) -> list[Problem]:
    """A question whose plan looks the answer up and tells it no one: every step reads, none says anything
    ("what is Sofia's phone number?" → contacts.find, and the number stays in the journal). Only where the
    lookup returns something to tell and agent.say is there to tell it (plain function calling answers
    with the call itself)."""
    if SAY_CALL not in table:
        return []
    lookups = []
    for state in workflow.states.values():
        fn = table.functions.get(state.call)
        if fn is None or fn.app == TALK_APP or fn.effect != Effect.READ:
            return []  # it says or does something (or a call the table lacks, which validation reports)
        if fn.result.model_fields:
            lookups.append(state)
    if not lookups:
        return []
    return [Problem(code=UNANSWERED, message=(
        f"the request asks a question, but the plan only looks the answer up: add a last step {SAY_CALL} whose "
        f"message tells the answer from what {lookups[-1].call} finds (${{{_name(workflow, lookups[-1])}"
        ".result...})"))]


def _name(workflow: Workflow, state: object) -> str:
    return next(n for n, s in workflow.states.items() if s is state)


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
    looked: set[str] = set()
    for state in workflow.states.values():
        fn = table.functions.get(state.call)
        if fn is None or (fn.app != TALK_APP and fn.effect != Effect.READ):
            return []  # something acts (or a call the table lacks, which validation reports)
        if fn.app != TALK_APP:
            looked.add(fn.app)
    if not looked:
        return []  # a plan that only talks: asking back is intentos.asking's to judge
    # "Add a line to my todo.txt" planned as files.read: the verb's functions by name (contacts.add, tasks.add)
    # are other apps'; the app the plan looks in does it under another name ("Add text at the end ...").
    there = [fn.name for fn in table if fn.app in looked and fn.effect != Effect.READ
             and content_stems(" ".join(fn.description.split()[:1])) & request]
    named = " or ".join((there or acts)[:2])
    return [Problem(code=UNDONE, message=(
        f"the request asks for an action ({named}), but every step of the plan only looks something up or "
        f"talks; add the step that does what is asked, using what the lookups find"))]


def _lead_left(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    """A plan that acts, but not as the request's first word says: a request to send a list to a new
    colleague and to add her to the address book, planned as the contact only (Qwen2.5-Coder-1.5B). Only for
    a verb of functions that reach outside, all of one app ("send": mail; "create" or "write" name things
    several apps make), and when no acting step of that app is in the plan."""
    verbs = leading_verbs(intent)[:1]
    stems = content_stems(verbs[0]) if verbs else set()
    if not stems:
        return []
    doers = [fn for fn in table if fn.app != TALK_APP and fn.effect == Effect.EXTERNAL
             and content_stems(fn.verb.split("_", 1)[0]) == stems]
    if len({fn.app for fn in doers}) != 1 or doers[0].app not in cued_apps(intent):
        return []  # "start a note" is no training run: the request must point at the app too
    app = doers[0].app
    if not any((fn := table.functions.get(s.call)) is not None and fn.app != TALK_APP and fn.effect != Effect.READ
               for s in workflow.states.values()):
        return []  # a plan that only looks or talks is the other rules' to judge
    if any((fn := table.functions.get(s.call)) is None or (fn.app == app and fn.effect != Effect.READ)
           for s in workflow.states.values()):
        return []  # it does (or a call the table lacks, which validation reports)
    return [Problem(code=UNDONE, message=(
        f"the request opens with {verbs[0]!r} ({' or '.join(fn.name for fn in doers[:2])}), but no step of the plan "
        f"does that; add the step, using what the other steps find or make"))]


def _implied_left(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    """A plan that acts, but neither with the one function an everyday verb of the request stands for ("block
    an hour": calendar.add_event) nor anywhere in that function's app: asked to find a free hour and block it,
    Qwen2.5-Coder-1.5B made a task of the free slot instead. Only where the request points at none of the
    apps the plan acts in ("make a task": create, but a task's)."""
    acting = [fn for s in workflow.states.values() if (fn := table.functions.get(s.call)) is not None
              and fn.app != TALK_APP and fn.effect != Effect.READ]
    if not acting or any(fn.app in cued_apps(intent) for fn in acting):
        return []  # a plan that only looks or talks is the other rules' to judge; "make a task" says where
    for word, verb in implied_phrases(intent):
        if " " not in verb:
            continue  # "make": create, but of what? A verb with its object ("block": add event) says which.
        doers = [fn for fn in table if fn.app != TALK_APP and fn.effect != Effect.READ
                 and content_stems(fn.verb.replace("_", " ")) == content_stems(verb)]
        if len(doers) == 1 and not any(fn.app == doers[0].app for fn in acting):
            return [Problem(code=UNDONE, message=(
                f"the request says {word!r}, which is {doers[0].name}, but the plan acts only with "
                f"{', '.join(dict.fromkeys(fn.name for fn in acting))}; do what it says with {doers[0].name}"))]
    return []


# What a request's object says it acts on: "file away the dentist's reminder email" is about a mail, whatever
# else goes by its words (a reminder PDF).
_KIND_APPS = {"email": "mail", "e-mail": "mail", "mail": "mail", "message": "mail", "note": "notes",
              "task": "tasks", "to-do": "tasks", "todo": "tasks", "event": "calendar", "meeting": "calendar",
              "appointment": "calendar", "contact": "contacts"}
_PREPOSITION = frozenset("to from in into of about on onto for with at by under as".split())
_CLAUSE = re.compile(r"[,;.!?]|\b(?:and|then)\b", re.IGNORECASE)


def object_app(intent: str) -> tuple[str, str] | None:
    """(the noun, its app) when the request's first clause ends its object with a thing of one app: the words
    after its leading verb up to the first preposition ("File away the dentist's reminder email": email, mail;
    "Save the attachment from Ben's mail" has "the attachment")."""
    clause = _CLAUSE.split(intent.strip(), maxsplit=1)[0]
    words = re.findall(r"[a-z][a-z'-]*", clause.lower())[1:]
    span = words[: next((i for i, w in enumerate(words) if w in _PREPOSITION), len(words))]
    if not span:
        return None
    noun = span[-1].removesuffix("s") if span[-1] not in _KIND_APPS else span[-1]
    return (span[-1], _KIND_APPS[noun]) if noun in _KIND_APPS else None


def _other_thing(workflow: Workflow, intent: str, table: FunctionTable) -> list[Problem]:
    """A plan whose acting steps are all of other apps than the one the request's object belongs to (a request
    to archive a billing mail planned as `files.move` of the bill's PDF, with the example of moving a mail to
    the archive right before it). Only where that app has a function that acts."""
    found = object_app(intent)
    if found is None:
        return []
    noun, app = found
    acting = [fn for s in workflow.states.values() if (fn := table.functions.get(s.call)) is not None
              and fn.app != TALK_APP and fn.effect != Effect.READ]
    # That app's functions that act as the request's verb says ("archive": move): "back up my notes" is a zip.
    verbs = leading_verbs(intent)[:1]
    said = action_words(verbs[0]) if verbs else set()
    doers = [fn.name for fn in table if fn.app == app and fn.effect != Effect.READ and verb_share(fn.verb, said)]
    if not acting or not doers or any(fn.app == app for fn in acting) or any(
            (fn := table.functions.get(s.call)) is not None and fn.app == app for s in workflow.states.values()):
        return []  # it acts on such a thing, or reads one to act with (attach, zip, copy)
    return [Problem(code=UNDONE, message=(
        f"the request acts on {'an' if noun[0] in 'aeiou' else 'a'} {noun} (a thing of the {app} app), but the "
        f"plan's acting steps ({', '.join(dict.fromkeys(fn.name for fn in acting))}) act on other things; act on "
        f"the {noun} with a {app} function ({', '.join(doers[:4])}), finding it first"))]
