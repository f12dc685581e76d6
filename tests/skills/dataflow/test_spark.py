"""The dataflow skill on a real Spark: a local standalone cluster, a job writing Spark's own event log
(Spark 4's default: a rolling folder of zstd-compressed event files), read back unchanged by the parser,
the CLI and the app."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.app import Context
from intentos.executor import ConfirmRequest, Executor
from intentos.function import Effect
from intentos.sandbox import Sandbox
from intentos.skills.dataflow.app import DataflowApp, RescaleArgs, TrainRescalerArgs
from intentos.skills.dataflow.cli import app as dataflow_cli
from intentos.skills.dataflow.eventlog import EventLogError, parse_eventlog, parse_eventlog_bytes
from intentos.skills.dataflow.ops import QUICK_ENEL
from intentos.skills.dataflow.sparkcluster import JobRun, LocalCluster, SparkError, free_port
from intentos.skills.dataflow.sparkcontrol import ControlError, get_executors, set_executors
from intentos.table import FunctionTable
from intentos.workflow import Workflow

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pyspark") is None,
                       reason="pyspark is not installed (make spark installs it: pip install 'intentos[spark]')"),
    pytest.mark.skipif(shutil.which("java") is None,
                       reason="no Java runtime, and this machine could not install one (make spark tries apt-get)"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> LocalCluster:
    with LocalCluster(tmp_path_factory.mktemp("spark"), workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def sort_run(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> JobRun:
    return cluster.submit("sort", 20_000, tmp_path_factory.mktemp("events"), seed=3)


def test_the_cluster_is_local_and_complete(cluster: LocalCluster) -> None:
    state = cluster.state()
    assert state["status"] == "ALIVE" and state["aliveworkers"] == 2
    assert all(w["host"] == "127.0.0.1" for w in state["workers"])


def test_a_job_writes_an_event_log_the_parser_reads_unchanged(sort_run: JobRun) -> None:
    assert sort_run.result["output"]["records"] == 20_000 and sort_run.result["output"]["sorted"]
    folder = sort_run.eventlog
    assert folder.is_dir() and folder.name.startswith("eventlog_v2_app-")
    assert any(p.name.endswith(".zstd") for p in folder.iterdir())  # Spark 4's default codec
    log = parse_eventlog(folder)
    assert log.complete and log.app_name == "sort-20000"
    assert len(log.jobs) >= 2 and all(j.completed_ms for j in log.jobs)
    assert any(s.parents for s in log.stages)  # a shuffle: the DAG has edges
    assert all(s.tasks_done == s.num_tasks and s.duration_s is not None for s in log.stages if not s.failed)
    assert 1 <= log.max_executors() <= 2 and log.executor_changes[0].added


def test_a_log_cut_mid_frame_reads_as_a_running_application(sort_run: JobRun) -> None:
    events = sorted(sort_run.eventlog.glob("events_*"))
    raw = events[-1].read_bytes()
    whole = parse_eventlog_bytes(raw, "whole")
    cut = parse_eventlog_bytes(raw[: int(len(raw) * 0.9)], "cut")  # the writer is mid-frame
    assert whole.complete and not cut.complete and len(cut.stages) <= len(whole.stages)
    with pytest.raises(EventLogError, match="not valid zstd data"):
        parse_eventlog_bytes(raw[:4] + b"\xff" * 64, "broken.zstd")


def test_the_app_reads_rolling_logs_through_the_sandbox(sort_run: JobRun, tmp_path: Path) -> None:
    box = Sandbox(tmp_path / "sandbox")
    shutil.copytree(sort_run.eventlog, box.root / "history" / sort_run.eventlog.name)
    shutil.copytree(sort_run.eventlog, box.root / sort_run.eventlog.name)
    app = DataflowApp(Context(sandbox=box, settings={"dataflow": {"enel": QUICK_ENEL}}))
    plan = app.rescale_plan(RescaleArgs(eventlog=sort_run.eventlog.name, target_runtime_s=60,
                                        history_logs=["history"]))
    assert plan.app_name == "sort-20000" and not plan.running and plan.jobs_done == len(parse_eventlog(
        sort_run.eventlog).jobs)


def test_spark_run_on_the_command_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(dataflow_cli, ["spark-run", "grep", "--size", "5000", "--executors", "1",
                                               "--eventlogs", str(tmp_path / "events"), "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)
    assert run["job"] == "grep" and run["stages"] >= 2 and run["max_executors"] == 1
    assert Path(run["eventlog"]).parent == tmp_path / "events" and run["runtime_s"] > 0


def test_a_failing_job_is_one_line_naming_its_log(cluster: LocalCluster, tmp_path: Path) -> None:
    with pytest.raises(SparkError, match=r"failed \(exit \d+\).*see .*driver-") as info:
        cluster.submit("sort", 1000, tmp_path, conf={"spark.driver.memory": "lots"}, timeout_s=120)
    assert "\n" not in str(info.value)


def _wait_for(check: Any, what: str, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
        except (ControlError, EventLogError):
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def enel_model(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enel trained on earlier runs of the recurring job (sgd at 50,000 points) on 1 and 2 executors."""
    box = Sandbox(tmp_path_factory.mktemp("training"))
    for executors in (1, 2):
        cluster.submit("sgd", 50_000, box.root / "history", executors=executors, dynamic=False, partitions=4)
    app = DataflowApp(Context(sandbox=box, settings={"dataflow": {"enel": QUICK_ENEL}}))
    app.train_rescaler(TrainRescalerArgs(logs=["history"], output="enel.pt"))
    return box.root / "enel.pt"


def test_a_live_rescale_changes_the_running_jobs_executors_and_is_journaled(cluster: LocalCluster,
                                                                               enel_model: Path,
                                                                               tmp_path: Path) -> None:
    box = Sandbox(tmp_path / "sandbox")
    app = DataflowApp(Context(sandbox=box, settings={"dataflow": {"enel": QUICK_ENEL}}))
    shutil.copy(enel_model, box.root / "enel.pt")

    running = cluster.launch("sgd", 50_000, box.root / "events", executors=2, rescalable=True, partitions=4)
    assert running.control_url is not None
    _wait_for(lambda: get_executors(running.control_url) == 2, "the job starting on 2 executors")
    log = _wait_for(lambda: (p := running.eventlog()) and parse_eventlog(p).jobs and p, "a first Spark job")

    asked: list[ConfirmRequest] = []
    workflow = Workflow.model_validate({"states": [
        {"name": "rescale", "call": "dataflow.rescale",
         # A target far off: the smallest scale-out meeting it is 1 executor, so the job gives one back.
         "args": {"eventlog": f"events/{log.name}", "target_runtime_s": 3600, "model": "enel.pt",
                  "control_url": running.control_url}},
    ]})
    view = Executor(FunctionTable([DataflowApp]), app.ctx, confirm=lambda r: asked.append(r) or True).run(workflow)
    assert view.status == "done", view.error
    assert [r.function.effect for r in asked] == [Effect.EXTERNAL]  # asked before anything happened
    step = view.steps[0]
    assert step.call == "dataflow.rescale" and step.status == "ok"
    assert step.result["executors_before"] == 2 and step.result["executors_after"] == 1
    assert step.result["plan"]["recommended_executors"] == 1 and step.result["plan"]["running"]

    done = running.wait()
    assert done.result["output"]["points"] == 50_000
    final = parse_eventlog(done.eventlog)
    assert final.complete and not final.executor_changes[-1].added  # Spark logged the removal
    assert final.executors_at(final.jobs[-1].submitted_ms) == 1


def test_a_rescalable_job_from_the_command_line_is_rescaled_from_another(enel_model: Path, tmp_path: Path) -> None:
    events = tmp_path / "events"
    job = subprocess.Popen(
        [sys.executable, "-m", "intentos", "skills", "dataflow", "spark-run", "sgd", "--size", "50000",
         "--executors", "2", "--rescalable", "--eventlogs", str(events), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        # spark-run says how to rescale it, on stderr, once the job runs.
        command = _wait_for(lambda: next((ln.split() for ln in iter(job.stderr.readline, "")
                                          if "dataflow rescale" in ln), None), "the rescale command", 180)
        log, url = Path(command[command.index("rescale") + 1]), command[command.index("--apply") + 1]
        assert log.parent == events and url.startswith("http://127.0.0.1:")
        _wait_for(lambda: get_executors(url) == 2 and parse_eventlog(log).jobs, "the job's first Spark job")
        result = CliRunner().invoke(dataflow_cli, ["rescale", str(log), "--target", "3600", "--model",
                                                   str(enel_model), "--apply", url, "--json"])
        assert result.exit_code == 0, result.output
        rescaled = json.loads(result.output)
        assert rescaled["executors_before"] == 2 and rescaled["executors_after"] == 1 and rescaled["changed"]
        stdout, _ = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode == 0
    run = json.loads(stdout)
    assert run["dynamic"] is False and run["max_executors"] == 2 and run["result"]["output"]["points"] == 50_000


def test_a_declined_rescale_changes_nothing(cluster: LocalCluster, tmp_path: Path) -> None:
    box = Sandbox(tmp_path / "sandbox")
    app = DataflowApp(Context(sandbox=box))
    workflow = Workflow.model_validate({"states": [
        {"name": "rescale", "call": "dataflow.rescale",
         "args": {"eventlog": "none.jsonl", "target_runtime_s": 60, "control_url": "http://127.0.0.1:9"}},
    ]})
    view = Executor(FunctionTable([DataflowApp]), app.ctx).run(workflow)  # nobody to ask: declined
    assert view.steps[0].status == "declined" and "not confirmed" in (view.steps[0].error or "")


def test_the_control_client_stays_on_this_machine() -> None:
    with pytest.raises(ControlError, match="on this machine"):
        set_executors("http://10.0.0.1:4040", 2)
    with pytest.raises(ControlError, match="no executor control endpoint there"):
        get_executors(f"http://127.0.0.1:{free_port()}")
