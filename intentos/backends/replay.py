"""A backend that answers with recorded responses: evals replay offline, with no model.

An eval run records every raw model response; replaying them through the same
Controller recomputes every figure (validity, repairs, execution, goal checks)
exactly, on any machine. The recorded token counts and timings are returned as they
were measured, so latency figures replay too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from intentos.backends.base import GenerateOptions, Generation, Message
from intentos.errors import IntentosError


class ReplayExhausted(IntentosError):
    """The Controller asked for more responses than were recorded: the replay diverged from the recording."""


class ReplayBackend:
    def __init__(self, recorded: Iterable[Generation | str], spec: str = "replay", n_ctx: int | None = None,
                 weighed: Iterable[dict[str, float] | None] = ()) -> None:
        """`n_ctx`: the context window of the model that was recorded, so the planner fits its prompt to the
        same window and a replay asks with the same prompts; `weighed`: the answer weighings it gave, in order."""
        self.spec = spec
        self.n_ctx = n_ctx
        self._weighed = list(weighed)
        self._queue = [g if isinstance(g, Generation) else Generation(text=g, model=spec) for g in recorded]
        self.calls: list[list[Message]] = []

    def generate(self, messages: list[Message], schema: dict[str, Any] | None = None,
                 options: GenerateOptions | None = None) -> Generation:
        self.calls.append(list(messages))
        if not self._queue:
            raise ReplayExhausted(f"{self.spec}: no recorded response left for call {len(self.calls)}")
        generation = self._queue.pop(0)
        if options is not None and options.on_token is not None:
            options.on_token(generation.text)
        return generation

    def weigh(self, messages: list[Message], answers: list[str]) -> dict[str, float] | None:
        """The next recorded weighing; None (the model could not say) once none is left."""
        return self._weighed.pop(0) if self._weighed else None

    def describe(self) -> dict[str, Any]:
        described = {"kind": "replay", "spec": self.spec, "remaining": len(self._queue)}
        return described if self.n_ctx is None else {**described, "n_ctx": self.n_ctx}

    def reachable(self) -> tuple[bool, str]:
        return True, f"{len(self._queue)} recorded response(s)"
