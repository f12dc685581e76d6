"""Completing a plan the way a told repair would, where what is missing is clear from the request.

Gaps that Qwen2.5-Coder-1.5B, told of them in words, often left as they were:
- a plural of the request whose found items the plan acts on only partly (`complete_plurals`);
- a message to nobody, or to a state the plan lacks (`${LauraKim.result.email}`), while the request names
  one person found for it (`address_named`);
- a draft for a request that says to mail someone, "Mail Sofia that the meeting moved" (`send_asked`);
- an app's own item taken from another app's result, `tasks.update(task="${urgent.result.id}")` with
  `urgent` a clock.resolve, where grounding found exactly one item of that app (`own_items`);
- a time taken from a clock.resolve state the plan never wrote (`"due": "${later.result.date}"`), for a
  request that names one day (`resolve_named_day`), or from another app's result by a reference that does
  not hold (`"due": "${find.result[0].created}"` after a note search, for "in two weeks, remind me":
  `day_for_broken_date`);
- the time zone of the one place a request about a time names, left out (`zone_named`);
- an optional argument taken from its own step's result, which no run can fill (`drop_unheld_optionals`);
- the time of day a request names, left out of the clock phrase an event's start comes from (`time_for_day`);
- the repetition a request names ("every weekday"), missing from or other than an event's repeat rule
  (`repeat_named`);
- a step adding to the address book someone it already has, which nothing uses (`known_person_added`);
- today's date where the request names another day (`day_for_now`);
- a state the plan refers to and left out, which the reply before it had (`carried_over`): a repair answered
  with only the state it changed.

"Copy the contracts to the shared folder": grounding found three contract files and the plan copies one. Told
which ones it left out (`intentos.overlooked`), the model added those and dropped the one it had, three
replies running. Where the plan's acting steps that name found items all make the same call and no step
loops, that step runs once more for each item left out, the item swapped in, after the last such step.
Anything less clear (acting steps of different calls naming the items, a loop; two people of the name; no
one item found) is told instead, as before. Each completion is noted in the trace, and the plan is still
dry-run and shown for confirmation.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from intentos.function import Effect
from intentos.grounding import Grounded, words_of
from intentos.overlooked import plurals
from intentos.references import find_references, replace_text, whole_reference
from intentos.table import FunctionTable
from intentos.tidy import TALK_APP
from intentos.validation import Problem, names_own_item, validate
from intentos.workflow import DONE, FAILED, Workflow

CONTACTS_APP = "contacts"
TO_ARG, ATTENDEES_ARG = "to", "attendees"
TIMEZONE_ARG = "timezone"
DRAFT_CALL, SEND_CALL = "mail.draft", "mail.send"
# A request that opens with sending: "Email Sofia that ...", "Please send Marco the slides", "Mail me the list".
_SEND_REQUEST = re.compile(r"^\s*(?:please\s+)?(?:e-?mail|mail|send)\b", re.IGNORECASE)


def complete_plurals(workflow: Workflow, intent: str, grounded: list[Grounded],
                     table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with a step for each found item of a plural it acts on only partly, and a note saying so;
    None when there is nothing to complete or it is not clear how."""
    if any(s.for_each is not None for s in workflow.states.values()):
        return None  # a loop decides its own items
    data = workflow.to_data()
    states: dict[str, dict[str, Any]] = data["states"]
    notes = []
    for plural, refs in plurals(intent, grounded).items():
        written = json.dumps([s["args"] for s in states.values()], ensure_ascii=False)
        done, left = [r for r in refs if r in written], [r for r in refs if r not in written]
        if not done or not left:
            continue
        holders = [name for name, s in states.items() if _acts(s["call"], table)
                   and any(r in json.dumps(s["args"], ensure_ascii=False) for r in done)]
        if not holders or len({states[n]["call"] for n in holders}) != 1:
            return None
        template = states[holders[0]]
        item = next(r for r in done if r in json.dumps(template["args"], ensure_ascii=False))
        states = _insert_after(states, holders[-1], [{**template, "args": replace_text(template["args"], item, other)}
                                                     for other in left])
        notes.append(f"the request says {plural!r}: {holders[0]!r} ({template['call']}) repeated for "
                     f"{', '.join(map(repr, left))}")
    if not notes:
        return None
    return Workflow.model_validate({**data, "states": states}), "; ".join(notes)


def _acts(call: str, table: FunctionTable) -> bool:
    fn = table.functions.get(call)
    return fn is not None and fn.effect != Effect.READ and fn.app != TALK_APP


def _insert_after(states: dict[str, dict[str, Any]], after: str,
                  added: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`states` with `added` run one after the other once `after` succeeded, then on to where it went."""
    names: list[str] = []
    for _ in added:
        n = 2
        while f"{after}_{n}" in states or f"{after}_{n}" in names:
            n += 1
        names.append(f"{after}_{n}")
    out: dict[str, dict[str, Any]] = {}
    for name, state in states.items():
        if name != after:
            out[name] = state
            continue
        out[name] = {**state, "next": names[0]}
        for i, (new, state_added) in enumerate(zip(names, added, strict=True)):
            out[new] = {**state_added, "next": names[i + 1] if i + 1 < len(names) else state["next"]}
    return out


def address_named(workflow: Workflow, intent: str, grounded: list[Grounded],
                  table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with the one person the request names (a contact found for it) in the `to` of each step that
    writes to people but names nobody, and, for a request to meet "with" them, in the attendees of each
    event made with none; None when there is no such step, or not one person (several are the ambiguity
    check's to ask about)."""
    person = _named_person(intent, grounded)
    if person is None:
        return None
    data = workflow.to_data()
    meeting = re.search(rf"\b(?:with|invite)\s+{re.escape(person.split()[0])}\b", intent, re.IGNORECASE)
    filled = []
    for name, st in data["states"].items():
        fn = table.functions.get(st["call"])
        if fn is None or fn.effect == Effect.READ:
            continue
        for arg in (TO_ARG, *((ATTENDEES_ARG,) if meeting else ())):
            if arg not in fn.params.model_fields:
                continue
            value = st["args"].get(arg)
            if not value:
                filled.append(f"{name!r} wrote to nobody: to {person!r}, whom the request names" if arg == TO_ARG
                              else f"{name!r} invited nobody: {person!r}, whom the request meets")
            elif _dangling(value, data["states"], name):
                filled.append(f"{name!r} {'wrote to' if arg == TO_ARG else 'invited'} {value!r}, from no earlier "
                              f"state of the plan: {'to ' if arg == TO_ARG else ''}{person!r}, whom the request names")
            else:
                continue
            st["args"][arg] = [person]
    if not filled:
        return None
    return Workflow.model_validate(data), "; ".join(filled)


def _dangling(value: Any, states: dict[str, Any], own: str) -> bool:
    """Whether every text in `value` is just a reference to a state the plan lacks (`${LauraKim.result.email}`)
    or to the state `own` itself (an event inviting `${lunch.result.email}`, from the event it makes)."""
    texts = value if isinstance(value, list) else [value]
    refs = [find_references(t) for t in texts if isinstance(t, str)]
    return len(refs) == len(texts) and all(len(r) == 1 and r[0].text == t and (r[0].state not in states
                                                                             or r[0].state == own)
                                           for r, t in zip(refs, texts, strict=True))


RESOLVE_CALL = "clock.resolve"
NOW_CALL = "clock.now"
CLOCK_APP = "clock"
DATE_ARGS = frozenset({"due", "start", "end", "when", "date"})  # arguments that take a day or a time
_DAY_STATE = "when"
_DAY_LINE = re.compile(r'^"(?P<phrase>[^"]+)" is (?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day \d{4}-\d{2}-\d{2}$')
_TIME_AFTER = re.compile(r"\s+(?:at\s+)?\d{1,2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?(?![\w:])", re.IGNORECASE)


def resolve_named_day(workflow: Workflow, intent: str, grounded: list[Grounded],
                      table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with the clock.resolve state it refers to and never wrote (`"due": "${later.result.date}"`)
    added first, for the one day the request names ("in two weeks", with the time of day it gives: "next
    Tuesday at 10"), or of several the one it moves something to; None when the plan lacks no such state, or
    the request names no day or several."""
    phrase = _named_day(intent, grounded) if RESOLVE_CALL in table else None
    if phrase is None:
        return None
    data = workflow.to_data()
    states = data["states"]
    fields = set(table.get(RESOLVE_CALL).result.model_json_schema().get("properties", {}))
    missing = list(dict.fromkeys(r.state for st in states.values() for r in find_references(st["args"])
                                 if r.state not in states and r.path and r.path[0] in fields))
    if not missing:
        return None
    # A time only the clock's own steps count from (`clock.shift(when="${clock.result.date}", days=1)` for
    # "tomorrow") is now: the named day there would be counted twice.
    counted = {name for name in missing if NOW_CALL in table and all(
        st["call"].split(".", 1)[0] == CLOCK_APP for st in states.values()
        if any(r.state == name for r in find_references(st["args"])))}
    added = {name: {"call": NOW_CALL, "args": {}} if name in counted else
             {"call": RESOLVE_CALL, "args": {"phrase": phrase}} for name in missing}
    added = {name: {**st, "next": following, "on_failure": FAILED}
             for (name, st), following in zip(added.items(), [*missing[1:], data["start"]], strict=True)}
    data = {**data, "start": missing[0], "states": {**added, **states}}
    notes = [f"{', '.join(map(repr, kind))} used as {what} and never written: {call} added first"
             for kind, what, call in (([n for n in missing if n not in counted], "the time the request names",
                                       f"clock.resolve({phrase!r})"),
                                      ([n for n in missing if n in counted], "the time to count from", "clock.now()"))
             if kind]
    return Workflow.model_validate(data), "; ".join(notes)


def day_for_broken_date(workflow: Workflow, intent: str, grounded: list[Grounded],
                        table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with each date argument whose reference to another app's result does not hold (`"due":
    "${find.result[0].created}"`, a note search's, for "in two weeks, remind me") taken from a clock.resolve of
    the one day the request names, added first; None when there is no such argument, or the request names no
    day or several. A date that does hold stays: the request may mean a found thing's day."""
    phrase = _named_day(intent, grounded) if RESOLVE_CALL in table else None
    if phrase is None:
        return None
    broken = {(p.state, p.field) for p in validate(workflow, table)}
    data = copy.deepcopy(workflow.to_data())
    states: dict[str, dict[str, Any]] = data["states"]
    taken = []
    for name, st in states.items():
        for key, value in st["args"].items():
            ref = whole_reference(value)
            source = states.get(ref.state, {}).get("call", "") if ref is not None else ""
            if (key in DATE_ARGS and ref is not None and (name, f"args.{key}") in broken
                    and source.split(".", 1)[0] != CLOCK_APP):
                taken.append((name, key, value))
    if not taken:
        return None
    when = next(n for n in (f"{_DAY_STATE}{i or ''}" for i in range(len(states) + 1)) if n not in states)
    for name, key, _ in taken:
        states[name]["args"][key] = f"${{{when}.result.iso}}"
    data = {**data, "start": when, "states": {when: {"call": RESOLVE_CALL, "args": {"phrase": phrase},
                                                      "next": data["start"], "on_failure": FAILED}, **states}}
    broke = ", ".join(f"{name}'s {key} ({value})" for name, key, value in taken)
    return Workflow.model_validate(data), (f"{broke} did not hold, and the request names {phrase!r}: "
                                           f"clock.resolve({phrase!r}) added first for it")


def _named_day(intent: str, grounded: list[Grounded]) -> str | None:
    """The one day the request names, as grounding found it, with the time of day it gives ("next Tuesday at
    10"); of several, the one a thing moves to ("move Thursday's review to Friday"); else None."""
    days = [m.group("phrase") for g in grounded if g.app == CLOCK_APP and (m := _DAY_LINE.match(g.line))]
    moved_to = [d for d in days if re.search(rf"\b(?:to|until|till)\s+{re.escape(d)}\b", intent, re.IGNORECASE)]
    days = moved_to if len(days) > 1 and len(moved_to) == 1 else days
    if len(days) != 1:
        return None
    at = re.search(re.escape(days[0]), intent, re.IGNORECASE)
    after = _TIME_AFTER.match(intent, at.end()) if at else None
    return days[0] + (after.group(0) if after else "")


def _named_person(intent: str, grounded: list[Grounded]) -> str | None:
    """The one contact found for the request whose full name it says, else the one whose first name it says."""
    said = set(words_of(intent))
    contacts = [g.name for g in grounded if g.app == CONTACTS_APP and words_of(g.name)]
    for people in ([c for c in contacts if set(words_of(c)) <= said], [c for c in contacts if words_of(c)[0] in said]):
        if people:
            return people[0] if len(people) == 1 else None
    return None


def own_items(workflow: Workflow, intent: str, grounded: list[Grounded],
              table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with an app's own item ("task" of tasks.update) that it took from another app's result, or from
    a state the plan lacks, replaced by the one item of that app grounding found for the request; None when
    there is none, or not one."""
    data = workflow.to_data()
    notes, sources = [], set()
    for name, st in data["states"].items():
        app = st["call"].split(".", 1)[0]
        fn = table.functions.get(st["call"])
        for arg, value in st["args"].items() if fn is not None else ():
            if not names_own_item(app, arg) or not isinstance(value, str):
                continue
            refs = find_references(value)
            if len(refs) != 1 or refs[0].text != value:
                continue
            source = data["states"].get(refs[0].state)  # None: a state the plan lacks (`${t2.result.id}`)
            if source is not None and source["call"].split(".", 1)[0] == app:
                continue
            items = [g for g in grounded if g.app == app and g.name]
            if len(items) != 1:
                continue
            st["args"][arg] = items[0].name
            sources.add(refs[0].state)
            taken = f"{refs[0].state!r} ({source['call']})" if source else f"{refs[0].state!r}, which is no state"
            notes.append(f"state {name!r} took its {arg} from {taken}: the {arg} found for this request, "
                         f"{items[0].name!r}, instead")
    if not notes:
        return None
    _drop_unused_reads(data, sources, table)
    return Workflow.model_validate(data), "; ".join(notes)


def drop_failed_lookups(workflow: Workflow, failed: list[str], table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan without those of the `failed` states (its dry run's) that are lookups no state uses: a look
    before adding ("contacts.get('Laura Kim')" ahead of contacts.add for her) that only stops the plan when
    it finds nothing; None when there is none, or the plan has no step that acts. The caller keeps it only
    if the rest then runs clean."""
    data = workflow.to_data()
    if not any(_acts(st["call"], table) for st in data["states"].values()):
        return None  # a plan that only looks things up: its lookup is what the request asks for
    before = list(data["states"])
    # Only a lookup by values of its own, whose failure ends the plan: one that failed on a reference (an
    # empty list indexed) is the empty lookup's problem to tell, one with a failure branch is the plan's.
    looked = {n for n in failed if n in data["states"] and not find_references(data["states"][n]["args"])
              and data["states"][n].get("on_failure", FAILED) == FAILED}
    _drop_unused_reads(data, looked, table)
    dropped = [n for n in before if n not in data["states"]]
    if not dropped:
        return None
    return (Workflow.model_validate(data),
            f"dropped {', '.join(map(repr, dropped))}: a lookup that failed in the dry run and that no step uses")


def _drop_unused_reads(data: dict[str, Any], sources: set[str], table: FunctionTable) -> None:
    """Leave out those of `sources` that are lookups no state uses any more (the clock.resolve("urgent") a task
    was taken from would fail the dry run), each state that went to one going where it went."""
    states = data["states"]
    used = {r.state for st in states.values() for r in find_references([st["args"], st.get("for_each")])}
    _drop_states(data, [n for n in sources if n in states and n not in used and _reads(states[n]["call"], table)])


def _drop_states(data: dict[str, Any], names: list[str]) -> None:
    """Leave out the states `names` (never the last one), each state that went to one going where it went."""
    states = data["states"]
    for name in names:
        if len(states) == 1:
            return
        gone = states.pop(name)
        for st in states.values():
            for edge in ("next", "on_failure"):
                if st.get(edge) == name:
                    st[edge] = gone["next"]
        if data.get("start") == name:
            data["start"] = gone["next"]


def _reads(call: str, table: FunctionTable) -> bool:
    fn = table.functions.get(call)
    return fn is not None and fn.effect == Effect.READ and fn.app != TALK_APP


def send_asked(workflow: Workflow, intent: str, grounded: list[Grounded],
               table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with its drafts sent, for a request that opens with sending and never says draft, when no step
    sends and nothing uses a draft's result; None otherwise. (Sending is still confirmed before it runs.)"""
    if not _SEND_REQUEST.match(intent) or "draft" in intent.lower() or SEND_CALL not in table:
        return None
    data = workflow.to_data()
    states = data["states"]
    used = {r.state for st in states.values() for r in find_references([st["args"], st.get("for_each")])}
    drafts = [n for n, st in states.items() if st["call"] == DRAFT_CALL and n not in used and st["args"].get(TO_ARG)]
    if not drafts or any(st["call"] == SEND_CALL for st in states.values()):
        return None
    for name in drafts:
        states[name]["call"] = SEND_CALL
    return (Workflow.model_validate(data),
            f"{', '.join(map(repr, drafts))} sent instead of saved as a draft: the request says to send")


def zone_named(workflow: Workflow, intent: str, grounded: list[Grounded],
               table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with the one time zone a request about a time names ("the time in Tokyo, please") in each
    step that takes a `timezone` and leaves it unset; None when there is no such step, or not one zone.
    Qwen2.5-Coder-1.5B, shown '"Tokyo" is the time zone Asia/Tokyo', still wrote `clock.now` with no
    arguments, which shows the user's own time."""
    from intentos.when import request_zones  # the clock's reading of place names

    zones = {name for _, name in request_zones(intent)}
    if len(zones) != 1:
        return None
    (zone,) = zones
    data = workflow.to_data()
    filled = []
    for name, st in data["states"].items():
        fn = table.functions.get(st["call"])
        if fn is None or TIMEZONE_ARG not in fn.params.model_fields or st["args"].get(TIMEZONE_ARG):
            continue
        st["args"][TIMEZONE_ARG] = zone
        filled.append(name)
    if not filled:
        return None
    return (Workflow.model_validate(data),
            f"{', '.join(map(repr, filled))} given the time zone {zone}, the place the request asks about")


# A reference to the step's own result: no run can fill it. (A reference to a state the plan lacks, or to a
# field a result lacks, stands for a value the request may need, an attachment say: that is told.)
UNHELD = frozenset({"reference_self"})
_ARG_FIELD = re.compile(r"^args\.(\w+)(?:\[(\d+)\])?$")


def drop_unheld_optionals(workflow: Workflow, problems: list[Problem],
                          table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan without the optional arguments (or list items of one) taken from their own step's result,
    and a note naming them; None when no such argument is among `problems`. Qwen2.5-Coder-1.5B added
    `"tags": "${reminder.result.tags}"` to the very task it was adding, and kept it through two repairs,
    rewriting the rest of a good plan around it; an optional value no run can fill is left to its default,
    as if the model had not written it. A required one is still told."""
    data = workflow.to_data()
    dropped = []
    for problem in problems:
        match = _ARG_FIELD.match(problem.field or "")
        st = data["states"].get(problem.state or "")
        if problem.code not in UNHELD or match is None or st is None:
            continue
        fn = table.functions.get(st["call"])
        arg, index = match.group(1), match.group(2)
        field = fn.params.model_fields.get(arg) if fn is not None else None
        if field is None or field.is_required() or arg not in st["args"]:
            continue
        value = st["args"][arg]
        if index is not None and isinstance(value, list) and int(index) < len(value):
            value.pop(int(index))
            if value:
                dropped.append(f"{problem.state!r} without item {index} of its {arg}")
                continue
        del st["args"][arg]
        dropped.append(f"{problem.state!r} without its {arg}")
    if not dropped:
        return None
    return (Workflow.model_validate(data),
            "; ".join(dropped) + ": optional, and taken from the step's own result, which it cannot use")


# A time of day as requests write it: "9:15", "at 10am", "3 pm", "noon".
_TIME_OF_DAY = re.compile(r"\b(?:\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?|\d{1,2}\s*[ap]\.?m\.?|noon|midnight)(?![\w:])",
                          re.IGNORECASE)
RESOLVE_CALL, START_ARG, ALL_DAY_ARG = "clock.resolve", "start", "all_day"


def time_for_day(workflow: Workflow, intent: str, grounded: list[Grounded],
                 table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with the one time of day the request names added to the clock phrase of each start that is
    a day alone ("next monday" for "a daily check-in at 8:45 from next Monday on"); None when
    there is none to add, or the request names no time or several. Given the day alone, the event has no
    time: told so by the dry run, Qwen2.5-Coder-1.5B made it an all-day event."""
    times = {t.lower().replace(" ", "") for t in _TIME_OF_DAY.findall(intent)}
    if len(times) != 1:
        return None
    time_of_day = _TIME_OF_DAY.search(intent).group(0)  # as the request writes it
    data = workflow.to_data()
    states = data["states"]
    added = []
    for name, st in states.items():
        fn = table.functions.get(st["call"])
        start = st["args"].get(START_ARG)
        if fn is None or START_ARG not in fn.params.model_fields or st["args"].get(ALL_DAY_ARG) or \
                not isinstance(start, str) or (ref := whole_reference(start)) is None:
            continue
        source = states.get(ref.state)
        phrase = source["args"].get("phrase") if source and source["call"] == RESOLVE_CALL else None
        if isinstance(phrase, str) and not _TIME_OF_DAY.search(phrase) and not re.search(r"\d", phrase):
            source["args"]["phrase"] = f"{phrase} {time_of_day}"
            added.append(f"{ref.state!r} resolves {source['args']['phrase']!r}")
        if ref.path == ("date",) and source is not None and source["call"] == RESOLVE_CALL and \
                _TIME_OF_DAY.search(str(source["args"].get("phrase", ""))):
            st["args"][START_ARG] = f"${{{ref.state}.result.iso}}"  # the day alone drops the time
            added.append(f"{name!r} starts at {ref.state}.result.iso, the date and time, not the date alone")
    if not added:
        return None
    return (Workflow.model_validate(data),
            f"{'; '.join(added)}: the time of day the request names, which the phrase left out")


RRULE_ARG = "rrule"


def repeat_named(workflow: Workflow, intent: str, grounded: list[Grounded],
                 table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with the repetition the request names ("every weekday", "on Tuesdays") as the repeat rule of
    each writing step that takes one and repeats otherwise or not at all; None when the request names none
    (or several), or every such step already repeats that way. How long it repeats (COUNT, UNTIL) stays the
    plan's. Qwen2.5-Coder-1.5B, asked for a weekday event, wrote Mondays only, copying the one day the request
    also named; a plan that repeats nothing is given the rule only for a repetition said in words ("every
    day"), not an adjective that may be a title's ("the weekly review")."""
    from intentos.recurrence import named_repeat

    data = workflow.to_data()
    changed = []
    for name, st in data["states"].items():
        fn = table.functions.get(st["call"])
        if fn is None or fn.effect == Effect.READ or RRULE_ARG not in fn.params.model_fields:
            continue
        own = st["args"].get(RRULE_ARG)
        if own is not None and not isinstance(own, str):
            continue
        repeat = named_repeat(intent, adjectives=bool(own))
        if repeat is None or (own and repeat.fits(own)):
            continue
        st["args"][RRULE_ARG] = repeat.rule(own or "")
        changed.append(f"{name!r} repeats {st['args'][RRULE_ARG]}")
    if not changed:
        return None
    return (Workflow.model_validate(data), f"{'; '.join(changed)}: the repetition the request names")


NAME_ARG, CONTACT_ARG = "name", "contact"


def known_person_added(workflow: Workflow, intent: str, grounded: list[Grounded],
                       table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan without the steps that add to the address book someone it already has (a contact found for
    the request, of the same name) and whose result no other step uses; None when there is none, or nothing
    else would be left. Asked to put a contact on an invite, Qwen2.5-Coder-1.5B also added her as a new
    contact, her email taken from the event's result, three replies running: the step does nothing the
    request asks for and would make a second card of her."""
    known = {g.name.strip().lower() for g in grounded if g.app == CONTACTS_APP and g.name}
    data = workflow.to_data()
    states = data["states"]
    adds = []
    for name, st in states.items():
        fn = table.functions.get(st["call"])
        who = st["args"].get(NAME_ARG)
        if fn is None or fn.app != CONTACTS_APP or fn.effect != Effect.WRITE or CONTACT_ARG in fn.params.model_fields \
                or not isinstance(who, str) or who.strip().lower() not in known:
            continue
        users = {r.state for n, other in states.items() if n != name
                 for r in find_references([other["args"], other.get("for_each")])}
        if name not in users:
            adds.append(name)
    if not adds or len(adds) == len(states):
        return None
    _drop_states(data, adds)
    return (Workflow.model_validate(data),
            f"dropped {', '.join(map(repr, adds))}: it adds someone the address book already has")


# A named day that is today: the clock's now is that day.
_TODAY = re.compile(r"^(?:today|tonight|now|this\s+(?:morning|afternoon|evening))\b", re.IGNORECASE)


def day_for_now(workflow: Workflow, intent: str, grounded: list[Grounded],
                table: FunctionTable) -> tuple[Workflow, str] | None:
    """The plan with each clock.now that only gives other apps' steps their day (`free_slots(start=
    "${today.result.date}")`) resolving the one day the request names instead, when that is not today; None
    when there is none. Shown an example that looks at this afternoon, Qwen2.5-Coder-1.5B looked for free time
    today for a request about tomorrow, and told so kept it. A now that the clock counts from (`clock.shift`,
    `clock.diff`) or that the plan tells the user is the time it is, and stays."""
    phrase = _named_day(intent, grounded) if RESOLVE_CALL in table else None
    if phrase is None or _TODAY.match(phrase):
        return None
    data = workflow.to_data()
    states = data["states"]
    changed = []
    for name, st in states.items():
        if st["call"] != NOW_CALL or st["args"]:
            continue
        # (call, argument) of each use; a start with an end is a span from now ("a free hour before tomorrow
        # evening"), so not a day's.
        uses = [(other["call"], key if not (key == START_ARG and "end" in other["args"]) else "span")
                for n, other in states.items() if n != name
                for key, value in other["args"].items() if any(r.state == name for r in find_references(value))]
        uses += [(other["call"], "for_each") for other in states.values()
                 if any(r.state == name for r in find_references(other.get("for_each")))]
        if uses and all(call.split(".", 1)[0] not in (CLOCK_APP, TALK_APP) and key in DATE_ARGS for call, key in uses):
            st.update(call=RESOLVE_CALL, args={"phrase": phrase})
            changed.append(name)
    if not changed:
        return None
    return (Workflow.model_validate(data), f"{', '.join(map(repr, changed))} resolves {phrase!r}, the day the "
            "request names, where the plan took today's date")


def carried_over(workflow: Workflow, before: Workflow) -> tuple[Workflow, str] | None:
    """The plan with the states it refers to by name and lacks taken from the plan before it (the reply the
    repair answers), with those they refer to in turn, in that plan's order ahead of its own states; None when
    it lacks none the plan before had. Told to book the free slot its lookup found rather than add a task,
    Qwen2.5-Coder-1.5B wrote only the booking, still referring to the lookup of its previous reply."""
    data = workflow.to_data()
    states, old = data["states"], before.to_data()["states"]
    need = [r.state for st in states.values() for r in find_references([st["args"], st.get("for_each")])]
    take: set[str] = set()
    while need:
        name = need.pop()
        if name in states or name in take or name not in old:
            continue
        take.add(name)
        need += [r.state for r in find_references([old[name]["args"], old[name].get("for_each")])]
    if not take:
        return None
    ordered = [n for n in old if n in take]
    added = {}
    for i, name in enumerate(ordered):
        st = copy.deepcopy(old[name])
        st["next"] = ordered[i + 1] if i + 1 < len(ordered) else data["start"]
        if st.get("on_failure") not in (*states, *ordered, DONE):
            st["on_failure"] = FAILED
        added[name] = st
    data = {**data, "start": ordered[0], "states": {**added, **states}}
    them = "them" if len(ordered) > 1 else "it"
    return (Workflow.model_validate(data), f"{', '.join(map(repr, ordered))} kept from the plan before: this one "
            f"refers to {them} and left {them} out")
