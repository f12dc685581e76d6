"""Who may say yes to a step of a call of `intentos mcp serve`: the MCP client, by these rules.

- a `read` call runs;
- a `write` or `external` call runs when the client passes `"confirm": true` (an argument these tools, and
  `run`, have in their schema and that is taken out before the arguments are checked), or else when it
  confirms through elicitation (asked only when the client declares elicitation support, `can_elicit`);
- a `destructive` call always asks through elicitation; `confirm: true` does not cover it, and a client that
  cannot be asked is refused.

Elicitation follows the negotiated protocol. On handshake-era connections (<= 2025-11-25) the server asks in
the middle of the run, when the Executor reaches the step, with the app's preview of the step. On 2026-07-28
connections a server may not send requests of its own: the call answers `input_required` with one `Question`
per step that needs a yes (the arguments as written, and the preview where they are plain values), and the
client calls again with the answers; each question's key is a digest of its text, so an answer only counts for
the question that was shown. `Confirmations` is the Executor's confirmer that applies these rules, and says why
a step was not run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from intentos.executor import ConfirmRequest
from intentos.function import Effect, Function

CONFIRM_ARG = "confirm"

# What a confirmation asks for: one boolean, which must be true.
CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {CONFIRM_ARG: {"type": "boolean", "title": "Run it",
                                 "description": "true runs this step; false (or declining) does not"}},
    "required": [CONFIRM_ARG],
}


@dataclass(frozen=True)
class Question:
    """A yes/no question about one step, as the client is shown it."""

    state: str
    function: Function
    message: str

    @property
    def key(self) -> str:
        """The key of the question in `input_requests`: a digest of its text, so an answer fits only it."""
        return f"confirm-{self.state}-{hashlib.sha256(self.message.encode()).hexdigest()[:16]}"

    def request(self) -> types.ElicitRequest:
        return types.ElicitRequest(params=types.ElicitRequestFormParams(message=self.message,
                                                                        requested_schema=CONFIRM_SCHEMA))


def question_text(state: str | None, fn: Function, args: Mapping[str, Any], details: tuple[str, ...] = (),
                  each: bool = False) -> str:
    """The confirmation, as the terminal asks it: the call (and its step of a workflow), its arguments, the
    app's preview of what it will do."""
    shown = json.dumps(args, ensure_ascii=False, default=str)
    what = f"{fn.name}{' for each item' if each else ''} {shown}"
    lines = [f"{fn.effect.value} step {state!r}: {what}" if state is not None else f"{fn.effect.value}: {what}"]
    lines += [f"  • {line}" for line in details]
    lines.append("Run it?" if state is None else "Run this step?")
    return "\n".join(lines)


def answered_yes(result: types.ElicitResult) -> bool:
    return result.action == "accept" and (result.content or {}).get(CONFIRM_ARG) is True


@dataclass
class Confirmations:
    """The Executor's confirmer for one tool call: who may say yes to what, and why a step was not run.

    `confirmed`: the client passed `confirm: true` (covers write/external, never destructive). `ask`: asks the
    client now, through elicitation (handshake era; None when it cannot be asked). `answers`: the answers given
    ahead, by state (2026-07-28 era)."""

    confirmed: bool = False
    ask: Callable[[ConfirmRequest], tuple[bool, str]] | None = None
    answers: dict[str, bool] | None = None
    why: str | None = None  # why the last step asked about was not run

    def __call__(self, request: ConfirmRequest) -> bool:
        fn = request.function
        destructive = request.effect is Effect.DESTRUCTIVE
        if self.confirmed and not destructive:
            return True
        if self.answers is not None and request.state in self.answers:
            yes = self.answers[request.state]
            self.why = None if yes else f"{fn.name} ({fn.effect.value}) was declined by the client"
            return yes
        if self.ask is not None:
            yes, why = self.ask(request)
            self.why = None if yes else why
            return yes
        if destructive:
            self.why = (f"{fn.name} is destructive: it runs only when the client confirms it through elicitation, "
                        "and this client cannot be asked (it declares no elicitation support); `confirm: true` "
                        "does not cover a destructive step")
        else:
            self.why = (f"{fn.name} ({fn.effect.value}) needs confirmation: pass \"{CONFIRM_ARG}\": true, or use a "
                        "client that supports elicitation")
        return False


def needs_question(effect: Effect, confirmed: bool) -> bool:
    """A step the client must be asked about: destructive always; write/external without `confirm: true`."""
    return effect is Effect.DESTRUCTIVE or (effect is not Effect.READ and not confirmed)


def can_elicit(ctx: Any, modern: bool) -> bool:
    """The client declared form elicitation (a bare `elicitation: {}` counts) and, before 2026-07-28, the
    request's channel can carry a request of the server's."""
    session = getattr(ctx, "session", None)
    caps = getattr(session, "client_capabilities", None)
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    return modern or bool(session.can_send_request)
