"""The `faults` app: simulate incidents in a distributed application, train Arvalus / D-Arvalus on them,
and localize the origin of an anomaly from a topology and a metrics window.

Two layers, as in the logs skill. `simulate_files`, `train_model` and `localize_window` work on real
paths and are what the CLI (`intentos skills faults ...`) calls; `FaultsApp` wraps them for the agent,
resolving every path inside the sandbox (a path leading out is refused) and naming sandbox-relative
paths in results and errors. torch is imported inside the functions, so loading the Function Table
stays fast.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from intentos.app import App
from intentos.errors import AppError, IntentosError, SandboxError
from intentos.function import Effect, function
from intentos.skills import paths
from intentos.skills.faults.errors import FaultsInputError
from intentos.skills.faults.metrics import read_metrics, write_csv
from intentos.skills.faults.simulator import SCENARIOS, GroundTruth, Incident, simulate, webshop
from intentos.skills.faults.topology import Topology, load_topology

ModelKind = Literal["arvalus", "d-arvalus"]
ScenarioName = Literal["local", "downstream", "upstream", "colocated"]
Layout = Literal["wide", "long"]
Progress = Callable[[int, float], None]  # (epoch, training loss)


# -- results ---------------------------------------------------------------------------------------------


class Simulated(BaseModel):
    topology: str
    metrics: str
    truth: str
    components: int
    hosts: int
    incidents: int
    samples: int = Field(description="timestamps in the metrics file (2 Hz)")
    by_scenario: dict[str, int]
    by_kind: dict[str, int]
    summary: str


class TrainedModel(BaseModel):
    model: str = Field(description="the saved model file")
    kind: str = Field(description="arvalus | d-arvalus")
    incidents: int
    anomalous_incidents: int
    window: int = Field(description="samples per window the model reads")
    epochs: int
    best_epoch: int
    train_loss: float
    validation_loss: float | None
    seconds: float
    summary: str


class Suspect(BaseModel):
    rank: int
    component: str
    host: str
    anomaly_probability: float = Field(description="1 - P(normal)")
    predicted: str = Field(description="normal, or (anomaly probability over 0.5) its most likely anomaly kind")
    probabilities: dict[str, float]


class Localization(BaseModel):
    anomalous: bool = Field(description="whether any component is predicted to be the origin of an anomaly")
    origins: list[str] = Field(description="components predicted anomalous, most likely first")
    window_start: str
    window_end: str
    samples: int
    model: str
    ranking: list[Suspect] = Field(description="components by anomaly probability, capped at `top`")
    summary: str


# -- arguments -------------------------------------------------------------------------------------------


class SimulateArgs(BaseModel):
    output: str = Field("faults", description="folder for topology.yaml, metrics.csv and truth.json")
    incidents: int = Field(40, ge=1, le=5000, description="windows to simulate, each an incident or a normal one")
    window: int = Field(60, ge=16, le=1200, description="samples per window (2 Hz: 60 is 30 s)")
    scenarios: list[ScenarioName] | None = Field(None, description="propagation scenarios to draw from; default all")
    normal_share: float = Field(0.2, ge=0, le=1, description="share of windows without an anomaly")
    topology: str | None = Field(None, description="a topology YAML to simulate; default a 19-component web shop")
    layout: Layout = Field("wide", description="metrics CSV layout: wide (a column per metric) or long")
    seed: int = 0
    overwrite: bool = Field(False, description="replace existing files (the old ones go to the trash)")


class TrainArgs(BaseModel):
    topology: str = Field("faults/topology.yaml", description="topology YAML")
    metrics: str = Field("faults/metrics.csv", description="metrics CSV or Prometheus JSON")
    truth: str = Field("faults/truth.json", description="ground truth JSON: incident windows and their origins")
    model: ModelKind = Field("d-arvalus", description="d-arvalus (typed dependencies, attention) or arvalus")
    output: str = Field("faults/model.pt", description="where to save the trained model")
    epochs: int = Field(30, ge=1, le=500)
    seed: int = 0
    overwrite: bool = Field(False, description="replace an existing model (the old one goes to the trash)")


class LocalizeArgs(BaseModel):
    topology: str = Field("faults/topology.yaml", description="topology YAML")
    metrics: str = Field("faults/metrics.csv", description="metrics CSV or Prometheus JSON")
    model: str = Field("faults/model.pt", description="a model saved by faults.train")
    end: str | None = Field(None, description="the window ends here (Unix seconds or ISO time); default the last "
                                              "sample")
    start: str | None = Field(None, description="or: the window starts here; it should begin before the anomaly")
    top: int = Field(10, ge=1, le=1000, description="how many components to list")


# -- the work, on real paths -------------------------------------------------------------------------------


def _topology(path: Path | None, name: str | None) -> Topology:
    return webshop() if path is None else load_topology(path, name)


def simulate_files(folder: Path, *, folder_name: str | None = None, topology: Path | None = None,
                   topology_name: str | None = None, incidents: int = 40, window: int = 60,
                   scenarios: list[str] | None = None, normal_share: float = 0.2, layout: str = "wide",
                   seed: int = 0) -> Simulated:
    """Simulate incidents and write folder/topology.yaml, folder/metrics.csv, folder/truth.json."""
    topo = _topology(topology, topology_name)
    try:
        sim = simulate(topo, incidents=incidents, seed=seed, window=window,
                       scenarios=tuple(scenarios or SCENARIOS), normal_share=normal_share)
    except ValueError as exc:
        raise FaultsInputError(topology_name or str(topology or "webshop"), str(exc)) from None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "topology.yaml").write_text(topo.to_yaml(), encoding="utf-8")
    stamps = sim.timestamps()
    write_csv(folder / "metrics.csv", stamps, topo.names, sim.stacked(), layout)
    (folder / "truth.json").write_text(sim.truth().model_dump_json(indent=1), encoding="utf-8")
    shown = folder_name or str(folder)
    by_scenario = Counter(i.scenario for i in sim.incidents)
    by_kind = Counter(i.kind or "none" for i in sim.incidents)
    anomalous = sum(1 for i in sim.incidents if i.origins)
    return Simulated(
        topology=f"{shown}/topology.yaml", metrics=f"{shown}/metrics.csv", truth=f"{shown}/truth.json",
        components=len(topo.components), hosts=len(topo.all_hosts()), incidents=incidents, samples=len(stamps),
        by_scenario=dict(sorted(by_scenario.items())), by_kind=dict(sorted(by_kind.items())),
        summary=f"{incidents} windows of {window} samples ({anomalous} with an anomaly) for {len(topo.components)} "
                f"components of {topo.name} on {len(topo.all_hosts())} hosts, written to {shown}/")


def load_truth(path: Path, name: str | None = None) -> GroundTruth:
    name = name or str(path)
    if not path.is_file():
        raise FaultsInputError(name, "no such file" if not path.exists() else "is a folder, not a truth file")
    try:
        return GroundTruth.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        err = exc.errors()[0]
        if err["type"] == "json_invalid":
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as jexc:
                raise FaultsInputError(name, f"malformed JSON: {jexc.msg}", jexc.lineno) from None
        field = ".".join(str(p) for p in err["loc"])
        raise FaultsInputError(name, err["msg"], field=field or None) from None


def training_windows(topo: Topology, metrics_path: Path, truth: GroundTruth, *, metrics_name: str,
                     truth_name: str) -> list[tuple[np.ndarray, Incident]]:
    """(values [N, M, W], incident) for every incident of the truth, cut from the metrics."""
    series = read_metrics(metrics_path, metrics_name).select(topo.names)
    names = set(topo.names)
    out = []
    for i, inc in enumerate(truth.incidents):
        for comp in inc.origins:
            if comp not in names:
                raise FaultsInputError(truth_name, f"origin {comp!r} is not a component of the topology",
                                       field=f"incidents.{i}.origins")
        # A small tolerance: timestamps are written rounded to 0.1 s.
        mask = (series.timestamps >= inc.start - 0.05) & (series.timestamps <= inc.end + 0.05)
        if int(mask.sum()) != truth.window:
            raise FaultsInputError(truth_name, f"incident {inc.index} spans {int(mask.sum())} samples of "
                                               f"{metrics_name}, the truth says windows have {truth.window}",
                                   field=f"incidents.{i}")
        out.append((np.asarray(series.values[:, :, mask]), inc))
    return out


def train_model(topology: Path, metrics: Path, truth: Path, output: Path, *, names: dict[str, str] | None = None,
                model: str = "d-arvalus", epochs: int = 30, seed: int = 0, threads: int = 1,
                progress: Progress | None = None) -> TrainedModel:
    """Train Arvalus / D-Arvalus on the incidents of a truth file and save it."""
    from intentos.skills.faults.training import TrainConfig, graph, labels_for, to_bytes, train

    names = names or {}
    topo = load_topology(topology, names.get("topology"))
    gt = load_truth(truth, names.get("truth"))
    if not gt.incidents:
        raise FaultsInputError(names.get("truth", str(truth)), "no incidents to learn from", field="incidents")
    windows = training_windows(topo, metrics, gt, metrics_name=names.get("metrics", str(metrics)),
                               truth_name=names.get("truth", str(truth)))
    graphs = []
    for values, inc in windows:
        try:
            graphs.append(graph(topo, values, labels_for(topo, inc)))
        except ValueError as exc:
            raise FaultsInputError(names.get("truth", str(truth)), str(exc)) from None
    config = TrainConfig(model=model, epochs=epochs, seed=seed, threads=threads)
    trained = train(graphs, config, window=gt.window, progress=progress)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(to_bytes(trained))
    h = trained.header
    anomalous = sum(1 for _, inc in windows if inc.origins)
    shown = names.get("output", str(output))
    return TrainedModel(model=shown, kind=model, incidents=len(graphs), anomalous_incidents=anomalous,
                        window=gt.window, epochs=epochs, best_epoch=h.best_epoch, train_loss=h.train_loss,
                        validation_loss=h.validation_loss, seconds=h.seconds,
                        summary=f"{model} trained on {len(graphs)} incidents ({anomalous} anomalous) for {epochs} "
                                f"epochs in {h.seconds:.1f}s (best epoch {h.best_epoch}); saved to {shown}")


def _instant(raw: str | None, field: str) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise AppError(f"{field} {raw!r} is neither Unix seconds nor an ISO time") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def localize_window(topology: Path, metrics: Path, model: Path, *, names: dict[str, str] | None = None,
                    end: str | None = None, start: str | None = None, top: int = 10) -> Localization:
    """Classify every component of one metrics window and rank them by anomaly probability."""
    from intentos.skills.faults.training import decide, graph, load, predict

    names = names or {}
    topo = load_topology(topology, names.get("topology"))
    trained = load(model, names.get("model"))
    series = read_metrics(metrics, names.get("metrics")).select(topo.names)
    win = series.window(trained.header.window, end=_instant(end, "end"), start=_instant(start, "start"))
    probs = predict(trained, [graph(topo, win.values)])[0]
    classes = trained.header.classes
    anomaly = 1 - probs[:, 0]
    predicted = decide(probs)
    order = sorted(range(len(topo.names)), key=lambda i: -anomaly[i])
    ranking = [Suspect(rank=r + 1, component=topo.names[i], host=topo.host_of(topo.names[i]),
                       anomaly_probability=round(float(anomaly[i]), 4), predicted=classes[int(predicted[i])],
                       probabilities={c: round(float(p), 4) for c, p in zip(classes, probs[i], strict=True)})
               for r, i in enumerate(order)]
    origins = [s.component for s in ranking if s.predicted != "normal"]
    first, last = (datetime.fromtimestamp(float(t), UTC).isoformat(timespec="seconds")
                   for t in (win.timestamps[0], win.timestamps[-1]))
    if origins:
        lead = ranking[0]
        summary = (f"anomalous: {len(origins)} component(s) predicted as origin; most likely {lead.component} "
                   f"({lead.predicted}, p={lead.anomaly_probability:.2f}) on {lead.host}")
    else:
        summary = (f"no anomaly: every component predicted normal (highest anomaly probability "
                   f"{ranking[0].anomaly_probability:.2f}, {ranking[0].component})")
    return Localization(anomalous=bool(origins), origins=origins, window_start=first, window_end=last,
                        samples=len(win.timestamps), model=f"{trained.header.config.model}",
                        ranking=ranking[:top], summary=f"{summary}; window {first} .. {last}")


# -- the app -----------------------------------------------------------------------------------------------


class FaultsApp(App):
    name = "faults"
    description = ("Fault localization in distributed applications (Arvalus / D-Arvalus graph neural networks): "
                   "simulate incidents, train a model, find which components an anomaly started at.")

    @function(Effect.WRITE)
    def simulate(self, args: SimulateArgs) -> Simulated:
        """Simulate a multi-component application with injected anomalies; writes topology, metrics and truth."""
        with self._errors():
            folder = self._target(args.output, folder=True)
            for file in ("topology.yaml", "metrics.csv", "truth.json"):
                self._replace(folder / file, args.overwrite, f"{args.output}/{file}")
            topo = self._file(args.topology) if args.topology else None
            return simulate_files(folder, folder_name=self.sandbox.relative(folder), topology=topo,
                                  topology_name=args.topology, incidents=args.incidents, window=args.window,
                                  scenarios=list(args.scenarios) if args.scenarios else None,
                                  normal_share=args.normal_share, layout=args.layout, seed=args.seed)

    @function(Effect.WRITE)
    def train(self, args: TrainArgs) -> TrainedModel:
        """Train an Arvalus or D-Arvalus model on incidents (topology, metrics, truth) and save it."""
        with self._errors():
            out = self._target(args.output)
            self._replace(out, args.overwrite, args.output)
            names = {"topology": args.topology, "metrics": args.metrics, "truth": args.truth,
                     "output": self.sandbox.relative(out)}
            # `faults: {threads: N}` in the settings: torch threads for training (default 1)
            return train_model(self._file(args.topology), self._file(args.metrics), self._file(args.truth), out,
                               names=names, model=args.model, epochs=args.epochs, seed=args.seed,
                               threads=int(self.ctx.settings.get("faults", {}).get("threads", 1)))

    @function(Effect.READ)
    def localize(self, args: LocalizeArgs) -> Localization:
        """Find whether the application is anomalous and which components are the origin, and of what kind."""
        with self._errors():
            names = {"topology": args.topology, "metrics": args.metrics, "model": args.model}
            return localize_window(self._file(args.topology), self._file(args.metrics), self._file(args.model),
                                   names=names, end=args.end, start=args.start, top=args.top)

    # -- helpers ----------------------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Bad input becomes an AppError naming sandbox-relative paths, as the model and the user know them."""
        try:
            yield
        except (SandboxError, AppError):
            raise
        except IntentosError as exc:
            raise AppError(str(exc).replace(f"{self.sandbox.root}{os.sep}", "")) from None

    def _file(self, raw: str) -> Path:
        return paths.existing_file(self.sandbox, raw)

    def _target(self, raw: str, folder: bool = False) -> Path:
        return paths.target(self.sandbox, raw, folder=folder)

    def _replace(self, path: Path, overwrite: bool, shown: str) -> None:
        paths.make_room(self.sandbox, path, overwrite, shown)
