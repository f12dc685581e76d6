"""`intentos skills faults ...`: fault localization on the command line, on any file (no sandbox).

    intentos skills faults simulate shop/ --incidents 200
    intentos skills faults train shop/ --model d-arvalus --epochs 30
    intentos skills faults localize shop/topology.yaml shop/metrics.csv --model shop/model.pt
    intentos skills faults topology shop/topology.yaml

Each command prints rich tables (or JSON with --json); bad input is one red line and exit code 2,
Ctrl-C exit code 130 (intentos.clikit).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from intentos.clikit import JsonOpt, emit, fail, guard
from intentos.errors import AppError
from intentos.skills.faults.metrics import read_metrics
from intentos.skills.faults.ops import (
    Localization,
    Simulated,
    TrainedModel,
    load_truth,
    localize_window,
    simulate_files,
    train_model,
)
from intentos.skills.faults.simulator import SCENARIOS
from intentos.skills.faults.topology import load_topology
from intentos.skills.kit.files import write_local

app = typer.Typer(help="Fault localization in distributed applications (Arvalus / D-Arvalus): simulate "
                       "incidents, train, localize the origin of an anomaly, show a topology.",
                  no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True)


def _write_local(path: Path, data: bytes) -> str:
    try:
        write_local(path, data)
    except OSError as exc:
        raise AppError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    return str(path)


@app.command()
def simulate(
    folder: Path = typer.Argument(..., help="folder to write topology.yaml, metrics.csv and truth.json to"),
    incidents: int = typer.Option(40, "--incidents", "-n", min=1, help="windows to simulate"),
    window: int = typer.Option(60, "--window", "-w", min=16, help="samples per window (2 Hz)"),
    scenario: list[str] = typer.Option(None, "--scenario", "-s", help=f"scenario to draw from (repeat): "
                                                                      f"{', '.join(SCENARIOS)}; default all"),
    normal_share: float = typer.Option(0.2, "--normal-share", min=0.0, max=1.0, help="share of normal windows"),
    topology: Path | None = typer.Option(None, "--topology", "-t", help="topology YAML (default: the web shop)"),
    layout: str = typer.Option("wide", "--layout", help="metrics CSV layout: wide | long"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = JsonOpt,
) -> None:
    """Simulate an application with injected, propagating anomalies: topology, metrics at 2 Hz, ground truth."""
    unknown = [s for s in scenario or [] if s not in SCENARIOS]
    if unknown:
        fail(f"unknown scenario {unknown[0]!r} ({', '.join(SCENARIOS)})", as_json)
    if layout not in ("wide", "long"):
        fail(f"--layout {layout!r}: wide or long", as_json)
    result = guard(lambda: simulate_files(lambda name, data: _write_local(folder / name, data), str(folder),
                                           topology=load_topology(topology) if topology else None,
                                           topology_name=str(topology) if topology else None, incidents=incidents,
                                           window=window, scenarios=scenario or None, normal_share=normal_share,
                                           layout=layout, seed=seed), as_json)
    emit(result, as_json, _render_simulated)


def _render_simulated(r: Simulated) -> None:
    out.print(r.summary, highlight=False)
    table = Table(title="windows", title_justify="left")
    table.add_column("scenario")
    table.add_column("windows", justify="right")
    for k, v in r.by_scenario.items():
        table.add_row(k, str(v))
    kinds = Table(title="anomaly kinds", title_justify="left")
    kinds.add_column("kind")
    kinds.add_column("windows", justify="right")
    for k, v in r.by_kind.items():
        kinds.add_row(k, str(v))
    out.print(table, kinds)
    out.print(f"topology {r.topology}, metrics {r.metrics} ({r.samples} samples), truth {r.truth}", highlight=False)


@app.command()
def train(
    folder: Path | None = typer.Argument(None, help="a folder written by `simulate` (topology.yaml, metrics.csv, "
                                                     "truth.json); or give the files one by one"),
    topology: Path | None = typer.Option(None, "--topology", "-t", help="topology YAML"),
    metrics: Path | None = typer.Option(None, "--metrics", "-m", help="metrics CSV or Prometheus JSON"),
    truth: Path | None = typer.Option(None, "--truth", help="ground truth JSON (incident windows, origins)"),
    model: str = typer.Option("d-arvalus", "--model", help="d-arvalus | arvalus"),
    output: Path | None = typer.Option(None, "--out", "-o", help="model file (default <folder>/model.pt)"),
    epochs: int = typer.Option(30, "--epochs", "-e", min=1),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads"),
    as_json: bool = JsonOpt,
) -> None:
    """Train Arvalus or D-Arvalus on incidents with known origins and save the model."""
    if model not in ("arvalus", "d-arvalus"):
        fail(f"--model {model!r}: arvalus or d-arvalus", as_json)
    paths = {"topology": topology, "metrics": metrics, "truth": truth}
    for key, default in (("topology", "topology.yaml"), ("metrics", "metrics.csv"), ("truth", "truth.json")):
        if paths[key] is None:
            if folder is None:
                fail(f"give a FOLDER or --{key}", as_json)
            paths[key] = folder / default
    target = output or (folder or Path(".")) / "model.pt"

    def run() -> TrainedModel:
        columns = (TextColumn("training {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task(model, total=epochs, loss=0.0)
            names = {k: str(v) for k, v in paths.items()}
            return train_model(load_topology(paths["topology"]), read_metrics(paths["metrics"]),  # type: ignore[arg-type]
                               load_truth(paths["truth"]), lambda data: _write_local(target, data),  # type: ignore[arg-type]
                               names=names, model=model, epochs=epochs, seed=seed, threads=threads,
                               progress=lambda e, loss: bar.update(task, completed=e, loss=loss))

    emit(guard(run, as_json), as_json, lambda r: out.print(r.summary, highlight=False))


@app.command()
def localize(
    topology: Path = typer.Argument(..., help="topology YAML"),
    metrics: Path = typer.Argument(..., help="metrics CSV or Prometheus JSON"),
    model: Path = typer.Option(..., "--model", "-m", help="a model saved by `train`"),
    end: str | None = typer.Option(None, "--end", help="the window ends here (Unix seconds or ISO time); "
                                                       "default the last sample"),
    start: str | None = typer.Option(None, "--start", help="or: the window starts here"),
    top: int = typer.Option(10, "--top", "-n", min=1, help="how many components to list"),
    as_json: bool = JsonOpt,
) -> None:
    """Is the application anomalous, which components are the origin and of which kind: a ranked table."""
    from intentos.skills.faults.training import load

    result = guard(lambda: localize_window(load_topology(topology), read_metrics(metrics), load(model), end=end,
                                            start=start, top=top), as_json)
    emit(result, as_json, _render_localization)


def _render_localization(r: Localization) -> None:
    colour = "red" if r.anomalous else "green"
    out.print(f"[{colour}]{r.summary}[/{colour}]", highlight=False)
    table = Table(title=f"components by anomaly probability ({r.model}, {r.samples} samples)", title_justify="left")
    for col in ("rank", "component", "host", "p(anomaly)", "predicted"):
        table.add_column(col, justify="right" if col in ("rank", "p(anomaly)") else "left")
    for s in r.ranking:
        style = "bold red" if s.predicted != "normal" else None
        table.add_row(str(s.rank), s.component, s.host, f"{s.anomaly_probability:.3f}", s.predicted, style=style)
    out.print(table)


@app.command("topology")
def show_topology(
    path: Path = typer.Argument(..., help="topology YAML"),
    as_json: bool = JsonOpt,
) -> None:
    """Show a topology: components with host, role, callers and callees."""
    topo = guard(lambda: load_topology(path), as_json)
    if as_json:
        print(topo.model_dump_json(by_alias=True))
        return
    out.print(f"{topo.name}: {len(topo.components)} components on {len(topo.all_hosts())} hosts, "
              f"{len(topo.dependencies)} dependencies", highlight=False)
    table = Table(title_justify="left")
    for col in ("component", "host", "role", "calls", "called by"):
        table.add_column(col, overflow="fold")
    for c in topo.components:
        table.add_row(c.name, c.host, c.kind, ", ".join(topo.callees(c.name)), ", ".join(topo.callers(c.name)))
    out.print(table)
