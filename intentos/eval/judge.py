"""Judging a case: run the workflow in a fresh sandbox seeded from the case's fixture, then check it.

A case passes when the run leaves the sandbox the way the intent asked for, whatever
words the model chose: checks look at files, app state read back through the apps' own
read functions, and what the journal says ran. Every step is confirmed automatically,
destructive ones included, because the sandbox is a throwaway copy: the checks are
what catch a workflow that should not have acted.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from intentos.app import Context, UserProfile
from intentos.errors import IntentosError
from intentos.eval.matcher import mismatches
from intentos.eval.suite import (
    CallCheck,
    Case,
    Check,
    FileCheck,
    NotRanCheck,
    OutcomeCheck,
    RanCheck,
    SaidCheck,
    UnchangedCheck,
)
from intentos.executor import Executor
from intentos.function import Effect
from intentos.journal import RunView, StepView
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable
from intentos.workflow import Workflow


class CheckResult(BaseModel):
    check: str
    passed: bool
    detail: str | None = None


class Verdict(BaseModel):
    status: str  # the run's final status: done, failed, …
    error: str | None = None
    steps: list[dict[str, Any]] = []  # state, call, status, error of each step that ran
    checks: list[CheckResult] = []
    passed: bool = False
    judge_s: float = 0.0

    @property
    def executed(self) -> bool:
        """The run reached `done`: every step succeeded or its failure was handled by a branch."""
        return self.status == "done"


def case_context(case: Case, root: Path) -> Context:
    """The context a case runs in: its fixture's clock, zone and user, a sandbox at `root`."""
    fixture = case.fixture
    return Context(sandbox=Sandbox(root), timezone=(fixture.timezone if fixture and fixture.timezone else "UTC"),
                   user=(fixture.user if fixture and fixture.user else UserProfile()),
                   fixed_now=fixture.now if fixture else None)


def seeded_context(case: Case, table: FunctionTable, root: Path) -> Context:
    ctx = case_context(case, root)
    if case.fixture is not None:
        case.fixture.apply(ctx, table)
    return ctx


def judge(case: Case, workflow: Workflow, table: FunctionTable, *, step_timeout: float = 60.0) -> Verdict:
    """Execute `workflow` for `case` in a fresh sandbox and evaluate every check."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"intentos-eval-{case.id}-") as scratch:
        root = Path(scratch) / "sandbox"
        root.mkdir()
        ctx = seeded_context(case, table, root)
        executor = Executor(table, ctx, confirm=lambda request: True, assume_yes=True, step_timeout=step_timeout,
                            runs_root=Path(scratch) / "runs")
        view = executor.run(workflow, intent=case.intent, source=f"eval:{case.id}")
        results = [evaluate(check, view, ctx, table) for check in case.checks]
    return Verdict(
        status=view.status,
        error=view.error if view.status != "done" else None,
        steps=[{"state": s.state, "call": s.call, "status": s.status, **({"error": s.error} if s.error else {})}
               for s in view.steps],
        checks=results,
        passed=all(r.passed for r in results),
        judge_s=time.perf_counter() - started,
    )


def evaluate(check: Check, view: RunView, ctx: Context, table: FunctionTable) -> CheckResult:
    """One check against a finished run and the sandbox it left."""
    label = describe(check)
    try:
        problems = _problems(check, view, ctx, table)
    except (IntentosError, OSError, ValidationError, ValueError) as exc:
        problems = [f"could not check: {exc}"]
    return CheckResult(check=label, passed=not problems, detail="; ".join(problems) or None)


def _problems(check: Check, view: RunView, ctx: Context, table: FunctionTable) -> list[str]:
    ok_steps = [s for s in view.steps if s.status == "ok"]
    if isinstance(check, OutcomeCheck):
        return [] if view.status == check.outcome else [f"the run ended {view.status}"]
    if isinstance(check, RanCheck):
        spec = check.ran
        calls = [s for s in ok_steps if s.call == spec.call]
        if not calls:
            return [f"no step calling {spec.call} succeeded (ran: {_calls(view.steps)})"]
        fits = [s for s in calls if _fits(spec.args, s.args) and _fits(spec.result, s.result)]
        if fits:
            return []
        last = calls[-1]
        return (mismatches(spec.args, last.args, "args") if spec.args is not None else []) + (
            mismatches(spec.result, last.result) if spec.result is not None else [])
    if isinstance(check, NotRanCheck):
        hits = [s.state for s in ok_steps if s.call == check.not_ran]
        return [f"{check.not_ran} ran in state(s) {', '.join(hits)}"] if hits else []
    if isinstance(check, UnchangedCheck):
        acted = [f"{s.state} ({s.call})" for s in ok_steps if s.call in table and table.get(s.call).effect
                 is not Effect.READ]
        return [f"steps changed things: {', '.join(acted)}"] if acted else []
    if isinstance(check, SaidCheck):
        pattern = {"contains": check.said} if isinstance(check.said, str) else check.said
        said = [str((s.result or {}).get("message", "")) for s in ok_steps if s.call == "agent.say"]
        if not said:
            return ["nothing was said (no agent.say step succeeded)"]
        return [] if any(not mismatches(pattern, text) for text in said) else mismatches(pattern, said[-1], "said")
    if isinstance(check, FileCheck):
        return _file_problems(check, ctx.sandbox)
    if isinstance(check, CallCheck):
        fn = table.get(check.call)
        app = table.apps[fn.app](ctx)
        result = app.bound(fn.verb)(fn.params.model_validate(check.args))
        return mismatches(check.expect, result.model_dump(mode="json"), check.call)
    raise TypeError(f"unknown check {check!r}")


def _fits(pattern: Any, value: Any) -> bool:
    return pattern is None or not mismatches(pattern, value)


def _calls(steps: list[StepView]) -> str:
    return ", ".join(f"{s.call}={s.status}" for s in steps) or "nothing"


def _file_problems(check: FileCheck, sandbox: Sandbox) -> list[str]:
    spec = check.file
    if spec.glob is not None:
        found = sorted(p for p in sandbox.root.glob(spec.glob) if ".trash" not in p.relative_to(sandbox.root).parts)
        if spec.count is not None and len(found) != spec.count:
            return [f"{spec.glob}: {len(found)} match(es), expected {spec.count}"]
        if not spec.exists:
            return [f"{spec.glob}: should match nothing, matches {_rel(found, sandbox)}"] if found else []
        if not found:
            return [f"{spec.glob}: nothing matches"]
        paths = found
    else:
        path = sandbox.resolve(spec.path or "")
        if not spec.exists:
            return [f"{spec.path} exists"] if path.exists() else []
        if not path.exists():
            return [f"{spec.path} does not exist"]
        paths = [path]
    problems: list[str] = []
    for path in paths:
        problems += _content_problems(spec, path, sandbox)
    # With a glob, one matching file that satisfies everything is enough.
    if spec.glob is not None and len(paths) > 1:
        ok = [p for p in paths if not _content_problems(spec, p, sandbox)]
        return [] if ok else problems[:3]
    return problems


def _content_problems(spec: Any, path: Path, sandbox: Sandbox) -> list[str]:
    rel = path.relative_to(sandbox.root).as_posix()
    if not (spec.contains or spec.equals is not None or spec.members):
        return []
    if path.is_dir():
        return [f"{rel} is a folder"]
    if spec.members:
        if not zipfile.is_zipfile(path):
            return [f"{rel} is not a zip archive"]
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        return [f"{rel} holds no member named like {m!r} ({len(names)} members)" for m in spec.members
                if not any(m.lower() in n.lower() for n in names)]
    text = path.read_text(encoding="utf-8", errors="replace")
    problems = [f"{rel} does not contain {c!r}" for c in spec.contains if c.lower() not in text.lower()]
    if spec.equals is not None and text.strip() != spec.equals.strip():
        problems.append(f"{rel} is {text[:80]!r}, expected {spec.equals[:80]!r}")
    return problems


def _rel(paths: list[Path], sandbox: Sandbox) -> str:
    return ", ".join(p.relative_to(sandbox.root).as_posix() for p in paths)


def describe(check: Check) -> str:
    """A short human label for a check, for reports."""
    if isinstance(check, OutcomeCheck):
        return f"outcome {check.outcome}"
    if isinstance(check, RanCheck):
        return f"ran {check.ran.call}" + (" with matching args" if check.ran.args is not None else "") + (
            " with matching result" if check.ran.result is not None else "")
    if isinstance(check, NotRanCheck):
        return f"did not run {check.not_ran}"
    if isinstance(check, UnchangedCheck):
        return "changed nothing"
    if isinstance(check, SaidCheck):
        return f"said {check.said!r}"
    if isinstance(check, FileCheck):
        f = check.file
        what = f.path or f.glob
        return f"file {what} " + ("exists" if f.exists else "absent") + (
            f" containing {f.contains}" if f.contains else "") + (f" holding {f.members}" if f.members else "")
    if isinstance(check, CallCheck):
        return f"{check.call}({', '.join(f'{k}={v!r}' for k, v in check.args.items())}) matches"
    return type(check).__name__
