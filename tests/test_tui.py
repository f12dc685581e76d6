"""The terminal UI, driven with textual's Pilot: the real Controller, Executor and journal underneath.

The model tests resolve on the embedded SmolLM2 (real inference, `-m model`); the others answer
with a ReplayBackend (recorded model texts, a real product part), so plans are deterministic.
Snapshot tests (pytest-textual-snapshot) pin the main screens; refresh them after a deliberate
change of the look with `pytest tests/test_tui.py --snapshot-update`.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from rich.console import Console
from textual import events
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from intentos.app import App, Context, UserProfile
from intentos.apps.agent import AgentApp
from intentos.apps.clock import ClockApp
from intentos.apps.files import FilesApp
from intentos.backends.replay import ReplayBackend
from intentos.function import Effect, function
from intentos.journal import Journal
from intentos.sandbox import Sandbox
from intentos.script import IntentFile
from intentos.table import FunctionTable
from intentos.tui.app import IntentosApp
from intentos.tui.history import IntentHistory
from intentos.tui.results import render_result, sparkline
from intentos.tui.screens import confirm as confirm_mod
from intentos.tui.screens import edit as edit_mod
from intentos.tui.screens import functions as functions_mod
from intentos.tui.screens import help as help_mod
from intentos.tui.screens import main as main_mod
from intentos.tui.screens import runs as runs_mod
from intentos.tui.screens.confirm import ConfirmStepScreen
from intentos.tui.screens.edit import EditArgsScreen
from intentos.tui.screens.functions import FunctionsScreen
from intentos.tui.screens.help import HelpScreen, binding_rows
from intentos.tui.screens.main import MainScreen
from intentos.tui.screens.runs import RunDetailScreen, RunsScreen
from intentos.tui.widgets.model_picker import ModelPicker
from intentos.tui.widgets.progress import GenerationProgress

ROOT = Path(__file__).resolve().parents[1]
SIZE = (110, 36)
NOW = datetime(2026, 3, 10, 9, 0)

# Async tests run on anyio's pytest plugin (anyio comes with the openai client), on asyncio as textual needs.
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- a small app with numeric series, as the AIOps skills return (anomaly scores, a training loss) ----------------


class ScoresArgs(BaseModel):
    window: int = 12


class Scores(BaseModel):
    scores: list[float]
    anomalies: list[dict[str, Any]]


class SeriesApp(App):
    name = "series"
    description = "numeric series for the result views"

    @function(Effect.READ)
    def scores(self, args: ScoresArgs) -> Scores:
        """Anomaly scores of the last windows."""
        values = [0.1, 0.12, 0.1, 0.3, 0.11, 0.9, 0.95, 0.2, 0.1, 0.12, 0.1, 0.13][: args.window]
        return Scores(scores=values, anomalies=[{"window": 5, "score": 0.9}, {"window": 6, "score": 0.95}])


# -- helpers ----------------------------------------------------------------------------------------------------


def screen_text(app: IntentosApp) -> str:
    """What a person sees, as plain text (the same composition textual's screenshots use)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def notes(app: IntentosApp) -> list[tuple[str, str]]:
    return [(n.severity, n.message) for n in app._notifications]


async def until(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 30.0, poll: float = 0.05,
                settle: bool = True) -> None:
    """Wait for a condition on the app's state, then (`settle`) for the screen to be painted from it.

    Settling waits for the process to go idle, which takes up to a second while a model generates
    in a worker: `settle=False` returns the moment the condition holds.
    """
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting on the UI"
        await pilot.pause(poll)
    if settle:
        await pilot.pause()


async def seen(pilot: Pilot[Any]) -> str:
    """The screen once every pending message is handled and the layout refreshed (not a frame too early)."""
    await pilot.pause()
    return screen_text(pilot.app)


def plan_json(*states: dict[str, Any]) -> str:
    return json.dumps({"states": list(states)})


@pytest.fixture
def table() -> FunctionTable:
    return FunctionTable([AgentApp, ClockApp, FilesApp, SeriesApp])


def replay_app(ctx: Context, table: FunctionTable, *answers: str, **kwargs: Any) -> IntentosApp:
    """The app as a person would get it, answering with recorded model texts and a fixed clock."""
    return IntentosApp(backend=ReplayBackend(answers), table=table, ctx=ctx, models=[], clock=lambda: 0.0,
                       run_ids=iter(f"20260310-0900{i:02d}-tui" for i in range(99)).__next__, **kwargs)


# How long a real model may take to plan before a test calls it hung: a guard, not a speed target. On a 2-core
# machine whose host was busy, Qwen 1.5B's first plan with a cold prompt cache took over 120 s.
PLANNING_TIMEOUT_S = 600.0


async def resolve(pilot: Pilot[Any], intent: str) -> MainScreen:
    await pilot.press(*intent, "enter")
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    await until(pilot, lambda: screen.phase != "resolving", timeout=PLANNING_TIMEOUT_S)
    return screen


async def run_plan(pilot: Pilot[Any], screen: MainScreen, timeout: float = 60) -> None:
    await pilot.press("ctrl+r")
    await until(pilot, lambda: screen.phase == "finished" or isinstance(pilot.app.screen, ConfirmStepScreen),
                timeout=timeout)


# -- the embedded model, really generating ---------------------------------------------------------------------


@pytest.mark.model
async def test_intent_resolves_on_the_default_model_then_runs(office: tuple[Context, FunctionTable],
                                                              default_model: str) -> None:
    ctx, table = office
    app = IntentosApp(table=table, ctx=ctx)  # the backend from the settings: the default planning model
    async with app.run_test(size=SIZE) as pilot:
        screen = await resolve(pilot, "Remind me to call mum on Friday")
        assert screen.phase == "plan", notes(app)
        assert "tasks.add" in [s.call for s in screen.workflow.states.values()]
        shown = await seen(pilot)
        assert f"resolved by {default_model}" in shown and "tasks.add" in shown and "valid state machine" in shown
        assert "· pending" in shown and "→ done" in shown  # each state's status and transitions are in view
        await run_plan(pilot, screen)
        assert screen.last_run is not None and screen.last_run.status == "done", screen.last_run
        shown = await seen(pilot)
        # Every step marked from the journal, the run's status in the title, the task in the result panel.
        assert shown.count("✓ ok") == len(screen.workflow.states) and "· pending" not in shown
        assert "run done" in shown and "tasks.add · ok" in shown
    tasks = json.loads((ctx.sandbox.root / "Tasks" / "tasks.json").read_text())
    assert any("mum" in t["title"].lower() and t["due"].startswith("2026-03-13") for t in tasks)


@pytest.mark.model
async def test_cancel_mid_generation_keeps_the_interface_answering(office: tuple[Context, FunctionTable]) -> None:
    ctx, table = office
    app = IntentosApp(table=table, ctx=ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        progress = screen.query_one(GenerationProgress)
        box = screen.query_one("#intent")
        answered_while_working = False
        for _ in range(3):  # the key must land while tokens stream; should the model win the race, again
            box.value = ""
            await pilot.press(*"Remind me to call mum on Friday")
            # The model loads, reads the prompt and streams in its worker thread; keys are handled meanwhile.
            # (Enter and the next key are posted as the terminal driver posts them: pilot.press would wait for
            # the process to go idle, and a model whose prompt prefix is already in its KV cache, from an
            # earlier test, can plan within that wait; the plan then takes the focus, and the key.)
            app.post_message(events.Key("enter", None))
            await until(pilot, lambda: screen.phase != "idle", poll=0.001, settle=False)
            worker = screen.resolving
            app.post_message(events.Key("exclamation_mark", "!"))
            await until(pilot, lambda: box.value.endswith("!") or screen.phase != "resolving", poll=0.001,
                        settle=False)
            answered_while_working |= box.value.endswith("!") and worker.is_running
            await until(pilot, lambda: bool(progress.parts) or screen.phase != "resolving",
                        timeout=PLANNING_TIMEOUT_S, poll=0.01, settle=False)
            if screen.phase == "resolving":  # tokens are streaming: cancel now
                await pilot.press("escape")
                await until(pilot, lambda: screen.phase != "resolving", timeout=60)
            if screen.phase == "idle":
                break
            await pilot.press("escape")  # the model finished first: discard its plan, try once more
        assert answered_while_working
        assert screen.phase == "idle" and screen.workflow is None, notes(app)
        # The worker really stopped, at the next fragment, and no fragment arrives any more.
        await until(pilot, lambda: worker.is_finished)
        fragments = len(progress.parts)
        await pilot.pause(0.5)
        assert len(progress.parts) == fragments >= 1
        assert ("warning", "generation cancelled") in notes(app)
        assert "generation cancelled after" in await seen(pilot)
        # Still answering: the help opens and closes, the box takes keys.
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "ctrl+l", "?")
        assert app.screen is screen
        await until(pilot, lambda: box.value.endswith("!?"))


# -- failures are shown, never crash ----------------------------------------------------------------------------


async def test_a_failing_step_is_a_notification_and_a_panel(ctx: Context, table: FunctionTable) -> None:
    failing = plan_json({"name": "now", "call": "clock.now", "args": {}},
                        {"name": "read", "call": "files.read", "args": {"path": "missing.txt"}})
    # The dry run finds the failure and asks for repairs; a model that keeps its plan gets it shown as it is.
    app = replay_app(ctx, table, failing, failing, failing,
                     plan_json({"name": "hi", "call": "agent.say", "args": {"message": "hi"}}))
    async with app.run_test(size=SIZE) as pilot:
        screen = await resolve(pilot, "read my missing file")
        await run_plan(pilot, screen)
        assert screen.last_run.status == "failed"
        assert any(sev == "error" and "missing.txt does not exist" in msg for sev, msg in notes(app))
        shown = await seen(pilot)
        assert "✗ error" in shown and "✓ ok" in shown and "missing.txt does not exist" in shown
        # The app goes on: discard, resolve and run the next intent.
        await pilot.press("escape")
        screen = await resolve(pilot, "say hi")
        await run_plan(pilot, screen)
        assert screen.last_run.status == "done"


async def test_no_valid_plan_from_the_model_is_a_notification(ctx: Context, table: FunctionTable,
                                                              isolated_home: Path) -> None:
    app = replay_app(ctx, table, "not json", '{"states": []}', "still not json")
    async with app.run_test(size=SIZE) as pilot:
        screen = await resolve(pilot, "do something")
        assert screen.phase == "idle" and screen.workflow is None
        errors = [msg for sev, msg in notes(app) if sev == "error"]
        assert errors and "gave no valid workflow in 3 attempt(s)" in errors[0]
        assert list((isolated_home / "traces").glob("*.json"))  # the raw outputs are kept, as the CLI does
        assert "no plan after" in await seen(pilot)


async def test_edit_an_argument_before_running(ctx: Context, table: FunctionTable) -> None:
    app = replay_app(ctx, table, plan_json({"name": "tell", "call": "agent.say", "args": {"message": "hello"}},
                                           {"name": "sum", "call": "agent.sum", "args": {"values": [1, 2]}}))
    async with app.run_test(size=SIZE) as pilot:
        screen = await resolve(pilot, "greet")
        await pilot.press("e")
        assert isinstance(app.screen, EditArgsScreen)
        await pilot.press("ctrl+u", *"good bye", "ctrl+s")
        await pilot.press("down", "f6")
        await pilot.press("ctrl+u", *"[1, 2, 39]", "ctrl+s")
        assert screen.workflow.states["tell"].args == {"message": "good bye"}
        assert screen.workflow.states["sum"].args == {"values": [1, 2, 39]}
        await run_plan(pilot, screen)
        assert screen.last_run.results["tell"]["message"] == "good bye"
        assert screen.last_run.results["sum"]["total"] == 42


async def test_an_edit_that_breaks_the_plan_is_flagged_and_not_run(ctx: Context, table: FunctionTable) -> None:
    app = replay_app(ctx, table, plan_json({"name": "sum", "call": "agent.sum", "args": {"values": [1, 2]}}))
    async with app.run_test(size=SIZE) as pilot:
        screen = await resolve(pilot, "add")
        await pilot.press("e", "ctrl+u", *"true", "ctrl+s")  # no numbers, no text
        assert screen.problems and "⚠" in await seen(pilot)
        await pilot.press("ctrl+r")
        assert screen.phase == "plan" and screen.last_run is None
        assert any(sev == "error" and "problems" in msg for sev, msg in notes(app))


async def test_destructive_step_asks_then_a_declined_run_resumes_from_the_runs_screen(
        ctx: Context, table: FunctionTable) -> None:
    ctx.sandbox.write_text("old.txt", "old")
    app = replay_app(ctx, table, plan_json({"name": "bin", "call": "files.trash", "args": {"path": "old.txt"}}))
    async with app.run_test(size=SIZE) as pilot:
        screen = await resolve(pilot, "throw away old.txt")
        assert "destructive (asks)" in await seen(pilot)
        await run_plan(pilot, screen)
        assert isinstance(app.screen, ConfirmStepScreen)
        await pilot.press("n")
        await until(pilot, lambda: screen.phase == "finished")
        assert screen.last_run.status == "declined" and ctx.sandbox.resolve("old.txt").exists()
        await pilot.press("f2")
        assert isinstance(app.screen, RunsScreen) and "declined" in await seen(pilot)
        await pilot.press("r")  # opens the run and resumes it: the destructive step asks again
        await until(pilot, lambda: isinstance(app.screen, ConfirmStepScreen))
        detail = app.screen_stack[-2]
        assert isinstance(detail, RunDetailScreen)
        await pilot.press("y")
        await until(pilot, lambda: detail.executor is None)
        assert "resumed: done" in await seen(pilot)
        assert not ctx.sandbox.resolve("old.txt").exists()
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen) and "done" in await seen(pilot)
        await pilot.press("enter")  # open the run: its steps from the journal
        assert isinstance(app.screen, RunDetailScreen)
        shown = await seen(pilot)
        assert "1. bin · files.trash · declined" in shown and "2. bin · files.trash · ok" in shown


# -- the rest of the interface ----------------------------------------------------------------------------------


async def test_intent_history_and_model_picker(ctx: Context, table: FunctionTable) -> None:
    app = replay_app(ctx, table, plan_json({"name": "a", "call": "clock.now", "args": {}}),
                     plan_json({"name": "b", "call": "clock.now", "args": {}}))
    async with app.run_test(size=SIZE) as pilot:
        await resolve(pilot, "first intent")
        await pilot.press("escape")
        await resolve(pilot, "second intent")
        await pilot.press("escape")
        box = app.screen.query_one("#intent")
        box.value = ""
        await pilot.press("up")
        assert box.value == "second intent"
        await pilot.press("up")
        assert box.value == "first intent"
        await pilot.press("down", "down")
        assert box.value == ""
        picker = app.screen.query_one(ModelPicker)
        await until(pilot, lambda: bool(picker.reachability))
        assert picker.reachability["replay"][0] is True
        assert "replay  ✓" in await seen(pilot)
    assert IntentHistory(app.history.path).entries == ["first intent", "second intent"]


async def test_function_browser_searches_name_effect_and_description(ctx: Context, table: FunctionTable) -> None:
    app = replay_app(ctx, table)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3", *"zip")
        assert isinstance(app.screen, FunctionsScreen)
        shown = await seen(pilot)
        assert "files.zip" in shown and "files.unzip" in shown and "clock.now" not in shown
        assert f"2 of {len(table)} functions" in shown
        await pilot.press("ctrl+u", *"destructive")  # the effect class is searchable too
        shown = await seen(pilot)
        destructive = [fn.name for fn in table if fn.effect.value == "destructive"]
        assert destructive and all(name in shown for name in destructive) and "files.zip " not in shown
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_help_lists_every_binding_of_every_place(ctx: Context, table: FunctionTable) -> None:
    app = replay_app(ctx, table)
    async with app.run_test(size=(120, 60)) as pilot:
        places = app.help_places()
        # Every screen of the TUI and every widget with keys of its own has its place in the help.
        classes = {cls for _, cls in places}
        for module in (confirm_mod, edit_mod, functions_mod, help_mod, main_mod, runs_mod):
            screens = {v for v in vars(module).values() if isinstance(v, type) and issubclass(v, Screen)
                       and v.__module__ == module.__name__}
            assert screens <= classes, screens - classes
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        shown = await seen(pilot)
        rows = binding_rows(places)
        assert len(rows) > 20
        for where, keys, what in rows:
            assert any(keys in line and what in line for line in shown.splitlines()), (where, keys, what)
        for where, _ in places:
            assert where in shown
        first = app.screen
        await pilot.press("q")
        assert isinstance(app.screen, MainScreen)
        # Opened again, it is the same screen, not rebuilt.
        await pilot.press("f1")
        assert app.screen is first
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


def test_results_render_series_as_sparklines_and_records_as_tables() -> None:
    line = sparkline([0.0, 0.5, 1.0]).plain
    assert line.startswith("▁▄█") and "max 1" in line
    assert len(sparkline(list(range(500)), width=40).plain.split()[0]) == 40
    console = Console(width=100, file=io.StringIO(), record=True)
    console.print(render_result({"loss": [3.0, 2.1, 1.5, 1.2], "rows": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
                                 "name": "run"}))
    text = console.export_text()
    assert "█" in text and "last 1.2" in text and " a " in f" {text}" and "name" in text


# -- snapshots of the main screens (fixed clock, run ids and sandbox; the sandbox path is never shown) -----------


@pytest.fixture
def fixed_ctx(tmp_path: Path) -> Context:
    return Context(sandbox=Sandbox(tmp_path / "sandbox"), timezone="Europe/Berlin",
                   user=UserProfile(name="Alex Doe", email="alex@example.org"), fixed_now=NOW)


SERIES_PLAN = plan_json({"name": "today", "call": "clock.now", "args": {}},
                        {"name": "scores", "call": "series.scores", "args": {"window": 12}},
                        {"name": "report", "call": "agent.say", "args": {"message": "2 anomalous windows"}})


async def _settle(pilot: Pilot[Any]) -> None:
    """Every worker done (the model picker's reachability probe too), a steady cursor, and the screen painted."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    for screen in pilot.app.screen_stack:
        for box in screen.query(Input):
            box.cursor_blink = False  # a blinking cursor would make the screenshot depend on the moment
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _pressing(*keys: str) -> Callable[[Pilot[Any]], Any]:
    async def before(pilot: Pilot[Any]) -> None:
        await _settle(pilot)
        await pilot.press(*keys)
        await _settle(pilot)

    return before


def test_snapshot_idle(snap_compare: Any, fixed_ctx: Context, table: FunctionTable) -> None:
    assert snap_compare(replay_app(fixed_ctx, table), terminal_size=SIZE, run_before=_pressing())


def test_snapshot_plan(snap_compare: Any, fixed_ctx: Context, table: FunctionTable) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await resolve(pilot, "Score the last windows for anomalies")
        await _settle(pilot)

    assert snap_compare(replay_app(fixed_ctx, table, SERIES_PLAN), terminal_size=SIZE, run_before=before)


def test_snapshot_pinned_workflow(snap_compare: Any, fixed_ctx: Context) -> None:
    """A pinned workflow (here a scripted intent file's) opens as the plan, with no model call."""
    spec = IntentFile.load(ROOT / "workflows" / "tidy-downloads.yaml")
    app = replay_app(fixed_ctx, FunctionTable.discover(), workflow=spec.workflow)
    assert snap_compare(app, terminal_size=SIZE, run_before=_pressing())


def test_snapshot_results(snap_compare: Any, fixed_ctx: Context, table: FunctionTable) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        screen = await resolve(pilot, "Score the last windows for anomalies")
        await run_plan(pilot, screen)
        await _settle(pilot)

    assert snap_compare(replay_app(fixed_ctx, table, SERIES_PLAN), terminal_size=SIZE, run_before=before)


def test_snapshot_failed_step(snap_compare: Any, fixed_ctx: Context, table: FunctionTable) -> None:
    failing = plan_json({"name": "read", "call": "files.read", "args": {"path": "missing.txt"},
                         "on_failure": "apologise"},
                        {"name": "apologise", "call": "agent.say", "args": {"message": "no such file"},
                         "next": "failed"})

    async def before(pilot: Pilot[Any]) -> None:
        screen = await resolve(pilot, "read missing.txt")
        await run_plan(pilot, screen)
        await _settle(pilot)

    # The dry run finds the failure and asks for repairs; the same plan each time is shown as it is.
    assert snap_compare(replay_app(fixed_ctx, table, failing, failing, failing), terminal_size=SIZE,
                        run_before=before)


def _journal(runs: Path, run_id: str, status: str, intent: str, minute: int) -> None:
    """A run as the Executor journals it, with fixed times so the screenshot is stable."""
    at = f"2026-03-10T08:{minute:02d}:00.000+00:00"
    wf = {"start": "scores", "states": {"scores": {"call": "series.scores", "args": {"window": 4}}}}
    with Journal.create(run_id, runs) as journal:
        journal.append("run_started", time=at, data={"workflow": wf, "intent": intent, "source": "tui",
                                                     "sandbox": "/home/alex/sandbox", "context": {}})
        journal.append("step_started", time=at, state="scores", call="series.scores", args={"window": 4})
        if status == "done":
            journal.append("step_finished", time=at, state="scores", call="series.scores", args={"window": 4},
                           status="ok", next="done", duration_s=0.012,
                           result={"scores": [0.1, 0.4, 0.9, 0.2], "anomalies": [{"window": 2, "score": 0.9}]})
            journal.append("run_finished", time=at, status="done", state="done")


@pytest.fixture
def journaled_runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    _journal(runs, "20260310-080100-aaaaaa", "done", "Score the last windows", 1)
    _journal(runs, "20260310-080500-bbbbbb", "interrupted", "Score again", 5)
    return runs


def test_snapshot_runs(snap_compare: Any, fixed_ctx: Context, table: FunctionTable, journaled_runs: Path) -> None:
    app = replay_app(fixed_ctx, table, runs_root=journaled_runs)
    assert snap_compare(app, terminal_size=SIZE, run_before=_pressing("f2"))


def test_snapshot_one_run(snap_compare: Any, fixed_ctx: Context, table: FunctionTable, journaled_runs: Path) -> None:
    app = replay_app(fixed_ctx, table, runs_root=journaled_runs)
    assert snap_compare(app, terminal_size=SIZE, run_before=_pressing("f2", "down", "enter"))


def test_snapshot_help(snap_compare: Any, fixed_ctx: Context, table: FunctionTable) -> None:
    assert snap_compare(replay_app(fixed_ctx, table), terminal_size=(110, 48), run_before=_pressing("f1"))


def test_snapshot_functions(snap_compare: Any, fixed_ctx: Context, table: FunctionTable) -> None:
    assert snap_compare(replay_app(fixed_ctx, table), terminal_size=SIZE, run_before=_pressing("f3", *"file"))
