"""Stopping a reply that has started to repeat itself, and keeping what came before.

At temperature 0 a small model sometimes writes a state, then the same state again, and again, until its
token budget runs out: Qwen2.5-Coder-1.5B wrote `tasks.add` with the same arguments for 768 tokens (about
100 s on two cores) and the cut-off reply was not even JSON. A state whose call and arguments equal an
earlier state's adds nothing, so the watch below stops generation as soon as one is complete, and
`kept()` gives the reply without it, closed, for validation like any other reply.

The watch reads the text as it streams, tracking only JSON nesting and strings, so it works on fenced or
indented replies too. States are the objects one level inside the array under the top object.
"""

from __future__ import annotations

import json
from typing import Any

_STATE_DEPTH = 3  # {"states": [ {state} ]}: the top object, the array, the state


class RepeatWatch:
    """Called with the reply so far (a GenerateOptions.stop_when); True once a state repeats an earlier one."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._pos = 0
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._state_start: int | None = None
        self._last_end: int | None = None  # just after the last complete, new state
        self.repeated: dict[str, Any] | None = None

    def __call__(self, text: str) -> bool:
        if self.repeated is not None:
            return True
        for i in range(self._pos, len(text)):
            if self._step(text, i):
                self._pos = i + 1
                return True
        self._pos = len(text)
        return False

    def _step(self, text: str, i: int) -> bool:
        c = text[i]
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif c == "\\":
                self._escaped = True
            elif c == '"':
                self._in_string = False
            return False
        if c == '"':
            self._in_string = True
        elif c in "{[":
            self._depth += 1
            if self._depth == _STATE_DEPTH and c == "{":
                self._state_start = i
        elif c in "}]":
            self._depth -= 1
            if c == "}" and self._depth == _STATE_DEPTH - 1 and self._state_start is not None:
                start, self._state_start = self._state_start, None
                return self._state_done(text[start:i + 1], i + 1)
        return False

    def _state_done(self, written: str, end: int) -> bool:
        try:
            state = json.loads(written)
        except json.JSONDecodeError:
            return False
        if not isinstance(state, dict):
            return False
        key = json.dumps([state.get("call"), state.get("args"), state.get("for_each")], sort_keys=True)
        if key in self._seen:
            self.repeated = state
            return True
        self._seen.add(key)
        self._last_end = end
        return False

    def kept(self, text: str) -> str:
        """The reply up to the last state before the repeat, closed as `{"states": [...]}`."""
        if self.repeated is None or self._last_end is None:
            return text
        return text[:self._last_end] + "]}"
