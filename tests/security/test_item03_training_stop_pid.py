"""Item 3: training.stop never signals a pid just because a job.json names it.

The attacks: `intentos call training.stop --args '{"job_id": "../../../outside/fakejob"}'` read a
job.json outside the sandbox and killed the process group it named; a job.json planted inside the
sandbox did the same. Now a job id is a plain name (checked by the app's arguments and by jobs.py),
and a pid is signalled only when it is provably the job's own process (start time from /proc, its
process group, and the random token and folder the job was started with in its environment).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.cli import app
from intentos.sandbox import Sandbox
from intentos.skills.training import jobs

CONFIG = {"name": "fakejob", "workload": {"kind": "digits", "batch_size": 16, "channels": 4},
          "strategy": {"kind": "ddp"}, "steps": 4, "eval_every": 4}


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A process the attacker wants killed: leader of its own process group, like a job's shell."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    time.sleep(0.2)  # a signal, had one been sent, has landed by now
    return proc.poll() is None


def _job_json(folder: Path, **fields: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps({"job_id": "fakejob", "nproc": 1, "command": [],
                                                 "config": CONFIG, **fields}))


def _call(sandbox: Path, function: str, args: dict[str, Any]) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["call", function, "--args", json.dumps(args), "--sandbox", str(sandbox),
                                      "--json", "--yes"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.stdout)


def _stat(pid: int) -> tuple[int, str]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]), Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def test_a_job_id_leading_out_of_the_sandbox_is_refused(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    sandbox = Sandbox(tmp_path / "sb")
    _job_json(tmp_path / "outside" / "fakejob", pid=victim.pid)
    done = _call(sandbox.root, "training.stop", {"job_id": "../../../outside/fakejob"})
    assert done.get("status", "failed") == "failed"  # refused when the call's arguments are validated
    assert "job_id" in done["error"] and "is not a plain name" in done["error"]
    assert _alive(victim)
    # jobs.py checks it too, for the CLI and any other caller.
    root = sandbox.root / "training" / "jobs"
    for bad in ("../../../outside/fakejob", "..", ".", "a/b", "/etc", "", "x" * 65, "fake\njob"):
        with pytest.raises(jobs.JobError, match="not a plain name"):
            jobs.stop(root, bad)
    assert _alive(victim)


def test_a_planted_job_json_naming_a_pid_is_not_signalled(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    sandbox = Sandbox(tmp_path / "sb")
    _job_json(sandbox.root / "training" / "jobs" / "fakejob", pid=victim.pid)
    done = _call(sandbox.root, "training.stop", {"job_id": "fakejob"})
    assert done["status"] == "failed"
    error = done["error"]
    assert "\n" not in error and error.startswith(f"job fakejob: pid {victim.pid} is not the job's process")
    assert error.endswith("not signalled")
    assert _alive(victim)
    listed = _call(sandbox.root, "training.status", {"job_id": "fakejob"})
    assert listed["result"]["jobs"][0]["state"] == "died" and listed["result"]["jobs"][0]["pid"] is None


def test_a_forged_process_identity_is_not_enough(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    """Even the victim's real start time and boot id (an attacker might learn them) do not make it the job's."""
    sandbox = Sandbox(tmp_path / "sb")
    start_time, boot_id = _stat(victim.pid)
    _job_json(sandbox.root / "training" / "jobs" / "fakejob", pid=victim.pid,
              process={"pid": victim.pid, "start_time": start_time, "boot_id": boot_id,
                       "token": secrets.token_hex(16)})
    done = _call(sandbox.root, "training.stop", {"job_id": "fakejob"})
    assert done["status"] == "failed" and "not signalled" in done["error"] and "token" in done["error"]
    assert _alive(victim)


@pytest.mark.parametrize("pid", [0, -1, 1, "123", True, 1 << 30])
def test_a_pid_that_is_no_process_id_is_refused(tmp_path: Path, pid: Any) -> None:
    """pid 0 would have signalled intentos' own process group; -1 every process it may signal."""
    sandbox = Sandbox(tmp_path / "sb")
    _job_json(sandbox.root / "training" / "jobs" / "fakejob", pid=pid)
    done = _call(sandbox.root, "training.stop", {"job_id": "fakejob"})
    assert done["status"] == "failed"
    assert "\n" not in done["error"] and done["error"].startswith("training/jobs/fakejob/job.json: pid")


def test_a_real_job_is_still_stopped(tmp_path: Path) -> None:
    """The job's own process carries the proof, so stop works on it (and only on it)."""
    root = tmp_path / "jobs"
    config = tmp_path / "long.yaml"
    config.write_text(json.dumps({**CONFIG, "name": "long", "steps": 100000}))
    started = jobs.start(config, root, nproc=1)
    assert started.state == "running"
    meta = json.loads((root / "long" / "job.json").read_text())
    assert meta["process"]["pid"] == meta["pid"] == started.pid
    env = Path(f"/proc/{started.pid}/environ").read_bytes().split(b"\0")
    assert f"{jobs.TOKEN_ENV}={meta['process']['token']}".encode() in env
    stopped = jobs.stop(root, "long", grace=20)
    assert stopped.state == "stopped" and stopped.pid is None
    assert _live_members(started.pid) == []


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (exited workers may wait for a busy init to reap them)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found
