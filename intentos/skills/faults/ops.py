"""The faults skill's results and its work on parsed inputs: simulate incidents, train Arvalus /
D-Arvalus, localize the origin of an anomaly in a metrics window.

The functions take parsed inputs and hand what they produce to a writer (`Write`, `Save`), so the
same code serves the app (app.py: every file read and written through the sandbox) and the CLI and
benchmarks (any path). Long loops check `cancelled` (the context's cancel flag; None where nothing
cancels). torch is imported inside the functions, so loading the Function Table stays fast.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from intentos.errors import AppError
from intentos.skills import kit
from intentos.skills.faults.errors import FaultsInputError, read_input
from intentos.skills.faults.metrics import MetricSeries, csv_bytes
from intentos.skills.faults.simulator import SCENARIOS, GroundTruth, Incident, simulate, webshop
from intentos.skills.faults.topology import Topology

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



# -- the work, on parsed inputs (the app reads them through the sandbox, the CLI from any path) -----------

Write = Callable[[str, bytes], None]  # (file name in the output folder, content)
Save = Callable[[bytes], str]  # a model file's content -> its name as shown in results
SIM_FILES = ("topology.yaml", "metrics.csv", "truth.json")
MAX_SIMULATED_VALUES = 4_000_000  # components x metrics x samples of one simulation (the CSV is built in memory)
MAX_TRAINING_VALUES = 20_000_000  # incidents x components x metrics x window samples trained on at once


def simulate_files(write: Write, shown: str, *, topology: Topology | None = None, topology_name: str | None = None,
                   incidents: int = 40, window: int = 60, scenarios: list[str] | None = None,
                   normal_share: float = 0.2, layout: str = "wide", seed: int = 0,
                   cancelled: kit.Cancel = None) -> Simulated:
    """Simulate incidents and hand topology.yaml, metrics.csv and truth.json to `write`; `shown` names the folder."""
    from intentos.skills.faults.metrics import METRICS

    topo = topology or webshop()
    size = len(topo.components) * len(METRICS) * incidents * window
    if size > MAX_SIMULATED_VALUES:
        raise AppError(f"{incidents} windows of {window} samples for {len(topo.components)} components are "
                       f"{size:,} values; at most {MAX_SIMULATED_VALUES:,} are simulated at once")
    try:
        sim = simulate(topo, incidents=incidents, seed=seed, window=window,
                       scenarios=tuple(scenarios or SCENARIOS), normal_share=normal_share, cancelled=cancelled)
    except ValueError as exc:
        raise FaultsInputError(topology_name or "webshop", str(exc)) from None
    stamps = sim.timestamps()
    metrics = csv_bytes(stamps, topo.names, sim.stacked(), layout)
    if len(metrics) > kit.MAX_DATA_BYTES:
        raise AppError(f"the metrics would be {kit.size_text(len(metrics))}; metrics files over "
                       f"{kit.size_text(kit.MAX_DATA_BYTES)} are not read back: simulate fewer or shorter windows")
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
    return parse_truth(read_input(path, "truth file", name), name)


def parse_truth(data: bytes, name: str) -> GroundTruth:
    """Incident windows and their origins from the bytes of the JSON file `name`."""
    try:
        text = kit.decode_text(data)
    except kit.TextProblem as exc:
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
                threads: int = 1, progress: Progress | None = None, cancelled: kit.Cancel = None) -> TrainedModel:
    """Train Arvalus / D-Arvalus on the incidents of a truth and save it; `names` name the inputs in errors."""
    from intentos.skills.faults.training import TrainConfig, graph, labels_for, to_bytes, train

    names = names or {}
    truth_name, metrics_name = names.get("truth", "truth"), names.get("metrics", series.source)
    if not truth.incidents:
        raise FaultsInputError(truth_name, "no incidents to learn from", field="incidents")
    windows = training_windows(topo, series, truth, metrics_name=metrics_name, truth_name=truth_name)
    graphs = []
    for values, inc in windows:
        kit.check(cancelled)
        try:
            graphs.append(graph(topo, values, labels_for(topo, inc)))
        except ValueError as exc:
            raise FaultsInputError(truth_name, str(exc)) from None
    config = TrainConfig(model=model, epochs=epochs, seed=seed, threads=threads)
    trained = train(graphs, config, window=truth.window, progress=progress, cancelled=cancelled)
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

