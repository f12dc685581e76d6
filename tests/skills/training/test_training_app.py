"""The `training` app end to end: real torchrun jobs in the background, started, watched, stopped, compared."""

from __future__ import annotations

import json

import pytest

from intentos.app import Context
from intentos.errors import AppError, SandboxError
from intentos.skills.training import jobs
from intentos.skills.training.app import CompareArgs, JobRef, StartArgs, StatusArgs, TrainingApp

JOB = """\
name: {name}
workload: {{kind: digits, batch_size: 16, channels: 4}}
strategy: {strategy}
optimizer: {{lr: 0.003}}
steps: {steps}
eval_every: 4
"""


@pytest.fixture
def app(ctx: Context) -> TrainingApp:
    ctx.sandbox.write_text("jobs/short.yaml", JOB.format(name="short", steps=8,
                                                          strategy="{kind: diloco_dct, H: 4, tile: 16, k: 2}"))
    ctx.sandbox.write_text("jobs/long.yaml", JOB.format(name="long", steps=100000, strategy="{kind: diloco, H: 4}"))
    return TrainingApp(ctx)


def test_start_status_stop_compare(app: TrainingApp) -> None:
    # One job at a time: the long one is stopped before the short one runs.
    long = app.start(StartArgs(config="jobs/long.yaml", nproc=2))
    assert long.state == "running" and long.dir == "training/jobs/long"
    assert "long" in app.summary()
    stopped = app.stop(JobRef(job_id="long"))
    assert stopped.state == "stopped" and stopped.pid is None

    short = app.start(StartArgs(config="jobs/short.yaml", nproc=2))
    assert short.state == "running"
    done = jobs.wait(app.root, "short", timeout=300)
    assert done.state == "finished", done.log_tail
    assert done.step == 8 and done.eval_loss is not None and 0 <= done.eval_acc <= 1
    assert done.bytes > 0 and done.strategy == "diloco_dct H=4 tile=16 k=2"
    listed = {s.job_id: s.state for s in app.status(StatusArgs()).jobs}
    assert listed == {"short": "finished", "long": "stopped"}

    result = app.compare(CompareArgs(job_ids=["short"], plot="plots/cmp.png"))
    assert result.plot == "plots/cmp.png"
    assert app.sandbox.resolve("plots/cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r.job_id for r in result.rows] == ["short"] and "short" in result.table
    records = [json.loads(line) for line in (app.root / "short" / "metrics.jsonl").read_text().splitlines()]
    assert result.rows[0].bytes == records[-1]["bytes"]  # the table reports what the job counted

    with pytest.raises(AppError, match="already exists"):
        app.start(StartArgs(config="jobs/short.yaml"))


def test_bad_requests_are_refused_clearly(app: TrainingApp) -> None:
    with pytest.raises(AppError, match="no training job 'ghost'"):
        app.status(StatusArgs(job_id="ghost"))
    with pytest.raises(AppError, match="no job file"):
        app.start(StartArgs(config="jobs/missing.yaml"))
    with pytest.raises(SandboxError):
        app.start(StartArgs(config="../outside.yaml"))
    with pytest.raises(AppError, match="no checkpoint to resume from"):
        app.start(StartArgs(config="jobs/short.yaml", resume=True))
    with pytest.raises(AppError, match="no training jobs to compare"):
        app.compare(CompareArgs())
