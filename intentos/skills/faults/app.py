"""The `faults` app: simulate incidents in a distributed application, train Arvalus / D-Arvalus on them,
and localize the origin of an anomaly from a topology and a metrics window.

Two layers, as in the logs skill. `simulate_files`, `train_model` and `localize_window` work on parsed
inputs and hand what they produce to a writer; `FaultsApp` reads and writes every file only through
the sandbox (intentos.skills.paths: bounded reads, no link followed out, atomic writes whose old
version goes to the trash), naming sandbox-relative paths in results and errors, while the CLI
(`intentos skills faults ...`) reads and writes any path. torch is imported inside the functions, so
loading the Function Table stays fast.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from intentos.app import App
from intentos.errors import AppError, IntentosError, SandboxError
from intentos.function import Effect, function
from intentos.skills import paths
from intentos.skills.faults.errors import FaultsInputError
from intentos.skills.faults.metrics import MetricSeries, csv_bytes, parse_metrics
from intentos.skills.faults.simulator import SCENARIOS, GroundTruth, Incident, simulate, webshop
from intentos.skills.faults.topology import MAX_TOPOLOGY_BYTES, Topology, parse_topology_bytes
from intentos.skills.paths import MAX_DATA_BYTES, LocalReadError, TextProblem, decode_text, read_local, size_text

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


# -- the work, on parsed inputs (the app reads them through the sandbox, the CLI from any path) -----------

Write = Callable[[str, bytes], None]  # (file name in the output folder, content)
Save = Callable[[bytes], str]  # a model file's content -> its name as shown in results
SIM_FILES = ("topology.yaml", "metrics.csv", "truth.json")
MAX_SIMULATED_VALUES = 4_000_000  # components x metrics x samples of one simulation (the CSV is built in memory)
MAX_TRAINING_VALUES = 20_000_000  # incidents x components x metrics x window samples trained on at once


def simulate_files(write: Write, shown: str, *, topology: Topology | None = None, topology_name: str | None = None,
                   incidents: int = 40, window: int = 60, scenarios: list[str] | None = None,
                   normal_share: float = 0.2, layout: str = "wide", seed: int = 0) -> Simulated:
    """Simulate incidents and hand topology.yaml, metrics.csv and truth.json to `write`; `shown` names the folder."""
    from intentos.skills.faults.metrics import METRICS

    topo = topology or webshop()
    size = len(topo.components) * len(METRICS) * incidents * window
    if size > MAX_SIMULATED_VALUES:
        raise AppError(f"{incidents} windows of {window} samples for {len(topo.components)} components are "
                       f"{size:,} values; at most {MAX_SIMULATED_VALUES:,} are simulated at once")
    try:
        sim = simulate(topo, incidents=incidents, seed=seed, window=window,
                       scenarios=tuple(scenarios or SCENARIOS), normal_share=normal_share)
    except ValueError as exc:
        raise FaultsInputError(topology_name or "webshop", str(exc)) from None
    stamps = sim.timestamps()
    metrics = csv_bytes(stamps, topo.names, sim.stacked(), layout)
    if len(metrics) > MAX_DATA_BYTES:
        raise AppError(f"the metrics would be {size_text(len(metrics))}; metrics files over "
                       f"{size_text(MAX_DATA_BYTES)} are not read back: simulate fewer or shorter windows")
    write("topology.yaml", topo.to_yaml().encode("utf-8"))
    write("metrics.csv", metrics)
    write("truth.json", sim.truth().model_dump_json(indent=1).encode("utf-8"))
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
    """A ground truth file anywhere (the CLI): `parse_truth` of its bytes."""
    name = name or str(path)
    try:
        data = read_local(path, what="truth file")
    except LocalReadError as exc:
        raise FaultsInputError(name, str(exc)) from None
    return parse_truth(data, name)


def parse_truth(data: bytes, name: str) -> GroundTruth:
    """Incident windows and their origins from the bytes of the JSON file `name`."""
    try:
        text = decode_text(data)
    except TextProblem as exc:
        raise FaultsInputError(name, exc.message, exc.line) from None
    try:
        return GroundTruth.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        if err["type"] == "json_invalid":
            try:
                json.loads(text)
            except json.JSONDecodeError as jexc:
                raise FaultsInputError(name, f"malformed JSON: {jexc.msg}", jexc.lineno) from None
            except (ValueError, RecursionError):
                pass
            raise FaultsInputError(name, f"malformed JSON: {err['msg']}") from None
        field = ".".join(str(p) for p in err["loc"])
        raise FaultsInputError(name, err["msg"], field=field or None) from None


def training_windows(topo: Topology, series: MetricSeries, truth: GroundTruth, *, metrics_name: str,
                     truth_name: str) -> list[tuple[np.ndarray, Incident]]:
    """(values [N, M, W], incident) for every incident of the truth, cut from the metrics."""
    series = series.select(topo.names)
    size = len(truth.incidents) * truth.window * series.values.shape[0] * series.values.shape[1]
    if size > MAX_TRAINING_VALUES:
        raise FaultsInputError(truth_name, f"{len(truth.incidents)} incidents of {truth.window} samples are "
                                           f"{size:,} values; at most {MAX_TRAINING_VALUES:,} are trained on at once")
    names = set(topo.names)
    out = []
    for i, inc in enumerate(truth.incidents):
        for comp in inc.origins:
            if comp not in names:
                raise FaultsInputError(truth_name, f"origin {comp!r} is not a component of the topology",
                                       field=f"incidents.{i}.origins")
        # A small tolerance: timestamps are written rounded to 0.1 s. (Timestamps are sorted.)
        lo = int(np.searchsorted(series.timestamps, inc.start - 0.05, side="left"))
        hi = int(np.searchsorted(series.timestamps, inc.end + 0.05, side="right"))
        if hi - lo != truth.window:
            raise FaultsInputError(truth_name, f"incident {inc.index} spans {max(hi - lo, 0)} samples of "
                                               f"{metrics_name}, the truth says windows have {truth.window}",
                                   field=f"incidents.{i}")
        out.append((np.asarray(series.values[:, :, lo:hi]), inc))
    return out


def train_model(topo: Topology, series: MetricSeries, truth: GroundTruth, save: Save, *,
                names: dict[str, str] | None = None, model: str = "d-arvalus", epochs: int = 30, seed: int = 0,
                threads: int = 1, progress: Progress | None = None) -> TrainedModel:
    """Train Arvalus / D-Arvalus on the incidents of a truth and save it; `names` name the inputs in errors."""
    from intentos.skills.faults.training import TrainConfig, graph, labels_for, to_bytes, train

    names = names or {}
    truth_name, metrics_name = names.get("truth", "truth"), names.get("metrics", series.source)
    if not truth.incidents:
        raise FaultsInputError(truth_name, "no incidents to learn from", field="incidents")
    windows = training_windows(topo, series, truth, metrics_name=metrics_name, truth_name=truth_name)
    graphs = []
    for values, inc in windows:
        try:
            graphs.append(graph(topo, values, labels_for(topo, inc)))
        except ValueError as exc:
            raise FaultsInputError(truth_name, str(exc)) from None
    config = TrainConfig(model=model, epochs=epochs, seed=seed, threads=threads)
    trained = train(graphs, config, window=truth.window, progress=progress)
    shown = save(to_bytes(trained))
    h = trained.header
    anomalous = sum(1 for _, inc in windows if inc.origins)
    return TrainedModel(model=shown, kind=model, incidents=len(graphs), anomalous_incidents=anomalous,
                        window=truth.window, epochs=epochs, best_epoch=h.best_epoch, train_loss=h.train_loss,
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
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        raise AppError(f"{field} {raw!r} is neither Unix seconds nor an ISO time") from None


def localize_window(topo: Topology, series: MetricSeries, trained: Any, *, end: str | None = None,
                    start: str | None = None, top: int = 10) -> Localization:
    """Classify every component of one metrics window and rank them by anomaly probability."""
    from intentos.skills.faults.training import decide, graph, predict

    series = series.select(topo.names)
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
            folder = paths.folder_target(self.sandbox, args.output)
            base = args.output.rstrip("/") or args.output
            # Checked before the work: each output is refused if anything (a link too) is there, unless overwrite.
            targets = {f: paths.write_target(self.sandbox, f"{base}/{f}", overwrite=args.overwrite) for f in SIM_FILES}
            topo = self._topology(args.topology) if args.topology else None

            def write(file: str, data: bytes) -> None:
                paths.write_file(self.sandbox, targets[file], data, overwrite=args.overwrite, shown=f"{base}/{file}")

            return simulate_files(write, folder, topology=topo, topology_name=args.topology,
                                  incidents=args.incidents, window=args.window,
                                  scenarios=list(args.scenarios) if args.scenarios else None,
                                  normal_share=args.normal_share, layout=args.layout, seed=args.seed)

    @function(Effect.WRITE)
    def train(self, args: TrainArgs) -> TrainedModel:
        """Train an Arvalus or D-Arvalus model on incidents (topology, metrics, truth) and save it."""
        with self._errors():
            out = paths.write_target(self.sandbox, args.output, overwrite=args.overwrite)

            def save(data: bytes) -> str:
                return paths.write_file(self.sandbox, out, data, overwrite=args.overwrite, shown=args.output)

            names = {"topology": args.topology, "metrics": args.metrics, "truth": args.truth}
            # `faults: {threads: N}` in the settings: torch threads for training (default 1)
            return train_model(self._topology(args.topology), self._metrics(args.metrics), self._truth(args.truth),
                               save, names=names, model=args.model, epochs=args.epochs, seed=args.seed,
                               threads=int(self.ctx.settings.get("faults", {}).get("threads", 1)))

    @function(Effect.READ)
    def localize(self, args: LocalizeArgs) -> Localization:
        """Find whether the application is anomalous and which components are the origin, and of what kind."""
        with self._errors():
            from intentos.skills.faults.training import from_bytes

            topo, series = self._topology(args.topology), self._metrics(args.metrics)
            trained = from_bytes(paths.read_file(self.sandbox, args.model, "model file"), args.model)
            return localize_window(topo, series, trained, end=args.end, start=args.start, top=args.top)

    # -- helpers: every file is read and written through the sandbox -------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Bad input becomes one AppError line naming sandbox-relative paths, as the model and the user know them."""
        try:
            yield
        except (SandboxError, AppError):
            raise
        except (IntentosError, ValueError) as exc:
            raise AppError(" ".join(str(exc).replace(f"{self.sandbox.root}{os.sep}", "").split())) from None

    def _topology(self, raw: str) -> Topology:
        return parse_topology_bytes(paths.read_file(self.sandbox, raw, "topology file", limit=MAX_TOPOLOGY_BYTES),
                                    raw)

    def _metrics(self, raw: str) -> MetricSeries:
        return parse_metrics(paths.read_file(self.sandbox, raw, "metrics file"), raw)

    def _truth(self, raw: str) -> GroundTruth:
        return parse_truth(paths.read_file(self.sandbox, raw, "truth file"), raw)
