"""Training jobs in the background: start torchrun detached, then status, stop, wait, list.

A job is a folder `<root>/<job_id>/` holding everything about it:

    config.yaml     the validated job file it runs
    job.json        id, nproc, pid (of the process-group leader), command, start time
    log.txt         stdout and stderr of torchrun and its workers
    metrics.jsonl   written by rank 0 (see loop.py)
    checkpoints/    one file per rank per checkpoint, `latest` names the newest complete one
    exit_code       written when torchrun returns; absent while running or after a stop
    stopped         written by `stop()` before it signals the job

The job runs in its own session, so `stop()` signals the whole group (shell, torchrun, workers).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from intentos import paths
from intentos.errors import IntentosError
from intentos.skills.training.config import JobConfig, dump_config, load_config, parse_config
from intentos.skills.training.layout import METRICS, latest_checkpoint

State = Literal["running", "finished", "failed", "stopped", "died"]
LOG_TAIL_LINES = 15


class JobError(IntentosError):
    """A job cannot be started, found or stopped; names the job."""


class JobStatus(BaseModel):
    job_id: str
    dir: str
    state: State
    nproc: int
    workload: str
    strategy: str
    step: int = 0
    steps: int
    loss: float | None = None
    eval_loss: float | None = None
    eval_acc: float | None = None
    bytes: int = 0
    wall: float | None = None
    pid: int | None = None
    log_tail: str | None = None


def default_root() -> Path:
    return paths.home() / "training" / "jobs"


def read_metrics(job_dir: Path) -> list[dict[str, Any]]:
    path = job_dir / METRICS
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line being written right now
    return records


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reaps it if it is our child and has ended
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _job_dir(root: Path, job_id: str) -> Path:
    job_dir = root / job_id
    if not (job_dir / "job.json").is_file():
        known = ", ".join(sorted(p.name for p in root.glob("*") if (p / "job.json").is_file())) or "none"
        raise JobError(f"no training job {job_id!r} under {root} (known: {known})")
    return job_dir


def status(root: Path, job_id: str) -> JobStatus:
    """Where a job stands, from its folder and process."""
    job_dir = _job_dir(root, job_id)
    meta = json.loads((job_dir / "job.json").read_text())
    cfg = parse_config(json.loads(json.dumps(meta["config"])), str(job_dir / "config.yaml"))
    pid = meta.get("pid")
    exit_file = job_dir / "exit_code"
    state: State
    if exit_file.is_file():
        state = "finished" if exit_file.read_text().strip() == "0" else "failed"
    elif pid is not None and _alive(pid):
        state = "running"
    else:
        state = "stopped" if (job_dir / "stopped").is_file() else "died"
    records = read_metrics(job_dir)
    steps = [r for r in records if "event" not in r]
    evals = [r for r in steps if "eval_loss" in r]
    last = steps[-1] if steps else {}
    log_tail = None
    if state in ("failed", "died"):
        log = job_dir / "log.txt"
        lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
        log_tail = "\n".join(lines[-LOG_TAIL_LINES:])
    return JobStatus(job_id=job_id, dir=str(job_dir), state=state, nproc=meta["nproc"], workload=cfg.workload.kind,
                     strategy=describe_strategy(cfg), step=last.get("step", 0), steps=cfg.steps,
                     loss=last.get("loss"), eval_loss=evals[-1]["eval_loss"] if evals else None,
                     eval_acc=evals[-1].get("eval_acc") if evals else None, bytes=last.get("bytes", 0),
                     wall=last.get("wall"), pid=pid if state == "running" else None, log_tail=log_tail)


def describe_strategy(cfg: JobConfig) -> str:
    s = cfg.strategy
    if s.kind == "ddp":
        return "ddp"
    if s.kind == "diloco":
        return f"diloco H={s.H}"
    return f"diloco_dct H={s.H} tile={s.tile} k={s.k}"


def list_jobs(root: Path) -> list[JobStatus]:
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if (p / "job.json").is_file()]
    return [status(root, job_id) for job_id in sorted(found)]


def start(config: Path | JobConfig, root: Path, nproc: int = 2, resume: bool = False,
          job_id: str | None = None) -> JobStatus:
    """Validate the job file, then launch torchrun in the background; returns at once."""
    if not 1 <= nproc <= 256:
        raise JobError(f"nproc must be between 1 and 256, got {nproc}")
    cfg = config if isinstance(config, JobConfig) else load_config(config)
    job_id = job_id or cfg.name
    job_dir = root / job_id
    if (job_dir / "job.json").is_file():
        current = status(root, job_id)
        if current.state == "running":
            raise JobError(f"training job {job_id!r} is already running (pid {current.pid})")
        if not resume:
            raise JobError(f"training job {job_id!r} already exists in {job_dir}: "
                           "resume it (--resume) or give the job another name")
    if resume:
        if latest_checkpoint(job_dir) is None:
            raise JobError(f"training job {job_id!r} has no checkpoint to resume from in {job_dir}")
        previous = json.loads((job_dir / "job.json").read_text())["nproc"]
        if previous != nproc:
            raise JobError(f"training job {job_id!r} ran with {previous} processes; resume it with --nproc {previous}")
    job_dir.mkdir(parents=True, exist_ok=True)
    for marker in ("exit_code", "stopped"):
        (job_dir / marker).unlink(missing_ok=True)
    config_file = job_dir / "config.yaml"
    config_file.write_text(dump_config(cfg), encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "intentos.skills.training.loop", str(config_file), "--job-dir", str(job_dir)]
    if resume:
        command.append("--resume")
    # The shell records torchrun's exit status; a stopped job leaves none, which tells the two apart.
    script = f'{shlex.join(command)}; echo $? > {shlex.quote(str(job_dir / "exit_code"))}'
    env = os.environ | {"OMP_NUM_THREADS": str(cfg.threads), "PYTHONUNBUFFERED": "1"}
    with (job_dir / "log.txt").open("a") as log:
        log.write(f"--- {'resume' if resume else 'start'} {datetime.now(UTC).isoformat(timespec='seconds')}: "
                  f"{shlex.join(command)}\n")
        log.flush()
        proc = subprocess.Popen(["/bin/sh", "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=job_dir)
    meta = {"job_id": job_id, "nproc": nproc, "pid": proc.pid, "command": command, "resume": resume,
            "started": datetime.now(UTC).isoformat(timespec="seconds"), "config": cfg.model_dump(mode="json")}
    (job_dir / "job.json").write_text(json.dumps(meta, indent=2))
    return status(root, job_id)


def stop(root: Path, job_id: str, grace: float = 10.0) -> JobStatus:
    """SIGTERM the job's process group; SIGKILL what is left after `grace` seconds."""
    current = status(root, job_id)
    if current.state != "running" or current.pid is None:
        return current
    job_dir = Path(current.dir)
    (job_dir / "stopped").write_text(datetime.now(UTC).isoformat(timespec="seconds"))
    pgid = current.pid  # the shell leads the session started for the job
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (_alive(pgid) or _group_alive(pgid)):
        time.sleep(0.1)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)
    return status(root, job_id)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Only zombies left (e.g. our own unreaped child) count as gone.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def wait(root: Path, job_id: str, timeout: float = 600.0, poll: float = 0.5) -> JobStatus:
    """Block until the job is no longer running (or `timeout` passes); returns its status."""
    deadline = time.monotonic() + timeout
    while True:
        current = status(root, job_id)
        if current.state != "running" or time.monotonic() >= deadline:
            return current
        time.sleep(poll)
