"""The Executor: runs a validated workflow step by step inside a sandbox, journaled.

Per step: resolve references against earlier results, validate the arguments, ask for
confirmation when the effect class calls for it, journal the start, call the function
under a timeout, journal the outcome (fsynced) and only then move to the next state.
A function's failure is data, not a crash: it is journaled and the workflow's
`on_failure` transition decides what happens next.

A `for_each` state is one step of several calls: the list is resolved (at most
MAX_FOR_EACH_ITEMS items) and every item's arguments validated before anything runs, the
person is asked once for all of them, and the calls run in order under one undo log and
one timeout. The first failing call fails the step; the result is {items, count}.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from intentos import undo
from intentos.app import App, Context, UserProfile
from intentos.errors import IntentosError, JournalError
from intentos.function import Effect, Function
from intentos.journal import Journal, Record, RunView, read_records, view_run
from intentos.references import UnresolvedReference, substitute
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable
from intentos.validation import check
from intentos.workflow import DONE, FAILED, MAX_FOR_EACH_ITEMS, State, Workflow

CONFIRM_ITEM_LINES = 20  # items of a for_each step shown one a line in its confirmation; the rest are counted
CONFIRM_LINE_CHARS = 200


@dataclass(frozen=True)
class ConfirmRequest:
    state: str
    function: Function
    args: dict[str, Any]
    # What the arguments alone do not show (every recipient of a reply, the real target of a link...),
    # from the app's `preview`, plus a warning when a step with an outside effect was cut short before.
    # For a for_each step: a line per item (the first CONFIRM_ITEM_LINES, then how many more).
    details: tuple[str, ...] = ()
    # A for_each step: each item's resolved arguments, in order (`args` are then the arguments as written,
    # with `${item...}` in them). Empty for a plain step.
    items: tuple[dict[str, Any], ...] = ()

    @property
    def effect(self) -> Effect:
        return self.function.effect


Confirmer = Callable[[ConfirmRequest], bool]


CONFIRM_TIMEOUT_ENV = "INTENTOS_CONFIRM_TIMEOUT"
DEFAULT_CONFIRM_TIMEOUT = 300.0


def confirm_timeout() -> float:
    """How long a question waits for the user's (or an MCP client's) answer: $INTENTOS_CONFIRM_TIMEOUT
    seconds, else 300."""
    raw = os.environ.get(CONFIRM_TIMEOUT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_CONFIRM_TIMEOUT
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise IntentosError(f"{CONFIRM_TIMEOUT_ENV}={raw!r}: give the wait for a confirmation as a positive "
                            "number of seconds")
    return value


def decline_all(request: ConfirmRequest) -> bool:
    """The confirmer when nobody can be asked: nothing that needs a yes gets one."""
    return False


def needs_confirmation(effect: Effect, assume_yes: bool) -> bool:
    """`read` runs; `write`/`external` ask unless --yes; `destructive` always asks."""
    if effect is Effect.READ:
        return False
    if effect is Effect.DESTRUCTIVE:
        return True
    return not assume_yes


class StepTimeout(IntentosError):
    pass


class Executor:
    def __init__(
        self,
        table: FunctionTable,
        ctx: Context,
        *,
        confirm: Confirmer = decline_all,
        assume_yes: bool = False,
        step_timeout: float = 120.0,
        runs_root: Path | None = None,
        on_record: Callable[[Record], None] | None = None,
    ) -> None:
        self.table = table
        self.ctx = ctx
        self.confirm = confirm
        self.assume_yes = assume_yes
        self.step_timeout = step_timeout
        self.runs_root = runs_root
        self.on_record = on_record
        self._apps: dict[str, App] = {}
        self._interrupted: str | None = None  # a state whose outside effect may have happened already

    def cancel(self) -> None:
        """Stop after (or, for a slow step, instead of waiting for) the step in flight."""
        self.ctx.cancelled.set()

    # -- entry points ------------------------------------------------------------------------

    def run(self, workflow: Workflow, *, intent: str | None = None, source: str | None = None,
            run_id: str | None = None, resolution: dict[str, Any] | None = None) -> RunView:
        """Execute a validated workflow; `resolution` (how a model produced it) is kept in the journal."""
        check(workflow, self.table)
        with Journal.create(run_id, self.runs_root) as journal:
            self._write(journal, "run_started", data={
                "workflow": workflow.to_data(),
                "intent": intent or workflow.intent,
                "source": source,
                "sandbox": str(self.ctx.sandbox.root),
                "context": context_data(self.ctx),
                "resolution": resolution,
            })
            self._loop(journal, workflow, workflow.start, results={}, visits={})
        return view_run(journal.run_dir)

    def resume(self, run_id: str) -> RunView:
        """Go on with an interrupted, declined or cancelled run; completed steps are not redone."""
        with Journal.reopen(run_id, self.runs_root) as journal:
            view = view_run(journal.run_dir)
            if view.status in ("done", "failed"):
                raise JournalError(f"run {run_id} already finished ({view.status}); nothing to resume")
            workflow = Workflow.model_validate(view.workflow)
            check(workflow, self.table)
            self._roll_back_unfinished(journal, workflow)
            self.ctx.cancelled.clear()
            self._write(journal, "run_resumed", state=view.resume_at)
            self._loop(journal, workflow, view.resume_at or workflow.start, dict(view.results), dict(view.visits))
        return view_run(journal.run_dir)

    # -- the loop --------------------------------------------------------------------------------

    def _loop(self, journal: Journal, workflow: Workflow, current: str,
              results: dict[str, Any], visits: dict[str, int]) -> None:
        last_error: str | None = None
        while current not in (DONE, FAILED):
            if self.ctx.cancelled.is_set():
                self._write(journal, "run_finished", status="cancelled", state=current, error="cancelled")
                return
            state = workflow.states[current]
            bound = state.max_visits
            if bound is not None and visits.get(current, 0) >= bound:
                last_error = f"state {current!r} reached its bound of {bound} visits"
                self._write(journal, "run_finished", status="failed", state=current, error=last_error)
                return
            outcome = self._step(journal, current, state, results)
            if outcome.status in ("declined", "cancelled"):
                self._write(journal, "run_finished", status=outcome.status, state=current, error=outcome.error)
                return
            visits[current] = visits.get(current, 0) + 1
            if outcome.status == "ok":
                results[current] = outcome.result
                current = state.next
            else:
                last_error = outcome.error
                current = state.on_failure
        self._write(journal, "run_finished", status=current, state=current,
                    error=last_error if current == FAILED else None)

    def _step(self, journal: Journal, name: str, state: State, results: dict[str, Any]) -> Record:
        fn = self.table.get(state.call)
        raw_args = state.args
        each = state.for_each is not None
        items: list[dict[str, Any]] | None = None  # a for_each step's resolved arguments, one per item

        def finish(status: str, args: dict[str, Any], started: float | None, **out: Any) -> Record:
            duration = round(time.monotonic() - started, 6) if started is not None else None
            nxt = {"ok": state.next, "error": state.on_failure, "timeout": state.on_failure}.get(status)
            return self._write(journal, "step_finished", state=name, call=fn.name, args=args, items=items,
                               status=status, next=nxt, duration_s=duration, **out)

        calls: list[BaseModel] = []
        if each:
            try:
                values = _for_each_items(state, results)
            except (UnresolvedReference, _ItemsError) as exc:
                return finish("error", raw_args, None, error=_describe(exc))
            for number, value in enumerate(values, start=1):
                try:
                    calls.append(fn.params.model_validate(substitute(raw_args, results, value)))
                except (UnresolvedReference, ValidationError) as exc:
                    return finish("error", raw_args, None, error=f"item {number} of {len(values)}: {_describe(exc)}")
            items = [params.model_dump(mode="json") for params in calls]
            shown_args = raw_args
        else:
            try:
                calls.append(fn.params.model_validate(substitute(raw_args, results)))
            except (UnresolvedReference, ValidationError) as exc:
                return finish("error", raw_args, None, error=_describe(exc))
            shown_args = calls[0].model_dump(mode="json")
        again = self._interrupted == name
        self._interrupted = None
        if calls and (needs_confirmation(fn.effect, self.assume_yes) or again):
            details = self._item_lines(fn, calls, items) if items is not None else self._preview(fn, calls[0])
            if again:
                details = (f"this {fn.effect.value} step was cut short by a crash last time; "
                           "it may have taken effect already", *details)
            if not self.confirm(ConfirmRequest(name, fn, shown_args, details, tuple(items or ()))):
                return finish("declined", shown_args, None, error=f"{fn.name} ({fn.effect.value}) was not confirmed")
        started_record = self._write(journal, "step_started", state=name, call=fn.name, args=shown_args,
                                     items=items)
        # Every change the step makes is noted first, so a kill inside it can be rolled back on resume.
        key = _undo_key(journal.run_id, started_record.seq)
        self.ctx.sandbox.begin_step(key)
        try:
            started = time.monotonic()
            deadline = started + self.step_timeout
            done: list[dict[str, Any]] = []

            def partial() -> dict[str, Any]:
                return {"result": {"items": done, "count": len(done)}} if each else {}

            for number, params in enumerate(calls, start=1):
                where = f"item {number} of {len(calls)}: " if each else ""
                if each and self.ctx.cancelled.is_set():
                    return self._cancelled_between(finish, shown_args, started, key, number, len(calls))
                if each and time.monotonic() > deadline:
                    return finish("timeout", shown_args, started, error=f"{where}not started: the step's "
                                  f"{self.step_timeout:g} s for all {len(calls)} items ran out", **partial())
                try:
                    result = self._call_with_timeout(fn, params, deadline)
                except StepTimeout as exc:
                    extra = f" (the time for all {len(calls)} items)" if each else ""
                    return finish("timeout", shown_args, started, error=f"{where}{exc}{extra}", **partial())
                except _Cancelled as exc:
                    if each and not exc.running:  # the call returned: nothing is left running
                        return self._cancelled_between(finish, shown_args, started, key, number + 1, len(calls))
                    return finish("cancelled", shown_args, started, error=f"{where}cancelled during the step",
                                  **partial())
                except Exception as exc:  # any failure of an app is the step's failure, never the run's crash
                    return finish("error", shown_args, started, error=f"{where}{_describe(exc)}", **partial())
                done.append(result.model_dump(mode="json"))
            return finish("ok", shown_args, started,
                          result={"items": done, "count": len(done)} if each else done[0])
        finally:
            self.ctx.sandbox.end_step()

    def _cancelled_between(self, finish: Callable[..., Record], args: dict[str, Any], started: float, key: str,
                           number: int, total: int) -> Record:
        """A for_each step cancelled before item `number`: what its earlier items changed in the sandbox is
        undone, so resuming runs the step once, whole (an outside effect, mail sent, cannot be undone)."""
        ran = number - 1
        try:
            undo.rollback(self.ctx.sandbox, key)
            undone = "; their changes in the sandbox were undone" if ran else ""
        except Exception as exc:  # an undo that fails says so; the run still stops
            undone = f"; undoing their changes failed: {_describe(exc)}"
        return finish("cancelled", args, started, error=f"cancelled after {ran} of {total} items{undone}")

    def _item_lines(self, fn: Function, calls: list[BaseModel], items: list[dict[str, Any]]) -> tuple[str, ...]:
        """A confirmation line per item of a for_each step (its arguments and the app's preview), capped."""
        lines = [f"for each of {len(items)} item{'s' if len(items) != 1 else ''}:"]
        for number, (params, args) in enumerate(zip(calls, items, strict=True), start=1):
            if number > CONFIRM_ITEM_LINES:
                rest = len(items) - CONFIRM_ITEM_LINES
                lines.append(f"… and {rest} more item{'s' if rest != 1 else ''}")
                break
            text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in args.items())
            preview = self._preview(fn, params)
            if preview:
                text += " — " + "; ".join(preview)
            text = " ".join(f"{number}. {text}".split())
            lines.append(text if len(text) <= CONFIRM_LINE_CHARS else text[: CONFIRM_LINE_CHARS - 1] + "…")
        return tuple(lines)

    def _preview(self, fn: Function, params: BaseModel) -> tuple[str, ...]:
        """The app's own account of what a call will do, for the confirmation prompt."""
        try:
            return tuple(self._app(fn.app).preview(fn.verb, params))
        except Exception as exc:  # a preview that fails says so; the step itself will report the problem
            return (f"(could not preview: {_describe(exc)})",)

    def _roll_back_unfinished(self, journal: Journal, workflow: Workflow) -> None:
        """Undo the half-applied effect of a step the crash cut short, so it runs exactly once.

        A step whose outcome reached the journal is done: its leftover log is dropped. One that
        started but never finished is rolled back; if its function reaches outside the sandbox
        (mail sent, a job started, an MCP server's data changed), that cannot be rolled back, so it is
        asked about again.
        """
        records = read_records(journal.path)
        starts = {r.seq: r for r in records if r.event == "step_started"}
        finished_after = [r.seq for r in records if r.event in ("step_finished", "run_finished")]
        prefix = f"{journal.run_id}."
        for key in undo.pending(self.ctx.sandbox):
            if not key.startswith(prefix) or not key[len(prefix):].isdigit():
                continue
            seq = int(key[len(prefix):])
            if any(later > seq for later in finished_after):
                undo.discard(self.ctx.sandbox, key)
            else:
                undo.rollback(self.ctx.sandbox, key)
        last = starts[max(starts)] if starts else None
        if last is not None and not any(seq > last.seq for seq in finished_after) and last.call in self.table:
            fn = self.table.get(last.call or "")
            if self.table.apps[fn.app].changes_outside(fn):
                self._interrupted = last.state

    def _call_with_timeout(self, fn: Function, params: BaseModel, deadline: float | None = None) -> BaseModel:
        """Run the call in a worker thread so a hung step can time out or be cancelled.

        Python cannot kill a thread: a timed-out call is abandoned (daemon thread) and the
        run moves on. Functions that can take long check `ctx.cancelled` themselves.
        `deadline` (time.monotonic) is the step's, shared by the calls of a for_each step.
        """
        method = self._app(fn.app).bound(fn.verb)
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = method(params)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=target, name=f"step-{fn.name}", daemon=True)
        worker.start()
        if deadline is None:
            deadline = time.monotonic() + self.step_timeout
        while worker.is_alive():
            worker.join(timeout=0.05)
            if self.ctx.cancelled.is_set() and worker.is_alive():
                raise _Cancelled(running=True)
            if time.monotonic() > deadline and worker.is_alive():
                raise StepTimeout(f"{fn.name} took longer than {self.step_timeout:g} s")
        if self.ctx.cancelled.is_set():  # a call that noticed the cancel returned early: its result is partial
            raise _Cancelled(running=False)
        if "error" in box:
            raise box["error"]
        result = box["result"]
        if not isinstance(result, fn.result):
            raise TypeError(f"{fn.name} returned {type(result).__name__}, not {fn.result.__name__}")
        return result

    def _app(self, name: str) -> App:
        if name not in self._apps:
            self._apps[name] = self.table.apps[name](self.ctx)
        return self._apps[name]

    def _write(self, journal: Journal, event: str, **fields: Any) -> Record:
        record = journal.append(event, **fields)  # type: ignore[arg-type]
        if self.on_record is not None:
            self.on_record(record)
        return record


class _Cancelled(Exception):
    def __init__(self, *, running: bool) -> None:
        super().__init__("cancelled")
        self.running = running  # the call was abandoned still running (else it returned, noticing the cancel)


class _ItemsError(ValueError):
    """A for_each list that cannot be run: not a list, or longer than the bound."""


def _for_each_items(state: State, results: dict[str, Any]) -> list[Any]:
    """The items of a for_each state, references resolved; an _ItemsError past MAX_FOR_EACH_ITEMS."""
    values = substitute(state.for_each, results)
    if not isinstance(values, list):
        raise _ItemsError(f"for_each {state.for_each} is {_kind(values)}, not a list")
    if len(values) > MAX_FOR_EACH_ITEMS:
        raise _ItemsError(f"for_each {_shown(state.for_each)} has {len(values)} items; a for_each step runs at "
                          f"most {MAX_FOR_EACH_ITEMS} (nothing ran)")
    return values


def _kind(value: Any) -> str:
    return {dict: "an object", str: "text", bool: "true/false", type(None): "null"}.get(type(value), "a number")


def _shown(for_each: Any) -> str:
    return for_each if isinstance(for_each, str) else "(a list)"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'args'}: {e['msg']}" for e in exc.errors()]
        return "invalid arguments: " + "; ".join(parts)
    if isinstance(exc, (IntentosError, UnresolvedReference, OSError, ValueError)):
        return str(exc) or type(exc).__name__
    # An unexpected exception is a bug in an app: keep where it happened.
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


def _undo_key(run_id: str, seq: int) -> str:
    return f"{run_id}.{seq}"


def context_data(ctx: Context) -> dict[str, Any]:
    return {
        "timezone": ctx.timezone,
        "fixed_now": ctx.fixed_now.isoformat() if ctx.fixed_now else None,
        "user": ctx.user.model_dump(),
    }


def context_from_data(sandbox: str, data: dict[str, Any], settings: dict[str, Any] | None = None) -> Context:
    """Rebuild the Context a run was started with (for resume)."""
    fixed = data.get("fixed_now")
    return Context(
        sandbox=Sandbox(sandbox, create=False),
        timezone=data.get("timezone", "UTC"),
        user=UserProfile(**data.get("user", {})),
        fixed_now=datetime.fromisoformat(fixed) if fixed else None,
        settings=settings or {},
    )
