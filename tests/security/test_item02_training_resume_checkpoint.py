"""Item 2: resuming a planted training job must never unpickle code from its checkpoint.

The attack: a job folder planted in the sandbox, `training/jobs/evil/{job.json, checkpoints/latest,
checkpoints/step_1/rank0.pt}`, whose rank0.pt is a pickle calling os.system, then
`intentos call training.start --args '{"config": ..., "resume": true}'`. The loop loaded it with
torch.load(weights_only=False) and ran it. Now every checkpoint is read with weights_only=True,
checked before any process starts, and refused with one line naming the file.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import yaml
from typer.testing import CliRunner

from intentos.cli import app
from intentos.sandbox import Sandbox
from intentos.skills.training import jobs
from intentos.skills.training.config import parse_config
from intentos.skills.training.loop import train

REPO = Path(__file__).resolve().parents[2]
CONFIG = {"name": "evil", "workload": {"kind": "digits", "batch_size": 16, "channels": 4},
          "strategy": {"kind": "ddp"}, "optimizer": {"lr": 0.003}, "steps": 4, "eval_every": 4}
CHECKPOINT = "training/jobs/evil/checkpoints/step_1/rank0.pt"


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _plant(sandbox: Sandbox, marker: Path, *, legacy: bool = False) -> Path:
    sandbox.write_text("jobs/evil.yaml", yaml.safe_dump(CONFIG))
    job = sandbox.root / "training" / "jobs" / "evil"
    sandbox.write_text("training/jobs/evil/job.json", json.dumps({
        "job_id": "evil", "nproc": 1, "pid": None, "command": [], "resume": False,
        "started": "2026-01-01T00:00:00+00:00", "config": CONFIG}))
    sandbox.write_text("training/jobs/evil/checkpoints/latest", "step_1")
    rank0 = job / "checkpoints" / "step_1" / "rank0.pt"
    rank0.parent.mkdir(parents=True)
    if legacy:
        rank0.write_bytes(pickle.dumps(Evil(marker)))
    else:
        torch.save(Evil(marker), rank0)  # torch's own zip format, as the loop writes checkpoints
    return job


def _start(sandbox: Sandbox, args: dict[str, Any]) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["call", "training.start", "--args", json.dumps(args), "--sandbox",
                                      str(sandbox.root), "--json", "--yes"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.stdout)


def test_the_checkpoint_is_live(tmp_path: Path) -> None:
    """The planted file is a real exploit: torch.load(weights_only=False) runs the command."""
    marker = tmp_path / "proof"
    _plant(Sandbox(tmp_path / "sb"), marker)
    code = "import sys, torch; torch.load(sys.argv[1], weights_only=False)"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "sb" / CHECKPOINT)], capture_output=True, timeout=60)
    assert marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["torch-zip", "raw-pickle"])
def test_resume_of_a_planted_checkpoint_runs_nothing(tmp_path: Path, legacy: bool) -> None:
    marker = tmp_path / "pwned"
    sandbox = Sandbox(tmp_path / "sb")
    job = _plant(sandbox, marker, legacy=legacy)
    before = (job / "job.json").read_text()
    done = _start(sandbox, {"config": "jobs/evil.yaml", "resume": True, "nproc": 1})
    assert done["status"] == "failed"
    error = done["error"]
    assert "\n" not in error and error.startswith(f"{CHECKPOINT}: "), error
    assert not marker.exists()
    assert not (job / "log.txt").exists() and (job / "job.json").read_text() == before  # nothing was started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_training_loop_itself_refuses_the_checkpoint(tmp_path: Path) -> None:
    """Defense in depth: the torchrun entry point, run on the planted folder, loads weights only."""
    marker = tmp_path / "pwned"
    job = _plant(Sandbox(tmp_path / "sb"), marker)
    (job / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    env = os.environ | {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "intentos.skills.training.loop", str(job / "config.yaml"),
                           "--job-dir", str(job), "--resume"], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)
    assert not marker.exists()
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(job / "checkpoints" / "step_1" / "rank0.pt") in errors[0]
    assert "Traceback" not in done.stderr


def test_a_real_checkpoint_still_resumes(tmp_path: Path) -> None:
    """What the loop saves (tensors, state dicts, numbers, strings) loads with weights_only=True."""
    root = tmp_path / "jobs"
    job = root / "real"
    job.mkdir(parents=True)
    cfg = parse_config({**CONFIG, "name": "real", "steps": 2, "eval_every": 2})
    # The first 2 steps in this process (one gloo rank), as a job would have run them...
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        train(cfg, job)
    finally:
        dist.destroy_process_group()
    (job / "job.json").write_text(json.dumps({"job_id": "real", "nproc": 1, "pid": None,
                                              "config": cfg.model_dump(mode="json")}))
    (job / "exit_code").write_text("0")
    # ...then resumed in the background like any job: the checkpoint passes the check and loads.
    longer = cfg.model_copy(update={"steps": 4})
    resumed = jobs.wait(root, jobs.start(longer, root, nproc=1, resume=True).job_id, timeout=120)
    assert resumed.state == "finished" and resumed.step == 4, resumed.log_tail
