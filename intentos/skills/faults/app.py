"""The `faults` app: simulate incidents in a distributed application, train Arvalus / D-Arvalus on them,
and localize the origin of an anomaly from a topology and a metrics window.

The argument models and `FaultsApp`, which reads and writes every file only through the sandbox
(kit: bounded reads, no link followed out, atomic writes whose old version goes to the trash) and
hands the parsed inputs to the work in ops.py, naming sandbox-relative paths in results and errors
(kit.skill_errors). The CLI (`intentos skills faults ...`) calls ops.py on any path. torch is
imported only inside the work, so loading the Function Table stays fast.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from intentos.app import App
from intentos.function import Effect, function
from intentos.skills import kit
from intentos.skills.faults import ops
from intentos.skills.faults.metrics import MetricSeries, parse_metrics
from intentos.skills.faults.simulator import GroundTruth
from intentos.skills.faults.topology import MAX_TOPOLOGY_BYTES, Topology, parse_topology_bytes

ModelKind = Literal["arvalus", "d-arvalus"]
ScenarioName = Literal["local", "downstream", "upstream", "colocated"]
Layout = Literal["wide", "long"]


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


class _Observed(BaseModel):
    """The application observed: what `train` and `localize` both read first."""

    topology: str = Field("faults/topology.yaml", description="topology YAML")
    metrics: str = Field("faults/metrics.csv", description="metrics CSV or Prometheus JSON")


class TrainArgs(_Observed):
    truth: str = Field("faults/truth.json", description="ground truth JSON: incident windows and their origins")
    model: ModelKind = Field("d-arvalus", description="d-arvalus (typed dependencies, attention) or arvalus")
    output: str = Field("faults/model.pt", description="where to save the trained model")
    epochs: int = Field(30, ge=1, le=500)
    seed: int = 0
    overwrite: bool = Field(False, description="replace an existing model (the old one goes to the trash)")


class LocalizeArgs(_Observed):
    model: str = Field("faults/model.pt", description="a model saved by faults.train")
    end: str | None = Field(None, description="the window ends here (Unix seconds or ISO time); default the last "
                                              "sample")
    start: str | None = Field(None, description="or: the window starts here; it should begin before the anomaly")
    top: int = Field(10, ge=1, le=1000, description="how many components to list")


class FaultsApp(App):
    name = "faults"
    description = ("Fault localization in distributed applications (Arvalus / D-Arvalus graph neural networks): "
                   "simulate incidents, train a model, find which components an anomaly started at.")

    @function(Effect.WRITE)
    def simulate(self, args: SimulateArgs) -> ops.Simulated:
        """Simulate a multi-component application with injected anomalies; writes topology, metrics and truth."""
        with kit.skill_errors(self.sandbox):
            folder = kit.folder_target(self.sandbox, args.output)
            base = args.output.rstrip("/") or args.output
            # Checked before the work: each output is refused if anything (a link too) is there, unless overwrite.
            targets = {f: kit.write_target(self.sandbox, f"{base}/{f}", overwrite=args.overwrite)
                       for f in ops.SIM_FILES}
            topo = self._topology(args.topology) if args.topology else None

            def write(file: str, data: bytes) -> None:
                kit.write_file(self.sandbox, targets[file], data, overwrite=args.overwrite, shown=f"{base}/{file}")

            return ops.simulate_files(write, folder, topology=topo, topology_name=args.topology,
                                      incidents=args.incidents, window=args.window,
                                      scenarios=list(args.scenarios) if args.scenarios else None,
                                      normal_share=args.normal_share, layout=args.layout, seed=args.seed,
                                      cancelled=self.ctx.cancelled)

    @function(Effect.WRITE)
    def train(self, args: TrainArgs) -> ops.TrainedModel:
        """Train an Arvalus or D-Arvalus model on incidents (topology, metrics, truth) and save it."""
        with kit.skill_errors(self.sandbox):
            out = kit.write_target(self.sandbox, args.output, overwrite=args.overwrite)

            def save(data: bytes) -> str:
                return kit.write_file(self.sandbox, out, data, overwrite=args.overwrite, shown=args.output)

            names = {"topology": args.topology, "metrics": args.metrics, "truth": args.truth}
            # `faults: {threads: N}` in the settings: torch threads for training (default 1)
            threads = int(kit.section(self.ctx, "faults").get("threads", 1))
            return ops.train_model(self._topology(args.topology), self._metrics(args.metrics),
                                   self._truth(args.truth), save, names=names, model=args.model,
                                   epochs=args.epochs, seed=args.seed, threads=threads,
                                   cancelled=self.ctx.cancelled)

    @function(Effect.READ)
    def localize(self, args: LocalizeArgs) -> ops.Localization:
        """Find whether the application is anomalous and which components are the origin, and of what kind."""
        with kit.skill_errors(self.sandbox):
            from intentos.skills.faults.training import from_bytes

            topo, series = self._topology(args.topology), self._metrics(args.metrics)
            trained = from_bytes(kit.read_file(self.sandbox, args.model, "model file"), args.model)
            return ops.localize_window(topo, series, trained, end=args.end, start=args.start, top=args.top)

    # -- helpers: every file is read through the sandbox ------------------------------------------------------

    def _topology(self, raw: str) -> Topology:
        return parse_topology_bytes(kit.read_file(self.sandbox, raw, "topology file", limit=MAX_TOPOLOGY_BYTES), raw)

    def _metrics(self, raw: str) -> MetricSeries:
        return parse_metrics(kit.read_file(self.sandbox, raw, "metrics file"), raw)

    def _truth(self, raw: str) -> GroundTruth:
        return ops.parse_truth(kit.read_file(self.sandbox, raw, "truth file"), raw)
