"""Item 5 (dataflow, faults): reading a folder never follows a link out of the sandbox.

`dataflow.train_rescaler` on a folder of event logs read a symlink in it that pointed at a file outside
the sandbox (its content went into the model). Folders are now listed through the Sandbox, which reports
a link as a link: links in a folder are skipped, files are read only through the Sandbox (a file with a
hard link outside is refused), and every refusal is one line naming the sandbox path. The faults app's
inputs are read the same way.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from intentos.app import Context
from intentos.errors import AppError, SandboxError
from intentos.sandbox import Sandbox
from intentos.skills.dataflow.app import DataflowApp, PredictArgs, RescaleArgs, TrainRescalerArgs
from intentos.skills.dataflow.enel import Enel
from intentos.skills.dataflow.eventgen import generate_eventlog, generate_training_set
from intentos.skills.dataflow.ops import QUICK_ENEL
from intentos.skills.faults.app import FaultsApp, LocalizeArgs, SimulateArgs, TrainArgs

SECRET_APP = "secret-outside-app"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A complete, valid Spark event log outside the sandbox, of an application of its own name."""
    folder = tmp_path / "outside"
    folder.mkdir()
    generate_eventlog(folder / "secret.json", "grep", 2, seed=9)
    lines = (folder / "secret.json").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    for e in events:
        if e["Event"] == "SparkListenerApplicationStart":
            e["App Name"] = SECRET_APP
    (folder / "secret.json").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "secret-dir").mkdir()
    generate_eventlog(folder / "secret-dir" / "more.json", "grep", 4, seed=10)
    return folder


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(tmp_path / "sandbox")
    generate_training_set(sandbox.root / "logs", kinds=("sgd",), scaleouts=(2, 4), runs_per_scaleout=1)
    generate_eventlog(sandbox.root / "running.jsonl", "sgd", 4, seed=5, stop_after_job=2)
    return sandbox


def _dataflow(box: Sandbox) -> DataflowApp:
    return DataflowApp(Context(sandbox=box, settings={"dataflow": {"enel": {**QUICK_ENEL, "epochs": 2}}}))


def _one_line(exc: BaseException, *names: str) -> str:
    message = str(exc)
    assert "\n" not in message, message
    for name in names:
        assert name in message, message
    return message


def test_train_rescaler_skips_a_link_to_an_outside_file_in_its_folder(box: Sandbox, outside: Path) -> None:
    (box.root / "logs/zz-secret.json").symlink_to(outside / "secret.json")
    (box.root / "logs/sub").symlink_to(outside / "secret-dir")
    done = _dataflow(box).train_rescaler(TrainRescalerArgs(logs=["logs"], output="enel.pt"))
    assert done.runs == 2 and SECRET_APP not in done.summary
    model = Enel.load(box.root / "enel.pt")
    assert sorted(model.header.templates) == ["sgd"]  # nothing of the outside log went into the model
    assert model.header.trained_logs == 2


def test_a_folder_holding_only_links_says_so_in_one_line(box: Sandbox, outside: Path) -> None:
    (box.root / "only").mkdir()
    (box.root / "only/a.json").symlink_to(outside / "secret.json")
    with pytest.raises(AppError) as info:
        _dataflow(box).train_rescaler(TrainRescalerArgs(logs=["only"], output="enel.pt"))
    assert "links are not followed" in _one_line(info.value, "only", "only/a.json")
    assert not (box.root / "enel.pt").exists()


def test_a_hard_link_to_an_outside_file_is_refused(box: Sandbox, outside: Path) -> None:
    os.link(outside / "secret.json", box.root / "logs/hard.json")
    app = _dataflow(box)
    with pytest.raises(AppError) as info:
        app.train_rescaler(TrainRescalerArgs(logs=["logs"], output="enel.pt"))
    assert "hard links outside" in _one_line(info.value, "logs/hard.json")
    with pytest.raises(AppError) as info:
        app.rescale_plan(RescaleArgs(eventlog="running.jsonl", target_runtime_s=100, history_logs=["logs"]))
    _one_line(info.value, "logs/hard.json")
    os.link(outside / "secret.json", box.root / "h.csv")
    with pytest.raises(AppError) as info:
        app.predict_runtime(PredictArgs(history="h.csv"))
    assert "hard links outside" in _one_line(info.value, "h.csv")
    assert not (box.root / "enel.pt").exists()


def test_rescale_plan_learns_only_from_the_logs_inside(box: Sandbox, outside: Path) -> None:
    (box.root / "logs/zz-secret.json").symlink_to(outside / "secret.json")
    plan = _dataflow(box).rescale_plan(RescaleArgs(eventlog="running.jsonl", target_runtime_s=500,
                                                   history_logs=["logs"]))
    assert plan.app_name == "sgd"
    # A link given by name leads out: the sandbox's own refusal, one line.
    with pytest.raises(SandboxError) as info:
        _dataflow(box).rescale_plan(RescaleArgs(eventlog="logs/zz-secret.json", target_runtime_s=500,
                                                history_logs=["logs"]))
    _one_line(info.value, "logs/zz-secret.json")


def test_a_fifo_in_a_folder_or_given_by_name_never_blocks(box: Sandbox) -> None:
    os.mkfifo(box.root / "logs/pipe.json")
    os.mkfifo(box.root / "pipe.jsonl")
    app = _dataflow(box)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            app.train_rescaler(TrainRescalerArgs(logs=["logs"], output="enel.pt"))  # the FIFO is no file: skipped
            app.rescale_plan(RescaleArgs(eventlog="pipe.jsonl", target_runtime_s=100, model="enel.pt"))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert len(errors) == 1 and isinstance(errors[0], AppError), errors
    assert "not a regular file" in _one_line(errors[0], "pipe.jsonl")


@pytest.fixture
def faults(tmp_path: Path) -> FaultsApp:
    app = FaultsApp(Context(sandbox=Sandbox(tmp_path / "fbox"), settings={"faults": {"threads": 1}}))
    app.simulate(SimulateArgs(output="shop", incidents=2, window=16, seed=1))
    app.train(TrainArgs(output="shop/model.pt", topology="shop/topology.yaml", metrics="shop/metrics.csv",
                        truth="shop/truth.json", epochs=1, model="arvalus"))
    return app


def test_faults_inputs_never_lead_out(faults: FaultsApp, tmp_path: Path) -> None:
    root = faults.sandbox.root
    out = tmp_path / "faults-outside"
    out.mkdir()
    for name in ("topology.yaml", "metrics.csv", "truth.json", "model.pt"):
        (out / name).write_bytes((root / "shop" / name).read_bytes())
    # A folder link given as the folder of the inputs: the sandbox's refusal, one line.
    (root / "ext").symlink_to(out)
    with pytest.raises(SandboxError) as info:
        faults.localize(LocalizeArgs(topology="ext/topology.yaml", metrics="shop/metrics.csv",
                                     model="shop/model.pt"))
    _one_line(info.value, "ext/topology.yaml")
    # Hard links to outside files: refused for every input kind.
    (root / "hard").mkdir()
    for name in ("topology.yaml", "metrics.csv", "truth.json", "model.pt"):
        os.link(out / name, root / "hard" / name)
    cases = [
        ("hard/topology.yaml", lambda: faults.localize(LocalizeArgs(topology="hard/topology.yaml",
                                                                    metrics="shop/metrics.csv",
                                                                    model="shop/model.pt"))),
        ("hard/metrics.csv", lambda: faults.localize(LocalizeArgs(topology="shop/topology.yaml",
                                                                  metrics="hard/metrics.csv", model="shop/model.pt"))),
        ("hard/model.pt", lambda: faults.localize(LocalizeArgs(topology="shop/topology.yaml",
                                                               metrics="shop/metrics.csv", model="hard/model.pt"))),
        ("hard/truth.json", lambda: faults.train(TrainArgs(topology="shop/topology.yaml", metrics="shop/metrics.csv",
                                                           truth="hard/truth.json", output="m2.pt", epochs=1))),
    ]
    for name, call in cases:
        with pytest.raises(AppError) as info:
            call()
        assert "hard links outside" in _one_line(info.value, name)
    # A folder where a file is expected: one line.
    with pytest.raises(AppError) as info:
        faults.localize(LocalizeArgs(topology="shop/topology.yaml", metrics="shop", model="shop/model.pt"))
    assert "is a folder" in _one_line(info.value, "shop")
    assert not (root / "m2.pt").exists()
