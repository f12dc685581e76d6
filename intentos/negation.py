"""The actions a request rules out: "Put a mail to Ben in my drafts ... don't send it".

Which functions and worked examples fit a request is judged by its words, and a negated verb is still a
word: "don't send it yet" made `mail.send_draft` (both of whose verb words the request has) fit better
than `mail.draft`, and the examples shown were about sending. `affirmed` drops the word a negation
governs, so what fits is judged on what the request asks for. Only the one word right after the negation
goes ("don't forget to send" still sends): dropping a word can only make a function fit less.
"""

from __future__ import annotations

import re

# A negation and the word it governs: "don't send", "do not delete", "never share", "without sending",
# "not yet sent" (the adverb between is skipped), "no need to mail".
_NEGATED = re.compile(
    r"\b(?:don['’]?t|do\s+not|doesn['’]?t|never|without|not|no\s+need\s+to)\s+(?:(?:yet|ever|just|really)\s+)?"
    r"([a-z]+)",
    re.IGNORECASE,
)


def affirmed(intent: str) -> str:
    """The request with each word a negation governs (and the negation) left out."""
    return _NEGATED.sub(" ", intent)


def negated_words(intent: str) -> list[str]:
    """The words the request's negations govern, lower case, in order."""
    return [m.group(1).lower() for m in _NEGATED.finditer(intent)]
