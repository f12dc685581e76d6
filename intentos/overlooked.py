"""Entities the request names that a plan leaves out.

Grounding shows the model what the request is about; a small model still often plans around it. Asked to send a
document to someone, with the file found for the request (`file Documents/boat-licence.pdf` for "send my boat
licence to the harbour office"), Qwen2.5-Coder-1.5B wrote a mail that mentions the document and attaches
nothing. An entity the request names (every word of its name is a word of the request) that the plan neither
writes by its reference (a path) nor could reach through a call of the app that offered it (one whose result a
later state uses) is a repair problem, once a stage: a repair that still leaves it out stands, since a request
may name a thing without wanting it used ("tell Chris the car title is in the post"). A plan whose acting step writes a
path of its own with the same name (a new folder "Documents/Invoices" beside a found invoices-2026.txt) is
taken to mean that thing, and so is one whose acting step names something else by all its words (a task "Pay
the Hetzner invoice" beside a found Invoice_Hetzner.pdf); a text that mentions it (a mail's body) does not
count. The problem says where such a thing most likely goes: an argument the plan leaves
unset whose description speaks of paths ("attachments: sandbox paths of files to attach").

A step that writes to people (a `to` argument) with nobody in it, while the request names one person found
for it ("write Anna a draft ..."), is told where the person goes: a 1.5B model drafted Anna's own mail back,
addressed to no one.

A file's name the request writes out ("add it to my todo.txt") that no step of the plan writes is told the
same way, whether or not such a file exists yet: asked to add a line to a todo.txt that did not exist, a 1.5B
model added a task instead, three times.

The same goes for a plural the request uses ("copy the invoices to ...") when grounding
found several files whose names hold its singular and the plan writes some of them but not all, with no step
run for each item: the problem lists them all and says to repeat the step that uses one for each of the others.
Told, a 1.5B model added the others and dropped the one it had ("move the invoices": 2 of 3 moved); so while what
a repair leaves out changes, it is told again (`intentos.selfcheck`).
"""

from __future__ import annotations

import json
import re

from intentos.function import Effect
from intentos.grounding import Grounded, file_names, words_of
from intentos.references import find_references, strings
from intentos.table import FunctionTable
from intentos.validation import REFUSE_CALL, Problem
from intentos.workflow import Workflow

OVERLOOKED = "overlooked"  # the problem's code
PARTLY = "partly"  # the code of a plural's problem: the plan uses only some of its found items
# Arguments that say something rather than name a thing: a mail that mentions the car title does not send it.
FREE_TEXT = frozenset({"body", "message", "text", "subject", "description", "question", "reason", "content"})


def overlooked(workflow: Workflow, intent: str, grounded: list[Grounded], table: FunctionTable) -> list[Problem]:
    """A problem for each entity found for the request, named by it, that the plan does not use, and for each
    plural of the request whose found items the plan uses only some of. A plan that declines uses nothing,
    rightly: asked to transfer money for an invoice, a refusal was told to use the invoice's file."""
    if any(s.call == REFUSE_CALL for s in workflow.states.values()):
        return []
    written = json.dumps([s.args for s in workflow.states.values()], ensure_ascii=False)
    used = {ref.state for s in workflow.states.values() for ref in find_references([s.args, s.for_each])}
    # An app's call whose result a later state uses may well be how the plan reaches the entity.
    reaching = {s.call.split(".", 1)[0] for name, s in workflow.states.items() if name in used}
    # Paths and names (not texts) that acting steps write: a thing the plan makes or moves under that name.
    acting = [s.args for s in workflow.states.values()
              if (fn := table.functions.get(s.call)) is not None and fn.effect != Effect.READ]
    named_in_plan = {_name_words(text) for text in strings(acting) if " " not in text.strip()}
    # What acting steps name a thing by (a task's or note's title, not a mail's body): "Pay the water bill"
    # is what "the water bill is paid" meant, not the bill's PDF that grounding also found.
    titles = [frozenset(words_of(text)) for args in acting for key, value in args.items()
              if key not in FREE_TEXT for text in strings(value)]
    # A thing of another app the plan reaches that goes by the same words may be the one meant: a request to
    # archive the mail an invoice came with is about that mail, not the invoice's PDF grounding also found.
    reached = [frozenset(words_of(g.line)) for g in grounded if g.app in reaching]
    missed = [g for g in grounded if g.named and g.ref and g.ref not in written and g.app not in reaching
              and _name_words(g.ref) not in named_in_plan
              and not any(_name_words(g.ref) <= title for title in titles)
              and not any(_name_words(g.ref) <= words for words in reached)]
    where = _path_slots(workflow, table)
    problems = [Problem(code=OVERLOOKED, message=(
                    f"the request names {g.ref!r} (found for this request), but the plan does not use it; write "
                    f"{g.ref!r} where the request needs it" + (f", e.g. in {where}" if where else "")))
                for g in missed]
    problems += [Problem(code=OVERLOOKED, message=(
                     f"the request names the file {name!r}, but no step of the plan uses it; write its path "
                     f"(with the folder the request gives) where the request needs it"
                     + (f", e.g. in {where}" if where else "")))
                 for name in file_names(intent)
                 if name.lower() not in written.lower() and not any(name in g.ref for g in missed if g.ref)]
    if not any(s.for_each is not None for s in workflow.states.values()):
        for plural, refs in plurals(intent, grounded).items():
            left = [r for r in refs if r not in written]
            if left and len(left) < len(refs):
                done = [r for r in refs if r not in left]
                # Named concretely: told "for_each over a list result", a 1.5B model looked the files up again
                # with a pattern that matched none of them.
                step = next((f"{name!r} ({st.call})" for name, st in workflow.states.items()
                             if any(r in json.dumps(st.args, ensure_ascii=False) for r in done)), "that step")
                problems.append(Problem(code=PARTLY, message=(
                    f"the request says {plural!r}, and {len(refs)} were found for it ({', '.join(map(repr, refs))}), "
                    f"but the plan uses only {', '.join(map(repr, done))}; add a state like {step} for each of "
                    f"the others: {', '.join(map(repr, left))}")))
    return problems


def plurals(intent: str, grounded: list[Grounded]) -> dict[str, list[str]]:
    """For each plural word of the request, the refs of the grounded entities whose last path part holds its
    singular, when there are at least two."""
    out: dict[str, list[str]] = {}
    for word in dict.fromkeys(re.findall(r"[a-z]{3,}s\b", intent.lower())):
        if word.endswith("ss"):
            continue
        singulars = {word[:-1]} | ({word[:-2]} if word.endswith("es") else set())
        refs = [g.ref for g in grounded if g.ref and any(w in g.ref.rsplit("/", 1)[-1].lower() for w in singulars)]
        if len(refs) >= 2:
            out[word] = refs
    return out


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


def _name_words(path: str) -> frozenset[str]:
    """The letter words of a path's last part, extension left out: what a thing of that name is called
    ("Documents/Invoices" and "invoices-2026.txt" are both {invoices})."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    stem = last.rsplit(".", 1)[0] if "." in last.lstrip(".") else last
    return frozenset(w for w in words_of(stem) if w.isalpha() and len(w) > 1)
