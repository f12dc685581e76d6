"""A message's own text sent back to the person who wrote it.

Asked to send Anna the details of a trip (they were in a note), Qwen2.5-Coder-1.5B found Anna's mail about the
trip and mailed its body back to her, by reference (`"body": "${original.result.body}"`), which the check of
copied text (`intentos.copied`) cannot see. The dry run can: a step that writes to people (a `to` argument,
not a reply, which answers its sender by design) whose text takes a field of a message, and whose recipients
as the dry run resolved them include that message's sender, sends them their own words. It is a dry-run
problem that names the message and points at what else was found for the request.
"""

from __future__ import annotations

from typing import Any

from intentos.dryrun import DryRun
from intentos.grounding import Grounded
from intentos.references import find_references, follow
from intentos.validation import Problem
from intentos.workflow import Workflow

SENT_BACK = "sent_back"  # the problem's code
TO_ARG = "to"
SENDER = "sender_email"  # the field that makes a result a message
_TEXT_ARGS = ("body", "subject", "text", "message")
_LEADS = 2  # other found things named in the problem


def sent_back(workflow: Workflow, dry: DryRun, grounded: list[Grounded]) -> list[Problem]:
    """The problem of each step that sends a message's own text to its sender, by the dry run's results."""
    results = dry.results
    found: list[Problem] = []
    for name, state in workflow.states.items():
        sent = results.get(name)
        if TO_ARG not in state.args or not isinstance(sent, dict):
            continue
        recipients = " ".join(str(r) for r in sent.get(TO_ARG) or []).lower()
        for ref in find_references([state.args.get(key) for key in _TEXT_ARGS]):
            message = _message(ref, results)
            if message is None or not recipients or str(message[SENDER]).lower() not in recipients:
                continue
            others = [g.line for g in grounded if g.app != workflow.states[ref.state].call.split(".", 1)[0]]
            lead = f"; found for this request besides mail: {'; '.join(others[:_LEADS])}" if others else ""
            found.append(Problem(code=SENT_BACK, message=(
                f"dry run: step {name!r} ({state.call}) sends {message.get('sender') or message[SENDER]} the text of "
                f"their own message ({ref.text}, {message.get('subject')!r}) back: the request asks to send them "
                f"something else; find that and send it{lead}")))
            break
    return found


def _message(ref: Any, results: dict[str, Any]) -> dict[str, Any] | None:
    """The message (a result with a sender) a reference takes a field of, if it does."""
    for end in range(len(ref.path), -1, -1):
        try:
            value = follow(type(ref)(ref.state, ref.path[:end], ref.text), results)
        except LookupError:
            continue
        if isinstance(value, dict) and SENDER in value:
            return value
    return None
