"""The faults app through its functions in a real sandbox: simulate, train, localize, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from intentos.app import Context
from intentos.errors import AppError, SandboxError
from intentos.executor import Executor
from intentos.function import Effect
from intentos.sandbox import Sandbox
from intentos.skills.faults.app import FaultsApp, LocalizeArgs, SimulateArgs, TrainArgs
from intentos.skills.faults.simulator import GroundTruth
from intentos.skills.kit import Cancelled
from intentos.table import FunctionTable
from intentos.workflow import Workflow

W = 32


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> FaultsApp:
    """A sandbox with a trained D-Arvalus model (local incidents, small and quick) and held-out incidents."""
    app = FaultsApp(Context(sandbox=Sandbox(tmp_path_factory.mktemp("faults") / "sandbox"),
                            settings={"faults": {"threads": 1}}))
    app.simulate(SimulateArgs(output="shop", incidents=120, window=W, scenarios=["local"], normal_share=0.1, seed=3))
    app.train(TrainArgs(topology="shop/topology.yaml", metrics="shop/metrics.csv", truth="shop/truth.json",
                        output="models/d.pt", epochs=15))
    app.simulate(SimulateArgs(output="held", incidents=8, window=W, scenarios=["local"], normal_share=0, seed=11,
                              layout="long"))
    return app


def test_functions_and_effects() -> None:
    table = FunctionTable([FaultsApp])
    effects = {f.verb: f.effect for f in table if f.app == "faults"}
    assert effects == {"simulate": Effect.WRITE, "train": Effect.WRITE, "localize": Effect.READ}
    schema = table.get("faults.localize").params.model_json_schema()
    assert "description" in schema["properties"]["end"]


def test_loading_the_app_does_not_import_torch() -> None:
    code = ("import sys, intentos.skills.faults.app, intentos.skills.faults.cli; "
            "print(sorted(m for m in ('torch', 'sklearn', 'torch_geometric') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_simulate_writes_topology_metrics_and_truth(faults: FaultsApp) -> None:
    root = faults.sandbox.root
    truth = GroundTruth.model_validate_json((root / "held/truth.json").read_text())
    assert truth.window == W and len(truth.incidents) == 8 and all(i.origins for i in truth.incidents)
    header = (root / "held/metrics.csv").read_text().splitlines()[0]
    assert header == "timestamp,component,metric,value"
    assert "dependencies:" in (root / "shop/topology.yaml").read_text()
    with pytest.raises(AppError, match="shop/topology.yaml already exists; pass overwrite"):
        faults.simulate(SimulateArgs(output="shop", incidents=2))
    with pytest.raises(SandboxError):
        faults.simulate(SimulateArgs(output="../outside", incidents=2))


def test_localize_finds_the_origin_of_held_out_incidents(faults: FaultsApp) -> None:
    truth = GroundTruth.model_validate_json((faults.sandbox.root / "held/truth.json").read_text())
    top3 = 0
    for inc in truth.incidents:
        result = faults.localize(LocalizeArgs(topology="held/topology.yaml", metrics="held/metrics.csv",
                                              model="models/d.pt", end=str(inc.end), top=5))
        json.dumps(result.model_dump())  # what the executor journals
        assert result.samples == W and result.model == "d-arvalus" and len(result.ranking) == 5
        probs = [s.anomaly_probability for s in result.ranking]
        assert probs == sorted(probs, reverse=True)
        assert result.anomalous == bool(result.origins)
        top3 += next(iter(inc.origins)) in [s.component for s in result.ranking[:3]]
    assert top3 >= 6, top3


def test_bad_input_names_the_sandbox_file(faults: FaultsApp) -> None:
    root = faults.sandbox.root
    (root / "bad").mkdir()
    (root / "bad/topo.yaml").write_text("components:\n  - {name: lb, host: h}\ndependencies:\n  - {from: lb, to: x}\n")
    with pytest.raises(AppError, match=r"^bad/topo.yaml:4: dependencies.0.to: unknown component 'x'"):
        faults.localize(LocalizeArgs(topology="bad/topo.yaml", metrics="held/metrics.csv", model="models/d.pt"))
    (root / "bad/m.csv").write_text("timestamp,component,metric,value\n1,lb,cpu,3\n2,lb,cpu,oops\n")
    with pytest.raises(AppError, match=r"^bad/m.csv:3: value: value 'oops' is not a number"):
        faults.localize(LocalizeArgs(topology="held/topology.yaml", metrics="bad/m.csv", model="models/d.pt"))
    (root / "bad/model.pt").write_text("not a model")
    with pytest.raises(AppError, match=r"^bad/model.pt: not a model file"):
        faults.localize(LocalizeArgs(topology="held/topology.yaml", metrics="held/metrics.csv", model="bad/model.pt"))
    with pytest.raises(AppError, match="nothing.csv does not exist"):
        faults.localize(LocalizeArgs(topology="held/topology.yaml", metrics="nothing.csv"))
    with pytest.raises(AppError, match="a window of 32 samples does not fit"):
        faults.localize(LocalizeArgs(topology="held/topology.yaml", metrics="held/metrics.csv", model="models/d.pt",
                                     end="2000-01-01T00:00:00"))
    (root / "bad/truth.json").write_text('{"window": 32,\n "incidents": [}')
    with pytest.raises(AppError, match=r"^bad/truth.json:2: malformed JSON"):
        faults.train(TrainArgs(topology="held/topology.yaml", metrics="held/metrics.csv", truth="bad/truth.json",
                               output="bad/out.pt"))
    (root / "bad/truth.json").write_text('{"window": 32, "incidents": [{"index": 0, "start": "soon"}]}')
    with pytest.raises(AppError, match=r"^bad/truth.json: incidents.0.start: "):
        faults.train(TrainArgs(topology="held/topology.yaml", metrics="held/metrics.csv", truth="bad/truth.json",
                               output="bad/out.pt"))
    with pytest.raises(SandboxError):
        faults.localize(LocalizeArgs(topology="/etc/passwd"))


def test_a_workflow_simulates_trains_and_localizes(faults: FaultsApp) -> None:
    workflow = Workflow.model_validate({"start": "sim", "states": [
        {"name": "sim", "call": "faults.simulate",
         "args": {"output": "wf", "incidents": 24, "window": W, "seed": 5}},
        {"name": "fit", "call": "faults.train",
         "args": {"topology": "wf/topology.yaml", "metrics": "wf/metrics.csv", "truth": "wf/truth.json",
                  "model": "arvalus", "output": "wf/model.pt", "epochs": 2}},
        {"name": "find", "call": "faults.localize",
         "args": {"topology": "wf/topology.yaml", "metrics": "wf/metrics.csv", "model": "${fit.result.model}",
                  "top": 3}},
    ]})
    view = Executor(FunctionTable([FaultsApp]), faults.ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view.error
    assert view.results["sim"]["incidents"] == 24 and view.results["fit"]["model"] == "wf/model.pt"
    found = view.results["find"]
    assert found["model"] == "arvalus" and len(found["ranking"]) == 3 and found["samples"] == W
    assert (faults.sandbox.root / "wf/model.pt").is_file()


def test_cancelling_stops_training_within_a_second(faults: FaultsApp, monkeypatch: pytest.MonkeyPatch) -> None:
    from intentos.skills.faults import training

    real, trained_an_epoch = training.train, threading.Event()

    def train(*args: object, progress: object = None, **kwargs: object) -> object:
        return real(*args, progress=lambda epoch, loss: trained_an_epoch.set(), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(training, "train", train)
    ctx = Context(sandbox=faults.sandbox, settings={"faults": {"threads": 1}})  # its own cancel flag
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            FaultsApp(ctx).train(TrainArgs(topology="shop/topology.yaml", metrics="shop/metrics.csv",
                                           truth="shop/truth.json", output="models/cancelled.pt", epochs=500))
        except BaseException as exc:  # noqa: BLE001 - whatever it is, the test reports it
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    assert trained_an_epoch.wait(60), "training never finished an epoch"
    ctx.cancelled.set()
    cancelled_at = time.monotonic()
    worker.join(timeout=10)
    assert not worker.is_alive(), "training ran on after the cancel"
    assert isinstance(outcome.get("error"), Cancelled) and str(outcome["error"]) == "cancelled", outcome
    assert outcome["ended"] - cancelled_at < 1.0  # type: ignore[operator]
    assert not (faults.sandbox.root / "models/cancelled.pt").exists()
