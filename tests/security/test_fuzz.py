"""Fuzz: more than 1,000 generated malformed inputs, each fed to the public entry point that reads it.

Kinds (see fuzzcases.py for the valid example each starts from and the mutations): workflow YAML,
journal lines, .ics, .vcf, tasks.json, Maildir messages, dataflow histories (CSV/TSV), topology YAML,
metrics (CSV and Prometheus JSON), log files (plain, .gz, LogHub CSV) and notes.

Every input must end with exit code 0, 1 or 2 and, when not 0, ONE line of output whose error (the
`error` field with --json) names the file; never a traceback, never an exception escaping the command,
within TIME_LIMIT_S of CPU time, WALL_LIMIT_S of wall-clock time and RSS_GROWTH_LIMIT_MB of memory
(fuzz_worker.py), and the input file unchanged (sha256) and still at its place. Exit code 0 is
accepted: a mutation may leave a file that still parses. So is exit code 1 of `intentos run` with a
run summary (the file was read and run; the run failed on its own terms), and an error from the model
of a file that holds only an intent (the worker points the model at an address where nothing listens).

All inputs run in ONE worker subprocess (in-process CliRunner calls, so ~0.1 s an input instead of
~0.5 s); a worker that hangs past the hard limit is killed, one that dies or hits a time limit is
replaced, starting at the next input, and the input it was on counts as failed. A failure prints the
failing inputs grouped by kind, entry point and problem; re-run one with
`python tests/security/fuzz_worker.py --case ID --show`.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import fuzz_worker as fw
import fuzzcases as fc

WORKER = Path(fw.__file__).resolve()
HARD_LIMIT_S = fw.WALL_LIMIT_S + 30  # past the worker's own timers: stuck in C code, killed from here
STARTUP_LIMIT_S = 120
MAX_RESTARTS = 60
MAX_REPORT_LINES = 40


def _run_all(ids: list[str], workdir: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every input's result line; inputs a worker died or hung on get a result saying so."""
    ids_file = workdir / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    results: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    start, restarts = 0, 0
    while start < len(ids):
        proc = subprocess.Popen([sys.executable, str(WORKER), "--ids", str(ids_file), "--start", str(start),
                                 "--workdir", str(workdir)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd=workdir)
        current, log, fatal = None, None, None
        buffer = b""
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + STARTUP_LIMIT_S
        killed = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    proc.kill()
                    killed = True
                    break
                if not sel.select(timeout=min(remaining, 5)):
                    continue
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        event = json.loads(line)
                    except ValueError:
                        notes.append(f"worker wrote a non-protocol line: {line[:200]!r}")
                        continue
                    kind = event.get("event")
                    if kind == "ready":
                        log = event.get("log")
                    elif kind == "start":
                        current = event["i"]
                        deadline = time.monotonic() + HARD_LIMIT_S
                    elif kind == "result":
                        results[event["id"]] = event
                        current = None
                        start = event["i"] + 1
                        deadline = time.monotonic() + HARD_LIMIT_S
                    elif kind == "fatal":
                        fatal = event["error"]
        finally:
            sel.close()
            code = proc.wait(timeout=60)
            proc.stdout.close()
        if fatal:
            raise AssertionError(f"the fuzz worker could not run: {fatal}")
        if start >= len(ids) and current is None:
            break
        # The worker stopped before the end: timed out (it exits on purpose), crashed, or was killed.
        if current is None:
            if code == fw.EXIT_RESTART:
                pass  # the result of the input that timed out is in; go on after it
            elif log is None:
                raise AssertionError(f"the fuzz worker exited with {code} before it was ready: "
                                     f"{_tail(buffer.decode('utf-8', 'replace'))}")
            else:
                raise AssertionError(f"the fuzz worker exited with {code} between inputs; log: {_log_tail(log)}")
        else:
            case = fc.by_id(ids[current])
            how = (f"no result within {HARD_LIMIT_S:g} s: the worker was killed" if killed else
                   f"the worker died ({_describe_exit(code)}) on this input")
            results[case.id] = {"event": "result", "id": case.id, "kind": case.kind, "base": case.base,
                                "mutation": case.mutation, "bytes": len(case.data), "seconds": None,
                                "calls": [{"call": "?", "exit": None, "line": _log_tail(log)}],
                                "problems": [{"call": "(process)", "class": "worker died" if not killed else
                                              "hard time limit", "detail": f"{how}; log: {_log_tail(log)}"}]}
            start = current + 1
        restarts += 1
        if restarts > MAX_RESTARTS:
            raise AssertionError(f"the fuzz worker had to be restarted more than {MAX_RESTARTS} times; "
                                 f"{len(results)} of {len(ids)} inputs have results")
    return results, notes


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def _tail(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text[-limit:]


def _log_tail(log: str | None) -> str:
    if not log or not Path(log).is_file():
        return "(no log)"
    return _tail(Path(log).read_text(errors="replace"))


def _report(failed: list[dict[str, Any]], total: int, kinds: dict[str, int]) -> str:
    """Failing inputs grouped by kind, entry point and problem: count, an example, its first output line."""
    groups: dict[tuple[str, str, str], list[tuple[dict[str, Any], dict[str, str]]]] = defaultdict(list)
    for result in failed:
        for p in result["problems"]:
            groups[(result["kind"], p["call"], p["class"])].append((result, p))
    by_kind: dict[str, int] = defaultdict(int)
    for result in failed:
        by_kind[result["kind"]] += 1
    lines = [f"{len(failed)} of {total} malformed inputs failed ("
             + ", ".join(f"{k} {by_kind[k]}/{kinds[k]}" for k in kinds if by_kind[k]) + ")",
             "kind      | entry point                    | problem                        | n  | example"]
    ordered = sorted(groups.items(), key=lambda kv: (list(kinds).index(kv[0][0]), -len(kv[1])))
    for (kind, call, cls), items in ordered:
        if len(lines) >= MAX_REPORT_LINES - 1:
            lines.append(f"... and {len(ordered) - (len(lines) - 2)} more groups (all results: see below)")
            break
        result, p = items[0]
        exits = ",".join(str(c["exit"]) for c in result["calls"] if c["call"] == call) or "-"
        lines.append(f"{kind:<9} | {call[:30]:<30} | {cls[:30]:<30} | {len(items):<2} | {result['id']} "
                     f"[{result['mutation'][:50]}] exit {exits}: {p['detail'][:140]}")
    return "\n".join(lines)


def _scratch(tmp_path: Path) -> Path:
    """The cases' folder: on tmpfs where there is one (journals and atomic writes fsync; a disk makes the
    test twice as slow without testing anything more), else under tmp_path."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 << 30:
            return Path(tempfile.mkdtemp(prefix="intentos-fuzz-", dir=shm))
    except OSError:
        pass
    return tmp_path / "work"


def test_fuzz_malformed_inputs(tmp_path: Path) -> None:
    started = time.monotonic()
    ids = fc.control_ids() + fc.all_ids()
    assert len(fc.all_ids()) >= 1000
    scratch = _scratch(tmp_path)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        results, notes = _run_all(ids, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(results[i]) + "\n" for i in ids if i in results))
    missing = [i for i in ids if i not in results]
    assert not missing, f"no result for {len(missing)} inputs, e.g. {missing[:5]}; notes: {notes[:3]}"

    # The valid examples first: if one of them fails, the harness (or the example) is wrong, not the fuzzing.
    broken = []
    for case_id in fc.control_ids():
        r = results[case_id]
        ok_exit = all(c["exit"] == 0 for c in r["calls"]) or (
            r["kind"] == "csv" and all("no job parameter zz_fuzz" in c["line"] for c in r["calls"]))
        if r["problems"] or not ok_exit:
            broken.append(f"{case_id}: {r['problems'][:1] or r['calls']}")
    assert not broken, "valid examples do not pass (fix the example or the harness first):\n" + "\n".join(broken)

    fuzzed = [results[i] for i in fc.all_ids()]
    failed = [r for r in fuzzed if r["problems"]]
    elapsed = time.monotonic() - started
    summary = (f"\n({len(fuzzed)} inputs in {elapsed:.0f} s; every result: {tmp_path / 'results.jsonl'}; re-run one: "
               f"python tests/security/fuzz_worker.py --case ID --show)")
    assert not failed, _report(failed, len(fuzzed), fc.COUNTS) + summary
