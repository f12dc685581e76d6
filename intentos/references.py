"""References from one step's arguments to earlier results: `${state.result.field}`.

A reference names a state and a path into its result: fields by name, list items by
index (`${find.result.paths[0]}` or `${find.result.paths.0}`). An argument that is
exactly one reference takes the referenced value with its type (a list stays a list);
a reference inside a longer string is interpolated as text.

In a state with `for_each`, `${item}` is the current item and `${item.name}`,
`${item[0]}`, `${item.a.b}` follow the same kind of path into it. `${item.result...}`
stays a reference to a state named `item` (the older syntax wins), so an item's own
field `result` cannot start an item path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_PATH = r"((?:\.[A-Za-z_][\w-]*|\.\d+|\[\d+\])*)"
_REF = re.compile(r"\$\{\s*([A-Za-z_][\w-]*)\.result" + _PATH + r"\s*\}")
_ITEM = re.compile(r"\$\{\s*item(?!\.result(?![\w-]))" + _PATH + r"\s*\}")
_ANY = re.compile(f"{_REF.pattern}|{_ITEM.pattern}")  # groups 1-2: a state reference, 3: an item path
_SEGMENT = re.compile(r"\.([A-Za-z_][\w-]*)|\.(\d+)|\[(\d+)\]")


@dataclass(frozen=True)
class Reference:
    state: str
    path: tuple[str | int, ...]  # field names and list indexes, in order
    text: str  # as written, for messages

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ItemReference:
    """`${item}` or `${item.PATH}`: the current item of a for_each state, or a path into it."""

    path: tuple[str | int, ...]
    text: str  # as written, for messages

    def __str__(self) -> str:
        return self.text


class UnresolvedReference(LookupError):
    """A reference could not be followed at run time (the result lacks the field)."""


def _parse_path(raw: str) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for name, dot_index, bracket_index in _SEGMENT.findall(raw):
        out.append(name if name else int(dot_index or bracket_index))
    return tuple(out)


def find_references(value: Any) -> list[Reference]:
    """Every reference anywhere inside an argument value (strings, lists, dicts), in order."""
    return [Reference(m.group(1), _parse_path(m.group(2)), m.group(0))
            for text in strings(value) for m in _REF.finditer(text)]


def find_item_references(value: Any) -> list[ItemReference]:
    """Every `${item...}` anywhere inside a value, in order."""
    return [ItemReference(_parse_path(m.group(3)), m.group(0))
            for text in strings(value) for m in _ANY.finditer(text) if m.group(1) is None]


def strings(value: Any) -> list[str]:
    """Every string inside a value, depth first in order; iterative, so deep nesting costs no Python stack."""
    out: list[str] = []
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, list):
            todo.extend(reversed(item))
        elif isinstance(item, dict):
            todo.extend(reversed(list(item.values())))
    return out


_PLACEHOLDER = re.compile(r"\$\{[^}]*\}?")


def malformed_references(value: Any) -> list[str]:
    """Text that looks like a reference (`${...}`) but is not one, e.g. `${find.paths}`: a likely model slip."""
    return [m.group(0) for text in strings(value) for m in _PLACEHOLDER.finditer(text)
            if not _ANY.fullmatch(m.group(0))]


def whole_reference(value: Any) -> Reference | None:
    """The reference if `value` is exactly one reference and nothing else."""
    if isinstance(value, str):
        m = _REF.fullmatch(value.strip())
        if m:
            return Reference(m.group(1), _parse_path(m.group(2)), m.group(0))
    return None


def whole_item_reference(value: Any) -> ItemReference | None:
    """The item reference if `value` is exactly one `${item...}` and nothing else."""
    if isinstance(value, str):
        m = _ANY.fullmatch(value.strip())
        if m and m.group(1) is None:
            return ItemReference(_parse_path(m.group(3)), m.group(0))
    return None


def follow(ref: Reference, results: dict[str, Any]) -> Any:
    """The value a reference points at, given the JSON results of the states that ran."""
    if ref.state not in results:
        raise UnresolvedReference(f"{ref} refers to state {ref.state!r}, which has no result")
    return _walk(results[ref.state], ref.path, ref.text, "the result")


def follow_item(ref: ItemReference, item: Any) -> Any:
    """The value an item reference points at in the current item."""
    return _walk(item, ref.path, ref.text, "the item")


def _walk(value: Any, path: tuple[str | int, ...], text: str, what: str) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                size = len(value) if isinstance(value, list) else "not a list"
                raise UnresolvedReference(f"{text}: index {step} is out of range ({size})")
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                raise UnresolvedReference(f"{text}: {what} has no field {step!r}")
            value = value[step]
    return value


_NO_ITEM: Any = object()


def map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """`value` with `fn` applied to every string inside it (lists and dicts rebuilt, other values kept)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {key: map_strings(v, fn) for key, v in value.items()}
    return value


def replace_text(value: Any, old: str, new: str) -> Any:
    """`value` with `old` replaced by `new` in every string inside it."""
    return map_strings(value, lambda text: text.replace(old, new))


def substitute(value: Any, results: dict[str, Any] | None, item: Any = _NO_ITEM) -> Any:
    """Replace every reference in an argument value by what it points at.

    With `item`, `${item...}` references are replaced too (a for_each state); without, they are left as
    written. With `results` None, state references are left as written (only the item is filled in).
    One pass: text that a substitution brings in is never itself substituted. A list item that is one
    reference to a list of texts or numbers is that list's items, in its place.
    """
    if isinstance(value, str):
        m = _ANY.fullmatch(value.strip())
        if m is not None:
            return _resolve_match(m, results, item, value)
        return _ANY.sub(lambda m: _as_text(_resolve_match(m, results, item, m.group(0))), value)
    if isinstance(value, list):
        filled: list[Any] = []
        for v in value:
            got = substitute(v, results, item)
            if got is not v and isinstance(got, list) and _ANY.fullmatch(str(v).strip()) \
                    and all(isinstance(x, (str, int, float)) for x in got):
                filled.extend(got)  # ["${notes.result.paths}", "todo.txt"]: the paths and the file, one list
            else:
                filled.append(got)
        return filled
    if isinstance(value, dict):
        return {key: substitute(v, results, item) for key, v in value.items()}
    return value


def _resolve_match(m: re.Match[str], results: dict[str, Any] | None, item: Any, written: str) -> Any:
    """What one matched reference stands for, or `written` where it is to be left alone."""
    if m.group(1) is not None:
        if results is None:
            return written
        return follow(Reference(m.group(1), _parse_path(m.group(2)), m.group(0)), results)
    if item is _NO_ITEM:
        return written
    return follow_item(ItemReference(_parse_path(m.group(3)), m.group(0)), item)


# What a listed thing is called, by the field that names it: a task's title, a contact's name, a mail's subject.
_LABELS = ("title", "name", "subject", "path")
_WHEN = ("due", "start", "date")  # and when it is, where it has a time


def _as_text(value: Any) -> str:
    """A value written into a text: lists of things as lines a person reads ("- Pay the invoice (due
    2026-03-08)"), so "${overdue.result.tasks}" in a mail's body is a list, not JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) and _label(v) for v in value):
        return "\n".join(f"- {_label(v)}" for v in value)
    return json.dumps(value, ensure_ascii=False)


def _label(thing: dict[str, Any]) -> str | None:
    label = next((thing[k] for k in _LABELS if isinstance(thing.get(k), str) and thing[k]), None)
    if label is None:
        return None
    when = next((thing[k] for k in _WHEN if isinstance(thing.get(k), str) and thing[k]), None)
    return f"{label} ({when})" if when else label


# A JSON-schema pattern that matches one whole reference: used in the generation schema
# so constrained decoding may put a reference where a non-string value is expected.
# Written with character classes, not backslash escapes: llama.cpp's grammar parser rejects `\$` and `\.`.
# Bounded: unbounded, a small model under a grammar can repeat a name's words until its token budget ends
# (SmolLM2: "next_week_week_week..."), leaving no workflow at all.
WRITTEN_NAME = r"[A-Za-z_][A-Za-z0-9_-]{0,39}"  # a state name as a model may write it
_STATE_BODY = WRITTEN_NAME + r"[.]result[A-Za-z0-9_.\[\]-]{0,60}"
_ITEM_BODY = r"item([.\[][A-Za-z0-9_.\[\]-]{0,60})?"
REFERENCE_PATTERN = "^[$][{]" + _STATE_BODY + "[}]$"
# One whole `${item}` / `${item.PATH}`: where a for_each state's argument takes the current item, or a path into it.
ITEM_PATTERN = "^[$][{]" + _ITEM_BODY + "[}]$"
# Either kind of whole reference, one pattern (simpler for grammar converters than a union of two).
ARGUMENT_REFERENCE_PATTERN = "^[$][{](" + _STATE_BODY + "|" + _ITEM_BODY + ")[}]$"
