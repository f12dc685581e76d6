"""Leads: what grounding found that a lookup came back empty for.

A plan looks for "TechConf Berlin" among the notes, the dry run says the search found nothing
and the next step cannot index into it; the request's grounding, in the prompt all along, had a
mail with that subject. Told only "search differently", a small model repeats the same search.
So the repair problem names the grounded entities that share a word with the empty lookup's
arguments, and the app each one is in: a concrete place to look instead of a general rule.
"""

from __future__ import annotations

from intentos.dryrun import EMPTY_INDEX, DryRun
from intentos.grounding import Grounded
from intentos.ranking import content_stems
from intentos.references import find_references, strings
from intentos.workflow import Workflow

MAX_LEADS = 3


def leads(workflow: Workflow, dry: DryRun, grounded: list[Grounded]) -> dict[str, str]:
    """For each step that indexed into an empty result, or ran for each item of an empty list, a sentence naming
    where the thing looked for is (keyed by that step's state); none when grounding found nothing that shares a
    word with the lookup."""
    out: dict[str, str] = {}
    empty = [(s, s.error) for s in dry.steps if s.status == "error" and EMPTY_INDEX in (s.error or "")]
    empty += [(s, workflow.states[s.state].for_each) for s in dry.empty_loops(workflow)]
    for step, pointer in empty:
        refs = [r for r in find_references(pointer) if r.state in workflow.states]
        if not refs:
            continue
        lookup = workflow.states[refs[0].state]
        asked = " ".join(strings(lookup.args))
        words = content_stems(asked)
        hits = [g for g in grounded if words & content_stems(g.line)][:MAX_LEADS]
        if not hits:
            continue
        places = "; ".join(f"{g.line} (in {g.app})" for g in hits)
        out[step.state] = (f"{refs[0].state!r} ({lookup.call}) found nothing for {asked!r}, but found for this "
                           f"request: {places}. Look it up in the app that has it.")
    return out
