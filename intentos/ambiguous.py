"""A plan that picks one of several things the request could mean.

"Ask Chris if Thursday suits" with two contacts called Chris: grounding shows both, and a 1.5B model writes `"to":
["Chris Meyer"]`, so the apps never see a name that fits two (they would say so) and the mail goes to whoever came
first. For the things plans name by a name or title (contacts, notes, open tasks: `Grounded.name`), the request's
words are matched against each one's name and what else it goes by (tags, organization); when two or more of one
app match best and equally, and an acting step names one of them (or several: the 1.5B model also mailed both
Chrises), that is a repair problem, once a stage: unless the request says which, the plan is one agent.ask state
asking. A request for many ("every", "all", "both") means them all, and a plan that already asks is left alone.
When no valid plan comes of the repairs, the planner asks the question itself (`Tie.question`): Qwen2.5-Coder-1.5B,
told that "Chris" fits two contacts, wrote plans that looped between a mail lookup and a contact instead of asking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from intentos.function import Effect
from intentos.grounding import Grounded, content_words, one_or_more, same_word, words_of
from intentos.references import strings
from intentos.table import FunctionTable
from intentos.validation import ASK_CALL, Problem
from intentos.workflow import Workflow

AMBIGUOUS = "ambiguous"  # the problem's code
_MANY = re.compile(r"\b(?:every|each|all|both|them)\b", re.IGNORECASE)


def _alike(mine: str, theirs: str) -> bool:
    """A request word and a word of a name or tag: the same, a plural "s" aside, or sharing a long stem."""
    return same_word(mine, theirs) or one_or_more(mine, theirs)


@dataclass(frozen=True)
class Tie:
    """Things of one app that fit the request best and equally, and those the plan picked (one, or several
    for a request that names one)."""

    app: str
    tied: list[Grounded]
    picked: list[Grounded]

    def problem(self) -> Problem:
        names = ", ".join(repr(g.name) for g in self.tied)
        picks = " and ".join(repr(g.name) for g in self.picked)
        return Problem(code=AMBIGUOUS, message=(
            f"the request fits {len(self.tied)} {self.app} equally ({names}) and the plan picks {picks}; unless "
            "the request says which one, make the plan one agent.ask state asking which"))

    def question(self) -> str:
        """The question that settles it: "Which do you mean: 'Chris Meyer' or 'Chris Wong'?"."""
        names = [repr(g.name) for g in self.tied]
        return f"Which do you mean: {', '.join(names[:-1])} or {names[-1]}?"


def ambiguous(workflow: Workflow, intent: str, grounded: list[Grounded], table: FunctionTable) -> list[Tie]:
    """For each app, the tie when the plan acts on one of several things that fit the request equally well."""
    if _MANY.search(intent) or any(s.call == ASK_CALL for s in workflow.states.values()):
        return []
    # A call the shown table lacks (validation reads the whole table) is taken to act.
    acting = " \n ".join(text.casefold() for s in workflow.states.values()
                         if (fn := table.functions.get(s.call)) is None or fn.effect != Effect.READ
                         for text in strings(s.args))
    if not acting:
        return []
    request = content_words(intent)
    # Things tie when the same words of the request fit each: "Chris" fits Chris Meyer and Chris Wong, but
    # "tell Anna what Ben wrote" names two people, one for each.
    fitting: dict[tuple[str, frozenset[str]], list[Grounded]] = {}
    for g in grounded:
        if not g.name:
            continue
        theirs = words_of(" ".join([g.name, *g.aka]))
        shared = frozenset(w for w in request if any(_alike(w, t) for t in theirs))
        if shared:
            fitting.setdefault((g.app, shared), []).append(g)
    best = {app: max(len(words) for a, words in fitting if a == app) for app, _ in fitting}
    ties = []
    for (app, words), tied in fitting.items():
        picked = [g for g in tied if g.name.casefold() in acting]
        # Picking them all for a request that names one ("mail Chris": both Chrises) is a guess as well.
        if len(words) == best[app] and len(tied) >= 2 and picked:
            ties.append(Tie(app, tied, picked))
    return ties
