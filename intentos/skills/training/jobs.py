"""Training jobs in the background: start torchrun detached, then status, stop, wait, list.

A job is a folder `<root>/<job_id>/` holding everything about it:

    config.yaml     the validated job file it runs
    job.json        id, nproc, nnodes, node_rank, pid (of the process-group leader) with the proof that it is
                    ours, command, start time
    log.txt         stdout and stderr of torchrun and its workers
    metrics.jsonl   written by the machine's first process (see loop.py)
    checkpoints/    one file per rank per checkpoint, `latest` names the newest complete one
    exit_code       written when torchrun returns; absent while running or after a stop
    stopped         written by `stop()` before it signals the job

The job runs in its own session, so `stop()` signals the whole group (shell, torchrun, workers).

On several machines (nnodes > 1) each one starts the job with its own node_rank and the address of
machine 0 (rdzv_endpoint, HOST:PORT); each keeps its own job folder, holding its own ranks'
checkpoint files, its metrics and its log, and status, stop and resume act on that machine's part.

A job folder can be planted (it is a folder in the sandbox), so nothing in it is trusted. A job id
is a plain name (JOB_ID_PATTERN), never a path. A folder holding a symbolic link is refused. And a
pid is never signalled, nor counted as the job running, because job.json names it: `start()`
records the process's start time (/proc/<pid>/stat) and the machine's boot id, and gives the job a
random token and its folder in the environment; only a process with that start time, leading its
own process group, whose environment carries that token and folder, is the job's.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intentos import locations
from intentos.errors import IntentosError
from intentos.skills.training.config import JobConfig, dump_config, load_config, parse_config
from intentos.skills.training.layout import METRICS, inside, latest_checkpoint

State = Literal["running", "finished", "failed", "stopped", "died"]
LOG_TAIL_LINES = 15
LOG_TAIL_BYTES = 64 * 1024
MAX_META_BYTES = 4 * 1024 * 1024
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)
TOKEN_ENV = "INTENTOS_TRAINING_JOB_TOKEN"
DIR_ENV = "INTENTOS_TRAINING_JOB_DIR"
_GONE = "no such process"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_PID = 1 << 22  # the kernel's PID_MAX_LIMIT
MAX_NODES = 1024
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]")


class JobError(IntentosError):
    """A job cannot be started, found or stopped; names the job."""


class JobStatus(BaseModel):
    job_id: str
    dir: str
    state: State
    nproc: int
    nnodes: int = 1
    node_rank: int = 0
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


class ProcessIdentity(BaseModel):
    """What proves that a live pid is the job's shell, recorded right after it was started."""

    model_config = ConfigDict(extra="forbid", strict=True)

    pid: int = Field(ge=2, le=MAX_PID)
    start_time: int = Field(ge=0, description="/proc/<pid>/stat field 22: clock ticks after boot")
    boot_id: str = Field(min_length=1, max_length=64)
    token: str = Field(pattern=r"^[0-9a-f]{32}$")


class JobMeta(BaseModel):
    """job.json, checked: a binary or wrongly typed file is an error naming it."""

    model_config = ConfigDict(extra="ignore", strict=True)

    job_id: str = Field(max_length=64)
    nproc: int = Field(ge=1, le=256)
    nnodes: int = Field(1, ge=1, le=MAX_NODES)
    node_rank: int = Field(0, ge=0, lt=MAX_NODES)
    pid: int | None = Field(None, ge=2, le=MAX_PID)
    process: ProcessIdentity | None = None
    command: list[str] = Field(default_factory=list)
    resume: bool = False
    started: str | None = None
    config: dict[str, Any]


def default_root() -> Path:
    return locations.home() / "training" / "jobs"


def check_job_id(job_id: object) -> str:
    """A job id is a plain folder name: letters, digits, '.', '_', '-'; never a path, '.' or '..'."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        shown = repr(job_id)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise JobError(f"job id {shown} is not a plain name: letters, digits, '.', '_' and '-', starting with a "
                       "letter or digit, at most 64 characters")
    return job_id


# -- reading a job folder ---------------------------------------------------------------------------------------


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "job"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return " ".join(f"{where}: {first['msg']}{more}".split())


def _read_meta(job_dir: Path) -> tuple[JobMeta, JobConfig]:
    path = job_dir / "job.json"
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_META_BYTES + 1)
    except OSError as exc:
        raise JobError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_META_BYTES:
        raise JobError(f"{path}: more than {MAX_META_BYTES} bytes, not a job record")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise JobError(f"{path}: not UTF-8 text (a binary file?)") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise JobError(f"{path}: not JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise JobError(f"{path}: not a job record (a JSON {type(data).__name__}, not an object)")
    try:
        meta = JobMeta.model_validate(data)
    except ValidationError as exc:
        raise JobError(f"{path}: {_describe(exc)}") from None
    return meta, parse_config(meta.config, f"{path} (config)")


def _no_links(job_dir: Path) -> None:
    """A job folder holding a symbolic link could make reads and writes land outside it: refused."""
    if job_dir.is_symlink():
        raise JobError(f"{job_dir} is a symbolic link; a job folder must be a real folder")
    for folder, dirs, files in os.walk(job_dir, followlinks=False):
        for name in dirs + files:
            if os.path.islink(os.path.join(folder, name)):
                raise JobError(f"{os.path.join(folder, name)} is a symbolic link; refusing to use the job folder")


def _job_dir(root: Path, job_id: str) -> Path:
    check_job_id(job_id)
    job_dir = root / job_id
    if job_dir.is_symlink() or (job_dir.exists() and not inside(job_dir, root)):
        raise JobError(f"{job_dir} is a symbolic link; a job folder must be a real folder")
    if not (job_dir / "job.json").is_file():
        found = sorted(p.name for p in root.glob("*") if _JOB_ID.fullmatch(p.name) and (p / "job.json").is_file())
        known = ", ".join(found[:20]) + (f" and {len(found) - 20} more" if len(found) > 20 else "") or "none"
        raise JobError(f"no training job {job_id!r} under {root} (known: {known})")
    _no_links(job_dir)
    return job_dir


def _check_record(record: object, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise JobError(f"{where}: a metrics record must be a JSON object, not a {type(record).__name__}")
    for key, kind in (("step", "int"), ("bytes", "int"), ("sync_bytes", "int"), ("syncs", "int"), ("loss", "num"),
                      ("eval_loss", "num"), ("eval_acc", "num"), ("wall", "num"), ("event", "str"),
                      ("params_sha", "str")):
        if key not in record:
            continue
        value = record[key]
        if kind == "num" and value is None:
            continue
        ok = (isinstance(value, str) if kind == "str"
              else isinstance(value, int | float) and not isinstance(value, bool) and (kind == "num" or
                                                                                       isinstance(value, int)))
        if not ok:
            wanted = {"int": "an integer", "num": "a number", "str": "a string"}[kind]
            raise JobError(f"{where}: {key!r} must be {wanted}, not {type(value).__name__}")
    return record


def read_metrics(job_dir: Path) -> list[dict[str, Any]]:
    """The job's metrics records; a binary or wrongly typed metrics file is an error naming the file and line."""
    path = job_dir / METRICS
    if not path.is_file():
        return []
    records = []
    try:
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise JobError(f"{path}:{lineno}: not UTF-8 text (a binary file?)") from None
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    if _CONTROL.search(line):
                        raise JobError(f"{path}:{lineno}: binary data, not a JSON record") from None
                    if not raw.endswith(b"\n"):
                        break  # the last line, being written right now (or cut off by a stop)
                    raise JobError(f"{path}:{lineno}: not a JSON record") from None
                records.append(_check_record(record, f"{path}:{lineno}"))
    except OSError as exc:
        raise JobError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return records


def _read_small(path: Path, limit: int = 64) -> str | None:
    try:
        with path.open("rb") as fh:
            return fh.read(limit).decode("utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JobError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:])


# -- is that pid the job's? -----------------------------------------------------------------------------------------


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time) of a live or zombie process, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[2]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _carries(pid: int, entries: list[str]) -> bool:
    """Whether the process's environment holds all `entries` (NAME=value); False when it cannot be read."""
    try:
        env = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:
        return False
    return all(e.encode() in env for e in entries)


def _identify(pid: int, token: str) -> ProcessIdentity | None:
    stat, boot = _stat(pid), _boot_id()
    if stat is None or boot is None:
        return None  # no /proc (or the shell already ended): the job can never be signalled by pid
    return ProcessIdentity(pid=pid, start_time=stat[2], boot_id=boot, token=token)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # our own child that has ended: collect it
    except ChildProcessError:
        pass


def _who(meta: JobMeta, job_dir: Path) -> str | None:
    """None when job.json's pid is alive and provably this job's process; else why not (_GONE: no process)."""
    proc = meta.process
    pid = proc.pid if proc is not None else meta.pid
    if pid is None:
        return _GONE
    stat = _stat(pid)
    if stat is None:
        return _GONE
    state, pgid, start_time = stat
    if proc is None:
        return "job.json holds no proof of which process is the job's"
    if _boot_id() != proc.boot_id:
        return "the machine has restarted since the job started, or its boot id cannot be read"
    if start_time != proc.start_time:
        return "another process has that pid now"
    if state in ("Z", "X"):  # the job's own shell, ended (a zombie if it is our child)
        _reap(pid)
        return _GONE
    if pgid != pid:
        return "it does not lead the job's process group"
    if not _carries(pid, [f"{TOKEN_ENV}={proc.token}", f"{DIR_ENV}={os.path.realpath(job_dir)}"]):
        return "its environment does not carry the job's token and folder"
    return None


def _group_alive(pgid: int, token: str) -> bool:
    """Whether a live (not zombie) process of group `pgid` carrying the job's token is left."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X") and _carries(int(stat.parent.name),
                                                                             [f"{TOKEN_ENV}={token}"]):
            return True
    return False


# -- the job tools ----------------------------------------------------------------------------------------------


def status(root: Path, job_id: str) -> JobStatus:
    """Where a job stands, from its folder and process."""
    job_dir = _job_dir(root, job_id)
    meta, cfg = _read_meta(job_dir)
    exit_code = _read_small(job_dir / "exit_code")
    state: State
    if exit_code is None and _who(meta, job_dir) is None:
        state = "running"
    else:
        # Read again: the shell writes exit_code and then exits, so it may have done both since the first read.
        exit_code = exit_code or _read_small(job_dir / "exit_code")
        if exit_code is not None:
            state = "finished" if exit_code == "0" else "failed"
        else:
            state = "stopped" if (job_dir / "stopped").is_file() else "died"
    records = read_metrics(job_dir)
    steps = [r for r in records if "event" not in r]
    evals = [r for r in steps if r.get("eval_loss") is not None]
    last = steps[-1] if steps else {}
    log_tail = _log_tail(job_dir / "log.txt") if state in ("failed", "died") else None
    return JobStatus(job_id=job_id, dir=str(job_dir), state=state, nproc=meta.nproc, nnodes=meta.nnodes,
                     node_rank=meta.node_rank, workload=cfg.workload.kind,
                     strategy=describe_strategy(cfg), step=last.get("step", 0), steps=cfg.steps,
                     loss=last.get("loss"), eval_loss=evals[-1]["eval_loss"] if evals else None,
                     eval_acc=evals[-1].get("eval_acc") if evals else None, bytes=last.get("bytes", 0),
                     wall=last.get("wall"), pid=meta.process.pid if state == "running" and meta.process else None,
                     log_tail=log_tail)


def describe_strategy(cfg: JobConfig) -> str:
    s = cfg.strategy
    if s.kind == "ddp":
        return "ddp"
    if s.kind == "diloco":
        return f"diloco H={s.H}"
    tiles = f"tile={s.tile}" if s.tiles == "1d" else f"2d {s.tile_side}x{s.tile_side}"
    decay = f" decay={s.feedback_decay:g}" if s.feedback_decay != 1 else ""
    return f"diloco_dct H={s.H} {tiles} k={s.k}{decay}"


def list_jobs(root: Path) -> list[JobStatus]:
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if _JOB_ID.fullmatch(p.name) and (p / "job.json").is_file()]
    return [status(root, job_id) for job_id in sorted(found)]


def _endpoint(nnodes: int, rdzv_endpoint: str | None) -> tuple[str, int] | None:
    """(host, port) of machine 0 for a job on several machines; None for one machine."""
    if nnodes == 1:
        if rdzv_endpoint is not None:
            raise JobError(f"rdzv_endpoint {rdzv_endpoint!r} is only for a job on several machines (nnodes > 1); "
                           "a job on one machine meets on its own")
        return None
    if not rdzv_endpoint:
        raise JobError(f"a job on {nnodes} machines needs rdzv_endpoint HOST:PORT, the address of machine 0 "
                       "(node rank 0) where the others meet it")
    host, _, port = rdzv_endpoint.rpartition(":")
    if not _HOST.fullmatch(host) or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        shown = repr(rdzv_endpoint) if len(rdzv_endpoint) <= 80 else repr(rdzv_endpoint[:77]) + "..."
        raise JobError(f"rdzv_endpoint {shown} is not HOST:PORT (a host name or IP address, '[...]' around an "
                       "IPv6 one, and a port from 1 to 65535)")
    return host.strip("[]"), int(port)


def start(config: Path | JobConfig, root: Path, nproc: int = 2, resume: bool = False,
          job_id: str | None = None, *, nnodes: int = 1, node_rank: int = 0,
          rdzv_endpoint: str | None = None) -> JobStatus:
    """Validate the job file, then launch torchrun in the background; returns at once.

    With nnodes > 1 this machine is one of `nnodes` (its `node_rank`, 0 for the one at
    `rdzv_endpoint`); every machine runs `start` with the same job file, nproc and nnodes."""
    if not 1 <= nproc <= 256:
        raise JobError(f"nproc must be between 1 and 256, got {nproc}")
    if not 1 <= nnodes <= MAX_NODES:
        raise JobError(f"nnodes must be between 1 and {MAX_NODES}, got {nnodes}")
    if not 0 <= node_rank < nnodes:
        raise JobError(f"node_rank must be between 0 and {nnodes - 1} for a job on {nnodes} machine"
                       f"{'s' if nnodes > 1 else ''}, got {node_rank}")
    endpoint = _endpoint(nnodes, rdzv_endpoint)
    cfg = config if isinstance(config, JobConfig) else load_config(config)
    job_id = check_job_id(job_id or cfg.name)
    job_dir = root / job_id
    if job_dir.is_symlink() or (job_dir.exists() and not inside(job_dir, root)):
        raise JobError(f"{job_dir} is a symbolic link; a job folder must be a real folder")
    if job_dir.exists():
        _no_links(job_dir)
    if (job_dir / "job.json").is_file():
        current = status(root, job_id)
        if current.state == "running":
            raise JobError(f"training job {job_id!r} is already running (pid {current.pid})")
        if not resume:
            raise JobError(f"training job {job_id!r} already exists in {job_dir}: "
                           "resume it (--resume) or give the job another name")
    if resume:
        folder = latest_checkpoint(job_dir)
        if folder is None:
            raise JobError(f"training job {job_id!r} has no checkpoint to resume from in {job_dir}")
        if (job_dir / "job.json").is_file():
            before = _read_meta(job_dir)[0]
            if (before.nproc, before.nnodes, before.node_rank) != (nproc, nnodes, node_rank):
                shape = (f"{before.nproc} processes" if before.nnodes == 1 else
                         f"{before.nproc} processes on each of {before.nnodes} machines, this one node rank "
                         f"{before.node_rank}")
                again = f"--nproc {before.nproc}" + (f" --nnodes {before.nnodes} --node-rank {before.node_rank}"
                                                     if before.nnodes > 1 else "")
                raise JobError(f"training job {job_id!r} ran with {shape}; resume it with {again}")
        # Every rank's file on this machine is read now (weights_only: tensors and plain data, never
        # code), so a bad checkpoint is refused here with its name, before any process starts.
        from intentos.skills.training.checkpoint import check_resumable

        check_resumable(folder, cfg, nproc * nnodes, job_dir, range(node_rank * nproc, (node_rank + 1) * nproc))
    job_dir.mkdir(parents=True, exist_ok=True)
    for marker in ("exit_code", "stopped"):
        (job_dir / marker).unlink(missing_ok=True)
    config_file = job_dir / "config.yaml"
    config_file.write_text(dump_config(cfg), encoding="utf-8")
    if endpoint is None:
        meet = ["--standalone"]
    else:
        # Static rendezvous (machine 0 hosts the TCP store at HOST:PORT), not c10d: c10d numbers the
        # machines by sorting their host names and process ids, so which machine holds rank 0 (and
        # which ranks' checkpoint files each folder holds) could change from run to run and a
        # resume would find other ranks' files. Static makes global rank = node_rank * nproc +
        # local rank, every time.
        host, port = endpoint
        meet = [f"--nnodes={nnodes}", f"--node-rank={node_rank}", "--rdzv-backend=static", f"--master-addr={host}",
                f"--master-port={port}", f"--rdzv-id={job_id}"]
    command = [sys.executable, "-m", "torch.distributed.run", *meet, f"--nproc-per-node={nproc}",
               "-m", "intentos.skills.training.loop", str(config_file), "--job-dir", str(job_dir)]
    if resume:
        command.append("--resume")
    # The shell records torchrun's exit status; a stopped job leaves none, which tells the two apart.
    script = f'{shlex.join(command)}; echo $? > {shlex.quote(str(job_dir / "exit_code"))}'
    token = secrets.token_hex(16)
    env = os.environ | {"OMP_NUM_THREADS": str(cfg.threads), "PYTHONUNBUFFERED": "1",
                        TOKEN_ENV: token, DIR_ENV: os.path.realpath(job_dir)}
    with (job_dir / "log.txt").open("a") as log:
        log.write(f"--- {'resume' if resume else 'start'} {datetime.now(UTC).isoformat(timespec='seconds')}: "
                  f"{shlex.join(command)}\n")
        log.flush()
        proc = subprocess.Popen(["/bin/sh", "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=job_dir)
    # Popen returns once the shell's exec has begun; its environment shows in /proc a moment later.
    deadline = time.monotonic() + 5.0
    while (not _carries(proc.pid, [f"{TOKEN_ENV}={token}"]) and proc.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.005)
    identity = _identify(proc.pid, token)
    meta = {"job_id": job_id, "nproc": nproc, "nnodes": nnodes, "node_rank": node_rank, "pid": proc.pid,
            "process": identity.model_dump() if identity else None, "command": command, "resume": resume,
            "started": datetime.now(UTC).isoformat(timespec="seconds"), "config": cfg.model_dump(mode="json")}
    tmp = job_dir / ".job.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    os.replace(tmp, job_dir / "job.json")
    return status(root, job_id)


def stop(root: Path, job_id: str, grace: float = 10.0) -> JobStatus:
    """SIGTERM the job's process group; SIGKILL what is left after `grace` seconds.

    Only a process proven to be the job's is signalled (see the module doc); a pid that is alive
    but not the job's is an error, and nothing is signalled."""
    job_dir = _job_dir(root, job_id)
    meta, _ = _read_meta(job_dir)
    if (job_dir / "exit_code").is_file():
        return status(root, job_id)
    why = _who(meta, job_dir)
    if why == _GONE:
        return status(root, job_id)
    pid = meta.process.pid if meta.process is not None else meta.pid
    if why is not None or meta.process is None:
        raise JobError(f"job {job_id}: pid {pid} is not the job's process ({why}); not signalled")
    token = meta.process.token
    (job_dir / "stopped").write_text(datetime.now(UTC).isoformat(timespec="seconds"))
    pgid = meta.process.pid  # the shell leads the session started for the job (checked by _who)
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (_who(meta, job_dir) is None or _group_alive(pgid, token)):
        time.sleep(0.1)
    if _group_alive(pgid, token):
        _signal_group(pgid, signal.SIGKILL)
    return status(root, job_id)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def wait(root: Path, job_id: str, timeout: float = 600.0, poll: float = 0.5) -> JobStatus:
    """Block until the job is no longer running (or `timeout` passes); returns its status."""
    deadline = time.monotonic() + timeout
    while True:
        current = status(root, job_id)
        if current.state != "running" or time.monotonic() >= deadline:
            return current
        time.sleep(poll)
