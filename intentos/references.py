"""References from one step's arguments to earlier results: `${state.result.field}`.

A reference names a state and a path into its result: fields by name, list items by
index (`${find.result.paths[0]}` or `${find.result.paths.0}`). An argument that is
exactly one reference takes the referenced value with its type (a list stays a list);
a reference inside a longer string is interpolated as text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_REF = re.compile(r"\$\{\s*([A-Za-z_][\w-]*)\.result((?:\.[A-Za-z_][\w-]*|\.\d+|\[\d+\])*)\s*\}")
_SEGMENT = re.compile(r"\.([A-Za-z_][\w-]*)|\.(\d+)|\[(\d+)\]")


@dataclass(frozen=True)
class Reference:
    state: str
    path: tuple[str | int, ...]  # field names and list indexes, in order
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
            for text in _strings(value) for m in _REF.finditer(text)]


def _strings(value: Any) -> list[str]:
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
    return [m.group(0) for text in _strings(value) for m in _PLACEHOLDER.finditer(text)
            if not _REF.fullmatch(m.group(0))]


def whole_reference(value: Any) -> Reference | None:
    """The reference if `value` is exactly one reference and nothing else."""
    if isinstance(value, str):
        m = _REF.fullmatch(value.strip())
        if m:
            return Reference(m.group(1), _parse_path(m.group(2)), m.group(0))
    return None


def follow(ref: Reference, results: dict[str, Any]) -> Any:
    """The value a reference points at, given the JSON results of the states that ran."""
    if ref.state not in results:
        raise UnresolvedReference(f"{ref} refers to state {ref.state!r}, which has no result")
    value = results[ref.state]
    for step in ref.path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                size = len(value) if isinstance(value, list) else "not a list"
                raise UnresolvedReference(f"{ref}: index {step} is out of range ({size})")
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                raise UnresolvedReference(f"{ref}: the result has no field {step!r}")
            value = value[step]
    return value


def substitute(value: Any, results: dict[str, Any]) -> Any:
    """Replace every reference in an argument value by what it points at."""
    if (ref := whole_reference(value)) is not None:
        return follow(ref, results)
    if isinstance(value, str):
        return _REF.sub(lambda m: _as_text(follow(find_references(m.group(0))[0], results)), value)
    if isinstance(value, list):
        return [substitute(item, results) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, results) for key, item in value.items()}
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, ensure_ascii=False)


# A JSON-schema pattern that matches one whole reference: used in the generation schema
# so constrained decoding may put a reference where a non-string value is expected.
# Written with character classes, not backslash escapes: llama.cpp's grammar parser rejects `\$` and `\.`.
REFERENCE_PATTERN = r"^[$][{][A-Za-z_][A-Za-z0-9_-]*[.]result[A-Za-z0-9_.\[\]-]*[}]$"
