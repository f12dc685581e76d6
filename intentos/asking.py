"""Whether the agent's words to the user add anything, or only hand the request back.

A small model that is unsure often answers a request with one `agent.ask` state whose question is the request
itself ("What key signature does C# major have?"), or asks for a value the request states; told so, it may
write the same text as an `agent.say`. Neither helps: the user already said all of it. In a plan that only
talks (no call outside the agent's own functions), an ask or say whose text's words (stemmed, stop words and
words of asking dropped) are nearly all words of the request, and that does not ask the user to choose ("which
..."), is a repair problem, once a stage, when the request names what a listed function does (most words of
its verb: "key signature", `key_signature`; a question about something no function does may be all a plan can
offer, and BFCL's irrelevance cases are such questions). The repair gets the request again with a note, not
the reply (which it would copy), and where a grammar constrains it, it may act or refuse but not ask or say,
choosing the call before naming the state. Decoding freely, a repair that asks again stands, so a real
clarification is never blocked.

Measured on 20 BFCL simple_python cases (seed 0, Qwen2.5-Coder-1.5B): with the prompt changes of this stop,
the 6 failures were all plans that asked instead of calling; with this check, 17 of 20 passed instead of 14."""

from __future__ import annotations

import re
from functools import cache

from pydantic import BaseModel

from intentos.ranking import content_stems, stemmed_words
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.validation import ASK_CALL, SAY_CALL, TALK_CALLS, Problem
from intentos.workflow import Workflow

TALKING = {ASK_CALL: "question", SAY_CALL: "message"}  # the agent's words to the user, by function
ECHO = "echo"  # the problem's code
# Words of asking that say nothing about what is asked for ("do you want to know ...").
_ASKING = frozenset(content_stems("want wants like need know tell please provide give sure mean"))
_CHOICE = re.compile(r"\bwhich\b", re.IGNORECASE)  # "Which file should I send?": a choice is new information
MIN_WORDS = 3  # a shorter text ("What should it say?") says too little to judge
ECHO_SHARE = 0.75  # this share of the text's words in the request: it adds nothing
NAMED_SHARE = 0.5  # this share of a function's verb words in the request: the request names what it does


class Echo(BaseModel):
    """A plan that only handed the request back: the problems, and the functions the request names."""

    problems: list[Problem]
    talked: list[str]  # the functions that repeated it
    named: list[str]

    def note(self) -> str:
        """What the request is asked again with."""
        talked, named = " or ".join(self.talked), " or ".join(self.named)
        return (f"(A plan whose {talked} only repeats this request does nothing. The request says what {named} "
                "does: call it with the values the request gives; if it cannot do what is asked, make the plan "
                "one agent.refuse state saying why.)")


# Everyday words for what a function's verb says ("email Ben" is mail.send, "tick it off" tasks.complete): a
# request's word adds the verb words it stands for when examples are picked by what they do
# (`Controller.fits`). Not in the checks that repair a plan: "email" and "book" are nouns too.
_SAYS = {
    "email text": "send",
    "make jot": "create",
    "tick finish finished done": "complete",
    "bin rid throw": "trash delete",
    "book schedule block": "add event",
    "reschedule postpone push": "move event",
    "rename": "move",
    "answer respond": "reply",
    "archive file": "move",
}
_VERB_AFTER = frozenset("and then please to".split())  # a word after one of these is in a verb's place
# A word after one of these is a noun ("the email", "my text", "that file"), and implies no verb.
_NOUN_AFTER = frozenset("a an the my your his her its our their this that these those each every any some".split())


@cache
def _phrases() -> dict[str, tuple[str, ...]]:
    """Each everyday word's stem, with the verb phrases it stands for ("block": "add event")."""
    phrases: dict[str, tuple[str, ...]] = {}
    for words, verbs in _SAYS.items():
        for word in stemmed_words(words):
            phrases[word] = (*phrases.get(word, ()), verbs)
    return phrases


@cache
def _implied() -> dict[str, tuple[str, ...]]:
    """Each everyday word's stem, with the verb words it stands for."""
    return {word: tuple(dict.fromkeys(v for verbs in phrases for v in verbs.split()))
            for word, phrases in _phrases().items()}


def implied_verbs(intent: str) -> list[str]:
    """The verb words the request's everyday words stand for ("tick that off": complete)."""
    implied = _implied()
    words = re.findall(r"[a-z']+", intent.lower())
    verbs = " ".join(w for i, w in enumerate(words) if i == 0 or words[i - 1] not in _NOUN_AFTER)
    return list(dict.fromkeys(v for w in stemmed_words(verbs) for v in implied.get(w, ())))


def implied_phrases(intent: str) -> list[tuple[str, str]]:
    """(the request's word, the verb phrase it stands for) for each everyday word in a verb's place: first, or
    after "and", "then", "please" or "to" ("... and block it": block, add event). Elsewhere "email" and "book"
    are as likely nouns ("the invoice email")."""
    words = re.findall(r"[a-z']+", intent.lower())
    out = []
    for i, word in enumerate(words):
        if i and words[i - 1] not in _VERB_AFTER:
            continue
        out += [(word, verbs) for stem in stemmed_words(word) for verbs in _phrases().get(stem, ())]
    return list(dict.fromkeys(out))


def action_words(intent: str) -> set[str]:
    """The request's content stems, with those of the verb words its everyday words stand for."""
    return content_stems(intent) | content_stems(" ".join(implied_verbs(intent)))


def verb_share(verb: str, request: set[str]) -> float:
    """The share of a function verb's content words (snake_case split) among `request`'s content stems."""
    words = content_stems(verb.replace("_", " "))
    return len(words & request) / len(words) if words else 0.0


def named_functions(intent: str, table: FunctionTable) -> list[str]:
    """The functions outside the agent's own whose verb's words are mostly words of the request
    ("the air quality index in San Diego": get_air_quality_index)."""
    request = content_stems(intent)
    return [fn.name for fn in table if fn.app != TALK_APP and verb_share(fn.verb, request) >= NAMED_SHARE]


def echoes(workflow: Workflow, intent: str, table: FunctionTable) -> Echo | None:
    """The echo in a plan that only talks, repeating the request with agent.ask or agent.say, when the
    request names a function of `table` that could act instead (None otherwise: a question about something
    no function does may be all a plan can do)."""
    if any(state.call not in TALK_CALLS for state in workflow.states.values()):
        return None  # a plan that acts: a closing "Added the task ..." may well restate the request
    request = content_stems(intent)
    problems: dict[str, Problem] = {}
    for name, state in workflow.states.items():
        key = TALKING.get(state.call)
        if key is None or state.call in problems:
            continue
        text = state.args.get(key)
        if not isinstance(text, str) or _CHOICE.search(text):
            continue
        words = content_stems(text) - _ASKING
        if len(words) >= MIN_WORDS and len(words & request) >= ECHO_SHARE * len(words):
            problems[state.call] = Problem(code=ECHO, state=name, message=(
                f"{state.call} only repeats what the request already says ({text!r})"))
    named = named_functions(intent, table) if problems else []
    return Echo(problems=list(problems.values()), talked=list(problems), named=named) if named else None
