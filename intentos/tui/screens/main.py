"""The main screen: intent in, the plan as a state machine, confirm, watch it run.

Phases: idle → resolving (the model streams in a worker) → plan (shown, editable) →
running (the executor in a worker, the journal's records update the plan live) →
finished (results below the plan). Every failure lands in a notification or a panel;
no exception from a model or an app reaches textual, so the screen never dies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Select, Static
from textual.worker import Worker

from intentos import render
from intentos.app import Context
from intentos.backends.base import Backend, GenerationCancelled
from intentos.controller import Controller, Resolution, ResolutionFailed, Trace
from intentos.executor import Executor
from intentos.journal import Record, RunView
from intentos.render import STATUS_STYLE
from intentos.table import FunctionTable
from intentos.tui.history import IntentHistory
from intentos.tui.screens.confirm import ask_from_thread
from intentos.tui.screens.edit import EditArgsScreen
from intentos.tui.widgets.intent_box import IntentBox
from intentos.tui.widgets.model_picker import ModelPicker
from intentos.tui.widgets.plan import PlanTable
from intentos.tui.widgets.progress import GenerationProgress
from intentos.tui.widgets.run_view import RunOutcome
from intentos.validation import Problem, validate
from intentos.workflow import Workflow

Phase = Literal["idle", "resolving", "plan", "running", "finished"]
WELCOME = ("Type what you want and press [b]Enter[/b]; the model turns it into a plan you can check before "
           "anything runs.  [dim]F1 help · F2 runs · F3 functions · F4 model[/dim]")


class Parts(Protocol):
    """What the main screen needs of the application that shows it (`intentos.tui.app.IntentosApp`)."""

    backend: Backend
    table: FunctionTable
    ctx: Context
    history: IntentHistory
    clock: Callable[[], float]
    run_ids: Callable[[], str]
    step_timeout: float
    runs_root: Path | None

    def model_specs(self) -> list[str]: ...
    def check_model(self, spec: str) -> tuple[bool, str]: ...
    def use_model(self, spec: str) -> Backend: ...
    def save_trace(self, trace: Trace) -> Path | None: ...


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+r", "run", "Run", tooltip="Confirm the plan and run it"),
        Binding("f6", "edit_step", "Edit", tooltip="Edit the selected step's arguments"),
        Binding("escape", "cancel", "Cancel", tooltip="Cancel generation or the run; discard the plan"),
        Binding("f4", "pick_model", "Model", tooltip="Choose the model (the picker shows which can serve)"),
        Binding("ctrl+l", "focus_intent", "Intent", tooltip="Back to the intent box"),
    ]

    class Resolved(Message):
        def __init__(self, resolution: Resolution | None = None, error: str | None = None,
                     trace: Trace | None = None, cancelled: bool = False) -> None:
            super().__init__()
            self.resolution, self.error, self.trace, self.cancelled = resolution, error, trace, cancelled

    class Journaled(Message):
        def __init__(self, record: Record) -> None:
            super().__init__()
            self.record = record

    class RunEnded(Message):
        def __init__(self, view: RunView | None = None, error: str | None = None) -> None:
            super().__init__()
            self.view, self.error = view, error

    def __init__(self) -> None:
        super().__init__()
        self.phase: Phase = "idle"
        self.workflow: Workflow | None = None
        self.trace: Trace | None = None
        self.problems: list[Problem] = []
        self.last_run: RunView | None = None
        self.stop = threading.Event()
        self.executor: Executor | None = None
        self.resolving: Worker[None] | None = None  # the last resolution's worker
        self.submitted = ""  # the intent box's text when the intent was sent to the model

    @property
    def intentos(self) -> Parts:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        app = self.intentos
        yield Header(show_clock=False)
        with Horizontal(id="top"):
            yield IntentBox(app.history, id="intent")
            yield ModelPicker(app.model_specs(), app.check_model, id="model")
        yield GenerationProgress(app.clock, id="progress")
        yield Static(WELCOME, id="welcome")
        yield Static("", id="plan-title")
        yield PlanTable(id="plan")
        yield Static("", id="warnings")
        with VerticalScroll(id="outcome-scroll"):
            yield RunOutcome("", id="outcome")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.intentos.backend.spec
        self._show_plan(False)
        self.query_one(RunOutcome).display = False
        self.query_one(IntentBox).focus()

    # -- intent → model ---------------------------------------------------------------------------

    @on(Input.Submitted, "#intent")
    def submit_intent(self, event: Input.Submitted) -> None:
        intent = event.value.strip()
        if not intent:
            return
        if self.phase in ("resolving", "running"):
            self.notify(f"busy ({self.phase}); esc cancels", severity="warning")
            return
        self.intentos.history.add(intent)
        self.submitted = event.value
        self.start_resolve(intent)

    def start_resolve(self, intent: str) -> None:
        backend = self.intentos.backend
        self.phase, self.workflow, self.trace = "resolving", None, None
        self.stop = threading.Event()
        self._show_plan(False)
        self.query_one(RunOutcome).display = False
        self.query_one("#welcome").display = False
        self.query_one(GenerationProgress).begin(backend.spec)
        # Kept, so whoever watches the screen sees this resolution's worker even once it has finished
        # (the app forgets finished workers).
        self.resolving = self.resolve_worker(intent, backend, self.stop, self.query_one(GenerationProgress).feed)

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def resolve_worker(self, intent: str, backend: Backend, stop: threading.Event,
                       feed: Callable[[str], None]) -> None:
        controller = Controller(backend, self.intentos.table, self.intentos.ctx)
        try:
            resolution = controller.resolve(intent, on_token=feed, cancelled=stop.is_set)
            message = self.Resolved(resolution)
        except GenerationCancelled:
            message = self.Resolved(cancelled=True)
        except ResolutionFailed as exc:
            message = self.Resolved(error=str(exc), trace=exc.trace)
        except Exception as exc:  # a backend that is down, a model file missing: a notification, not a crash
            message = self.Resolved(error=f"{type(exc).__name__}: {exc}")
        self.post_message(message)

    def on_main_screen_resolved(self, message: Resolved) -> None:
        progress = self.query_one(GenerationProgress)
        elapsed = progress.elapsed
        self.phase = "idle"
        if message.cancelled:
            progress.end(f"generation cancelled after {elapsed:.1f} s")
            self.notify("generation cancelled", severity="warning")
            return
        if message.resolution is None:
            saved = self.intentos.save_trace(message.trace) if message.trace else None
            progress.end(f"no plan after {elapsed:.1f} s")
            where = f"\ntrace: {saved}" if saved else ""
            self.notify(f"{message.error}{where}", severity="error", title="the model gave no plan", timeout=15,
                        markup=False)
            return
        trace = message.resolution.trace
        repairs = f" · {trace.repairs} repair(s)" if trace.repairs else ""
        checked = "".join(f" · {note}" for note in render.planning_notes(trace))
        progress.end(f"resolved by {trace.model} in {elapsed:.1f} s · {trace.prompt_tokens} prompt + "
                     f"{trace.completion_tokens} generated tokens{repairs}{checked}")
        self.trace = trace
        box = self.query_one(IntentBox)
        if self.app.focused is box and box.value != self.submitted:
            # The person is typing the next intent: showing the plan must not steal their keys.
            self.set_plan(message.resolution.workflow)
            self.notify("the plan is ready: ctrl+r runs it, f6 edits a step", markup=False)
        else:
            self.open_plan(message.resolution.workflow)

    # -- the plan -------------------------------------------------------------------------------------

    def set_plan(self, workflow: Workflow) -> None:
        """Show a workflow as the plan to confirm (also used to load a pinned workflow)."""
        self.workflow, self.phase = workflow, "plan"
        self.problems = validate(workflow, self.intentos.table)
        self.query_one(PlanTable).show(workflow, self.intentos.table)
        title = Text("Plan", style="bold")
        if workflow.intent:
            title.append(f": {workflow.intent}", style="bold italic")
        title.append("   ctrl+r runs it · f6/enter edits a step · esc discards", style="dim")
        self.query_one("#plan-title", Static).update(title)
        warnings = self.query_one("#warnings", Static)
        if self.problems:
            warnings.update(Text("\n".join(f"⚠ {p}" for p in self.problems), style="yellow"))
        else:
            warnings.update(Text(f"✓ valid state machine: {len(workflow.states)} state(s). Confirming runs its "
                                 "read/write/external steps; destructive steps ask one by one.", style="green"))
        self._show_plan(True)
        self.query_one(RunOutcome).display = False
        self.query_one("#welcome").display = False

    def open_plan(self, workflow: Workflow) -> None:
        """Show a new plan and move to it, so enter edits a step and ctrl+r runs it."""
        self.set_plan(workflow)
        self.query_one(PlanTable).focus()

    def _show_plan(self, visible: bool) -> None:
        for selector in ("#plan-title", "#plan", "#warnings"):
            self.query_one(selector).display = visible

    def action_edit_step(self) -> None:
        if self.workflow is None or self.phase not in ("plan", "finished"):
            self.notify("no plan to edit", severity="warning")
            return
        name = self.query_one(PlanTable).selected_state()
        if name is None:
            return
        self.app.push_screen(EditArgsScreen(name, self.workflow.states[name]),
                             lambda args: self._edited(name, args))

    def _edited(self, name: str, args: dict[str, Any] | None) -> None:
        if args is None or self.workflow is None:
            return
        edited = Workflow.model_validate(self.workflow.to_data())
        edited.states[name].args = args
        row = self.query_one(PlanTable).cursor_row
        self.set_plan(edited)
        self.query_one(PlanTable).move_cursor(row=row)
        self.notify(f"{name}: arguments changed" + (" (see the warnings)" if self.problems else ""),
                    severity="warning" if self.problems else "information")

    # -- running --------------------------------------------------------------------------------

    def action_run(self) -> None:
        if self.workflow is None or self.phase not in ("plan", "finished"):
            self.notify("nothing to run: resolve an intent first" if self.phase != "running" else "already running",
                        severity="warning")
            return
        if self.problems:
            self.notify("the plan has problems (see the warnings); edit it first", severity="error")
            return
        app = self.intentos
        self.phase = "running"
        self.stop = threading.Event()
        app.ctx.cancelled.clear()  # a previous cancel must not stop this run
        plan = self.query_one(PlanTable)
        plan.reset_status()
        plan.focus()
        self.query_one(RunOutcome).display = False
        # Confirming the plan confirms its write/external steps; destructive ones still ask, one by one.
        self.executor = Executor(app.table, app.ctx, confirm=lambda r: ask_from_thread(self.app, r, self.stop),
                                 assume_yes=True, step_timeout=app.step_timeout, runs_root=app.runs_root,
                                 on_record=lambda r: self.post_message(self.Journaled(r)))
        self.run_worker_thread(self.executor, self.workflow, app.run_ids())

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def run_worker_thread(self, executor: Executor, workflow: Workflow, run_id: str) -> None:
        try:
            view = executor.run(workflow, intent=workflow.intent, source="tui", run_id=run_id,
                                resolution=self.trace.summary() if self.trace else None)
            self.post_message(self.RunEnded(view))
        except Exception as exc:  # a journal that cannot be written, an invalid plan: say so, keep going
            self.post_message(self.RunEnded(error=f"{type(exc).__name__}: {exc}"))

    def on_main_screen_journaled(self, message: Journaled) -> None:
        rec = message.record
        plan = self.query_one(PlanTable)
        if rec.event == "step_started" and rec.state:
            plan.set_status(rec.state, "running")
        elif rec.event == "step_finished" and rec.state:
            plan.set_status(rec.state, rec.status or "error")
            if rec.status in ("error", "timeout"):
                handled = f" → {rec.next}" if rec.next and rec.next != "failed" else ""
                self.notify(f"{rec.state} ({rec.call}): {rec.error}{handled}", severity="error",
                            title="step failed", timeout=10, markup=False)

    def on_main_screen_run_ended(self, message: RunEnded) -> None:
        self.phase = "finished" if message.view is not None else "plan"
        self.executor = None
        if message.view is None:
            self.notify(message.error or "the run failed", severity="error", title="run failed", timeout=15,
                        markup=False)
            return
        view = self.last_run = message.view
        self.query_one(RunOutcome).show(view)
        severity = "information" if view.status == "done" else ("error" if view.status == "failed" else "warning")
        style = STATUS_STYLE.get(view.status, "")
        self.query_one("#plan-title", Static).update(Text.assemble(
            ("Plan", "bold"), (f": {view.intent}" if view.intent else "", "bold italic"),
            ("   run ", "dim"), (view.status, style), ("   ctrl+r runs it again · esc clears", "dim")))
        self.notify(f"run {view.run_id}: {view.status}", severity=severity, markup=False)

    # -- cancel, model, focus ---------------------------------------------------------------------

    def on_unmount(self) -> None:
        """The app is closing: stop the model and the run, so no worker thread keeps the process alive."""
        self.stop.set()
        if self.executor is not None:
            self.executor.cancel()

    def action_cancel(self) -> None:
        if self.phase == "resolving":
            self.stop.set()
            self.query_one(GenerationProgress).cancelling = True
        elif self.phase == "running":
            self.stop.set()
            if self.executor is not None:
                self.executor.cancel()
            self.notify("cancelling the run after the step in flight", severity="warning")
        elif self.phase in ("plan", "finished"):
            self.phase, self.workflow, self.trace = "idle", None, None
            self._show_plan(False)
            self.query_one(RunOutcome).display = False
            self.query_one("#welcome").display = True
            self.query_one(IntentBox).focus()

    def action_pick_model(self) -> None:
        self.query_one(ModelPicker).focus()

    def action_focus_intent(self) -> None:
        self.query_one(IntentBox).focus()

    @on(Select.Changed, "#model")
    def model_changed(self, event: Select.Changed) -> None:
        spec = str(event.value)
        if self.phase == "resolving":
            self.notify("the new model is used from the next intent on", severity="warning")
        try:
            self.intentos.use_model(spec)
        except Exception as exc:  # a spec the settings cannot build: keep the old model
            self.notify(str(exc), severity="error", title=f"cannot use {spec}", markup=False)
            return
        self.sub_title = spec
        ok, why = self.query_one(ModelPicker).reachability.get(spec, (True, ""))
        if not ok:
            self.notify(f"{spec} is not reachable now: {why}", severity="warning", markup=False)
