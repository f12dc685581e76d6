"""A Spark standalone cluster on this machine: a master and N workers on 127.0.0.1, started and stopped
by the skill, and jobs submitted to it that write Spark's own event logs.

    with LocalCluster(Path("spark-work"), workers=2) as cluster:
        run = cluster.submit("sort", size=50_000, eventlog_dir=Path("logs"))
        run.eventlog            # logs/eventlog_v2_app-... (Spark 4's rolling, zstd-compressed log)

Spark comes from the `pyspark` package (its folder is a SPARK_HOME, with bin/spark-class) and needs a
Java 17 runtime. The daemons run as child processes of this one (no sbin scripts, no pid files), each in
its own process group, so `stop` ends them and anything they started. Every port is picked free on
127.0.0.1 and nothing listens elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from intentos.errors import IntentosError

HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
DAEMON_MEMORY = "256m"  # the master and workers only coordinate; Spark's default heap for them is 1g
EXECUTOR_MEMORY = "512m"
DRIVER_MEMORY = "512m"


class SparkError(IntentosError):
    """Spark is missing, did not start, or a job failed; one line, with the log to look at."""


def spark_home() -> Path:
    """The installed pyspark's folder, which is a complete SPARK_HOME."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise SparkError("pyspark is not installed: pip install 'intentos[spark]' (make spark does it)")
    return Path(spec.origin).parent


def java() -> str:
    """The java executable Spark will run."""
    home = Path(os.environ.get("JAVA_HOME") or "/nonexistent") / "bin" / "java"
    found = str(home) if home.exists() else shutil.which("java")
    if not found:
        raise SparkError("no Java runtime: Spark 4 needs Java 17 (apt-get install openjdk-17-jre-headless; "
                         "make spark does it)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class JobRun:
    """One finished application: what the job printed, its event log and the wall time of the whole
    submission (driver start-up included)."""

    job: str
    app_name: str
    result: dict[str, Any]
    eventlog: Path
    seconds: float


@dataclass
class SparkApp:
    """A driver process running one job; `wait` for its JobRun."""

    job: str
    app_name: str
    eventlog_dir: Path
    control_url: str | None  # the executor control endpoint of a rescalable job (sparkcontrol)
    process: subprocess.Popen[bytes]
    log: Path
    _err: IO[bytes]
    _before: set[Path]
    _started: float

    def eventlog(self) -> Path | None:
        """The event log this application writes, once Spark has created it."""
        new = sorted(set(self.eventlog_dir.iterdir()) - self._before)
        return new[0] if len(new) == 1 else None

    def wait(self, timeout_s: float = 900) -> JobRun:
        try:
            stdout, _ = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise SparkError(f"job {self.app_name} ran over {timeout_s:.0f} s; see {self.log}") from None
        finally:
            self._err.close()
        seconds = time.monotonic() - self._started
        if self.process.returncode != 0:
            raise SparkError(f"job {self.app_name} failed (exit {self.process.returncode}): {_last_line(self.log)}; "
                             f"see {self.log}")
        eventlog = self.eventlog()
        if eventlog is None:
            raise SparkError(f"job {self.app_name}: no one new event log in {self.eventlog_dir}")
        result = json.loads(stdout.decode().strip().splitlines()[-1])
        return JobRun(job=self.job, app_name=self.app_name, result=result, eventlog=eventlog, seconds=seconds)


class LocalCluster:
    """A standalone master and `workers` workers (`cores` cores and `memory_mb` each) on 127.0.0.1."""

    def __init__(self, workdir: Path, *, workers: int = 2, cores: int = 1, memory_mb: int = 1024) -> None:
        if workers < 1 or cores < 1 or memory_mb < 512:
            raise SparkError("a cluster needs at least 1 worker with 1 core and 512 MB")
        self.workdir = Path(workdir).resolve()
        self.workers, self.cores, self.memory_mb = workers, cores, memory_mb
        self.port = self.ui_port = 0
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    # -- lifecycle ----------------------------------------------------------------------------------------

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.ui_port}"

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the master, then the workers; return once every worker has registered."""
        java()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.ui_port = free_port(), free_port()
        try:
            self._daemon("master", "org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(self.port),
                         "--webui-port", str(self.ui_port))
            self._wait(lambda state: state.get("status") == "ALIVE", "the master")
            for i in range(self.workers):
                work = self.workdir / f"worker-{i}"
                work.mkdir(exist_ok=True)
                self._daemon(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", self.master_url, "--host", HOST,
                             "--cores", str(self.cores), "--memory", f"{self.memory_mb}m",
                             "--webui-port", str(free_port()), "--work-dir", str(work))
            self._wait(lambda state: state.get("aliveworkers", 0) >= self.workers, f"{self.workers} workers")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """End every daemon (and the executors they started), SIGTERM first."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                with suppress(ProcessLookupError):  # already gone
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self._procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):  # already gone
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for fh in self._logs:
            fh.close()
        self._procs, self._logs = [], []

    def state(self) -> dict[str, Any]:
        """The master's status page as JSON (workers, running applications)."""
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as reply:  # noqa: S310 - loopback only
            return dict(json.loads(reply.read()))

    # -- jobs ---------------------------------------------------------------------------------------------

    def submit(self, job: str, size: int, eventlog_dir: Path, *, timeout_s: float = 900, **options: Any) -> JobRun:
        """Run one job (see `launch` for the options) and wait for it."""
        return self.launch(job, size, eventlog_dir, **options).wait(timeout_s)

    def launch(self, job: str, size: int, eventlog_dir: Path, *, seed: int = 0, executors: int | None = None,
               dynamic: bool = True, rescalable: bool = False, partitions: int | None = None,
               app_name: str | None = None, conf: Mapping[str, str] | None = None) -> SparkApp:
        """Start one job of `sparkjobs` as its own driver process. With `dynamic`, Spark's dynamic allocation
        (with shuffle tracking, so executors holding shuffle data are kept) scales between 1 and `executors`
        (default: every worker core). With `rescalable`, dynamic allocation is off, the job starts on
        `executors` and its driver serves the executor control endpoint (`SparkApp.control_url`)."""
        eventlog_dir = Path(eventlog_dir).resolve()
        eventlog_dir.mkdir(parents=True, exist_ok=True)
        total = self.workers * self.cores
        most = executors or total
        app_name = app_name or f"{job}-{size}"  # Enel knows a recurring job by its name: not by its scale-out
        settings = self.conf(eventlog_dir, executors=total if rescalable else most, dynamic=dynamic and not rescalable)
        settings |= dict(conf or {})
        cmd = [sys.executable, "-m", "intentos.skills.dataflow.sparkjobs", job, "--size", str(size),
               "--seed", str(seed), "--master", self.master_url, "--app-name", app_name]
        if partitions is not None:
            cmd += ["--partitions", str(partitions)]
        control_url = None
        if rescalable:
            port = free_port()
            cmd += ["--control-port", str(port), "--executors", str(most)]
            control_url = f"http://{HOST}:{port}"
        for key, value in settings.items():
            cmd += ["--conf", f"{key}={value}"]
        log = self.workdir / f"driver-{app_name}-{int(time.time() * 1000)}.log"
        before = set(eventlog_dir.iterdir())
        err = open(log, "wb")  # noqa: SIM115 - closed by SparkApp.wait
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=self._env())
        return SparkApp(job=job, app_name=app_name, eventlog_dir=eventlog_dir, control_url=control_url,
                        process=proc, log=log, _err=err, _before=before, _started=time.monotonic())

    def conf(self, eventlog_dir: Path, *, executors: int, dynamic: bool = True) -> dict[str, str]:
        """The Spark settings every submitted job gets."""
        settings = {
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": Path(eventlog_dir).resolve().as_uri(),
            "spark.driver.host": HOST,
            "spark.driver.bindAddress": HOST,
            "spark.driver.memory": DRIVER_MEMORY,
            "spark.executor.memory": EXECUTOR_MEMORY,
            "spark.executor.cores": "1",
            "spark.cores.max": str(executors),
            "spark.ui.port": str(free_port()),
            "spark.ui.showConsoleProgress": "false",
            # Spark buffers 100 KiB of events before a write (and a zstd frame): a live log would lag the job
            # by that much; 4 KiB keeps what `dataflow.rescale` reads close to now.
            "spark.eventLog.buffer.kb": "4k",
        }
        if dynamic:
            settings |= {
                "spark.dynamicAllocation.enabled": "true",
                "spark.dynamicAllocation.shuffleTracking.enabled": "true",
                "spark.dynamicAllocation.minExecutors": "1",
                "spark.dynamicAllocation.initialExecutors": "1",
                "spark.dynamicAllocation.maxExecutors": str(executors),
                # Spark's defaults (1 s backlog, 60 s idle) are for jobs of minutes; ours run seconds.
                "spark.dynamicAllocation.schedulerBacklogTimeout": "1s",
                "spark.dynamicAllocation.executorIdleTimeout": "5s",
            }
        return settings

    # -- plumbing -----------------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        home = spark_home()
        env = dict(os.environ)
        env |= {"SPARK_HOME": str(home), "SPARK_LOCAL_IP": HOST, "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
                "SPARK_LOG_DIR": str(self.workdir), "PYSPARK_PYTHON": sys.executable,
                "PYSPARK_DRIVER_PYTHON": sys.executable}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _daemon(self, name: str, cls: str, *args: str) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        cmd = [str(spark_home() / "bin" / "spark-class"), cls, *args]
        self._procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self._env(), start_new_session=True))

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            dead = [p for p in self._procs if p.poll() is not None]
            if dead:
                name = Path(self._logs[self._procs.index(dead[0])].name)
                raise SparkError(f"a Spark daemon exited (code {dead[0].returncode}) while starting {what}: "
                                 f"{_last_line(name)}; see {name}")
            try:
                if ready(self.state()):
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        raise SparkError(f"{what} did not come up within {START_TIMEOUT_S:.0f} s; see the logs in {self.workdir}")


def _last_line(path: Path) -> str:
    """The last meaningful line of a Spark log (an exception, usually), for a one-line error."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    errors = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    text = (errors or lines or ["no output"])[-1]
    return text if len(text) <= 200 else text[:197] + "..."
