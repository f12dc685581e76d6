"""IntentosApp: the textual application that holds the parts (backend, Function Table, context)
and the screens. Every part can be injected, so tests drive the real product with a chosen
model, sandbox and clock; what is not given comes from the settings, as in the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding

from intentos import locations
from intentos.app import Context
from intentos.backends import available_backends, make_backend
from intentos.backends.base import Backend
from intentos.backends.settings import load_backend_settings
from intentos.config import load_settings, make_context
from intentos.controller import Trace
from intentos.journal import new_run_id
from intentos.table import FunctionTable
from intentos.tui.history import IntentHistory
from intentos.tui.screens.confirm import ConfirmStepScreen
from intentos.tui.screens.edit import EditArgsScreen
from intentos.tui.screens.functions import FunctionsScreen
from intentos.tui.screens.help import HelpScreen
from intentos.tui.screens.main import MainScreen
from intentos.tui.screens.runs import RunDetailScreen, RunsScreen
from intentos.tui.widgets.intent_box import IntentBox
from intentos.tui.widgets.plan import PlanTable
from intentos.workflow import Workflow


class IntentosApp(App[None]):
    TITLE = "intentos"
    CSS_PATH = "intentos.tcss"
    BINDINGS = [
        Binding("f1", "help", "Help", tooltip="Every key binding (this list)"),
        Binding("f2", "runs", "Runs", tooltip="Past runs: open one, resume one"),
        Binding("f3", "functions", "Functions", tooltip="Browse and search the Function Table"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        table: FunctionTable | None = None,
        ctx: Context | None = None,
        model: str | None = None,
        n_gpu_layers: int | None = None,
        sandbox: Path | None = None,
        models: list[str] | None = None,
        runs_root: Path | None = None,
        step_timeout: float | None = None,
        history_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        run_ids: Callable[[], str] = new_run_id,
        workflow: Workflow | None = None,
    ) -> None:
        """Parts not given come from the settings: `model`/`n_gpu_layers` pick the backend, `sandbox` the context.

        `clock` times generation and `run_ids` names runs; tests fix both so screenshots are stable.
        `workflow` opens with a pinned plan already shown (no model call).
        """
        super().__init__()
        settings = load_settings()
        self.table = table or FunctionTable.discover()
        self.ctx = ctx or make_context(settings, sandbox=sandbox)
        if backend is None:
            backend_settings = load_backend_settings(model, {"n_gpu_layers": n_gpu_layers})
            backend = make_backend(backend_settings.spec, backend_settings)
        self.backend: Backend = backend
        self._backends: dict[str, Backend] = {backend.spec: backend}
        self._models = models
        self.runs_root = runs_root
        self.step_timeout = step_timeout if step_timeout is not None else settings.step_timeout
        self.history = IntentHistory(history_path or locations.home() / "tui-history.txt")
        self.clock = clock
        self.run_ids = run_ids
        self.initial_workflow = workflow
        self.smtp = settings.smtp.model_dump() if settings.smtp else None

    def on_mount(self) -> None:
        main = MainScreen()
        self.push_screen(main)
        if self.initial_workflow is not None:
            main.call_after_refresh(main.open_plan, self.initial_workflow)

    # -- models ------------------------------------------------------------------------------------

    def model_specs(self) -> list[str]:
        """The model in use first, then every configured one."""
        try:
            configured = available_backends() if self._models is None else self._models
        except Exception:  # a broken config file must not keep the UI from opening with the model it has
            configured = []
        return list(dict.fromkeys([self.backend.spec, *configured]))

    def check_model(self, spec: str) -> tuple[bool, str]:
        backend = self._backends.get(spec) or make_backend(spec)
        return backend.reachable()

    def use_model(self, spec: str) -> Backend:
        if spec not in self._backends:
            self._backends[spec] = make_backend(spec)
        self.backend = self._backends[spec]
        return self.backend

    # -- helpers for screens -----------------------------------------------------------------------

    def agent_settings_extra(self) -> dict[str, Any]:
        return {"smtp": self.smtp} if self.smtp else {}

    def save_trace(self, trace: Trace) -> Path | None:
        """Keep a failed resolution's trace (every raw output) where the CLI keeps them."""
        try:
            return trace.save()
        except OSError:
            return None

    # -- screens -----------------------------------------------------------------------------------

    def help_places(self) -> list[tuple[str, type]]:
        return [("anywhere", IntentosApp), ("main screen", MainScreen), ("intent box", IntentBox),
                ("plan", PlanTable), ("step dialog", ConfirmStepScreen), ("edit dialog", EditArgsScreen),
                ("runs", RunsScreen), ("one run", RunDetailScreen), ("functions", FunctionsScreen),
                ("help", HelpScreen)]

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        # Installed once and kept when closed: composing the bindings table made help the slowest key.
        if not self.is_screen_installed("help"):
            self.install_screen(HelpScreen(self.help_places()), name="help")
        self.push_screen("help")

    def action_runs(self) -> None:
        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen(self.table, self.runs_root))

    def action_functions(self) -> None:
        if not isinstance(self.screen, FunctionsScreen):
            self.push_screen(FunctionsScreen(self.table))
