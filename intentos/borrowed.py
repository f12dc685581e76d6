"""Values a plan took from a worked example instead of from the request.

Small models copy the nearest example more than they follow rules. At worst the whole example comes back:
asked to accept a conference invitation, Qwen2.5-Coder-1.5B planned the example's bouldering session with
Greta at Bloc Valencia. A literal argument of the plan that is, word for word, an argument of a shown
example, and that holds a word found nowhere in what this request offers (the request, what was found for
it, the apps' state, the user, the functions shown, earlier stages' results), is a repair problem. Whole
values are compared, not words, so a plan may still share a word like "Invoices" or "Hi" with an example;
and only capitalised words of letters, names, count as unaccounted for: "drafts" or "tomorrow 9am" for
"tomorrow at 9" are the plan's own. In a sentence (five words or more, where a title is fewer), a word
that opens one, and "I", are capitalised by grammar, not as names: a refusal giving an example's general
reason ("I cannot buy anything ...") for a request of the same kind is right, and was flagged until they
were left out.
"""

from __future__ import annotations

import re
from typing import Any

from intentos.examples import Example
from intentos.references import strings
from intentos.validation import Problem
from intentos.workflow import Workflow

BORROWED = "borrowed"  # the problem's code
_REFERENCE = re.compile(r"\$\{[^}]*\}")
_WORD = re.compile(r"[^\W_]+")
SENTENCE_WORDS = 5  # a text this long is a sentence (a reason, a message), not a title or a name
_SENTENCE_END = re.compile(r"[.!?:]\s*$")


def borrowed(workflow: Workflow, examples: list[Example], sources: str) -> list[Problem]:
    """A problem for each state with literal arguments copied from `examples` that `sources` (all the
    text this request offers the model) does not account for."""
    theirs = {_key(text) for e in examples for s in e.workflow.get("states", [])
              for text in _literals(s.get("args"))}
    theirs.discard("")
    offered = {w.lower() for w in _WORD.findall(sources)}
    problems = []
    for name, state in workflow.states.items():
        copied = sorted({text for text in _literals(state.args)
                         if _key(text) in theirs and any(w.lower() not in offered for w in _names(text))})
        if copied:
            shown = ", ".join(repr(t) for t in copied[:4])
            problems.append(Problem(code=BORROWED, state=name, message=(
                f"{shown} comes from a worked example, not from this request; plan this request with its own "
                "values and what was found for it")))
    return problems


def _literals(value: Any) -> list[str]:
    """The strings of an argument value without references ("Fwd: ${m.result.subject}" is the plan's own)."""
    return [text.strip() for text in strings(value) if text.strip() and not _REFERENCE.search(text)]


def _key(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _names(text: str) -> list[str]:
    """The capitalised words of letters in `text`, less those capitalised by grammar in a sentence (its first
    word, "I")."""
    words = list(_WORD.finditer(text))
    sentence = len(words) >= SENTENCE_WORDS
    return [m.group() for m in words if m.group().isalpha() and m.group()[0].isupper() and not (
        sentence and (m.group() == "I" or not text[: m.start()].strip() or _SENTENCE_END.search(text[: m.start()])))]
