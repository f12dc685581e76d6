"""Item 4 (dataflow, faults): no write goes through a link planted at an output's name or at the
temporary name an atomic write used to take.

`dataflow.train_runtime_model` wrote `<output>.tmp` next to the model, then renamed it: a link planted at
`df/.m.pt.tmp` sent the model outside. `faults.simulate` wrote `truth.json` through a dangling link
there. Now every output goes through the Sandbox (an exclusive temporary file with an unguessable name,
then a rename); anything at the output's name (a link too, even a dangling one) is refused unless
`overwrite`, and then moved to the trash as the link itself, never written through.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentos.app import Context
from intentos.cli import app as cli_app
from intentos.errors import AppError
from intentos.sandbox import Sandbox
from intentos.skills.dataflow.app import DataflowApp, TrainArgs, TrainRescalerArgs
from intentos.skills.dataflow.bellamy import Bellamy
from intentos.skills.dataflow.eventgen import generate_training_set
from intentos.skills.dataflow.ops import QUICK_ENEL
from intentos.skills.faults.app import FaultsApp, SimulateArgs
from intentos.skills.faults.app import TrainArgs as FaultsTrainArgs
from intentos.skills.faults.simulator import GroundTruth

BELL = "Nodes,Runtime\n2,1000\n4,600\n8,400\n"
SIM = {"incidents": 2, "window": 16, "seed": 1}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim").write_text("keep me")
    return folder


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path / "sandbox")


def _dataflow(box: Sandbox) -> DataflowApp:
    quick = {"pretrain_epochs": 3, "finetune_epochs": 3}
    return DataflowApp(Context(sandbox=box, settings={"dataflow": {"bellamy": quick,
                                                                   "enel": {**QUICK_ENEL, "epochs": 2}}}))


def _faults(box: Sandbox) -> FaultsApp:
    return FaultsApp(Context(sandbox=box, settings={"faults": {"threads": 1}}))


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "keep me"


def _one_line(exc: BaseException, name: str) -> str:
    message = str(exc)
    assert "\n" not in message and name in message, message
    return message


def test_a_link_at_the_old_temporary_name_of_a_model_is_never_written_through(box: Sandbox, outside: Path) -> None:
    (box.root / "h.csv").write_text(BELL)
    (box.root / "df").mkdir()
    (box.root / "df/.m.pt.tmp").symlink_to(outside / "victim")
    (box.root / "df/.n.pt.tmp").symlink_to(outside / "created-by-the-write")  # dangling
    app = _dataflow(box)
    done = app.train_runtime_model(TrainArgs(history="h.csv", output="df/m.pt"))
    assert done.model == "df/m.pt"
    app.train_runtime_model(TrainArgs(history="h.csv", output="df/n.pt"))
    _untouched(outside)
    for name in ("m.pt", "n.pt"):
        model = box.root / "df" / name
        assert model.is_file() and not model.is_symlink()
        assert Bellamy.load(model).header.algorithm == "h"
    # The planted links are left as they were: nothing was written through them.
    assert os.readlink(box.root / "df/.m.pt.tmp") == str(outside / "victim")


def test_the_same_through_intentos_call(box: Sandbox, outside: Path) -> None:
    (box.root / "h.csv").write_text(BELL)
    (box.root / "df").mkdir()
    (box.root / "df/.m.pt.tmp").symlink_to(outside / "victim")
    args = json.dumps({"history": "h.csv", "output": "df/m.pt"})
    result = CliRunner().invoke(cli_app, ["call", "dataflow.train_runtime_model", "--args", args,
                                          "--sandbox", str(box.root), "--json", "--yes"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"]["model"] == "df/m.pt"
    _untouched(outside)
    assert (box.root / "df/m.pt").is_file() and not (box.root / "df/m.pt").is_symlink()


def test_a_link_at_a_model_output_is_refused_then_replaced_never_followed(box: Sandbox, outside: Path) -> None:
    (box.root / "h.csv").write_text(BELL)
    generate_training_set(box.root / "logs", kinds=("sgd",), scaleouts=(2, 4), runs_per_scaleout=1)
    (box.root / "models").mkdir()
    (box.root / "models/enel.pt").symlink_to(outside / "enel.pt")  # dangling: "something is there"
    (box.root / "models/b.pt").symlink_to(outside / "victim")
    app = _dataflow(box)
    with pytest.raises(AppError) as info:
        app.train_rescaler(TrainRescalerArgs(logs=["logs"], output="models/enel.pt"))
    assert "already exists as a link" in _one_line(info.value, "models/enel.pt")
    with pytest.raises(AppError) as info:
        app.train_runtime_model(TrainArgs(history="h.csv", output="models/b.pt"))
    _one_line(info.value, "models/b.pt")
    _untouched(outside)
    # With overwrite the link itself goes to the trash and the model takes its name.
    app.train_rescaler(TrainRescalerArgs(logs=["logs"], output="models/enel.pt", overwrite=True))
    app.train_runtime_model(TrainArgs(history="h.csv", output="models/b.pt", overwrite=True))
    _untouched(outside)
    for name in ("enel.pt", "b.pt"):
        path = box.root / "models" / name
        assert path.is_file() and not path.is_symlink(), name
    assert sorted(e.original for e in box.trash_entries()) == ["models/b.pt", "models/enel.pt"]


def test_a_link_inside_at_the_output_is_replaced_not_written_through(box: Sandbox) -> None:
    (box.root / "h.csv").write_text(BELL)
    (box.root / "models").mkdir()
    (box.root / "models/m.pt").symlink_to("../h.csv")
    _dataflow(box).train_runtime_model(TrainArgs(history="h.csv", output="models/m.pt", overwrite=True))
    assert (box.root / "h.csv").read_text() == BELL  # the link's target is untouched
    assert (box.root / "models/m.pt").is_file() and not (box.root / "models/m.pt").is_symlink()
    trashed = [e.original for e in box.trash_entries()]
    assert trashed == ["models/m.pt"]


def test_simulate_refuses_a_dangling_link_at_truth_json_then_replaces_it(box: Sandbox, outside: Path) -> None:
    (box.root / "fsim").mkdir()
    (box.root / "fsim/truth.json").symlink_to(outside / "truth.json")
    app = _faults(box)
    with pytest.raises(AppError) as info:
        app.simulate(SimulateArgs(output="fsim", **SIM))
    assert "already exists as a link" in _one_line(info.value, "fsim/truth.json")
    # Refused before any work: no partial output either.
    assert sorted(p.name for p in (box.root / "fsim").iterdir()) == ["truth.json"]
    _untouched(outside)
    app.simulate(SimulateArgs(output="fsim", overwrite=True, **SIM))
    _untouched(outside)
    truth = box.root / "fsim/truth.json"
    assert truth.is_file() and not truth.is_symlink()
    assert len(GroundTruth.model_validate_json(truth.read_text()).incidents) == 2
    assert [e.original for e in box.trash_entries()] == ["fsim/truth.json"]


def test_simulate_replaces_a_link_inside_and_writes_every_file_in_place(box: Sandbox, outside: Path) -> None:
    (box.root / "fsim").mkdir()
    (box.root / "fsim/truth.json").symlink_to("../elsewhere.json")  # dangling, inside
    (box.root / "fsim/.topology.yaml.tmp").symlink_to(outside / "victim")
    (box.root / "fsim/.metrics.csv.tmp").symlink_to(outside / "metrics.csv")
    app = _faults(box)
    result = app.simulate(SimulateArgs(output="fsim", overwrite=True, **SIM))
    assert result.truth == "fsim/truth.json"
    assert not (box.root / "elsewhere.json").exists()
    for name in ("topology.yaml", "metrics.csv", "truth.json"):
        path = box.root / "fsim" / name
        assert path.is_file() and not path.is_symlink(), name
    assert len(GroundTruth.model_validate_json((box.root / "fsim/truth.json").read_text()).incidents) == 2
    _untouched(outside)


def test_faults_train_never_writes_through_links(box: Sandbox, outside: Path) -> None:
    app = _faults(box)
    app.simulate(SimulateArgs(output="shop", **SIM))
    (box.root / "shop/.model.pt.tmp").symlink_to(outside / "victim")
    (box.root / "shop/other.pt").symlink_to(outside / "other.pt")
    files = {"topology": "shop/topology.yaml", "metrics": "shop/metrics.csv", "truth": "shop/truth.json"}
    done = app.train(FaultsTrainArgs(**files, output="shop/model.pt", epochs=1, model="arvalus"))
    assert done.model == "shop/model.pt" and (box.root / "shop/model.pt").is_file()
    with pytest.raises(AppError) as info:
        app.train(FaultsTrainArgs(**files, output="shop/other.pt", epochs=1, model="arvalus"))
    _one_line(info.value, "shop/other.pt")
    app.train(FaultsTrainArgs(**files, output="shop/other.pt", epochs=1, model="arvalus", overwrite=True))
    assert (box.root / "shop/other.pt").is_file() and not (box.root / "shop/other.pt").is_symlink()
    _untouched(outside)


def test_simulate_through_intentos_call(box: Sandbox, outside: Path) -> None:
    (box.root / "fsim").mkdir()
    (box.root / "fsim/truth.json").symlink_to(outside / "truth.json")

    def call(overwrite: bool) -> tuple[int, dict]:
        args = json.dumps({"output": "fsim", "overwrite": overwrite, **SIM})
        result = CliRunner().invoke(cli_app, ["call", "faults.simulate", "--args", args, "--sandbox", str(box.root),
                                              "--json", "--yes"])
        assert "Traceback" not in result.output
        return result.exit_code, json.loads(result.stdout)

    code, view = call(overwrite=False)
    assert code == 1 and view["status"] == "failed"
    _one_line(Exception(view["error"]), "fsim/truth.json")
    _untouched(outside)
    code, view = call(overwrite=True)
    assert code == 0 and view["result"]["truth"] == "fsim/truth.json"
    _untouched(outside)
    assert (box.root / "fsim/truth.json").is_file() and not (box.root / "fsim/truth.json").is_symlink()
