"""`intentos skills dataflow ...`: the dataflow scaling skill on the command line, on any file (no sandbox).

    intentos skills dataflow predict grep.tsv --machine-type m4.2xlarge --data-size 10100 -p p_occurrence=0.25
    intentos skills dataflow recommend grep.tsv ... --target 120 --price 0.4
    intentos skills dataflow train grep.tsv --out grep.pt
    intentos skills dataflow generate-eventlog run.jsonl --kind kmeans --executors 4 --stop-after-job 2
    intentos skills dataflow train-rescaler history/ --out enel.pt
    intentos skills dataflow rescale run.jsonl --target 200 --model enel.pt
    intentos skills dataflow spark-run sgd --size 200000 --rescalable      # prints its rescale command
    intentos skills dataflow rescale spark-events/eventlog_v2_app-... --target 60 --model enel.pt --apply URL

Each command prints rich tables, or JSON with --json; errors are one red line (or `{"error": ...}` with
--json) and exit code 2, Ctrl-C exit code 130 (intentos.clikit).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from intentos.clikit import JsonOpt, emit, fail, guard
from intentos.errors import AppError
from intentos.skills import kit
from intentos.skills.dataflow.eventlog import is_rolling_folder
from intentos.skills.dataflow.history import load_history
from intentos.skills.dataflow.ops import (
    MAX_LOGS,
    QUICK_BELLAMY,
    QUICK_ENEL,
    ContextSpec,
    Recommendation,
    Rescaled,
    RescalePlan,
    RuntimePrediction,
    Save,
    TrainedModel,
    apply_rescale,
    is_log_name,
    predict_runtime,
    recommend_scaleout,
    rescale_plan,
    train_rescaler,
    train_runtime_model,
)

if TYPE_CHECKING:
    from intentos.skills.dataflow.sparkcluster import SparkApp

app = typer.Typer(help="Dataflow scaling: runtime per scale-out (Bellamy vs Ernest), the cheapest scale-out for a "
                       "runtime target, re-planning a running Spark job (Enel).", no_args_is_help=True)
out = Console(soft_wrap=True)
T = TypeVar("T")

QuickOpt = typer.Option(False, "--quick", help="train smaller/shorter (faster, less accurate)")
MachineOpt = typer.Option(None, "--machine-type", "-m", help="context: machine type (C3O)")
SizeOpt = typer.Option(None, "--data-size", "-d", help="context: data size in MB (C3O)")
ParamOpt = typer.Option(None, "--param", "-p", help="context: job parameter NAME=VALUE (repeat)")
ScaleoutsOpt = typer.Option(None, "--scaleout", "-s", help="scale-out to predict (repeat); default: history range")
ModelOpt = typer.Option(None, "--model", help="a pre-trained Bellamy model file (else trained from the history)")


def _context(machine: str | None, size: float | None, params: list[str] | None, as_json: bool) -> ContextSpec:
    pairs = {}
    for p in params or []:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            fail(f"--param {p!r}: expected NAME=VALUE", as_json)
        pairs[key.strip()] = value.strip()
    return ContextSpec(machine_type=machine, data_size_mb=size, params=pairs)


def _bellamy(model: Path | None) -> Any:
    from intentos.skills.dataflow.bellamy import Bellamy

    return Bellamy.load(model) if model is not None else None


def expand_logs(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders by their event logs (`is_log_name`), on any path (the app lists sandbox folders
    through the sandbox)."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir() and not is_rolling_folder(p.name):
            found += sorted(f for f in p.iterdir() if (f.is_file() and is_log_name(f.name))
                            or (f.is_dir() and is_rolling_folder(f.name)))
        elif p.is_dir() or p.is_file():  # a rolling log's folder, or a log file
            found.append(p)
        else:
            raise AppError(f"{p} does not exist")
    if not found:
        raise AppError("no event logs found in " + ", ".join(str(p) for p in paths))
    if len(found) > MAX_LOGS:
        raise AppError(f"{len(found)} event logs; at most {MAX_LOGS} are read at once")
    return found


def _logs(paths: list[Path]) -> list[Any]:
    from intentos.skills.dataflow.eventlog import parse_eventlog

    return [parse_eventlog(p) for p in expand_logs(paths)]


@contextmanager
def _writing(output: Path) -> Iterator[None]:
    """An output that cannot be written (no such folder, no permission) is one error line naming it."""
    try:
        yield
    except OSError as exc:
        raise AppError(f"{output}: cannot be written ({exc.strerror or exc})") from None


def _saver(output: Path) -> Save:
    def save(data: bytes) -> str:
        with _writing(output):
            kit.write_local(output, data)
        return str(output)

    return save


def _f(v: float | None, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v, fmt)


@dataclass(frozen=True)
class _RuntimeOptions:
    """The options predict and recommend share: a history, a context in it, scale-outs, a model, --quick."""

    history: Path
    machine: str | None
    size: float | None
    params: list[str]
    scaleouts: list[int]
    model: Path | None
    quick: bool
    as_json: bool

    def run(self, work: Callable[..., T], **kwargs: Any) -> T:
        """`work` (predict_runtime, recommend_scaleout) on these inputs, under the one error policy."""
        def call() -> T:
            spec = _context(self.machine, self.size, self.params, self.as_json)
            return work(load_history(self.history), spec, scaleouts=self.scaleouts or None, model=_bellamy(self.model),
                        bellamy_overrides=QUICK_BELLAMY if self.quick else None, **kwargs)

        return guard(call, self.as_json)


def _runtime_options(
    history: Path = typer.Argument(..., help="execution history: C3O TSV or Bell CSV"),
    machine: str | None = MachineOpt,
    size: float | None = SizeOpt,
    param: list[str] = ParamOpt,
    scaleout: list[int] = ScaleoutsOpt,
    model: Path | None = ModelOpt,
    quick: bool = QuickOpt,
    as_json: bool = JsonOpt,
) -> _RuntimeOptions:
    return _RuntimeOptions(history, machine, size, param or [], scaleout or [], model, quick, as_json)


def _with_runtime_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command(options, **its own)` as a typer command that also takes `_runtime_options`' parameters,
    which are declared once there (typer reads a command's options from its signature)."""
    own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
    shared = list(inspect.signature(_runtime_options, eval_str=True).parameters.values())

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        command(_runtime_options(**{p.name: kwargs.pop(p.name) for p in shared}), **kwargs)

    params = [shared[0], *own, *shared[1:]]  # the history stays the first argument
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


# -- commands -----------------------------------------------------------------------------------------------


@app.command()
@_with_runtime_options
def predict(options: _RuntimeOptions) -> None:
    """Predict the runtime at each scale-out: Bellamy, the Ernest baseline and what was observed."""
    emit(options.run(predict_runtime), options.as_json, _render_prediction)


def _render_prediction(r: RuntimePrediction) -> None:
    out.print(r.summary, highlight=False)
    ctx = ", ".join(f"{k}={v}" for k, v in r.context.items()) or "the only context"
    table = Table(title=f"{r.algorithm} — {ctx}", title_justify="left")
    for col in ("scale-out", "Bellamy (s)", "Ernest (s)", "observed (s)"):
        table.add_column(col, justify="right")
    for row in r.rows:
        table.add_row(str(row.scaleout), _f(row.bellamy_s), _f(row.ernest_s), _f(row.observed_s))
    out.print(table)


@app.command()
@_with_runtime_options
def recommend(
    options: _RuntimeOptions,
    target: float = typer.Option(..., "--target", "-t", help="runtime target in seconds"),
    price: float = typer.Option(1.0, "--price", help="cost of one machine per hour"),
    method: str = typer.Option("bellamy", "--method", help="bellamy | ernest"),
) -> None:
    """The cheapest scale-out whose predicted runtime meets the target, with runtime and cost per candidate."""
    if method not in ("bellamy", "ernest"):
        fail(f"--method {method!r}: choose bellamy or ernest", options.as_json)
    result = options.run(recommend_scaleout, target_s=target, cost_per_node_hour=price, method=method)
    emit(result, options.as_json, _render_recommendation)


def _render_recommendation(r: Recommendation) -> None:
    out.print(r.summary, highlight=False)
    table = Table(title=f"candidates ({r.method}, target {r.target_runtime_s:g}s)", title_justify="left")
    for col in ("scale-out", "runtime (s)", "cost", "meets target"):
        table.add_column(col, justify="right")
    for c in r.candidates:
        mark = "[bold green]← cheapest[/]" if c.scaleout == r.recommended else ("yes" if c.meets_target else "no")
        table.add_row(str(c.scaleout), f"{c.runtime_s:.1f}", f"{c.cost:.4g}", mark)
    out.print(table)


@app.command()
def train(
    history: Path = typer.Argument(..., help="execution history: C3O TSV or Bell CSV"),
    output: Path = typer.Option(..., "--out", "-o", help="model file to write"),
    quick: bool = QuickOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Pre-train a Bellamy model on every context of a history and save it (torch state dict + JSON header)."""
    result = guard(lambda: train_runtime_model(load_history(history), _saver(output),
                                               bellamy_overrides=QUICK_BELLAMY if quick else None), as_json)
    emit(result, as_json, _render_trained)


def _render_trained(r: TrainedModel) -> None:
    out.print(f"{r.summary}; wrote {r.model}", highlight=False)


@app.command("train-rescaler")
def train_rescaler_command(
    logs: list[Path] = typer.Argument(..., help="complete Spark event logs of earlier runs, or folders of them"),
    output: Path = typer.Option(..., "--out", "-o", help="model file to write"),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="training epochs"),
    quick: bool = QuickOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Train an Enel rescaling model (graph neural network over stages) on complete event logs."""
    overrides = {**(QUICK_ENEL if quick else {}), **({"epochs": epochs} if epochs else {})}
    result = guard(lambda: train_rescaler(_logs(logs), _saver(output), enel_overrides=overrides)[1], as_json)
    emit(result, as_json, _render_trained)


@app.command()
def rescale(
    eventlog: Path = typer.Argument(..., help="the running job's Spark event log"),
    target: float = typer.Option(..., "--target", "-t", help="runtime target of the whole job in seconds"),
    model: Path | None = typer.Option(None, "--model", help="a trained Enel model"),
    history: list[Path] = typer.Option(None, "--history", help="without --model: complete logs (or folders) of "
                                                               "earlier runs to learn from (repeat)"),
    candidate: list[int] = typer.Option(None, "--candidate", "-c", help="scale-out to consider (repeat)"),
    apply: str | None = typer.Option(None, "--apply", metavar="CONTROL_URL",
                                     help="apply the plan to the running job through its executor control endpoint "
                                          "(spark-run --rescalable prints it)"),
    quick: bool = QuickOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Recommend the scale-out for a running job now: the smallest one meeting the target (Enel); with --apply,
    request or kill executors so the job runs on it."""
    from intentos.skills.dataflow.enel import Enel
    from intentos.skills.dataflow.eventlog import parse_eventlog

    def plan() -> RescalePlan:
        if model is not None:
            enel = Enel.load(model)
        elif history:
            enel = train_rescaler(_logs(history), enel_overrides=QUICK_ENEL if quick else None)[0]
        else:
            fail("give --model or --history (complete event logs of earlier runs)", as_json)
        return rescale_plan(parse_eventlog(eventlog), target, model=enel, candidates=candidate or None)

    if apply is None:
        emit(guard(plan, as_json), as_json, _render_plan)
    else:
        emit(guard(lambda: apply_rescale(plan(), apply), as_json), as_json, _render_rescaled)


def _render_plan(r: RescalePlan) -> None:
    out.print(r.summary, highlight=False)
    table = Table(title=f"scale-outs from the next job on (target {r.target_runtime_s:g}s, "
                        f"{r.elapsed_s:.0f}s elapsed)", title_justify="left")
    for col in ("executors", "remaining (s)", "total (s)", "meets target"):
        table.add_column(col, justify="right")
    for c in r.candidates:
        mark = "[bold green]← recommended[/]" if c.executors == r.recommended_executors else (
            "yes" if c.meets_target else "no")
        table.add_row(str(c.executors), f"{c.remaining_s:.1f}", f"{c.total_s:.1f}", mark)
    out.print(table)


def _render_rescaled(r: Rescaled) -> None:
    _render_plan(r.plan)
    out.print(f"[bold]{'scaled' if r.changed else 'kept'}[/]: {r.summary}", highlight=False)


class SparkRunResult(BaseModel):
    """What `spark-run` did: the job's own result, where Spark wrote its event log, and what that log says."""

    job: str
    size: int
    executors: int
    dynamic: bool
    seconds: float
    result: dict[str, Any]
    eventlog: str
    jobs: int
    stages: int
    max_executors: int
    runtime_s: float


@app.command("spark-run")
def spark_run(
    job: str = typer.Argument(..., help="grep | sort | kmeans | pagerank | sgd"),
    size: int = typer.Option(20_000, "--size", "-s", min=1, help="rows/records/points/nodes to generate"),
    executors: int = typer.Option(2, "--executors", "-e", min=1, help="most executors (dynamic allocation's max)"),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="workers of the local cluster "
                                                                             "(default: --executors)"),
    eventlogs: Path = typer.Option(Path("spark-events"), "--eventlogs", help="folder Spark writes event logs to"),
    static: bool = typer.Option(False, "--static", help="all executors from the start (no dynamic allocation)"),
    rescalable: bool = typer.Option(False, "--rescalable", help="start on --executors, no dynamic allocation, and "
                                                                "serve an executor control endpoint for rescale "
                                                                "--apply (printed on stderr once the job runs)"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = JsonOpt,
) -> None:
    """Run a C3O-style job on a local Spark standalone cluster (started and stopped here), writing Spark's
    own event log, and read that log back."""
    from intentos.skills.dataflow.eventlog import parse_eventlog
    from intentos.skills.dataflow.sparkcluster import LocalCluster
    from intentos.skills.dataflow.sparkjobs import JOBS

    if job not in JOBS:
        fail(f"{job!r} is not a job; choose one of {', '.join(JOBS)}", as_json)
    dynamic = not (static or rescalable)

    def run() -> SparkRunResult:
        with LocalCluster(eventlogs.resolve().parent / ".spark-work", workers=workers or executors) as cluster:
            running = cluster.launch(job, size, eventlogs, seed=seed, executors=executors, dynamic=dynamic,
                                     rescalable=rescalable)
            if running.control_url is not None:
                _announce(running)
            done = running.wait()
        log = parse_eventlog(done.eventlog)
        return SparkRunResult(job=job, size=size, executors=executors, dynamic=dynamic,
                              seconds=round(done.seconds, 1), result=done.result, eventlog=str(done.eventlog),
                              jobs=len(log.jobs), stages=len(log.stages), max_executors=log.max_executors(),
                              runtime_s=round(log.runtime_s, 1))

    def show(r: SparkRunResult) -> None:
        out.print(f"{r.job} ({r.size:,} rows) on {r.executors} executors{'' if r.dynamic else ', static'}: "
                  f"{r.runtime_s:.1f} s in Spark ({r.seconds:.1f} s with start-up); {r.jobs} jobs, {r.stages} stages, "
                  f"at most {r.max_executors} executors at once", highlight=False)
        out.print(f"event log: {r.eventlog}", highlight=False)

    emit(guard(run, as_json), as_json, show)


def _announce(running: SparkApp, timeout_s: float = 120) -> None:
    """Tell the user (on stderr, so --json stays one document) where to rescale the job from, once Spark has
    created its event log."""
    deadline = time.monotonic() + timeout_s
    while (log := running.eventlog()) is None and running.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    where = str(log) if log is not None else f"a new event log in {running.eventlog_dir}"
    Console(stderr=True, soft_wrap=True).print(
        f"{running.app_name} is running; rescale it with:\n  intentos skills dataflow rescale {where} --target "
        f"SECONDS --model MODEL --apply {running.control_url}", highlight=False)


@app.command("generate-eventlog")
def generate_eventlog_command(
    output: Path = typer.Argument(..., help="event log file to write (JSON lines, Spark's schema)"),
    kind: str = typer.Option("kmeans", "--kind", "-k", help="grep | sort | kmeans | pagerank | sgd"),
    executors: int = typer.Option(4, "--executors", "-e", min=1, help="executors at the start"),
    rescale_at: list[str] = typer.Option(None, "--rescale", help="AFTER_JOB:EXECUTORS, e.g. 2:8 (repeat)"),
    stop_after_job: int | None = typer.Option(None, "--stop-after-job", min=0, help="cut the log there (running)"),
    seed: int = typer.Option(0, "--seed"),
    tasks: int | None = typer.Option(None, "--tasks", min=0, help="TaskEnd events logged per stage (default all)"),
    as_json: bool = JsonOpt,
) -> None:
    """Write a synthetic Spark event log of a recurring job (for trying Enel without a Spark cluster)."""
    from intentos.skills.dataflow.eventgen import KINDS, GeneratedRun, Rescale, generate_eventlog

    if kind not in KINDS:
        fail(f"--kind {kind!r}: choose one of {', '.join(KINDS)}", as_json)
    plan = []
    for text in rescale_at or []:
        after, sep, n = text.partition(":")
        if not sep or not after.strip().isdigit() or not n.strip().isdigit() or int(n) < 1:
            fail(f"--rescale {text!r}: expected AFTER_JOB:EXECUTORS, e.g. 2:8", as_json)
        plan.append(Rescale(after_job=int(after), executors=int(n)))

    def write() -> GeneratedRun:
        with _writing(output):
            return generate_eventlog(output, kind, executors, rescales=plan,  # type: ignore[arg-type]
                                     seed=seed, stop_after_job=stop_after_job, max_tasks_logged=tasks)

    def show(r: GeneratedRun) -> None:
        state = "complete" if r.complete else "running (cut)"
        out.print(f"wrote {output}: {kind}, {executors} executors, {len(r.stages)} stages, {r.runtime_s:.1f}s, "
                  f"{state}", highlight=False)

    emit(guard(write, as_json), as_json, show)
