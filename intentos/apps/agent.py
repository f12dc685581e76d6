"""The agent's own functions: speak to the user, ask, refuse, test a condition, add up, observe.

They let a workflow express what no desktop app does: branching on data (`check`
fails when its condition is false, so `on_failure` is the else-branch), telling the
user a computed answer, and the right answer to an intent that cannot or should not
be done: a workflow that refuses or asks instead of acting.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from intentos.app import App
from intentos.errors import AppError
from intentos.function import Effect, function


class SayArgs(BaseModel):
    message: str


class Said(BaseModel):
    message: str


class AskArgs(BaseModel):
    question: str = Field(description="what the user must clarify before anything is done")


class Asked(BaseModel):
    question: str


class RefuseArgs(BaseModel):
    reason: str = Field(description="why this intent cannot or should not be carried out")


class Refused(BaseModel):
    refused: bool = True
    reason: str


Op = Literal["==", "!=", "<", "<=", ">", ">=", "contains", "empty", "not_empty"]


class CheckArgs(BaseModel):
    value: Any = Field(description="usually a ${state.result.field} reference")
    op: Op
    other: Any = None


class Checked(BaseModel):
    holds: bool


class ObserveArgs(BaseModel):
    reason: str = Field("", description="what the planner needs to see before planning the rest")


class Observed(BaseModel):
    observed: bool = True


class SumArgs(BaseModel):
    values: list[float] | str = Field(description=(
        "the numbers, or a text whose amounts are added (numbers written with a currency: EUR 4.50, $3, 12 €; "
        "in a text without any, every number)"))


class Total(BaseModel):
    total: float
    count: int


class AgentApp(App):
    name = "agent"
    description = "talk to the user, refuse or ask, test conditions, add numbers"

    @function(Effect.READ)
    def say(self, args: SayArgs) -> Said:
        """Tell the user something (an answer, a summary of what was done)."""
        return Said(message=args.message)

    @function(Effect.READ)
    def ask(self, args: AskArgs) -> Asked:
        """Ask the user to clarify an ambiguous intent instead of guessing."""
        return Asked(question=args.question)

    @function(Effect.READ)
    def refuse(self, args: RefuseArgs) -> Refused:
        """Decline an intent that cannot or should not be carried out, saying why."""
        return Refused(reason=args.reason)

    @function(Effect.READ)
    def check(self, args: CheckArgs) -> Checked:
        """Succeed if the condition holds, fail otherwise (branch with on_failure)."""
        if not _holds(args.value, args.op, args.other):
            raise AppError(f"condition {args.value!r} {args.op} {args.other!r} does not hold")
        return Checked(holds=True)

    @function(Effect.READ)
    def observe(self, args: ObserveArgs) -> Observed:
        """End a first stage of read-only steps: the planner sees their results, then plans the rest."""
        # While planning, the Controller runs the steps before this one in a scratch copy, shows the model
        # their results and replaces this state with the rest of the plan; a shown plan never contains it.
        return Observed()

    @function(Effect.READ)
    def sum(self, args: SumArgs) -> Total:
        """Add up a list of numbers, or the amounts in a text (a receipt, a list of expenses)."""
        values = amounts(args.values) if isinstance(args.values, str) else args.values
        return Total(total=round(sum(values), 10), count=len(values))


_CURRENCY = r"(?:€|\$|£|¥|EUR|USD|GBP|CHF|JPY|euros?|dollars?|pounds?)"
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"
_AMOUNT = re.compile(rf"{_CURRENCY}\s?(?P<after>{_NUMBER})|(?P<before>{_NUMBER})\s?{_CURRENCY}", re.IGNORECASE)
_ANY_NUMBER = re.compile(rf"(?<![\w.-])-?(?:{_NUMBER})(?![\w.]|-\d)")  # not a part of a date or a name


def amounts(text: str) -> list[float]:
    """The amounts a text writes: the numbers written with a currency, or, with none, every number."""
    found = [m.group("after") or m.group("before") for m in _AMOUNT.finditer(text)]
    return [_number(n) for n in (found or _ANY_NUMBER.findall(text))]


def _number(written: str) -> float:
    """1,250.00 → 1250.0; 4,50 (a decimal comma) → 4.5."""
    if re.fullmatch(r"\d+,\d{1,2}", written.lstrip("-")):
        return float(written.replace(",", "."))
    return float(written.replace(",", ""))


def _holds(value: Any, op: Op, other: Any) -> bool:
    if op == "empty":
        return not value
    if op == "not_empty":
        return bool(value)
    if op == "contains":
        if isinstance(value, str):
            return str(other).lower() in value.lower()
        return other in (value or [])
    if op == "==":
        return value == other
    if op == "!=":
        return value != other
    try:
        left, right = float(value), float(other)
    except (TypeError, ValueError):
        raise AppError(f"cannot compare {value!r} {op} {other!r}: both must be numbers") from None
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
