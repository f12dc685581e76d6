"""Past runs from the journal: a list, one run in detail, and resuming an unfinished one."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from intentos import locations
from intentos.errors import IntentosError
from intentos.executor import Executor, context_from_data
from intentos.journal import Record, RunView, scan_runs, view_run
from intentos.render import STATUS_STYLE
from intentos.table import FunctionTable
from intentos.tui.screens.confirm import ask_from_thread
from intentos.tui.widgets.run_view import RunOutcome

RESUMABLE = ("interrupted", "declined", "cancelled")


class RunsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open", "Open the selected run"),
        Binding("r", "resume", "Resume the selected run"),
        Binding("f5", "reload", "Reload the list"),
    ]

    def __init__(self, table: FunctionTable, runs_root: Path | None = None) -> None:
        super().__init__()
        self.table = table
        self.runs_root = runs_root
        self.damaged: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static("[b]Runs[/b]  from the journal, newest first · enter opens · r resumes", classes="title")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        grid = self.query_one("#runs", DataTable)
        for col in ("run", "started", "status", "steps", "intent / source"):
            grid.add_column(col, key=col)
        self.action_reload()
        grid.focus()

    def on_screen_resume(self) -> None:
        self.action_reload()  # a run resumed from the detail screen has a new status

    def action_reload(self) -> None:
        grid = self.query_one("#runs", DataTable)
        grid.clear()
        views, damaged = scan_runs(self.runs_root)
        self.damaged = {d.run_id: d.error for d in damaged}
        rows = [(v.run_id, v.started[:19].replace("T", " "), Text(v.status, style=STATUS_STYLE.get(v.status, "")),
                 str(len(v.steps)), v.intent or v.source or "") for v in views]
        # A damaged journal is listed with why, never hidden: it may be the run the person is looking for.
        rows += [(d.run_id, "", Text("damaged", style="bold red"), "", d.error) for d in damaged]
        for row in sorted(rows, key=lambda r: r[0], reverse=True):
            grid.add_row(*row, key=row[0])
        if not grid.row_count:
            self.notify(f"no runs yet under {self.runs_root or locations.runs_dir()}")

    def _selected(self) -> str | None:
        grid = self.query_one("#runs", DataTable)
        if not grid.row_count:
            return None
        return str(grid.coordinate_to_cell_key(grid.cursor_coordinate).row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self, resume: bool = False) -> None:
        if (run_id := self._selected()) in self.damaged:
            self.notify(self.damaged[run_id], severity="error")
        elif run_id is not None:
            self.app.push_screen(RunDetailScreen(run_id, self.table, self.runs_root, resume=resume))

    def action_resume(self) -> None:
        self.action_open(resume=True)


class RunDetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back to the runs"),
        Binding("r", "resume", "Resume this run"),
        Binding("c", "cancel", "Cancel the resumed run"),
    ]

    class Progress(Message):
        def __init__(self, record: Record | None = None, view: RunView | None = None, error: str | None = None):
            super().__init__()
            self.record, self.view, self.error = record, view, error

    def __init__(self, run_id: str, table: FunctionTable, runs_root: Path | None = None, resume: bool = False):
        super().__init__()
        self.run_id = run_id
        self.table = table
        self.runs_root = runs_root
        self.resume_on_open = resume
        self.stop = threading.Event()
        self.executor: Executor | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("", id="run-status")
            yield RunOutcome("", id="run-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        if self.resume_on_open:
            self.action_resume()

    def reload(self) -> RunView | None:
        try:
            view = view_run((self.runs_root or locations.runs_dir()) / self.run_id)
        except IntentosError as exc:
            self.notify(str(exc), severity="error", title="cannot read the run")
            return None
        self.query_one(RunOutcome).show(view, show_sandbox=True)
        return view

    def action_back(self) -> None:
        if self.executor is not None:
            self.notify("a resumed run is in flight: c cancels it", severity="warning")
            return
        self.app.pop_screen()

    def action_resume(self) -> None:
        view = self.reload()
        if view is None or self.executor is not None:
            return
        if view.status not in RESUMABLE:
            self.notify(f"run {self.run_id} already finished ({view.status}); nothing to resume", severity="warning")
            return
        self.query_one("#run-status", Static).update(Text(f"resuming at {view.resume_at!r} …", style="cyan"))
        ctx = context_from_data(view.sandbox, view.context, self.app.agent_settings_extra())  # type: ignore[attr-defined]
        self.stop.clear()
        self.executor = Executor(self.table, ctx, confirm=lambda r: ask_from_thread(self.app, r, self.stop),
                                 assume_yes=True, step_timeout=self.app.step_timeout,  # type: ignore[attr-defined]
                                 runs_root=self.runs_root, on_record=lambda r: self.post_message(self.Progress(r)))
        self.resume_worker(self.executor)

    @work(thread=True, exclusive=True, group="resume")
    def resume_worker(self, executor: Executor) -> None:
        try:
            self.post_message(self.Progress(view=executor.resume(self.run_id)))
        except Exception as exc:  # e.g. another process holds the journal: say so, keep the screen
            self.post_message(self.Progress(error=str(exc)))

    def on_unmount(self) -> None:
        self.action_cancel()  # the app is closing: a worker waiting on a question must not outlive it

    def action_cancel(self) -> None:
        if self.executor is not None:
            self.stop.set()
            self.executor.cancel()

    def on_run_detail_screen_progress(self, message: Progress) -> None:
        status = self.query_one("#run-status", Static)
        if message.record is not None:
            rec = message.record
            if rec.event in ("step_started", "step_finished"):
                status.update(Text(f"{rec.state}: {rec.status or 'running'}", style="cyan"))
            if rec.event == "step_finished" and rec.status in ("error", "timeout"):
                self.notify(f"{rec.state} ({rec.call}): {rec.error}", severity="error", title="step failed",
                            timeout=10)
            return
        self.executor = None
        if message.error is not None:
            self.notify(message.error, severity="error", title="resume failed", timeout=10)
            status.update("")
            return
        view = self.reload()
        if view is not None:
            status.update(Text(f"resumed: {view.status}", style=STATUS_STYLE.get(view.status, "")))
            self.notify(f"run {view.run_id}: {view.status}", severity="information" if view.status == "done"
                        else "warning")
