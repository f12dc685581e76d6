"""A request whose steps depend on a condition, planned as if the condition were known.

"Mail Ines my passport scan, and if it is not there let me know" or "put it on groceries.txt, creating
the file when it is missing": what should run depends on data the planner has not seen. Small models plan the happy path
(attach a path they guess, append to a file that is not there). When the request states a condition ("if",
"unless", "otherwise", "in case") and the plan neither tests one (`agent.check`, an `on_failure` branch) nor
looks first (`agent.observe`), it is a repair problem, once, in the first stage (`SelfCheck`): the model is
offered both ways (a later stage has seen the data). An "if" that only reports a question ("ask Ben if he
has my charger", "see if ...") is not a condition. Of the 60 eval intents it fires on the four that
branch; of the 152 bank examples, on the four whose request states a condition, all of which branch.
"""

from __future__ import annotations

import re

from intentos.validation import CHECK_CALL, OBSERVE_CALL, Problem
from intentos.workflow import FAILED, Workflow

CONDITIONAL = "conditional"  # the problem's code
_CONDITION = re.compile(r"\b(?:if|unless|otherwise|in case)\b", re.IGNORECASE)
# Words shortly before an "if" that make it a question's "whether": "asking if", "ask Chris if", "see if".
_REPORTED = frozenset("""ask asks asking asked see check checking wonder wondering know tell find out mail email
                         text message write determine decide verify test confirm""".split())
_REPORTED_WITHIN = 4  # words before the "if": "ask Chris at Allianz if"


def condition(intent: str) -> str | None:
    """The request's clause from its first condition word to the end of that clause, if it states one."""
    for match in _CONDITION.finditer(intent):
        before = re.findall(r"[a-z]+", intent[: match.start()].lower())
        if match.group().lower() == "if" and _REPORTED & set(before[-_REPORTED_WITHIN:]):
            continue
        return re.split(r"[,;.!?]", intent[match.start():], maxsplit=1)[0].strip()
    return None


def conditional(workflow: Workflow, intent: str) -> list[Problem]:
    """A problem for a plan that neither tests nor looks at what the request's condition depends on."""
    clause = condition(intent)
    if clause is None or any(s.call in (CHECK_CALL, OBSERVE_CALL) or s.on_failure not in (None, FAILED)
                             for s in workflow.states.values()):
        return []
    first = next(iter(workflow.states))
    return [Problem(code=CONDITIONAL, state=first, message=(
        f"the request says {clause!r}: what to do depends on data this plan has not seen. Plan only the "
        f"reading steps that tell, then end the plan with a state calling {OBSERVE_CALL} (you will see their "
        "results and plan the rest); or test it with agent.check and branch with on_failure"))]
