"""A repair that gives up: a plan that only refuses, written after the last plan's dry run failed.

The dry run tries a plan in a scratch copy so that the planner can fix what fails there. Told "step 'send'
failed: attachment website/assets/logo.svg does not exist", Qwen2.5-Coder-1.5B answered with one
`agent.refuse` quoting the error: the failure was its own plan's (it had attached a member of the zip, not the
zip), not something the apps cannot do. When the request's action is one the table takes (`intentos.unserved`
found none missing) and a reply after a failed dry run refuses and otherwise only looks things up (told that
an event's uid was wrong, the model looked the event up and then refused), it is a repair problem, once a stage
(`SelfCheck`); a repair that refuses again stands, since the data may really not allow what is asked.
"""

from __future__ import annotations

from intentos.function import Effect
from intentos.table import FunctionTable
from intentos.validation import REFUSE_CALL, Problem
from intentos.workflow import Workflow

GAVE_UP = "gave_up"  # the problem's code


def gave_up(workflow: Workflow, failure: str | None, table: FunctionTable) -> list[Problem]:
    """A problem for a plan that refuses and otherwise only reads, when `failure` (the last dry run's first
    problem) is set."""
    calls = [s.call for s in workflow.states.values()]
    if failure is None or REFUSE_CALL not in calls or any(
            (fn := table.functions.get(c)) is not None and fn.effect != Effect.READ for c in calls):
        return []
    refusal = next(name for name, s in workflow.states.items() if s.call == REFUSE_CALL)
    return [Problem(code=GAVE_UP, state=refusal, message=(
        f"the plan refuses after the last plan's dry run failed ({failure}). The dry run tried that plan in a "
        "scratch copy so that you can fix it: write that plan again with the failing step fixed"))]
