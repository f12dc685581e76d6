"""The fuzz test's worker: feeds malformed inputs (fuzzcases.py) to the `intentos` CLI, in one process.

`test_fuzz.py` starts it as a subprocess with a list of case ids; for each input it

- places the file where the app reads it (a fresh case folder: sandbox, INTENTOS_HOME, data files),
- calls the public entry points that read that file, in-process through `typer.testing.CliRunner` on
  `intentos.cli:app` (a subprocess per input would cost ~0.5 s each),
- judges every call (`judge`): exit code 0, 1 or 2 and, when not 0, exactly one line of output whose
  error (the `error` field in --json mode) names the file; no traceback anywhere; no exception other
  than SystemExit escaping the command,
- checks the input file: same sha256 afterwards, still at its place (a write call, run last, may change
  it only when it succeeded),
- bounds time (TIME_LIMIT_S of CPU time per input, ITIMER_PROF, so that other work on a shared machine
  does not make an input fail; and WALL_LIMIT_S of wall-clock time, ITIMER_REAL, for one that blocks) and
  memory (peak RSS growth per input, read from /proc/self/status after resetting the high-water mark;
  RLIMIT_AS on the whole process),

and writes one JSON line per input on its protocol stream (the original stdout; fds 1 and 2 go to a log
file, which is searched for tracebacks after each input). After an input hits the time limit the worker
exits (a step thread may still be running), and the test starts a new one at the next input.

By hand, to see one input's calls in full:

    python tests/security/fuzz_worker.py --case ics-017 --show
"""

from __future__ import annotations

import argparse
import faulthandler
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import fuzzcases as fc  # noqa: E402

TIME_LIMIT_S = 10.0  # CPU seconds (all threads) per input, all its calls together
WALL_LIMIT_S = 30.0  # wall-clock seconds per input: an input that blocks (waits for nothing) fails too
RSS_GROWTH_LIMIT_MB = 512  # peak resident memory an input may add to the process
ADDRESS_SPACE_LIMIT = 4 << 30  # RLIMIT_AS of the whole worker (torch and numpy loaded)
MAX_ERROR_CHARS = 2000  # an error "line" that echoes a megabyte of input is no one-line error
MODEL_HOST = "127.0.0.9"  # nothing listens there: a file with only an intent fails fast at the model
FUZZ_MODEL = f"ollama:fuzz-no-model@http://{MODEL_HOST}:9"
EXIT_RESTART = 75  # the worker stopped after a time limit: start a new one at the next input
EXIT_SETUP = 70

# Modules an entry point imports on first use, loaded before an input's clock starts.
WARM = {
    "csv": ["intentos.skills.dataflow.bellamy", "intentos.skills.dataflow.ernest"],
    "metrics": ["intentos.skills.faults.training"],
    "logs": ["intentos.skills.logs.parsing"],
}


class CaseTimeout(BaseException):
    """Raised by SIGPROF/SIGALRM in the main thread; a BaseException so no `except Exception` in the app eats it."""


@dataclass(frozen=True)
class Call:
    label: str  # the entry point, for the report
    argv: list[str]
    mode: str  # read: must not change the file | write: may change it when it succeeds | run: a workflow run


def calls_for(case: fc.Case, root: Path, model: Path | None) -> list[Call]:
    target = str(root / case.target)
    sandbox = str(root / "sandbox")

    def call(fn: str, args: dict[str, Any], mode: str = "read") -> Call:
        return Call(f"call {fn}", ["call", fn, "--args", json.dumps(args), "--sandbox", sandbox, "--json", "--yes"],
                    mode)

    kind = case.kind
    if kind == "workflow":
        return [Call("run --dry-run", ["run", target, "--dry-run", "--json"], "run"),
                Call("run --yes", ["run", target, "--yes", "--json", "--sandbox", str(root / "run-sandbox")], "run")]
    if kind == "journal":
        return [Call("runs show", ["runs", "show", fc.RUN_ID, "--json"], "read"),
                Call("runs", ["runs", "--json"], "read")]
    if kind == "ics":
        return [call("calendar.list_events", {"start": "2026-03-01", "end": "2026-03-31"}),
                call("calendar.find_events", {"query": "review"}),
                call("calendar.add_event", {"title": "Fuzz check", "start": "2026-03-12T10:00:00"}, "write")]
    if kind == "vcf":
        return [call("contacts.find", {"query": "a"}),
                call("contacts.add", {"name": "Fuzz Person", "email": "fuzz.person@example.org"}, "write")]
    if kind == "tasks":
        return [call("tasks.list", {"status": "all"}), call("tasks.add", {"title": "Fuzz task"}, "write")]
    if kind == "maildir":
        return [call("mail.list", {"folder": "inbox"}), call("mail.read", {"id": fc.MAIL_KEY}),
                call("mail.search", {"query": "invoice"})]
    if kind == "notes":
        note = "Notes/fuzz-note.md"
        return [call("notes.list", {}), call("notes.read", {"note": note}),
                call("notes.append", {"note": note, "text": "fuzz"}, "write")]
    if kind == "csv":
        # An unknown job parameter: the history is read and checked in full, then the context is refused
        # (naming the file), so no model is trained on a history that happens to be valid.
        return [Call("skills dataflow predict", ["skills", "dataflow", "predict", target, "-p", "zz_fuzz=1", "--json"],
                     "read")]
    if kind == "topology":
        return [Call("skills faults topology", ["skills", "faults", "topology", target, "--json"], "read")]
    if kind == "metrics":
        return [Call("skills faults localize", ["skills", "faults", "localize", str(root / "data" / "topology.yaml"),
                                                target, "--model", str(model), "--json"], "read")]
    if kind == "logs":
        return [Call("skills logs parse", ["skills", "logs", "parse", target, "--json"], "read")]
    raise ValueError(kind)


def names_for(case: fc.Case) -> list[str]:
    """What an error may say to name the input file."""
    target = Path(case.target)
    names = [target.name]
    if case.target.startswith("sandbox/"):
        names.append(case.target[len("sandbox/"):])
    if case.kind == "maildir":
        names.append(fc.MAIL_KEY)  # a message is named by its id
    if case.kind == "journal":
        names.append(fc.RUN_ID)  # a journal by its run
    return names


# -- judging one call -----------------------------------------------------------------------------------


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def judge(call: Call, exit_code: int, stdout: str, stderr: str, exception: BaseException | None,
          names: list[str]) -> tuple[list[dict[str, str]], str]:
    """Problems of one call's outcome, and the line to show for it."""
    problems: list[dict[str, str]] = []

    def problem(cls: str, detail: str = "") -> None:
        problems.append({"call": call.label, "class": cls, "detail": _one_line(detail, 300)})

    lines = [ln for ln in (stdout + "\n" + stderr).splitlines() if ln.strip()]
    shown = _one_line(lines[0]) if lines else ""
    if exception is not None and not isinstance(exception, SystemExit):
        problem("uncaught exception", f"{type(exception).__name__}: {exception}")
        shown = _one_line(f"{type(exception).__name__}: {exception}")
    if "Traceback (most recent call last)" in stdout + stderr:
        problem("traceback in output", next((ln for ln in reversed(lines) if ln.strip()), ""))
    if exit_code not in (0, 1, 2):
        problem(f"exit code {exit_code}", shown)
        return problems, shown
    if exit_code == 0 or (exception is not None and not isinstance(exception, SystemExit)):
        return problems, shown
    if len(lines) != 1:
        problem("not one line of output", f"{len(lines)} lines; first: {shown}")
    if not lines:
        return problems, shown
    text = lines[0].strip()
    message: str | None = text[len("error: "):] if text.startswith("error: ") else text
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            if call.mode == "run" and "status" in obj and "run_id" in obj:
                return problems, shown  # the file was read and run; the run's own failure is no file error
            if isinstance(obj.get("error"), str) and obj["error"].strip():
                message = obj["error"]
                shown = _one_line(message)
            else:
                problem("no error text", f"JSON with keys {', '.join(list(obj)[:8])}: {shown}")
                return problems, shown
    if MODEL_HOST in message:
        return problems, shown  # an intent-only file, read fine; the (deliberately absent) model failed
    if "\n" in message.strip():
        problem("error is several lines", message)
    if len(message) > MAX_ERROR_CHARS:
        problem("error line too long", f"{len(message)} characters: {message}")
    if not any(name in message for name in names):
        problem("error does not name the file", message)
    return problems, shown


# -- one input ----------------------------------------------------------------------------------------------


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        match = re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M)
    return int(match.group(1)) if match else 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _on_alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout("cpu" if signum == signal.SIGPROF else "wall")


class Worker:
    def __init__(self, workdir: Path, log_path: Path | None) -> None:
        from typer.testing import CliRunner

        from intentos.cli import app

        self.app = app
        self.runner = CliRunner()
        self.workdir = workdir
        self.log_path = log_path
        self.model: Path | None = None
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.signal(signal.SIGPROF, _on_alarm)

    def _invoke(self, argv: list[str]) -> Any:
        return self.runner.invoke(self.app, argv, input="", catch_exceptions=True)

    def setup(self, kind: str) -> None:
        """Untimed preparation: imports an entry point needs, and the faults model for `localize`."""
        import importlib

        for module in WARM.get(kind, []):
            importlib.import_module(module)
        if kind == "metrics" and self.model is None:
            self.model = self._train_faults_model()

    def _train_faults_model(self) -> Path:
        setup = self.workdir / "setup"
        model = setup / "model.pt"
        if model.is_file():
            return model
        shutil.rmtree(setup, ignore_errors=True)
        (setup / "home").mkdir(parents=True)
        os.environ["INTENTOS_HOME"] = str(setup / "home")
        topology = setup / "topology.yaml"
        topology.write_bytes(fc.TOPOLOGY_FLOW)
        steps = [["skills", "faults", "simulate", str(setup / "sim"), "--topology", str(topology), "--incidents", "3",
                  "--window", "16", "--seed", "1", "--json"],
                 ["skills", "faults", "train", str(setup / "sim"), "--epochs", "1", "--out", str(setup / "tmp.pt"),
                  "--json"]]
        for argv in steps:
            res = self._invoke(argv)
            crashed = res.exception is not None and not isinstance(res.exception, SystemExit)
            if res.exit_code != 0 or crashed:
                raise RuntimeError(f"setup `intentos {' '.join(argv[:3])}` failed (exit {res.exit_code}): "
                                   f"{_one_line(res.stdout + res.stderr, 500)} {res.exception!r}")
        os.replace(setup / "tmp.pt", model)
        return model

    def run(self, case: fc.Case, show: bool = False) -> dict[str, Any]:
        self.setup(case.kind)
        root = self.workdir / "case"
        shutil.rmtree(root, ignore_errors=True)
        for rel, data in case.support:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        target = root / case.target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(case.data)
        for folder in ("sandbox", "home", "run-sandbox"):
            (root / folder).mkdir(exist_ok=True)
        if case.kind == "maildir":
            for sub in ("new", "tmp"):
                (target.parent.parent / sub).mkdir(exist_ok=True)
        before = hashlib.sha256(case.data).hexdigest()
        names = names_for(case)
        os.environ["INTENTOS_HOME"] = str(root / "home")
        os.chdir(root)
        log_start = self.log_path.stat().st_size if self.log_path else 0
        exact_peak = _reset_peak()
        rss_before = _status_kb("VmRSS") if exact_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        problems: list[dict[str, str]] = []
        outcomes: list[dict[str, Any]] = []
        timed_out = False
        started, cpu_started = time.monotonic(), time.process_time()
        signal.setitimer(signal.ITIMER_PROF, TIME_LIMIT_S)
        signal.setitimer(signal.ITIMER_REAL, WALL_LIMIT_S)
        label = ""
        try:
            for call in calls_for(case, root, self.model):
                label = call.label
                t0 = time.monotonic()
                res = self._invoke(call.argv)
                seconds = time.monotonic() - t0
                found, shown = judge(call, res.exit_code, res.stdout, res.stderr, res.exception, names)
                after = _sha(target)
                if not (call.mode == "write" and res.exit_code == 0):
                    if after is None:
                        found.append({"call": call.label, "class": "input file gone", "detail": str(case.target)})
                    elif after != before:
                        found.append({"call": call.label, "class": "input file changed",
                                      "detail": f"sha256 {before[:12]} -> {after[:12]}"})
                problems += found
                outcomes.append({"call": call.label, "exit": res.exit_code, "seconds": round(seconds, 3),
                                 "line": shown})
                if show:
                    _show(call, res, seconds, found)
        except CaseTimeout as exc:
            timed_out = True
            limit = f"{TIME_LIMIT_S:g} s of CPU time" if str(exc) == "cpu" else f"{WALL_LIMIT_S:g} s (wall clock)"
            problems.append({"call": label, "class": "time limit",
                             "detail": f"no result within {limit} (input of {len(case.data)} bytes)"})
            outcomes.append({"call": label, "exit": None, "seconds": round(time.monotonic() - started, 3),
                             "line": f"stopped after {limit}"})
        except MemoryError:
            problems.append({"call": label, "class": "memory", "detail": "MemoryError escaped the CLI runner"})
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
        seconds = time.monotonic() - started
        cpu_seconds = time.process_time() - cpu_started
        peak = _status_kb("VmHWM") if exact_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        growth_mb = max(0, peak - rss_before) / 1024
        if growth_mb > RSS_GROWTH_LIMIT_MB:
            problems.append({"call": label, "class": "memory",
                             "detail": f"peak RSS grew by {growth_mb:.0f} MB (limit {RSS_GROWTH_LIMIT_MB} MB)"})
        if self.log_path:
            with open(self.log_path, "rb") as fh:
                fh.seek(log_start)
                leaked = fh.read().decode("utf-8", "replace")
            if "Traceback (most recent call last)" in leaked:
                last = [ln for ln in leaked.splitlines() if ln.strip()][-1]
                problems.append({"call": label, "class": "traceback on the process's stderr", "detail": last})
        os.chdir(self.workdir)
        if not timed_out:
            shutil.rmtree(root, ignore_errors=True)
        return {"id": case.id, "kind": case.kind, "base": case.base, "mutation": case.mutation,
                "bytes": len(case.data), "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
                "rss_growth_mb": round(growth_mb, 1), "sha_before": before, "calls": outcomes, "problems": problems,
                "timed_out": timed_out}


def _show(call: Call, res: Any, seconds: float, found: list[dict[str, str]]) -> None:
    print(f"\n$ intentos {' '.join(call.argv)}", file=sys.__stderr__)
    print(f"exit {res.exit_code} in {seconds:.2f} s; exception {res.exception!r}", file=sys.__stderr__)
    print(f"stdout: {res.stdout[:3000]}", file=sys.__stderr__)
    print(f"stderr: {res.stderr[:3000]}", file=sys.__stderr__)
    for p in found:
        print(f"PROBLEM {p['class']}: {p['detail']}", file=sys.__stderr__)


def _environment() -> None:
    for key in ("INTENTOS_CONFIG", "INTENTOS_SANDBOX", "OLLAMA_HOST", "OPENAI_BASE_URL", "OPENAI_API_KEY",
                "INTENTOS_N_GPU_LAYERS"):
        os.environ.pop(key, None)
    os.environ["INTENTOS_MODEL"] = FUZZ_MODEL
    os.environ["INTENTOS_CONFIRM_TIMEOUT"] = "1"
    os.environ.setdefault("COLUMNS", "200")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=Path, help="file with one case id a line")
    parser.add_argument("--start", type=int, default=0, help="index in --ids to start at")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--case", action="append", default=[], help="run this case id (repeat); prints a summary")
    parser.add_argument("--show", action="store_true", help="with --case: print every call's full output")
    parser.add_argument("--no-limits", action="store_true", help="no RLIMIT_AS (for a debugger)")
    opts = parser.parse_args()
    _environment()
    workdir = (opts.workdir or Path(tempfile.mkdtemp(prefix="intentos-fuzz-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if not opts.no_limits:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))

    if opts.case:  # by hand: results on stdout, no redirection
        worker = Worker(workdir, None)
        for case_id in opts.case:
            result = worker.run(fc.by_id(case_id), show=opts.show)
            print(json.dumps(result, indent=1))
        return 0

    # Protocol on the original stdout; whatever the app or a library writes to fds 1 and 2 goes to the log.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    log_path = workdir / f"worker-{os.getpid()}.log"
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    faulthandler.enable(file=open(log_path, "a"))  # noqa: SIM115 - a crash dump needs it open until the end
    ids = opts.ids.read_text().split()
    try:
        worker = Worker(workdir, log_path)
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which fails with it
        proto.write(json.dumps({"event": "fatal", "error": f"cannot load intentos.cli: {exc!r}"}) + "\n")
        return EXIT_SETUP
    proto.write(json.dumps({"event": "ready", "pid": os.getpid(), "log": str(log_path)}) + "\n")
    for i in range(opts.start, len(ids)):
        case = fc.by_id(ids[i])
        try:
            worker.setup(case.kind)
        except Exception as exc:  # noqa: BLE001
            proto.write(json.dumps({"event": "fatal", "error": f"setup for {case.kind} failed: {exc}"}) + "\n")
            return EXIT_SETUP
        proto.write(json.dumps({"event": "start", "i": i, "id": case.id}) + "\n")
        result = worker.run(case)
        result.update(event="result", i=i, vm_peak_mb=round(_status_kb("VmPeak") / 1024))
        proto.write(json.dumps(result) + "\n")
        if result["timed_out"]:
            return EXIT_RESTART
    proto.write(json.dumps({"event": "done"}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
