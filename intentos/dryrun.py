"""A dry run: a workflow executed in a scratch copy of the sandbox before anyone is asked to confirm it.

Validation catches what is wrong in form; a dry run catches what is wrong with the data: a
folder that is not where the plan says ("no such folder 'website'; nearby: Projects/website"),
a search that finds nothing and a later step that takes its first hit, a contact that does
not resolve. The planner hands these back to the model as repair problems, and the user
sees the plan that survived together with what its dry run found.

Nothing leaves the machine in a dry run: the copy's settings have no mail server (mail is
queued in the copy's outbox), and a step that reaches outside through any other app (its
class does not declare `dry_run_safe`) is not run: the dry run stops before it and says so.
Nor is any step but a read of an app whose data is not in the sandbox at all (its class
declares `outside_sandbox`, as an MCP server's app does): a copy of the sandbox cannot hold it.
The same runner executes the read-only first stage of a staged plan, whose results the
planner shows the model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from intentos.app import Context
from intentos.executor import ConfirmRequest, Executor
from intentos.references import find_references, strings
from intentos.sandbox import INTERNAL_DIR, Sandbox
from intentos.table import FunctionTable
from intentos.workflow import DONE, FAILED, Workflow

MAX_COPY_BYTES = 200 * 1024 * 1024  # a sandbox larger than this is not copied: the dry run is skipped
MAX_COPY_FILES = 20_000
RESULT_CHARS = 700  # of one step's result, when shown to the model
STEP_TIMEOUT_S = 20.0


_MAX_FIELDS = 4  # of a result, named in a failed step's problem
EMPTY_INDEX = "out of range (0)"  # how a step's error says it indexed into an empty list
# How the files app says an input path is not there and what has its name elsewhere (`FilesApp._nearby`).
_MISSING = re.compile(r"^(?P<raw>.+?) does not exist(?:; [^;]*)?; nearby: (?P<near>.+)$")
_LEAVE_OUT = re.compile(r"leave (?P<arg>[a-z_]+) out$")  # an app's advice, as its error's last words
_BELOW = re.compile(r"^(?P<raw>.+?) does not exist; (?P<folder>[^;]+?) exists$")


class DryStep(BaseModel):
    state: str
    call: str
    status: str  # ok, error, timeout, declined (not tried: it reaches outside)
    error: str | None = None
    result: Any = None
    each: bool = False  # a step run for each item of a list

    @property
    def failed(self) -> bool:
        return self.status in ("error", "timeout")

    @property
    def ran_for_nothing(self) -> bool:
        """A step for each item of a list that ran, over no item."""
        return self.each and self.status == "ok" and isinstance(self.result, dict) and self.result.get("count") == 0


class DryRun(BaseModel):
    """What happened when a workflow ran in a scratch copy."""

    ran: bool = True
    status: str = ""  # the run's final status: done, failed, declined (stopped before an outside step)
    steps: list[DryStep] = []
    stopped_before: str | None = None  # the state with an outside effect that was not tried
    note: str | None = None  # why the dry run was skipped

    @property
    def results(self) -> dict[str, Any]:
        return {s.state: s.result for s in self.steps if s.status == "ok"}

    def problems(self, workflow: Workflow, leads: dict[str, str] | None = None) -> list[str]:
        """The failures the plan did not handle itself, as lines for a repair turn; `leads` adds a sentence to
        a failed step's line (see intentos.leads).

        A step failing into a branch it names (agent.check's else-branch) is the plan working;
        a failure that ends the run in `failed` is a problem. So is a step for each item of a list
        that came back empty: the plan ran, and did nothing.
        """
        if not self.ran:
            return []
        leads = leads or {}
        idle = [f"dry run: step {s.state!r} ({s.call}) ran for no item: {workflow.states[s.state].for_each} "
                f"was empty" + (f" ({leads[s.state]})" if s.state in leads else "; find the items differently")
                for s in self.empty_loops(workflow)]
        if self.status != "failed":
            return idle
        failed = [s for s in self.steps if s.failed]
        unhandled = [s for s in failed if workflow.states[s.state].on_failure == FAILED] or failed[-1:]
        return [f"dry run: step {s.state!r} ({s.call}) failed: {s.error}"
                + (f" ({leads[s.state]})" if s.state in leads else _hint(s.error or ""))
                + self._used(workflow, s) for s in unhandled] + idle

    def _used(self, workflow: Workflow, step: DryStep) -> str:
        """What the earlier steps a failed step took a list item from gave besides the list: told that an
        attachment `${zip.result.members[0]}` does not exist, a 1.5B model refused; the zip's own `path` was
        one field away."""
        results = self.results
        for ref in find_references(workflow.states[step.state].args):
            result = results.get(ref.state)
            if not isinstance(result, dict) or not any(isinstance(p, int) for p in ref.path):
                continue
            fields = [f"{key}={value!r}" for key, value in result.items()
                      if isinstance(value, str | int | float) and not isinstance(value, bool)
                      and len(repr(value)) <= 80]
            if fields:
                return (f"; {ref.text} took one item of a list, and {ref.state!r} ({workflow.states[ref.state].call}) "
                        f"also gave {', '.join(fields[:_MAX_FIELDS])}")
        return ""

    def item_swaps(self, workflow: Workflow) -> list[tuple[str, str]]:
        """For a failed step that took one item of an earlier result's list, each of that result's own text
        fields as a reference to put in its place: (`${zip.result.members[0]}`, `${zip.result.path}`)."""
        swaps = []
        for step in (s for s in self.steps if s.failed):
            for ref in find_references(workflow.states[step.state].args):
                result = self.results.get(ref.state)
                if isinstance(result, dict) and any(isinstance(p, int) for p in ref.path):
                    swaps += [(ref.text, "${" + f"{ref.state}.result.{key}" + "}") for key, value in result.items()
                              if isinstance(value, str) and value]
        return swaps

    def path_swaps(self, workflow: Workflow) -> list[tuple[str, str]]:
        """For a failed step whose input path does not exist, where exactly one of the items its error names
        nearby has that path's name (casefolded, with or without its extension): (the path as the step wrote it,
        that item). "Documents/Notes does not exist; nearby: Notes, Downloads/meeting-notes.txt" gives
        ("Documents/Notes", "Notes")."""
        swaps = []
        for step in (s for s in self.steps if s.failed and s.error):
            found = _MISSING.match(step.error.strip())
            if found is None or found["raw"] not in strings(workflow.states[step.state].args):
                continue
            name = posixpath.basename(found["raw"].rstrip("/")).casefold()
            same = [p for p in found["near"].split(", ")
                    if name in (base := posixpath.basename(p).casefold(), posixpath.splitext(base)[0])]
            if len(same) == 1:
                swaps.append((found["raw"], same[0]))
        return swaps

    def named_folders(self, workflow: Workflow, intent: str) -> list[tuple[str, str]]:
        """For a failed step whose input path does not exist below a folder that does, where the request
        writes that folder out: (the path as the step wrote it, the folder). "Review the logging in
        Projects/shop" planned on "Projects/shop/logs/web.log", which "does not exist; Projects/shop
        exists", gives ("Projects/shop/logs/web.log", "Projects/shop")."""
        swaps = []
        for step in (s for s in self.steps if s.failed and s.error):
            found = _BELOW.match(step.error.strip())
            if found is None or found["raw"] not in strings(workflow.states[step.state].args):
                continue
            folder = found["folder"].rstrip("/")
            if re.search(rf"(?<![\w/]){re.escape(folder)}/?(?![\w/])", intent, re.IGNORECASE):
                swaps.append((found["raw"], folder))
        return swaps

    def left_out(self, workflow: Workflow) -> list[tuple[str, str]]:
        """(state, argument) for each failed step whose error says to leave one of its arguments out ("overdue
        tasks are open ones: status 'done' with overdue finds none; leave status out")."""
        found = []
        for step in (s for s in self.steps if s.failed and s.error):
            advice = _LEAVE_OUT.search(step.error.strip())
            if advice is not None and advice["arg"] in workflow.states[step.state].args:
                found.append((step.state, advice["arg"]))
        return found

    def empty_loops(self, workflow: Workflow) -> list[DryStep]:
        """The for_each steps that ran over an empty list (a literal empty list is the plan's own choice)."""
        return [s for s in self.steps if s.ran_for_nothing and s.state in workflow.states
                and isinstance(workflow.states[s.state].for_each, str)]

    def empty_lookups(self, workflow: Workflow) -> set[str]:
        """The functions of the states whose empty results a failed step indexed into or a step ran for each
        item of, the agent's aside. (A step that failed on its own arguments is not among them: its fix is
        another argument.)"""
        calls = {workflow.states[r.state].call for step in self.steps
                 if step.status == "error" and EMPTY_INDEX in (step.error or "")
                 for r in find_references(step.error or "") if r.state in workflow.states}
        calls |= {workflow.states[r.state].call for step in self.empty_loops(workflow)
                  for r in find_references(workflow.states[step.state].for_each) if r.state in workflow.states}
        return {c for c in calls if not c.startswith("agent.")}

    def summary(self) -> str:
        """One line for the person reading the plan."""
        if not self.ran:
            return f"not dry-run: {self.note}"
        done = sum(1 for s in self.steps if s.status == "ok")
        text = f"dry run in a scratch copy: {done} step(s) ran"
        if self.stopped_before:
            text += f", stopped before {self.stopped_before!r} (it reaches outside)"
        if self.status == "failed":
            last = next((s for s in reversed(self.steps) if s.failed), None)
            text += f"; it failed at {last.state!r}: {last.error}" if last else "; it failed"
        elif self.status == DONE:
            idle = [s.state for s in self.steps if s.ran_for_nothing]
            text += f", but {', '.join(map(repr, idle))} ran for no item" if idle else ", all fine"
        return text

    def shown_results(self, states: list[str]) -> str:
        """The results of `states` as clipped JSON lines, for a staged plan's next prompt."""
        lines = []
        for step in self.steps:
            if step.state not in states:
                continue
            if step.status == "ok":
                text = json.dumps(step.result, ensure_ascii=False, default=str)
                if len(text) > RESULT_CHARS:
                    text = text[: RESULT_CHARS - 1] + "…"
                lines.append(f"{step.state} ({step.call}) result: {text}")
            else:
                lines.append(f"{step.state} ({step.call}) failed: {step.error}")
        return "\n".join(lines)


def dry_run(workflow: Workflow, table: FunctionTable, ctx: Context, *, runs_root: Path | None = None) -> DryRun:
    """Run `workflow` in a throwaway copy of `ctx`'s sandbox, confirming everything that stays local."""
    root = Path(ctx.sandbox.root)
    size = _size(root)
    if size is None:
        return DryRun(ran=False, note=f"the sandbox is larger than {MAX_COPY_BYTES // 2**20} MB or "
                                      f"{MAX_COPY_FILES:,} files")
    with tempfile.TemporaryDirectory(prefix="intentos-dryrun-") as scratch:
        copy = Path(scratch) / "sandbox"
        shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns("undo"))
        settings = {k: v for k, v in ctx.settings.items() if k != "smtp"}
        scratch_ctx = dataclasses.replace(ctx, sandbox=Sandbox(copy, create=False), settings=settings,
                                          fixed_now=ctx.now(), cancelled=threading.Event())
        stopped: list[str] = []

        def confirm(request: ConfirmRequest) -> bool:
            app = table.apps[request.function.app]
            # dry_run_safe covers an app whose outside effects the copy's settings remove (mail queues); an app
            # whose data is not in the sandbox at all (an MCP server's) would change the real thing even here.
            safe = not app.changes_outside(request.function) or (app.dry_run_safe and not app.outside_sandbox)
            if not safe:
                stopped.append(request.state)
            return safe

        # assume_yes=False: every write, external and destructive step goes through `confirm` above.
        executor = Executor(table, scratch_ctx, confirm=confirm, assume_yes=False, step_timeout=STEP_TIMEOUT_S,
                            runs_root=runs_root or Path(scratch) / "runs")
        view = executor.run(workflow, source="dry run")
    steps = [DryStep(state=s.state, call=s.call or "", status=s.status, error=s.error, result=s.result,
                     each=s.state in workflow.states and workflow.states[s.state].for_each is not None)
             for s in view.steps]
    return DryRun(status=view.status, steps=steps, stopped_before=stopped[0] if stopped else None)


def _hint(error: str) -> str:
    if EMPTY_INDEX in error:
        return " (that result is empty: the step that gives it found nothing; search differently or check first)"
    return ""


def _size(root: Path) -> int | None:
    """Bytes under root (links not followed, intentos' undo logs left out), None past the caps."""
    total = files = 0
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name == "undo" and Path(folder).name == INTERNAL_DIR:
                continue
            files += 1
            if entry.is_dir(follow_symlinks=False):
                todo.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
            if total > MAX_COPY_BYTES or files > MAX_COPY_FILES:
                return None
    return total
