"""Item 12, the part no undo log can cover: a step whose effect leaves the sandbox (mail sent, a job
started) and was cut short by a kill may have happened already. Resuming asks about it again, even
under --yes, saying so; declined, it is not redone."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from intentos.app import Context
from intentos.executor import ConfirmRequest, Executor
from intentos.journal import view_run
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable


def test_an_interrupted_external_step_is_asked_about_again(probe_plugin: Path, tmp_path: Path,
                                                           killed_run: Callable[..., None]) -> None:
    sandbox, outside = tmp_path / "sb", tmp_path / "outside.txt"
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        "start: before\nstates:\n"
        "  before: {call: files.write, args: {path: a.txt, text: kept}, next: post}\n"
        f"  post: {{call: probe.post, args: {{path: '{outside}', text: sent}}, next: after}}\n"
        "  after: {call: files.write, args: {path: b.txt, text: later}}\n"
    )
    killed_run(sandbox, workflow, "cut", outside.exists, "the external step never ran")
    journal = Path(os.environ["INTENTOS_HOME"]) / "runs" / "cut"
    assert view_run(journal).resume_at == "post"

    asked: list[ConfirmRequest] = []

    def decline(request: ConfirmRequest) -> bool:
        asked.append(request)
        return False

    table = FunctionTable.discover()
    ctx = Context(sandbox=Sandbox(sandbox))
    view = Executor(table, ctx, confirm=decline, assume_yes=True).resume("cut")
    assert view.status == "declined"
    assert [r.function.name for r in asked] == ["probe.post"]
    assert "cut short" in asked[0].details[0]
    assert outside.read_text() == "sent\n"  # not sent twice
    assert (sandbox / "a.txt").read_text() == "kept" and not (sandbox / "b.txt").exists()

    (sandbox / "go").write_text("")
    view = Executor(table, ctx, confirm=lambda r: True, assume_yes=True).resume("cut")
    assert view.status == "done"
    assert outside.read_text() == "sent\nsent\n"  # the user said yes: it ran once more, as asked
    assert (sandbox / "b.txt").read_text() == "later"
