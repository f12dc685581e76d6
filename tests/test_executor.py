"""The executor: transitions, confirmation by effect, timeouts, cancellation, journal, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from intentos.app import Context
from intentos.errors import JournalError
from intentos.executor import ConfirmRequest, Executor, needs_confirmation
from intentos.function import Effect
from intentos.journal import read_records, view_run
from intentos.table import FunctionTable
from intentos.workflow import Workflow


@pytest.fixture
def table(probe_plugin: Path) -> FunctionTable:
    return FunctionTable.discover()


def wf(states: dict, start: str | None = None) -> Workflow:
    return Workflow.model_validate({"start": start or next(iter(states)), "states": states})


def test_confirmation_policy() -> None:
    assert not needs_confirmation(Effect.READ, assume_yes=False)
    assert needs_confirmation(Effect.WRITE, assume_yes=False) and not needs_confirmation(Effect.WRITE, True)
    assert needs_confirmation(Effect.EXTERNAL, False) and not needs_confirmation(Effect.EXTERNAL, True)
    assert needs_confirmation(Effect.DESTRUCTIVE, True)


def test_success_failure_branch_and_results(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({
        "add": {"call": "agent.sum", "args": {"values": [2, 3]}, "next": "test"},
        "test": {"call": "agent.check", "args": {"value": "${add.result.total}", "op": ">", "other": 10},
                 "next": "big", "on_failure": "small"},
        "big": {"call": "agent.say", "args": {"message": "big"}},
        "small": {"call": "agent.say", "args": {"message": "only ${add.result.total}"}},
    })
    view = Executor(table, ctx).run(workflow)
    assert view.status == "done"
    assert [(s.state, s.status) for s in view.steps] == [("add", "ok"), ("test", "error"), ("small", "ok")]
    assert view.results["small"] == {"message": "only 5.0"}
    assert "does not hold" in view.steps[1].error


def test_write_asks_unless_yes_and_destructive_always_asks(table: FunctionTable, ctx: Context) -> None:
    ctx.sandbox.write_text("a.txt", "x")
    asked: list[tuple[str, str]] = []

    def confirm(req: ConfirmRequest) -> bool:
        asked.append((req.state, req.effect.value))
        return True

    workflow = wf({
        "look": {"call": "agent.say", "args": {"message": "hi"}, "next": "mark"},
        "mark": {"call": "probe.mark", "args": {"path": "log.txt", "text": "one"}, "next": "shred"},
        "shred": {"call": "probe.shred", "args": {"path": "a.txt", "text": ""}},
    })
    assert Executor(table, ctx, confirm=confirm).run(workflow).status == "done"
    assert asked == [("mark", "write"), ("shred", "destructive")]
    asked.clear()
    ctx.sandbox.write_text("a.txt", "x")
    assert Executor(table, ctx, confirm=confirm, assume_yes=True).run(workflow).status == "done"
    assert asked == [("shred", "destructive")]
    assert len(ctx.sandbox.trash_entries()) == 2  # destroyed nothing: both copies are in the trash


def test_declined_step_stops_and_resume_asks_again(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({
        "first": {"call": "probe.mark", "args": {"path": "log.txt", "text": "one"}, "next": "second"},
        "second": {"call": "probe.mark", "args": {"path": "log.txt", "text": "two"}},
    })
    answers = iter([True, False])
    view = Executor(table, ctx, confirm=lambda r: next(answers)).run(workflow)
    assert view.status == "declined" and view.resume_at == "second"
    resumed = Executor(table, ctx, confirm=lambda r: True).resume(view.run_id)
    assert resumed.status == "done"
    assert (ctx.sandbox.root / "log.txt").read_text() == "one\ntwo\n"


def test_bad_reference_at_run_time_fails_the_step_not_the_run(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({
        "add": {"call": "agent.sum", "args": {"values": []}, "next": "say"},
        "say": {"call": "agent.say", "args": {"message": "x"}, "next": "crash"},
        "crash": {"call": "probe.crash", "args": {"seconds": 0}},
    })
    view = Executor(table, ctx).run(workflow)
    assert view.status == "failed"
    assert view.steps[-1].status == "error" and "ZeroDivisionError" in view.steps[-1].error
    assert "intentos_testplug.py" in view.steps[-1].error


def test_step_timeout(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({"nap": {"call": "probe.sleep", "args": {"seconds": 5}, "on_failure": "after"},
                   "after": {"call": "agent.say", "args": {"message": "moved on"}}})
    started = time.monotonic()
    view = Executor(table, ctx, step_timeout=0.2).run(workflow)
    assert time.monotonic() - started < 3
    assert [s.status for s in view.steps] == ["timeout", "ok"] and "longer than 0.2 s" in view.steps[0].error
    ctx.cancelled.set()  # let the abandoned worker thread end


def test_cancel_during_a_step(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({"nap": {"call": "probe.sleep", "args": {"seconds": 30}}})
    executor = Executor(table, ctx)
    threading.Timer(0.3, executor.cancel).start()
    view = executor.run(workflow)
    assert view.status == "cancelled" and view.steps[0].status == "cancelled"


def test_loop_bound_is_enforced_at_run_time(table: FunctionTable, ctx: Context) -> None:
    workflow = wf({"retry": {"call": "agent.check", "args": {"value": 1, "op": "==", "other": 2},
                             "on_failure": "retry", "max_visits": 3}})
    view = Executor(table, ctx).run(workflow)
    assert view.status == "failed" and len(view.steps) == 3 and "bound of 3" in view.error


def test_journal_is_written_before_the_next_step(table: FunctionTable, ctx: Context) -> None:
    seen: list[list[str]] = []
    executor = Executor(table, ctx, assume_yes=True)

    def snapshot(record) -> None:  # every record is on disk when the hook sees it
        if record.event == "step_started":
            path = next(Path(os.environ["INTENTOS_HOME"], "runs").iterdir()) / "journal.jsonl"
            seen.append([r.event for r in read_records(path)])

    executor.on_record = snapshot
    workflow = wf({"a": {"call": "agent.say", "args": {"message": "1"}, "next": "b"},
                   "b": {"call": "probe.mark", "args": {"path": "m.txt", "text": "x"}}})
    executor.run(workflow)
    assert seen == [["run_started", "step_started"], ["run_started", "step_started", "step_finished", "step_started"]]


def test_finished_runs_cannot_be_resumed_and_torn_lines_are_ignored(table: FunctionTable, ctx: Context) -> None:
    view = Executor(table, ctx).run(wf({"a": {"call": "agent.say", "args": {"message": "1"}}}))
    with pytest.raises(JournalError, match="already finished"):
        Executor(table, ctx).resume(view.run_id)
    journal = Path(os.environ["INTENTOS_HOME"]) / "runs" / view.run_id / "journal.jsonl"
    with open(journal, "a") as fh:
        fh.write('{"seq": 99, "event": "step_sta')  # a crash mid-write
    assert view_run(journal.parent).status == "done"


SCRIPT = """
import sys
from intentos.app import Context
from intentos.executor import Executor
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable
from intentos.workflow import Workflow
wf = Workflow.from_yaml(open(sys.argv[2]).read())
Executor(FunctionTable.discover(), Context(sandbox=Sandbox(sys.argv[1])), assume_yes=True).run(wf, run_id="killed")
"""


def test_sigkill_mid_run_then_resume_completes_without_redoing_steps(table: FunctionTable, tmp_path: Path) -> None:
    sandbox = tmp_path / "sb"
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        "start: one\nstates:\n"
        "  one: {call: probe.mark, args: {path: log.txt, text: one}, next: two}\n"
        "  two: {call: agent.sum, args: {values: [40, 2]}, next: wait}\n"
        "  wait: {call: probe.wait_for, args: {path: go.txt}, next: three}\n"
        "  three: {call: probe.mark, args: {path: log.txt, text: 'three ${two.result.total}'}}\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(sandbox), str(workflow)], env=os.environ.copy())
    journal = Path(os.environ["INTENTOS_HOME"]) / "runs" / "killed" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.is_file() and '"state":"wait"' in journal.read_text():
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the run never reached the waiting step")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = view_run(journal.parent)
    assert before.status == "interrupted" and before.resume_at == "wait"
    assert before.results["two"] == {"total": 42.0, "count": 2}

    (sandbox / "go.txt").write_text("go")
    ctx = Context(sandbox=__import__("intentos.sandbox", fromlist=["Sandbox"]).Sandbox(sandbox))
    after = Executor(table, ctx, assume_yes=True).resume("killed")
    assert after.status == "done"
    assert (sandbox / "log.txt").read_text() == "one\nthree 42.0\n"  # `one` ran exactly once
    assert [s.state for s in after.steps if s.status == "ok"] == ["one", "two", "wait", "three"]
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert events.count("run_resumed") == 1 and events[-1] == "run_finished"
