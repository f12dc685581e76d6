"""A message that copies the text of something found for the request that the request is not about.

Grounding shows what it finds with the start of its text: a contact's mail comes up for a request that
names the contact. Asked to write Anna a draft about something else, Qwen2.5-Coder-1.5B wrote her
own mail back to her, subject and body. A written text (a mail's body, a note's text: a sentence of
the plan's own, not a reference) that repeats a run of words of a found item's text is a repair problem
when that item shares no word with the request but the people it names: the request is not about it,
so its words are not the message. A request about the item ("send Ben the wifi note's text") shares
its title or tags, and copying it stands. So with titles: a new event, note or task titled exactly as such a
found item is (grounding showed an event of the day the request names) takes its name from the wrong thing.
"""

from __future__ import annotations

import re

from intentos.function import Effect
from intentos.grounding import Grounded, content_words, one_or_more, words_of
from intentos.references import find_references, strings
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.validation import Problem
from intentos.workflow import Workflow

COPIED = "copied"  # the problem's code
RUN_WORDS = 6  # words in a row that make a text a copy rather than a shared phrase
TITLE_ARG = "title"
_QUOTED = re.compile(r'"([^"]{2,80})"')  # a found line's first quoted text: the thing's title or subject
PEOPLE_APP = "contacts"


def copied(workflow: Workflow, intent: str, grounded: list[Grounded], table: FunctionTable) -> list[Problem]:
    """A problem for each writing state whose text copies a found item the request is not about."""
    asked = content_words(intent)
    people = {w for g in grounded if g.app == PEOPLE_APP for w in words_of(g.line)}
    # People's names and addresses are left out of both sides: writing to someone repeats them, not their text.
    strangers = [(g, [w for w in words_of(g.line) if w not in people]) for g in grounded if g.app != PEOPLE_APP
                 and not any(one_or_more(w, a) for w in content_words(g.line) - people for a in asked)]
    problems = []
    for name, state in workflow.states.items():
        fn = table.functions.get(state.call)
        if fn is None or fn.effect == Effect.READ or fn.app == TALK_APP:
            continue
        texts = [[w for w in words_of(t) if w not in people] for t in strings(state.args) if not find_references(t)]
        source = next((g for g, theirs in strangers for t in texts if _shares_run(t, theirs)), None)
        if source is not None:
            problems.append(Problem(code=COPIED, state=name, message=(
                f"state {name!r} copies the text of {_what(source)}, which the request is not about; write "
                "the message the request asks for, in its own words")))
        elif (titled := _titled_after(state.args.get(TITLE_ARG), strangers)) is not None:
            problems.append(Problem(code=COPIED, state=name, message=(
                f"state {name!r} takes its title from {titled}, which the request does not name; title it "
                "with the request's own words")))
    return problems


def _titled_after(title: object, strangers: list[tuple[Grounded, list[str]]]) -> str | None:
    """The found item, as the prompt named it, whose title a new title repeats; None if it repeats none."""
    if not isinstance(title, str) or find_references(title):
        return None
    for found, _ in strangers:
        quoted = _QUOTED.search(found.line)
        if quoted and quoted.group(1).strip().lower() == title.strip().lower():
            return f"the {found.line.split(' ', 1)[0]} {quoted.group(0)}"
    return None


def _shares_run(text: list[str], source: list[str]) -> bool:
    """Whether RUN_WORDS words of `text` come in a row in `source`."""
    runs = {tuple(source[i:i + RUN_WORDS]) for i in range(len(source) - RUN_WORDS + 1)}
    return any(tuple(text[i:i + RUN_WORDS]) in runs for i in range(len(text) - RUN_WORDS + 1))


def _what(found: Grounded) -> str:
    """The found item as the prompt named it: its line's start."""
    head = found.line.split(":", 1)[0]
    return f"the {head}" if len(head) <= 80 else f"the {head[:79]}…"
