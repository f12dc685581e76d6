"""Entities the request names that a plan leaves out.

Grounding shows the model what the request is about; a small model still often plans around it. Asked to "send
my car title to my insurance company", with `file Documents/car-title.pdf` found for the request,
Qwen2.5-Coder-1.5B wrote a mail to the insurer that says "please send my car title" and attaches nothing. An
entity the request names (every word of its name is a word of the request) that the plan neither writes by its
reference (a path) nor could reach through a call of the app that offered it (one whose result a later state
uses) is a repair problem, once a stage: a repair that still leaves it out stands, since a request may name a
thing without wanting it used ("tell Chris the car title is in the post"). The problem says where such a thing
most likely goes: an argument the plan leaves unset whose description speaks of paths ("attachments: sandbox
paths of files to attach").
"""

from __future__ import annotations

import json

from intentos.grounding import Grounded
from intentos.references import find_references
from intentos.table import FunctionTable
from intentos.validation import Problem
from intentos.workflow import Workflow

OVERLOOKED = "overlooked"  # the problem's code


def overlooked(workflow: Workflow, grounded: list[Grounded], table: FunctionTable) -> list[Problem]:
    """A problem for each entity found for the request, named by it, that the plan does not use."""
    written = json.dumps([s.args for s in workflow.states.values()], ensure_ascii=False)
    used = {ref.state for s in workflow.states.values() for ref in find_references([s.args, s.for_each])}
    # An app's call whose result a later state uses may well be how the plan reaches the entity.
    reaching = {s.call.split(".", 1)[0] for name, s in workflow.states.items() if name in used}
    missed = [g for g in grounded if g.named and g.ref and g.ref not in written and g.app not in reaching]
    where = _path_slots(workflow, table)
    return [Problem(code=OVERLOOKED, message=(
                f"the request names {g.ref!r} (found for this request), but the plan does not use it; write "
                f"{g.ref!r} where the request needs it" + (f", e.g. in {where}" if where else "")))
            for g in missed]


def _path_slots(workflow: Workflow, table: FunctionTable) -> str:
    """The arguments the plan's calls leave unset that take paths, by their description ("sandbox paths of
    files to attach"): where a left-out file most likely belongs."""
    slots = []
    for name, state in workflow.states.items():
        fn = table.functions.get(state.call)  # None: a call the shown table lacks (free decoding)
        for arg, field in fn.params.model_fields.items() if fn else ():
            if arg not in state.args and "path" in (field.description or "").lower():
                slots.append(f"state {name!r} args.{arg} ({field.description})")
    return ", ".join(slots[:2])
