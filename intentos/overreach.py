"""A loop that changes things over a lookup that found more than the request names.

Asked to delete the newsletters of one shop from the inbox, Qwen2.5-Coder-1.5B listed the inbox and deleted
its first message; made a loop ("all" was asked), that plan would empty the inbox. Asked to move the PDFs of
one folder, it found PDFs everywhere. The dry run shows it: of the items a writing or destroying loop runs
over (records, or paths), some share a word with the request's first clause (a later one gives reasons) and
others share none. Words the plan wrote itself (the lookup's folder "inbox", the step's destination) say
nothing of which items, and are left out. When no item shares a word the loop is left alone: "delete
everything in Downloads" names the folder only, and what is in it is what it means. The problem is a repair
problem of the dry run: look up only those.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from intentos.dryrun import DryRun
from intentos.function import Effect
from intentos.grounding import content_words, same_word
from intentos.references import find_references, follow, strings
from intentos.table import FunctionTable
from intentos.validation import Problem
from intentos.workflow import Workflow

OVERREACH = "overreach"  # the problem's code
_CHANGING = (Effect.WRITE, Effect.DESTRUCTIVE)  # an external loop (a mail to each) is about people, not items
_SHOWN_ITEMS = 2  # of the items not named, quoted in the problem
_LABELS = ("subject", "title", "name", "path")  # the fields that say what a record is, in this order
_QUERY = "query"  # the argument of a search by words
# What is asked for is said first; a later clause gives reasons ("tick off my choir tasks, I learned them all"),
# whose words would pick items by chance.
_CLAUSE = re.compile(r"[,;:.!?]|\b(?:because|since|as|so)\b", re.IGNORECASE)
UNDER = "under"  # the argument of a lookup that names the folder it looks in


@dataclass(frozen=True)
class Overreach:
    """A loop over more than the request names: its problem, and where the named items share a folder and
    the lookup could be told it, the lookup's state and that folder."""

    problem: Problem
    lookup: str
    folder: str | None = None


def overreach(workflow: Workflow, dry: DryRun, intent: str, table: FunctionTable) -> list[Problem]:
    """For each writing or destroying step run for each item of a lookup's list, where the dry run found both
    items the request names and items it does not, the problem naming the others."""
    return [o.problem for o in overreaches(workflow, dry, intent, table)]


def narrowed(workflow: Workflow, dry: DryRun, intent: str, table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with its first overreaching lookup looking only under the folder its named items share, when
    its function takes a folder (`under`) and it gave none; and a note. For a repair that wrote the plan
    again as it was told (the 1.5B model, told to look only under Downloads, wrote it again twice)."""
    for over in overreaches(workflow, dry, intent, table):
        lookup = workflow.states[over.lookup]
        fn = table.functions.get(lookup.call)
        if over.folder is None or fn is None or UNDER not in fn.params.model_fields or UNDER in lookup.args:
            continue
        data = workflow.to_data()
        data["states"][over.lookup]["args"] = {**lookup.args, UNDER: over.folder}
        return Workflow.model_validate(data), (f"state {over.lookup!r} looks only under {over.folder!r}: written "
                                               "again as it was told it found more than the request names")
    return None


def overreaches(workflow: Workflow, dry: DryRun, intent: str, table: FunctionTable) -> list[Overreach]:
    """The loops over more than the request names, in the plan's order."""
    asked = content_words(_CLAUSE.split(intent, 1)[0])
    found: list[Overreach] = []
    for name, state in workflow.states.items():
        fn = table.functions.get(state.call)
        refs = find_references(state.for_each) if isinstance(state.for_each, str) else []
        if fn is None or fn.effect not in _CHANGING or len(refs) != 1 or refs[0].state not in workflow.states:
            continue
        try:
            items = follow(refs[0], dry.results)
        except LookupError:
            continue
        # Lines of a text are not looked up by what they are about: one task for each line of a list.
        if not isinstance(items, list) or len(items) < 2 or not all(_is_thing(i) for i in items):
            continue
        lookup = workflow.states[refs[0].state]
        written = content_words(" ".join(strings([lookup.args, state.args])))
        words = {w for w in asked if not any(same_word(w, o) for o in written)}
        others = [item for item in items if not _names(item, words)]
        if not others or len(others) == len(items):
            continue
        named = [item for item in items if not any(item is o for o in others)]
        have = sorted(w for w in words if any(_names(item, {w}) for item in named))
        folder = _shared_folder(named, have)
        how = f"look up only the ones under {folder!r}" if folder else _search(have, lookup.call, table)
        quoted = "; ".join(repr(_label(item)) for item in others[:_SHOWN_ITEMS])
        found.append(Overreach(Problem(code=OVERREACH, message=(
            f"dry run: step {name!r} ({state.call}) ran for each of the {len(items)} items of {state.for_each}, "
            f"and {len(others)} of them are not what the request names (e.g. {quoted}): {how} and run the step "
            "for each of those")), refs[0].state, folder))
    return found


def _shared_folder(named: list[Any], have: list[str]) -> str | None:
    """The folder the named paths share, when the request names it (its words pick them)."""
    if not all(isinstance(item, str) for item in named):
        return None
    folder = posixpath.commonpath([posixpath.dirname(item) for item in named])
    return folder if folder and _names(folder, set(have)) else None


def _search(have: list[str], lookup: str, table: FunctionTable) -> str:
    """How to look up only the named records: with a search of the lookup's app for the request's words
    they have."""
    app = lookup.split(".", 1)[0]
    search = next((fn.name for fn in table if fn.app == app and fn.effect == Effect.READ
                   and _QUERY in fn.params.model_fields), None)
    if search is not None:
        return f"look up only the ones the request names, e.g. with {search}({_QUERY}={' '.join(have)!r})"
    return f"look up only the ones the request names (by its words: {', '.join(have)})"


def _label(item: Any) -> str:
    """What an item is called: a record's title, subject or name (not its id), or the path itself."""
    if isinstance(item, dict):
        label = next((item[k] for k in _LABELS if isinstance(item.get(k), str) and item[k]), None)
        return label if label is not None else _text(item)[:80]
    return str(item)


def _is_thing(item: Any) -> bool:
    """A record (a message, a task) or a path, not a line of text."""
    return isinstance(item, dict) or (isinstance(item, str) and "/" in item and " " not in item)


def _names(item: Any, words: set[str]) -> bool:
    """Whether an item's text has one of `words`."""
    return any(same_word(w, o) for o in content_words(_text(item)) for w in words)


def _text(item: Any) -> str:
    return " ".join(strings(item))
