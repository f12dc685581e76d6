"""Command line: `intentos skills training start|status|stop|compare` (`intentos train` is a shortcut
of `start`). Jobs live under INTENTOS_HOME/training/jobs unless --root says otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from intentos.clikit import JsonOpt, emit, fail, guard
from intentos.skills.training import compare as cmp
from intentos.skills.training import jobs

out = Console(soft_wrap=True)  # tables are wider than 80 columns
RootOpt = typer.Option(None, "--root", help="jobs folder (default: INTENTOS_HOME/training/jobs)")

app = typer.Typer(help="Distributed training jobs: start, status, stop, compare.", no_args_is_help=True)


def _show(status: jobs.JobStatus) -> None:
    loss = f"{status.eval_loss:.4f}" if status.eval_loss is not None else "-"
    node = f" (machine {status.node_rank} of {status.nnodes})" if status.nnodes > 1 else ""
    out.print(f"{status.job_id}{node}: {status.state}, step {status.step}/{status.steps}, {status.strategy}, "
              f"eval loss {loss}, {cmp.human_bytes(status.bytes)} sent per rank  ({status.dir})", highlight=False)
    if status.log_tail:
        out.print(status.log_tail, highlight=False)


@app.command("start")
def start_command(
    config: Path = typer.Argument(..., help="job YAML file (see benchmarks/configs/)"),
    nproc: int = typer.Option(2, "--nproc", help="processes (replicas) on this machine"),
    resume: bool = typer.Option(False, "--resume", help="continue the job from its latest checkpoint"),
    name: str | None = typer.Option(None, "--name", help="job id (default: the config's name)"),
    nnodes: int = typer.Option(1, "--nnodes", help="machines taking part; each runs this command with its --node-rank"),
    node_rank: int = typer.Option(0, "--node-rank", help="this machine's number, 0 to nnodes-1 (0: the one at "
                                  "--rdzv-endpoint)"),
    rdzv_endpoint: str | None = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of machine 0, where the "
                                             "others meet it (with --nnodes > 1)"),
    wait: bool = typer.Option(False, "--wait", help="block until the job ends"),
    root: Path | None = RootOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Start a distributed training job in the background (torchrun; gloo on CPU, NCCL on GPU)."""
    where = root or jobs.default_root()
    status = guard(lambda: jobs.start(config, where, nproc, resume, name, nnodes=nnodes, node_rank=node_rank,
                                      rdzv_endpoint=rdzv_endpoint), as_json)
    if wait:
        status = guard(lambda: jobs.wait(where, status.job_id, timeout=7 * 24 * 3600), as_json)
    emit(status, as_json, _show)
    if status.state in ("failed", "died"):
        raise typer.Exit(1)


@app.command("status")
def status_command(job_id: str | None = typer.Argument(None), root: Path | None = RootOpt,
                   as_json: bool = JsonOpt) -> None:
    """State, step, eval loss and bytes of one job or all jobs."""
    where = root or jobs.default_root()
    found = guard(lambda: [jobs.status(where, job_id)] if job_id else jobs.list_jobs(where), as_json)
    if as_json:
        print(json.dumps([s.model_dump() for s in found]))
    elif not found:
        out.print(f"no training jobs under {where}")
    for s in [] if as_json else found:
        _show(s)


@app.command("stop")
def stop_command(job_id: str, root: Path | None = RootOpt, as_json: bool = JsonOpt) -> None:
    """Stop a running job (resume it later with `intentos skills training start CONFIG --resume`)."""
    emit(guard(lambda: jobs.stop(root or jobs.default_root(), job_id), as_json), as_json, _show)


@app.command("compare")
def compare_command(job_ids: list[str] | None = typer.Argument(None), root: Path | None = RootOpt,
                    plot: Path = typer.Option(Path("training-compare.png"), "--plot", help="PNG to write"),
                    reference: str | None = typer.Option(
                        None, "--reference", help="job the bytes ratio at matched loss is against "
                                                  "(default: the DiLoCo job among those compared)"),
                    tolerance: float = typer.Option(
                        cmp.DEFAULT_TOLERANCE, "--tolerance", min=0, max=1,
                        help="a job matches once its eval loss is within this fraction of the reference's final "
                             "eval loss"),
                    as_json: bool = JsonOpt) -> None:
    """A table of eval loss and bytes per job (with the bytes ratio at matched loss against a reference job),
    and a PNG plot of eval loss against bytes."""
    where = root or jobs.default_root()
    found = guard(lambda: [jobs.status(where, j) for j in job_ids] if job_ids else jobs.list_jobs(where), as_json)
    if not found:
        fail(f"no training jobs under {where}", as_json)
    rows = guard(lambda: cmp.rows(found, reference, tolerance), as_json)
    plot.write_bytes(cmp.plot_png(found))
    if as_json:
        print(json.dumps({"rows": [r.model_dump() for r in rows], "plot": str(plot), "reference": rows[0].reference,
                          "tolerance": tolerance, "rule": cmp.rule(rows, tolerance)}))
    else:
        out.print(cmp.table(rows, tolerance), highlight=False)
        out.print(f"plot: {plot}")
