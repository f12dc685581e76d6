"""How the built-in apps answer a name that is no one thing's title but a word of several ("the report task"
beside two report tasks): by listing them, so a person or the planner's repair turn asks instead of guessing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from intentos.errors import AppError
from intentos.grounding import one_or_more

T = TypeVar("T")


def holding(ref: str, items: Sequence[T], words: Callable[[T], list[str]]) -> list[T]:
    """The items whose words (a title's, tags) hold every word of `ref`, case and a plural "s" aside."""
    wanted = ref.casefold().split()

    def holds(item: T) -> bool:
        theirs = [w.casefold() for w in words(item)]
        return all(any(one_or_more(w, t) for t in theirs) for w in wanted)

    return [item for item in items if wanted and holds(item)]


def refuse_several(ref: str, kinds: str, found: Sequence[T], label: Callable[[T], str], where: str, by: str,
                   also: str = "") -> None:
    """Raise the error for `ref` when it is a word of two or more `found` things ("open tasks"); `where` they
    have it ("in their title"), what names one (`by`: "by its id"), and `also`, any note to add."""
    if len(found) > 1:
        listed = ", ".join(label(item) for item in found[:5])
        raise AppError(f"no {kinds.split()[-1][:-1]} is titled {ref!r}, and {len(found)} {kinds} have it {where}: "
                       f"{listed}; name one {by}, or, if nothing says which, ask{also}")
