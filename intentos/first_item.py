"""A field of a list's item written as a field of the whole result: the first item's.

Small models write `${found.result.email}` after `contacts.find`, whose result is `{contacts, count}`;
validation says "the result has no field 'email'" and the repair often writes it again. When the
result has exactly one list whose items have that field, the reference is rewritten to the first
item's (`${found.result.contacts[0].email}`), which is what a plan that looked one thing up means;
the dry run then says so if the list is empty. In the same way an index into the whole result
(`${find.result[0].uid}`, as if `calendar.find` returned a list) is an index into its one list
(`${find.result.events[0].uid}`) when the result has exactly one list, or one list whose items have
the field named after the index. A field written in the other number is the one the result has
(`${zip.result.paths[0]}` of `{path, ...}` is `${zip.result.path}`; `${find.result.path}` of
`{paths, count}` is `${find.result.paths[0]}`), and a field by a name the result gives another field
(`AKA`: `${m.result.messages[0].from}` is `...sender_email`). A whole item given to an argument that
takes a text is the item's field the argument names (`"contact": "${found.result.contacts[0]}"`, "a name,
email address or uid", is `...contacts[0].name`). A list argument given such a field of a lookup whose query
names several things (`"to": "${found.result.emails}"` after `contacts.find(query="Ben, Chris")`) gets that
field of as many items as the query names: the plan looked them up to use them all (given only the first,
the "let the attendees know" mail of a 1.5B plan reached one of two). Anything else is left for validation.
"""

from __future__ import annotations

import re
from typing import Any

from intentos.function import AKA
from intentos.grounding import words_of
from intentos.looping import result_lists
from intentos.references import find_references, map_strings, whole_reference
from intentos.table import FunctionTable
from intentos.validation import descend
from intentos.workflow import ARGS_MAX_DEPTH
from intentos.yamlfile import nesting_depth

QUERY_ARG = "query"  # a lookup's search text
MAX_NAMED = 10  # things one query may name for each to become an item of a list argument


def first_items(states: list[Any], table: FunctionTable, earlier: dict[str, str]) -> tuple[list[Any], list[str]]:
    """The states with such references rewritten, and a note per rewrite. `earlier`: the calls of states of
    earlier stages, by name."""
    calls = dict(earlier)
    calls.update({s["name"]: s["call"] for s in states if isinstance(s, dict)
                  and isinstance(s.get("name"), str) and isinstance(s.get("call"), str)})
    # How many things each lookup's query names, where it names several ("Ben, Chris"): each is an item.
    named = {s["name"]: len(parts) for s in states if isinstance(s, dict) and isinstance(s.get("name"), str)
             and isinstance(s.get("args"), dict) and isinstance(query := s["args"].get(QUERY_ARG), str)
             and 1 < len(parts := [p for p in re.split(r"[,;]", query) if p.strip()]) <= MAX_NAMED}
    notes: list[str] = []
    out = []
    for state in states:
        if isinstance(state, dict) and isinstance(state.get("args"), dict):
            if isinstance(state.get("call"), str) and state["call"] in table and named:
                state = {**state, "args": _each_named(state["args"], state["call"], calls, named, table, notes)}
            state = {**state, "args": _rewrite(state["args"], calls, table, notes)}
            if isinstance(state.get("call"), str) and state["call"] in table:
                state = {**state, "args": _named_fields(state["args"], state["call"], calls, table, notes)}
        out.append(state)
    return out, notes


def _each_named(args: dict[str, Any], call: str, calls: dict[str, str], named: dict[str, int],
                table: FunctionTable, notes: list[str]) -> dict[str, Any]:
    """The arguments with a list argument that takes a field of the items of a lookup whose query names several
    things, written on the whole result (`"to": "${found.result.emails}"` after `contacts.find(query="Ben,
    Chris")`), given that field of each of those items: the plan looked up several to use them all."""
    params = table.get(call).params.model_json_schema()
    out = dict(args)
    for key, value in args.items():
        ref = whole_reference(value[0] if isinstance(value, list) and len(value) == 1 else value)
        param = _resolved(params.get("properties", {}).get(key, {}), params)
        if (ref is None or ref.state not in named or calls.get(ref.state) not in table or not ref.path
                or not isinstance(ref.path[0], str) or param.get("type") != "array"):
            continue
        listing = _only_list_with(table, calls[ref.state], ref.path[0])
        if listing is None:
            continue
        out[key] = [_written(ref.state, (listing, i, *ref.path)) for i in range(named[ref.state])]
        notes.append(f"{ref.text} became {', '.join(out[key])} (the lookup names {named[ref.state]} things; "
                     f"{calls[ref.state]} gives a list of {listing})")
    return out


def _named_fields(args: dict[str, Any], call: str, calls: dict[str, str], table: FunctionTable,
                  notes: list[str]) -> dict[str, Any]:
    """The arguments with each whole item given to a text argument (`"contact": "${found.result.contacts[0]}"`)
    narrowed to the field by which the argument names things: the first of the item's naming fields (an id, a
    path, a name...) that the argument's name or description mentions ("a name, email address or uid": `name`).
    Other fields are content ("a note": a contact's `note` is not the note a body is)."""
    params = table.get(call).params.model_json_schema()
    out = dict(args)
    for key, value in args.items():
        ref = whole_reference(value)
        param = _resolved(params.get("properties", {}).get(key, {}), params)
        if ref is None or calls.get(ref.state) not in table or param.get("type") != "string":
            continue
        fields = _item_fields(table, calls[ref.state], ref.path)
        said = words_of(f"{key} {param.get('description', '')}")
        named = sorted((said.index(f), f) for f in fields if f in said and f in _NAMING_FIELDS)
        if named:
            out[key] = _written(ref.state, (*ref.path, named[0][1]))
            notes.append(f"{ref.text} became {out[key]} ({key!r} takes a text: the item's {named[0][1]})")
    return out


_NAMING_FIELDS = frozenset({"id", "uid", "path", "name", "email", "title"})


def _item_fields(table: FunctionTable, call: str, path: tuple[str | int, ...]) -> list[str]:
    """The fields of the object at `path` in `call`'s result; [] when it is no object (or no such path)."""
    root = table.get(call).result.model_json_schema()
    node, _ = descend(root, path)
    node = _resolved(node or {}, root)
    return list(node.get("properties", {})) if node.get("type", "object") == "object" else []


def _rewrite(args: dict[str, Any], calls: dict[str, str], table: FunctionTable, notes: list[str]) -> dict[str, Any]:
    if nesting_depth(args, ARGS_MAX_DEPTH) > ARGS_MAX_DEPTH:
        return args  # too deep for a plan: validation says so (map_strings recurses)
    changed = args
    for ref in find_references(args):
        call = calls.get(ref.state)
        if call not in table or not ref.path:
            continue
        known = _known_names(table, call, ref.path)
        if known is not None:
            fixed = _written(ref.state, known)
            changed = map_strings(changed, lambda text, old=ref.text, new=fixed: text.replace(old, new))
            notes.append(f"{ref.text} became {fixed} ({call} calls it {_known_name(known, ref.path)!r})")
            continue
        if isinstance(ref.path[0], int):
            field = ref.path[1] if len(ref.path) > 1 and isinstance(ref.path[1], str) else None
            listing = _only_list(table, call, field)
            if listing is None:
                continue
            index = f"[{ref.path[0]}]" if f".result[{ref.path[0]}]" in ref.text else f".{ref.path[0]}"
            fixed = ref.text.replace(f".result{index}", f".result.{listing}[{ref.path[0]}]", 1)
        else:
            listing = _only_list_with(table, call, ref.path[0])
            path = _other_number(table, call, ref.path)
            if listing is not None:
                fixed = ref.text.replace(f".result.{ref.path[0]}", f".result.{listing}[0].{ref.path[0]}", 1)
            elif path is not None:
                fixed = _written(ref.state, path)
                changed = map_strings(changed, lambda text, old=ref.text, new=fixed: text.replace(old, new))
                notes.append(f"{ref.text} became {fixed} ({call} gives {path[0]!r}, not {ref.path[0]!r})")
                continue
            else:
                continue
        changed = map_strings(changed, lambda text, old=ref.text, new=fixed: text.replace(old, new))
        notes.append(f"{ref.text} became {fixed} ({call} gives a list of {listing})")
    return changed


def _only_list_with(table: FunctionTable, call: str, field: str) -> str | None:
    if field in table.get(call).result.model_json_schema().get("properties", {}):
        return None
    return _only_list(table, call, field)


def _only_list(table: FunctionTable, call: str, field: str | None) -> str | None:
    """The one list of `call`'s result (when `field` is given: the one list whose items have it), if there is
    exactly one."""
    lists = result_lists(table.get(call))
    fits = [name for name, items in lists.items() if field is None or field in items.get("properties", {})]
    return fits[0] if len(fits) == 1 else None


def _other_number(table: FunctionTable, call: str, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """The path with its field in the number the result has: `paths[0]` of a result with one `path` is
    `path`, `path` of a result with a list `paths` is `paths[0]`; None when that is not the one fix."""
    fields = table.get(call).result.model_json_schema().get("properties", {})
    name, rest = path[0], path[1:]
    if name in fields or not isinstance(name, str):
        return None
    single, plural = name[:-1], f"{name}s"
    if name.endswith("s") and fields.get(single, {}).get("type") not in (None, "array"):
        return (single, *(rest[1:] if rest and isinstance(rest[0], int) else rest))
    if fields.get(plural, {}).get("type") == "array" and not (rest and isinstance(rest[0], int)):
        return (plural, 0, *rest)
    return None


def _written(state: str, path: tuple[str | int, ...]) -> str:
    return "${" + state + ".result" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) + "}"


def _known_names(table: FunctionTable, call: str, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """The path with each field the result lacks but names as another's (`AKA`: `from` for `sender_email`) put
    right; None when there is none, or a field is neither."""
    root = table.get(call).result.model_json_schema()
    schema: dict[str, Any] = root
    out: list[str | int] = []
    changed = False
    for step in path:
        schema = _resolved(schema, root)
        if isinstance(step, int):
            schema = schema.get("items", {})
            out.append(step)
            continue
        fields = schema.get("properties", {})
        if step not in fields:
            step = next((name for name, prop in fields.items() if step in prop.get(AKA, ())), None)
            if step is None:
                return None
            changed = True
        out.append(step)
        schema = fields[step]
    return tuple(out) if changed else None


def _known_name(fixed: tuple[str | int, ...], written: tuple[str | int, ...]) -> str:
    """The first field name of `fixed` that differs from what was written."""
    return next(str(a) for a, b in zip(fixed, written, strict=True) if a != b)


def _resolved(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """A schema with its `$ref` (or the one non-null choice of an `anyOf`) followed."""
    if "anyOf" in schema:
        choices = [c for c in schema["anyOf"] if c.get("type") != "null"]
        schema = choices[0] if len(choices) == 1 else schema
    ref = schema.get("$ref")
    return root.get("$defs", {}).get(ref.rsplit("/", 1)[-1], {}) if isinstance(ref, str) else schema
