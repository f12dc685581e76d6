"""Expected-value patterns for eval checks, matched against function results.

A pattern is plain data written in a suite file:

    42, "done", true          equal to the value
    {count: 2, title: X}      a mapping: each named field matches (other fields are ignored)
    {contains: lisbon}        a text containing this (case-insensitive), or a list with a matching item
    {startswith: 2026-03-12}  a text starting with this
    {matches: '^\\d+$'}       a text the regular expression finds
    {any: P} / {all: P}       some / every item of a list matches P
    {none: P}                 no item of a list matches P
    {len: P}                  the length matches P (a number or e.g. {min: 1})
    {min: 1, max: 3}          a number in range
    {one_of: [a, b]}          equal to one of these
    {any_of: [P, Q]}          matches at least one of these patterns
    {not: P}                  does not match P

A mapping is an operator only when all its keys are operators, so result fields named
like an operator can still be matched by nesting them one level down.
"""

from __future__ import annotations

import re
from typing import Any

OPERATORS = frozenset({"contains", "startswith", "matches", "any", "all", "none", "len", "min", "max",
                       "one_of", "any_of", "not"})


def is_operator(pattern: Any) -> bool:
    return isinstance(pattern, dict) and bool(pattern) and set(pattern) <= OPERATORS


def mismatches(pattern: Any, value: Any, where: str = "result") -> list[str]:
    """Every way `value` fails `pattern`, each naming where; empty when it matches."""
    if is_operator(pattern):
        found: list[str] = []
        for op, arg in pattern.items():
            found += _operator(op, arg, value, where)
        return found
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping, got {_show(value)}"]
        found = []
        for key, sub in pattern.items():
            if key not in value:
                found.append(f"{where}.{key}: missing")
            else:
                found += mismatches(sub, value[key], f"{where}.{key}")
        return found
    if _equal(pattern, value):
        return []
    return [f"{where}: expected {_show(pattern)}, got {_show(value)}"]


def matches(pattern: Any, value: Any) -> bool:
    return not mismatches(pattern, value)


def _operator(op: str, arg: Any, value: Any, where: str) -> list[str]:
    if op == "not":
        return [] if mismatches(arg, value, where) else [f"{where}: should not match {_show(arg)}"]
    if op == "any_of":
        if any(not mismatches(p, value, where) for p in arg):
            return []
        return [f"{where}: matches none of {_show(arg)}"]
    if op == "one_of":
        return [] if any(_equal(a, value) for a in arg) else [f"{where}: {_show(value)} is not one of {_show(arg)}"]
    if op in ("min", "max"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return [f"{where}: expected a number, got {_show(value)}"]
        ok = value >= arg if op == "min" else value <= arg
        return [] if ok else [f"{where}: {value} is {'below' if op == 'min' else 'above'} {arg}"]
    if op == "len":
        if not hasattr(value, "__len__"):
            return [f"{where}: {_show(value)} has no length"]
        return mismatches(arg, len(value), f"len({where})")
    if op in ("any", "all", "none"):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {_show(value)}"]
        hits = [matches(arg, item) for item in value]
        ok = {"any": any(hits), "all": all(hits), "none": not any(hits)}[op]
        return [] if ok else [f"{where}: {op} item should match {_show(arg)}; items: {_show(value)}"]
    if op == "contains":
        if isinstance(value, list):
            return [] if any(matches(arg, item) or _contains(arg, item) for item in value) else [
                f"{where}: no item contains {_show(arg)}; items: {_show(value)}"]
        return [] if _contains(arg, value) else [f"{where}: {_show(value)} does not contain {_show(arg)}"]
    if op == "startswith":
        ok = isinstance(value, str) and value.lower().startswith(str(arg).lower())
        return [] if ok else [f"{where}: {_show(value)} does not start with {_show(arg)}"]
    if op == "matches":
        ok = isinstance(value, str) and re.search(str(arg), value) is not None
        return [] if ok else [f"{where}: {_show(value)} does not match /{arg}/"]
    raise ValueError(f"unknown operator {op!r}")


def _contains(needle: Any, value: Any) -> bool:
    return isinstance(value, str) and str(needle).lower() in value.lower()


def _equal(expected: Any, value: Any) -> bool:
    # YAML reads 2026-03-12 as a date; results carry ISO text, so compare dates by their text.
    if not isinstance(expected, str | int | float | bool | list | dict | type(None)):
        expected = str(expected)
    if isinstance(expected, float) and isinstance(value, int | float):
        return abs(expected - value) < 1e-9
    return expected == value


def _show(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_pattern(pattern: Any) -> list[str]:
    """Structural problems of a pattern (unknown operator arguments), for loading suites."""
    problems: list[str] = []
    if is_operator(pattern):
        for op, arg in pattern.items():
            if op in ("min", "max") and not isinstance(arg, int | float):
                problems.append(f"{op} needs a number, got {_show(arg)}")
            elif op in ("one_of", "any_of") and not isinstance(arg, list):
                problems.append(f"{op} needs a list, got {_show(arg)}")
            elif op == "any_of":
                for sub in arg:
                    problems += check_pattern(sub)
            elif op == "matches":
                try:
                    re.compile(str(arg))
                except re.error as exc:
                    problems.append(f"matches: bad regular expression {arg!r}: {exc}")
            elif op in ("any", "all", "none", "len", "not"):
                problems += check_pattern(arg)
    elif isinstance(pattern, dict):
        for sub in pattern.values():
            problems += check_pattern(sub)
    return problems
