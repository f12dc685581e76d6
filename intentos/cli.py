"""The `intentos` command line. Every command takes --json for machine-readable output.

Exit codes: 0 the run reached `done` (or the command succeeded), 1 the run ended
otherwise (failed, declined, cancelled), 2 bad input (a file, an argument, a setting).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from intentos import paths, render
from intentos.app import Context
from intentos.backends import available_backends, make_backend
from intentos.backends.settings import load_backend_settings
from intentos.clierror import fail
from intentos.config import load_settings, make_context
from intentos.controller import Controller, Resolution, ResolutionFailed, Trace
from intentos.errors import IntentosError
from intentos.eval.command import eval_command
from intentos.executor import ConfirmRequest, Executor, context_from_data
from intentos.fixture import sandbox_is_empty
from intentos.journal import RunView, list_runs, new_run_id, view_run
from intentos.script import IntentFile
from intentos.skills.dataflow.cli import app as dataflow_cli
from intentos.skills.faults.cli import app as faults_cli
from intentos.skills.logs.cli import app as logs_cli
from intentos.skills.training.cli import train_command, training_app
from intentos.table import FunctionTable
from intentos.validation import WorkflowInvalid, validate
from intentos.workflow import Workflow

app = typer.Typer(help="intentos: state an intent, see the plan, run it in a sandbox (no command: the TUI).",
                  pretty_exceptions_enable=False, add_completion=False)
runs_app = typer.Typer(help="Past runs, from their journals.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")
skills_app = typer.Typer(help="The AIOps skills on their own, without the agent.", no_args_is_help=True)
skills_app.add_typer(logs_cli, name="logs")
skills_app.add_typer(training_app, name="training")
skills_app.add_typer(dataflow_cli, name="dataflow")
skills_app.add_typer(faults_cli, name="faults")
app.add_typer(skills_app, name="skills")

out = Console()
err = render.stderr_console()
T = TypeVar("T")

JsonOpt = typer.Option(False, "--json", help="machine-readable output on stdout")
SandboxOpt = typer.Option(None, "--sandbox", help="sandbox root (default: settings, else a per-user folder)")
YesOpt = typer.Option(False, "--yes", "-y", help="confirm write/external steps (destructive ones still ask)")
ModelOpt = typer.Option(None, "--model", "-m",
                        help="model spec, e.g. llamacpp:smollm2, ollama:qwen2.5:7b, openai:gpt-4o")
GpuOpt = typer.Option(None, "--n-gpu-layers", help="layers to offload to the GPU (-1: all; llamacpp only)")


def _guard(as_json: bool, action: Callable[[], T]) -> T:
    """Run a command body; turn errors a user can act on into one clear line."""
    try:
        return action()
    except ResolutionFailed as exc:  # the model failed, not the input: exit 1 like a failed run
        fail(str(exc), as_json, code=1)
    except WorkflowInvalid as exc:
        fail(str(exc), as_json)
    except IntentosError as exc:
        fail(str(exc), as_json)


def _confirmer(as_json: bool) -> Callable[[ConfirmRequest], bool]:
    def ask(request: ConfirmRequest) -> bool:
        args = json.dumps(request.args, ensure_ascii=False, default=str)
        err.print(f"[yellow]{request.effect.value}[/] step [bold]{request.state}[/]: {request.function.name} {args}",
                  highlight=False)
        return _ask("Run this step?", "not confirmed")

    return ask


def _ask(question: str, if_no_answer: str) -> bool:
    """A yes/no question on stderr; with no terminal to answer it, the answer is no."""
    try:
        return typer.confirm(question, default=False, err=True)
    except (typer.Abort, EOFError):
        err.print(f"no answer (no terminal): {if_no_answer}")
        return False


def _report(view: RunView, as_json: bool) -> None:
    if as_json:
        print(json.dumps(run_summary(view), ensure_ascii=False, default=str))
    else:
        out.print(render.run_view(view))
    if view.status != "done":
        raise typer.Exit(1)


def run_summary(view: RunView) -> dict[str, Any]:
    """What --json prints for a run: its id, final state and each step's status."""
    return {
        "run_id": view.run_id,
        "status": view.status,
        "final_state": view.status if view.status in ("done", "failed") else view.resume_at,
        "sandbox": view.sandbox,
        # A step error that an on_failure branch handled is no error of a run that reached `done`.
        "error": view.error if view.status != "done" else None,
        "steps": [s.model_dump(exclude_none=True) for s in view.steps],
    }


# -- commands -------------------------------------------------------------------------------------


@app.command()
def functions(as_json: bool = JsonOpt) -> None:
    """Print the Function Table of the installed apps."""
    table = FunctionTable.discover()
    for problem in table.problems:
        err.print(f"[yellow]warning:[/] {problem}")
    if as_json:
        print(json.dumps(table.describe(), indent=2))
    else:
        out.print(render.functions_table(table))


@app.command()
def call(
    function: str = typer.Argument(..., help="APP.VERB"),
    args: str = typer.Option("{}", "--args", help="arguments as a JSON object"),
    sandbox: Path | None = SandboxOpt,
    yes: bool = YesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Call one function directly (journaled as a one-step run)."""

    def body() -> RunView:
        try:
            parsed = json.loads(args)
        except json.JSONDecodeError as exc:
            raise IntentosError(f"--args is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise IntentosError("--args must be a JSON object")
        table = FunctionTable.discover()
        table.get(function)
        workflow = Workflow(start="call", states={"call": {"call": function, "args": parsed}})
        ctx = make_context(load_settings(), sandbox=sandbox)
        return Executor(table, ctx, confirm=_confirmer(as_json), assume_yes=yes).run(workflow, source="call")

    view = _guard(as_json, body)
    if as_json:
        step = view.steps[-1] if view.steps else None
        print(json.dumps({**run_summary(view), "result": step.result if step else None}, default=str))
        if view.status != "done":
            raise typer.Exit(1)
    else:
        _report(view, as_json)


@app.command()
def run(
    file: Path = typer.Argument(..., help="a scripted intent file (workflows/*.yaml)"),
    sandbox: Path | None = SandboxOpt,
    yes: bool = YesOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="show and validate the plan, run nothing"),
    model: str | None = ModelOpt,
    n_gpu_layers: int | None = GpuOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run a scripted intent file: its pinned workflow, or its intent resolved by the model."""

    def body() -> RunView | None:
        spec = IntentFile.load(file)
        table = FunctionTable.discover()
        if spec.workflow is not None and not dry_run and (problems := validate(spec.workflow, table)):
            # Before the fixture is seeded: an invalid file leaves nothing behind, and the error names it.
            raise IntentosError(f"{file}: {WorkflowInvalid(problems)}")
        settings = load_settings()
        run_id = new_run_id()
        fixture = spec.fixture
        if dry_run and fixture is not None and sandbox is None:
            # A dry run seeds the fixture only so the model sees the starting state; it leaves no sandbox behind.
            scratch = tempfile.TemporaryDirectory(prefix="intentos-dry-run-")
            cleanup.callback(scratch.cleanup)
            root = Path(scratch.name)
        else:
            root = sandbox or (paths.home() / "sandboxes" / run_id if fixture else settings.sandbox)
        ctx = make_context(settings, sandbox=root, fixed_now=fixture.now if fixture else None,
                           timezone=fixture.timezone if fixture else None, user=fixture.user if fixture else None)
        if fixture is not None:
            if sandbox_is_empty(ctx.sandbox):
                fixture.apply(ctx, table)
            elif not as_json:
                err.print(f"[yellow]note:[/] {ctx.sandbox.root} is not empty, so the fixture was not seeded")
        resolution = None
        if spec.workflow is not None:
            workflow = spec.workflow
        else:
            resolution = _resolve(spec.intent or "", table, ctx, model, n_gpu_layers, as_json)
            workflow = resolution.workflow
        if not as_json:
            out.print(render.plan(workflow, table, assume_yes=yes))
        if dry_run:
            problems = validate(workflow, table)
            if as_json:
                print(json.dumps({"valid": not problems, "problems": [p.model_dump() for p in problems],
                                  "workflow": workflow.to_data(), "sandbox": str(ctx.sandbox.root)}))
            elif problems:
                err.print("\n".join(f"[red]-[/] {p}" for p in problems))
            else:
                out.print("[green]valid[/] (dry run: nothing executed)")
            if problems:
                raise typer.Exit(2)  # an invalid workflow is bad input, as when it is run
            return None
        executor = Executor(table, ctx, confirm=_confirmer(as_json), assume_yes=yes,
                            step_timeout=settings.step_timeout)
        return executor.run(workflow, intent=spec.intent, source=str(file), run_id=run_id,
                            resolution=resolution.trace.summary() if resolution else None)

    with contextlib.ExitStack() as cleanup:
        view = _guard(as_json, body)
    if view is not None:
        _report(view, as_json)


def _resolve(intent: str, table: FunctionTable, ctx: Context, model: str | None, n_gpu_layers: int | None,
             as_json: bool, trace_file: Path | None = None) -> Resolution:
    """Resolve an intent with the configured (or given) model, showing progress on stderr.

    The trace goes to `trace_file` when given; when the model gives no valid workflow it is always
    saved (under INTENTOS_HOME/traces) and the error says where, so the raw outputs can be read.
    """
    settings = load_backend_settings(model, {"n_gpu_layers": n_gpu_layers})
    backend = make_backend(settings.spec, settings)
    controller = Controller(backend, table, ctx)
    try:
        with contextlib.nullcontext() if as_json else err.status(f"resolving with {backend.spec} …"):
            resolution = controller.resolve(intent)
    except ResolutionFailed as exc:
        saved = trace_file or paths.home() / "traces" / f"{new_run_id()}.json"
        _save_trace(exc.trace, saved)
        raise ResolutionFailed(exc.trace, note=f"the trace with every raw output is in {saved}") from None
    if trace_file is not None:
        _save_trace(resolution.trace, trace_file)
    if not as_json:
        err.print(render.resolution_line(resolution.trace), highlight=False)
    return resolution


def _save_trace(trace: Trace, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(trace.model_dump_json(indent=2), encoding="utf-8")


@app.command()
def resolve(
    intent: str = typer.Argument(..., help="what you want, in plain language"),
    sandbox: Path | None = SandboxOpt,
    execute: bool = typer.Option(False, "--execute", "-x", help="run the plan once confirmed (default: show it)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="with --execute: run without asking (destructive steps ask)"),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="also write the workflow to this YAML file"),
    trace_file: Path | None = typer.Option(None, "--trace", help="write the resolution trace (prompts, outputs) here"),
    model: str | None = ModelOpt,
    n_gpu_layers: int | None = GpuOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Turn an intent into a workflow with the model and show the plan; with --execute, run it once confirmed."""

    def body() -> tuple[Resolution, RunView | None]:
        table = FunctionTable.discover()
        settings = load_settings()
        ctx = make_context(settings, sandbox=sandbox)
        resolution = _resolve(intent, table, ctx, model, n_gpu_layers, as_json, trace_file)
        workflow = resolution.workflow
        if out_file is not None:
            out_file.write_text(workflow.to_yaml(), encoding="utf-8")
        if not as_json:
            out.print(render.plan(workflow, table, assume_yes=True))
        if not execute:
            return resolution, None
        # Confirming the plan confirms its write/external steps; destructive ones still ask one by one.
        if not yes and not _ask("Run this plan?", "pass --yes to run without asking"):
            raise IntentosError("plan not confirmed: nothing was run")
        executor = Executor(table, ctx, confirm=_confirmer(as_json), assume_yes=True,
                            step_timeout=settings.step_timeout)
        view = executor.run(workflow, intent=intent, source="resolve", resolution=resolution.trace.summary())
        return resolution, view

    resolution, view = _guard(as_json, body)
    if as_json:
        summary = run_summary(view) if view is not None else {}
        print(json.dumps({"workflow": resolution.workflow.to_data(), "resolution": resolution.trace.summary(),
                          **summary}, ensure_ascii=False, default=str))
        if view is not None and view.status != "done":
            raise typer.Exit(1)
    elif view is not None:
        _report(view, as_json)


@app.command()
def models(as_json: bool = JsonOpt) -> None:
    """The configured model backends and whether each can serve now."""
    rows = []
    for spec in available_backends():
        try:
            ok, why = make_backend(spec).reachable()
        except IntentosError as exc:
            ok, why = False, str(exc)
        rows.append({"spec": spec, "reachable": ok, "detail": why})
    if as_json:
        print(json.dumps(rows))
    else:
        out.print(render.models_table(rows))


app.command("eval")(eval_command)
app.command("train")(train_command)


@runs_app.callback()
def runs_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """List past runs."""
    if ctx.invoked_subcommand is not None:
        return
    views = list_runs()
    if as_json:
        print(json.dumps([run_summary(v) | {"started": v.started, "intent": v.intent, "source": v.source}
                          for v in views], default=str))
    elif views:
        out.print(render.runs_table(views))
    else:
        out.print(f"no runs yet under {paths.runs_dir()}")


@runs_app.command("show")
def runs_show(run_id: str, as_json: bool = JsonOpt) -> None:
    """Show one run: every step with its arguments, result or error."""
    view = _guard(as_json, lambda: view_run(_run_dir(run_id)))
    if as_json:
        print(view.model_dump_json())
    else:
        out.print(render.run_view(view))


@runs_app.command("resume")
def runs_resume(run_id: str, yes: bool = YesOpt, as_json: bool = JsonOpt) -> None:
    """Go on with an interrupted, declined or cancelled run; finished steps are not redone."""

    def body() -> RunView:
        view = view_run(_run_dir(run_id))
        settings = load_settings()
        extra = {"smtp": settings.smtp.model_dump()} if settings.smtp else {}
        ctx = context_from_data(view.sandbox, view.context, extra)
        executor = Executor(FunctionTable.discover(), ctx, confirm=_confirmer(as_json), assume_yes=yes,
                            step_timeout=settings.step_timeout)
        return executor.resume(run_id)

    _report(_guard(as_json, body), as_json)


def _run_dir(run_id: str) -> Path:
    run_dir = paths.runs_dir() / run_id
    if not (run_dir / "journal.jsonl").is_file():
        raise IntentosError(f"no run {run_id!r} (see `intentos runs`)")
    return run_dir


@app.callback(invoke_without_command=True)
def _no_command(ctx: typer.Context) -> None:
    """intentos: state an intent, see the plan, run it in a sandbox. With no command, the TUI opens."""
    if ctx.invoked_subcommand is not None:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # no terminal to draw on: the help, as before
        out.print(ctx.get_help(), highlight=False)
        raise typer.Exit(0)
    _open_tui(None, None, None)


@app.command()
def tui(sandbox: Path | None = SandboxOpt, model: str | None = ModelOpt, n_gpu_layers: int | None = GpuOpt) -> None:
    """The interactive terminal UI: intent box, model picker, the plan as a state machine, live runs."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("the TUI needs a terminal (use `intentos resolve` or `intentos run` in scripts)", False)
    _open_tui(sandbox, model, n_gpu_layers)


def _open_tui(sandbox: Path | None, model: str | None, n_gpu_layers: int | None) -> None:
    from intentos.tui import run_tui  # textual loads only when the TUI opens

    _guard(False, lambda: run_tui(sandbox=sandbox, model=model, n_gpu_layers=n_gpu_layers))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
