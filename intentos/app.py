"""An App: a named group of functions with its own state under the sandbox root.

Apps are plugins. A package registers an App subclass under the entry-point group
`intentos.apps`; the built-in apps register the same way in intentos' own
pyproject. An app instance is bound to one Context (sandbox, clock, user), so the
same class serves any number of sandboxes side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from intentos.function import Effect, Function, function_meta
from intentos.grounding import Grounded, GroundingQuery
from intentos.sandbox import Sandbox


class UserProfile(BaseModel):
    name: str = "Alex Doe"
    email: str = "alex@example.org"


@dataclass
class Context:
    """What a function may know about the world it runs in."""

    sandbox: Sandbox
    timezone: str = "UTC"
    user: UserProfile = field(default_factory=UserProfile)
    # A fixed instant makes runs reproducible (evals, tests, replays); None means the real clock.
    fixed_now: datetime | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def now(self) -> datetime:
        """The current time, aware, in the user's time zone."""
        if self.fixed_now is not None:
            fixed = self.fixed_now if self.fixed_now.tzinfo else self.fixed_now.replace(tzinfo=self.tz)
            return fixed.astimezone(self.tz)
        return datetime.now(self.tz)


class App:
    """Base class of every app. Subclasses set `name`, `description` and mark functions."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # True when the app's external functions reach outside only through settings a dry run removes (mail
    # without an SMTP server queues in the outbox), so a dry run may run them in its scratch copy.
    dry_run_safe: ClassVar[bool] = False
    # True when the app's data is not in the sandbox at all (an MCP server's): what its functions change
    # cannot be rehearsed in a scratch copy of the sandbox, nor rolled back from the sandbox's undo log.
    outside_sandbox: ClassVar[bool] = False
    # The sandbox folder the app keeps its own data in (Notes/, Mail/ ...), if any: grounding offers what is in it
    # as the app's entities (a note), not as the files that store them.
    data_folder: ClassVar[str | None] = None

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def sandbox(self) -> Sandbox:
        return self.ctx.sandbox

    @classmethod
    def changes_outside(cls, fn: Function) -> bool:
        """Whether a call of `fn` may change something the sandbox does not hold (mail sent, a job started,
        an MCP server's data), which no dry-run copy holds and no rollback undoes."""
        return fn.effect is Effect.EXTERNAL or (fn.effect is not Effect.READ and cls.outside_sandbox)

    @classmethod
    def functions(cls) -> list[Function]:
        found = []
        for attr in dir(cls):
            meta = function_meta(getattr(cls, attr, None))
            if meta is not None:
                found.append(Function(cls.name, meta.verb, meta.description, meta.effect, meta.params, meta.result))
        return sorted(found, key=lambda f: f.verb)

    def bound(self, verb: str) -> Callable[[BaseModel], BaseModel]:
        """The bound method that implements `verb`."""
        for attr in dir(type(self)):
            meta = function_meta(getattr(type(self), attr, None))
            if meta is not None and meta.verb == verb:
                return getattr(self, attr)
        raise KeyError(f"{self.name} has no function {verb!r}")

    # -- optional hooks ------------------------------------------------------------------

    def seed(self, data: Any) -> None:
        """Load fixture data (a starting sandbox for scripted runs and evals)."""
        raise NotImplementedError(f"app {self.name!r} takes no fixture data")

    def preview(self, verb: str, args: BaseModel) -> list[str]:
        """Lines for the confirmation prompt about what the call will do that its arguments do not show
        (who a reply really goes to, what a link really names). Empty by default."""
        return []

    def summary(self) -> str:
        """A line or two about the app's state, for the model's context. Empty if nothing to say."""
        return ""

    def ground(self, query: GroundingQuery) -> list[Grounded]:
        """The entities of this app the intent is likely about (people, notes, files, events ...), each a
        line for the planner's prompt with a score from `query.score`. Empty by default; see
        intentos.grounding."""
        return []
