"""Item 16 (skills: dataflow, faults): every malformed input file is one line naming the file and the
problem, never a traceback; files that are not UTF-8 text or not text at all included; memory stays
bounded (a file over the size limit is refused before it is read, and sizes a file declares inside it
cannot make the app allocate without bound).

Each case writes one bad file into a fresh sandbox and calls the app function that reads it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from intentos.app import Context
from intentos.cli import app as cli_app
from intentos.errors import AppError
from intentos.sandbox import Sandbox
from intentos.skills.dataflow.app import DataflowApp, PredictArgs, RescaleArgs, TrainRescalerArgs
from intentos.skills.dataflow.bellamy import Bellamy, BellamyConfig
from intentos.skills.dataflow.enel import Enel, EnelConfig
from intentos.skills.dataflow.eventgen import generate_eventlog, generate_training_set
from intentos.skills.dataflow.eventlog import parse_eventlog
from intentos.skills.dataflow.history import load_history
from intentos.skills.faults.app import FaultsApp, LocalizeArgs, SimulateArgs, TrainArgs
from intentos.skills.kit import files as paths

torch.set_num_threads(1)
BELL = b"Nodes,Runtime\n2,1000\n4,600\n8,400\n"
C3O_HEAD = "instance_count\tmachine_type\tslots\tmemory\tdata_size_MB\tk\tgross_runtime\n"
OVER = paths.MAX_DATA_BYTES + (1 << 20)


class Marker:
    """If ever unpickled, creates a file: the proof a model file ran code."""

    path = ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Valid model files of the three kinds, to be damaged."""
    tmp = tmp_path_factory.mktemp("models")
    (tmp / "h.csv").write_bytes(BELL)
    history = load_history(tmp / "h.csv")
    bellamy = Bellamy.pretrain(history.runs, algorithm="h", param_names=[], config=BellamyConfig(pretrain_epochs=1))
    runs = generate_training_set(tmp / "logs", kinds=("sgd",), scaleouts=(2, 4), runs_per_scaleout=1)
    enel = Enel.train([parse_eventlog(r.path) for r in runs], EnelConfig(epochs=1, hidden=8))
    faults = FaultsApp(Context(sandbox=Sandbox(tmp / "fbox"), settings={"faults": {"threads": 1}}))
    faults.simulate(SimulateArgs(output="shop", incidents=2, window=16, seed=1))
    faults.train(TrainArgs(output="m.pt", topology="shop/topology.yaml", metrics="shop/metrics.csv",
                           truth="shop/truth.json", epochs=1, model="arvalus"))
    return {"bellamy": bellamy.to_bytes(), "enel": enel.to_bytes(), "faults": (tmp / "fbox/m.pt").read_bytes()}


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(tmp_path / "sandbox")
    (sandbox.root / "h.csv").write_bytes(BELL)
    generate_eventlog(sandbox.root / "running.jsonl", "sgd", 4, seed=5, stop_after_job=2)
    return sandbox


@pytest.fixture
def shop(tmp_path: Path) -> FaultsApp:
    app = FaultsApp(Context(sandbox=Sandbox(tmp_path / "fsandbox"), settings={"faults": {"threads": 1}}))
    app.simulate(SimulateArgs(output="shop", incidents=2, window=16, seed=1))
    return app


def _one_line(exc: BaseException, name: str) -> str:
    message = str(exc)
    assert isinstance(exc, AppError), f"{type(exc).__name__}: {message}"
    assert "\n" not in message and name in message, message
    assert "Traceback" not in message
    return message


def _sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that costs nothing on disk: the app must refuse it by its size."""
    with open(path, "wb") as fh:
        fh.truncate(size)


def _modified(blob: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    obj = torch.load(io.BytesIO(blob), weights_only=True)
    change(obj)
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _header(key: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        header = json.loads(obj["header"])
        for k, v in fields.items():
            target = header
            *path, last = k.split(".")
            for p in path:
                target = target[int(p)] if isinstance(target, list) else target[p]
            target[int(last) if isinstance(target, list) else last] = v
        obj["header"] = json.dumps(header)
    return change


def _deflated(blob: bytes) -> bytes:
    """The same torch archive with its members compressed: what a zip bomb looks like to torch."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return out.getvalue()


# -- histories (C3O TSV, Bell CSV) -----------------------------------------------------------------------

HISTORIES: dict[str, bytes] = {
    "utf16": "Nodes,Runtime\n2,1000\n".encode("utf-16"),
    "latin1": "Nodes,Runtime\n2,1000\nä,3\n".encode("latin-1"),
    "binary": bytes(range(256)) * 4,
    "nul": b"Nodes,Runtime\n2,10\x0000\n",
    "empty": b"",
    "header-only": b"Nodes,Runtime\n",
    "one-run": b"Nodes,Runtime\n2,1000\n",
    "huge-cell": b"Nodes,Runtime\n2,\"" + b"9" * 300_000 + b"\"\n",
    "newline-in-header": b"\"Nodes\nRuntime\",x\n1,2\n",
    "infinite": b"Nodes,Runtime\n1e400,5\n2,3\n",
    "wide-range": b"Nodes,Runtime\n1,10\n1000000000,10\n",
    "c3o-columns": (C3O_HEAD + "2\tm4\t1\n").encode(),
    "c3o-too-wide": ("instance_count\tmachine_type\tslots\tmemory\tdata_size_MB\t"
                     + "\t".join(f"p{i}" for i in range(80)) + "\tgross_runtime\n").encode(),
}


@pytest.mark.parametrize("case", sorted(HISTORIES))
def test_malformed_histories(box: Sandbox, case: str) -> None:
    name = f"bad/{case}.csv"
    (box.root / "bad").mkdir()
    (box.root / name).write_bytes(HISTORIES[case])
    with pytest.raises(Exception) as info:
        DataflowApp(Context(sandbox=box)).predict_runtime(PredictArgs(history=name))
    _one_line(info.value, name)


# -- event logs --------------------------------------------------------------------------------------------

START = b'{"Event":"SparkListenerApplicationStart","App Name":"sgd","Timestamp":1700000000000}\n'
EVENTLOGS: dict[str, bytes] = {
    "latin1": START + "{\"Event\": \"\xe4\"}\n".encode("latin-1"),
    "binary": bytes(range(256)) * 4 + b"\n",
    "nul": START + b"\x00\x00\n",
    "empty": b"",
    "deep": START + b"[" * 200_000 + b"\n",
    "huge-int": START + b'{"Event":"SparkListenerJobEnd","Job ID":' + b"7" * 5000 + b',"Completion Time":1}\n',
    "inf-time": b'{"Event":"SparkListenerApplicationStart","App Name":"sgd","Timestamp":1e400}\n',
    "stage-info-text": START + b'{"Event":"SparkListenerStageSubmitted","Stage Info":"Submission Time"}\n',
    "negative-tasks": START + b'{"Event":"SparkListenerJobStart","Job ID":0,"Submission Time":1,"Stage Infos":'
                              b'[{"Stage ID":0,"Number of Tasks":-5}]}\n',
    "metrics-list": START + b'{"Event":"SparkListenerTaskEnd","Stage ID":0,"Task Info":{},"Task Metrics":[1]}\n',
    "executor-info-list": START + b'{"Event":"SparkListenerExecutorAdded","Timestamp":1,"Executor ID":"1",'
                                  b'"Executor Info":[4]}\n',
    "cores-text": START + b'{"Event":"SparkListenerExecutorAdded","Timestamp":1,"Executor ID":"1",'
                          b'"Executor Info":{"Total Cores":"many"}}\n',
    "not-spark": b'{"Event":"SparkListenerLogStart"}\n',
}


@pytest.mark.parametrize("case", sorted(EVENTLOGS))
def test_malformed_event_logs(box: Sandbox, models: dict[str, bytes], case: str) -> None:
    (box.root / "enel.pt").write_bytes(models["enel"])
    name = f"bad/{case}.jsonl"
    (box.root / "bad").mkdir()
    (box.root / name).write_bytes(EVENTLOGS[case])
    app = DataflowApp(Context(sandbox=box, settings={"dataflow": {"enel": {"epochs": 1, "hidden": 8}}}))
    with pytest.raises(Exception) as info:
        app.rescale_plan(RescaleArgs(eventlog=name, target_runtime_s=100, model="enel.pt"))
    _one_line(info.value, name)
    # The same file among the logs of a training: named as well.
    generate_training_set(box.root / "bad", kinds=("sgd",), scaleouts=(2,), runs_per_scaleout=1)
    if case not in ("empty",):
        with pytest.raises(Exception) as info:
            app.train_rescaler(TrainRescalerArgs(logs=["bad"], output="out.pt"))
        _one_line(info.value, name)


# -- faults: topology, metrics, truth ------------------------------------------------------------------------

TOPOLOGIES: dict[str, bytes] = {
    "utf16": "components:\n  - {name: a, host: h}\n".encode("utf-16"),
    "binary": bytes(range(256)) * 4,
    "nul": b"components:\n  - {name: a\x00, host: h}\n",
    "control-char": b"components:\n  - {name: a\x07, host: h}\n",
    "empty": b"",
    "deep": b"[" * 100_000,
    "laughs": b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)) + b"components: *i\n",
    "python-tag": b"components: !!python/object/apply:os.system ['true']\n",
    "too-many": ("components:\n" + "".join(f"  - {{name: c{i}, host: h}}\n" for i in range(2_100))).encode(),
    "not-a-mapping": b"- a\n- b\n",
}


@pytest.mark.parametrize("case", sorted(TOPOLOGIES))
def test_malformed_topologies(shop: FaultsApp, case: str) -> None:
    name = f"bad/{case}.yaml"
    (shop.sandbox.root / "bad").mkdir()
    (shop.sandbox.root / name).write_bytes(TOPOLOGIES[case])
    with pytest.raises(Exception) as info:
        shop.simulate(SimulateArgs(output="out", topology=name, incidents=1, window=16))
    _one_line(info.value, name)
    assert not (shop.sandbox.root / "out").exists()


METRICS: dict[str, bytes] = {
    "utf16": "timestamp,component,cpu\n1,a,3\n".encode("utf-16"),
    "latin1": "timestamp,component,cpu\n1,\xe4,3\n".encode("latin-1"),
    "binary": bytes(range(256)) * 4,
    "nul": b"timestamp,component,cpu\n1,a\x00,3\n",
    "empty": b"",
    "huge-cell": b"timestamp,component,cpu\n1,\"" + b"a" * 300_000 + b"\",3\n",
    "far-future": b"timestamp,component,cpu\n1e300,a,3\n",
    "iso-year-0": b"timestamp,component,cpu\n0000-01-01T00:00:00,a,3\n",
    "dense": b"timestamp,component,cpu,memory,net_in,net_out,disk_io,latency\n" + b"".join(
        f"{1000 + i},c{i},1,1,1,1,1,1\n".encode() for i in range(3_000)),
    "json-deep": b'{"status": "success", "data": ' + b"[" * 100_000,
    "json-huge-int": b'{"status": "success", "data": ' + b"7" * 5000 + b"}",
    "json-wrong-types": b'{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"job": "a",'
                        b' "__name__": "cpu"}, "values": [[{"t": 1}, [2]]]}]}}',
}


@pytest.mark.parametrize("case", sorted(METRICS))
def test_malformed_metrics(shop: FaultsApp, case: str) -> None:
    name = f"bad/{case}.csv"
    (shop.sandbox.root / "bad").mkdir()
    (shop.sandbox.root / name).write_bytes(METRICS[case])
    with pytest.raises(Exception) as info:
        shop.train(TrainArgs(topology="shop/topology.yaml", metrics=name, truth="shop/truth.json", output="m.pt",
                             epochs=1))
    _one_line(info.value, name)
    assert not (shop.sandbox.root / "m.pt").exists()


TRUTHS: dict[str, bytes] = {
    "utf16": '{"window": 16, "incidents": []}'.encode("utf-16"),
    "binary": bytes(range(256)) * 4,
    "empty": b"",
    "deep": b"[" * 100_000,
    "huge-int": b'{"window": ' + b"7" * 5000 + b', "incidents": []}',
    "window-zero": b'{"window": 0, "incidents": []}',
    "no-incidents": b'{"window": 16, "incidents": []}',
    "wrong-types": b'{"window": 16, "incidents": [{"index": "x", "start": [], "end": {}, "scenario": 1}]}',
    "too-much": json.dumps({"window": 100_000, "incidents": [
        {"index": i, "start": 0, "end": 1, "scenario": "none"} for i in range(50)]}).encode(),
    "unknown-origin": json.dumps({"window": 16, "incidents": [
        {"index": 0, "start": 1700000000.0, "end": 1700000007.5, "scenario": "local", "origins": {"zz": "x"}}]}
    ).encode(),
}


@pytest.mark.parametrize("case", sorted(TRUTHS))
def test_malformed_truths(shop: FaultsApp, case: str) -> None:
    name = f"bad/{case}.json"
    (shop.sandbox.root / "bad").mkdir()
    (shop.sandbox.root / name).write_bytes(TRUTHS[case])
    with pytest.raises(Exception) as info:
        shop.train(TrainArgs(topology="shop/topology.yaml", metrics="shop/metrics.csv", truth=name, output="m.pt",
                             epochs=1))
    _one_line(info.value, name)
    assert not (shop.sandbox.root / "m.pt").exists()


# -- model files --------------------------------------------------------------------------------------------


def _model_cases(models: dict[str, bytes], kind: str, marker: Path) -> dict[str, bytes]:
    Marker.path = str(marker)
    good = models[kind]
    state = "state_dict" if kind == "faults" else "state"
    cases = {
        "text": b"not a model",
        "empty": b"",
        "binary": bytes(range(256)) * 4,
        "pickle": pickle.dumps({"header": "{}", state: {}, "x": Marker()}),
        "torch-code": _evil_torch(),
        "deflated": _deflated(good),
        "truncated": good[: len(good) // 2],
        "state-not-dict": _modified(good, lambda o: o.__setitem__(state, [1, 2])),
        "state-wrong-shape": _modified(good, lambda o: o[state].__setitem__(next(iter(o[state])), torch.zeros(3))),
        "header-not-json": _modified(good, lambda o: o.__setitem__("header", "{")),
    }
    if kind == "bellamy":
        cases["huge-net"] = _modified(good, _header(kind, **{"config.hidden": 10**7}))
        cases["bad-features"] = _modified(good, _header(kind, feat_min=[0.0]))
        cases["zero-std"] = _modified(good, _header(kind, y_std=0.0))
    elif kind == "enel":
        cases["huge-net"] = _modified(good, _header(kind, **{"config.hidden": 10**7}))
        cases["huge-range"] = _modified(good, _header(kind, executors_max=10**9))
        cases["no-executors"] = _modified(good, _header(kind, executors_min=0, executors_max=0))
        cases["bad-template"] = _modified(good, _header(kind, **{"templates.sgd.stages.0.parents": [99]}))
        cases["threads"] = _modified(good, _header(kind, **{"config.threads": 100_000}))
    else:
        cases["huge-net"] = _modified(good, _header(kind, channels=10**9))
        cases["classes"] = _modified(good, _header(kind, classes=["normal"] * 10_000))
        cases["heads"] = _modified(good, _header(kind, **{"config.model": "d-arvalus", "config.hidden": 30,
                                                         "config.heads": 4}))
        cases["window"] = _modified(good, _header(kind, window=10**12))
    return cases


def _evil_torch() -> bytes:
    """A real torch archive whose pickle holds an object that would run code when loaded."""
    buf = io.BytesIO()
    torch.save({"header": "{}", "state": {}, "state_dict": {}, "x": Marker()}, buf)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["bellamy", "enel", "faults"])
def test_malformed_model_files(box: Sandbox, shop: FaultsApp, models: dict[str, bytes], kind: str,
                               tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    dataflow = DataflowApp(Context(sandbox=box))
    for case, data in _model_cases(models, kind, marker).items():
        name = f"bad/{kind}-{case}.pt"
        root = shop.sandbox.root if kind == "faults" else box.root
        (root / "bad").mkdir(exist_ok=True)
        (root / name).write_bytes(data)
        with pytest.raises(Exception) as info:
            if kind == "bellamy":
                dataflow.predict_runtime(PredictArgs(history="h.csv", model=name))
            elif kind == "enel":
                dataflow.rescale_plan(RescaleArgs(eventlog="running.jsonl", target_runtime_s=100, model=name))
            else:
                shop.localize(LocalizeArgs(topology="shop/topology.yaml", metrics="shop/metrics.csv", model=name))
        _one_line(info.value, name)
        assert not marker.exists(), f"{case}: a model file ran code"


# -- sizes -----------------------------------------------------------------------------------------------------


def test_files_over_the_size_limit_are_refused_unread(box: Sandbox, shop: FaultsApp, models: dict[str, bytes]) -> None:
    dataflow = DataflowApp(Context(sandbox=box))
    for name in ("big.csv", "big.jsonl", "big.pt"):
        _sparse(box.root / name, OVER)
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("big.csv", lambda: dataflow.predict_runtime(PredictArgs(history="big.csv"))),
        ("big.jsonl", lambda: dataflow.rescale_plan(RescaleArgs(eventlog="big.jsonl", target_runtime_s=9,
                                                                model="big.pt"))),
        ("big.pt", lambda: dataflow.predict_runtime(PredictArgs(history="h.csv", model="big.pt"))),
        ("big.jsonl", lambda: dataflow.train_rescaler(TrainRescalerArgs(logs=["big.jsonl"], output="o.pt"))),
    ]
    froot = shop.sandbox.root
    for name in ("big.csv", "big.json", "big.pt"):
        _sparse(froot / name, OVER)
    _sparse(froot / "big.yaml", 6 << 20)
    shop_files = {"topology": "shop/topology.yaml", "metrics": "shop/metrics.csv"}
    calls += [
        ("big.yaml", lambda: shop.localize(LocalizeArgs(**{**shop_files, "topology": "big.yaml"}))),
        ("big.csv", lambda: shop.localize(LocalizeArgs(**{**shop_files, "metrics": "big.csv"}))),
        ("big.pt", lambda: shop.localize(LocalizeArgs(**shop_files, model="big.pt"))),
        ("big.json", lambda: shop.train(TrainArgs(**shop_files, truth="big.json", output="m.pt"))),
    ]
    for name, call in calls:
        with pytest.raises(Exception) as info:
            call()
        assert "are not read" in _one_line(info.value, name)


def test_a_simulation_too_big_to_hold_is_refused_before_it_runs(shop: FaultsApp) -> None:
    with pytest.raises(AppError) as info:
        shop.simulate(SimulateArgs(output="huge", incidents=5000, window=1200))
    assert "at most" in str(info.value) and "\n" not in str(info.value)
    assert not (shop.sandbox.root / "huge").exists()


# -- the command lines --------------------------------------------------------------------------------------


def test_intentos_call_reports_a_malformed_file_in_one_line(box: Sandbox) -> None:
    (box.root / "bad.csv").write_bytes(HISTORIES["binary"])
    result = CliRunner().invoke(cli_app, ["call", "dataflow.predict_runtime", "--args", '{"history": "bad.csv"}',
                                          "--sandbox", str(box.root), "--json", "--yes"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    error = json.loads(result.stdout)["error"]
    assert "\n" not in error and "bad.csv" in error and "UTF-8" in error, error


def test_skill_clis_report_malformed_files_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(TOPOLOGIES["utf16"])
    result = CliRunner().invoke(cli_app, ["skills", "faults", "topology", str(bad), "--json"])
    assert result.exit_code == 2 and str(bad) in json.loads(result.stdout)["error"]
    log = tmp_path / "bad.jsonl"
    log.write_bytes(EVENTLOGS["deep"])
    model = tmp_path / "m.pt"
    model.write_bytes(b"junk")
    result = CliRunner().invoke(cli_app, ["skills", "dataflow", "rescale", str(log), "--target", "9", "--model",
                                          str(model), "--json"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(model) in json.loads(result.stdout)["error"] or str(log) in json.loads(result.stdout)["error"]
    os.mkfifo(tmp_path / "pipe.csv")
    result = CliRunner().invoke(cli_app, ["skills", "dataflow", "predict", str(tmp_path / "pipe.csv"), "--json"])
    assert result.exit_code == 2 and "not a regular file" in json.loads(result.stdout)["error"]
