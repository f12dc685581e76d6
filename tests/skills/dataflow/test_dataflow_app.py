"""The dataflow app through its functions and the Executor, in a real sandbox."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from intentos.app import Context
from intentos.errors import AppError, SandboxError
from intentos.executor import Executor
from intentos.function import Effect
from intentos.sandbox import Sandbox
from intentos.skills import kit
from intentos.skills.dataflow.app import (
    DataflowApp,
    PredictArgs,
    RecommendArgs,
    RescaleArgs,
    TrainArgs,
    TrainRescalerArgs,
)
from intentos.skills.dataflow.eventgen import generate_eventlog, generate_training_set
from intentos.skills.dataflow.ops import QUICK_BELLAMY, QUICK_ENEL, ContextSpec
from intentos.table import FunctionTable
from intentos.workflow import Workflow

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    sandbox = Sandbox(tmp_path_factory.mktemp("dataflow") / "sandbox")
    shutil.copy(DATA / "bell" / "grep.csv", sandbox.root / "grep.csv")
    generate_training_set(sandbox.root / "history", kinds=("sgd",), scaleouts=(2, 4, 8), runs_per_scaleout=1)
    generate_eventlog(sandbox.root / "running.jsonl", "sgd", 4, seed=5, stop_after_job=2)
    return sandbox


@pytest.fixture(scope="module")
def app(box: Sandbox) -> DataflowApp:
    # One context (Bell): a short pre-training suffices, fine-tuning does the work; light on 2 shared cores.
    quick = {**QUICK_BELLAMY, "pretrain_epochs": 15}
    return DataflowApp(Context(sandbox=box, settings={"dataflow": {"bellamy": quick, "enel": QUICK_ENEL}}))


def test_functions_and_effects() -> None:
    effects = {f.verb: f.effect for f in FunctionTable([DataflowApp]) if f.app == "dataflow"}
    assert effects == {"predict_runtime": Effect.READ, "recommend_scaleout": Effect.READ,
                       "rescale_plan": Effect.READ, "rescale": Effect.EXTERNAL,
                       "train_runtime_model": Effect.WRITE, "train_rescaler": Effect.WRITE}


def test_predict_and_recommend_on_a_bell_history(app: DataflowApp) -> None:
    pred = app.predict_runtime(PredictArgs(history="grep.csv", scaleouts=[4, 12, 28, 60]))
    assert pred.context_runs == 105 and [r.scaleout for r in pred.rows] == [4, 12, 28, 60]
    for row in pred.rows:
        assert row.observed_s and row.ernest_s
        assert abs(row.bellamy_s - row.observed_s) / row.observed_s < 0.15, row
    rec = app.recommend_scaleout(RecommendArgs(history="grep.csv", target_runtime_s=300, cost_per_node_hour=2.0,
                                               scaleouts=[4, 8, 16, 32, 60]))
    meeting = [c for c in rec.candidates if c.meets_target]
    assert rec.recommended == min(meeting, key=lambda c: c.cost).scaleout
    assert all(c.cost == pytest.approx(c.runtime_s / 3600 * c.scaleout * 2.0, abs=1e-3) for c in rec.candidates)
    none = app.recommend_scaleout(RecommendArgs(history="grep.csv", target_runtime_s=1, scaleouts=[4, 8]))
    assert none.recommended is None and "no scale-out meets" in none.summary


def test_train_writes_a_model_that_predict_loads(app: DataflowApp, box: Sandbox) -> None:
    done = app.train_runtime_model(TrainArgs(history="grep.csv", output="models/grep.pt"))
    assert done.kind == "bellamy" and (box.root / "models/grep.pt").is_file()
    with pytest.raises(AppError, match="already exists"):
        app.train_runtime_model(TrainArgs(history="grep.csv", output="models/grep.pt"))
    pred = app.predict_runtime(PredictArgs(history="grep.csv", model="models/grep.pt", scaleouts=[8]))
    assert pred.rows[0].bellamy_s > 0


def test_paths_stay_in_the_sandbox_and_errors_are_clear(app: DataflowApp, box: Sandbox) -> None:
    with pytest.raises(SandboxError):
        app.predict_runtime(PredictArgs(history="../../etc/passwd"))
    with pytest.raises(AppError, match="nope.tsv does not exist"):
        app.predict_runtime(PredictArgs(history="nope.tsv"))
    (box.root / "bad.csv").write_text("Nodes,Runtime\n4,12\nfour,13\n")
    with pytest.raises(AppError, match=r"^bad\.csv:3: column Nodes"):
        app.predict_runtime(PredictArgs(history="bad.csv"))
    with pytest.raises(AppError, match="no job parameter k"):
        app.predict_runtime(PredictArgs(history="grep.csv", context=ContextSpec(params={"k": "3"})))
    with pytest.raises(AppError, match="give a trained Enel model or history_logs"):
        app.rescale_plan(RescaleArgs(eventlog="running.jsonl", target_runtime_s=100))


def test_rescale_plan_through_the_executor(app: DataflowApp) -> None:
    workflow = Workflow.model_validate({"states": [
        {"name": "train", "call": "dataflow.train_rescaler", "args": {"logs": ["history"], "output": "enel.pt"}},
        {"name": "plan", "call": "dataflow.rescale_plan",
         "args": {"eventlog": "running.jsonl", "target_runtime_s": 150, "model": "enel.pt"}},
    ]})
    view = Executor(FunctionTable([DataflowApp]), app.ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view.error
    plan = view.results["plan"]
    assert plan["app_name"] == "sgd" and plan["running"] and plan["jobs_done"] == 3
    assert plan["current_executors"] == 4 and [c["executors"] for c in plan["candidates"]] == list(range(2, 9))
    fitting = [c["executors"] for c in plan["candidates"] if c["meets_target"]]
    assert plan["recommended_executors"] == (fitting[0] if fitting else plan["recommended_executors"])
    assert plan["meets_target"] == bool(fitting)


@pytest.mark.parametrize("model", ["bellamy", "enel"])
def test_a_training_stops_within_a_second_of_cancel(box: Sandbox, model: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings that would train for hours: only the cancel can end it.
    endless = {"bellamy": {"pretrain_epochs": 10**7, "pretrain_patience": 10**7}, "enel": {"epochs": 10**7}}
    app = DataflowApp(Context(sandbox=box, settings={"dataflow": endless}))
    output = f"models/cancelled-{model}.pt"
    outcome: dict[str, Any] = {}
    # Cancel only once the training loop checks the flag (imports and reading the inputs come first).
    training = threading.Event()
    check = kit.check

    def watched(cancelled: kit.Cancel) -> None:
        training.set()
        check(cancelled)

    monkeypatch.setattr(kit, "check", watched)

    def train() -> None:
        try:
            if model == "bellamy":
                app.train_runtime_model(TrainArgs(history="grep.csv", output=output))
            else:
                app.train_rescaler(TrainRescalerArgs(logs=["history"], output=output))
        except Exception as exc:
            outcome["error"], outcome["at"] = exc, time.monotonic()

    worker = threading.Thread(target=train, daemon=True)
    worker.start()
    assert training.wait(timeout=60), outcome
    time.sleep(0.3)
    assert worker.is_alive(), outcome
    cancelled_at = time.monotonic()
    app.ctx.cancelled.set()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the training ran on after the cancel"
    error = outcome.get("error")
    assert isinstance(error, kit.Cancelled) and isinstance(error, AppError) and str(error) == "cancelled", error
    assert outcome["at"] - cancelled_at < 1.0
    assert not (box.root / output).exists()
