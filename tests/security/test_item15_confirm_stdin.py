"""Item 15: a step that needs confirmation, with no one to give it.

Run as real processes: with stdin closed, at end of file, or an open pipe that never sends anything,
the answer is no (after at most INTENTOS_CONFIRM_TIMEOUT seconds for the pipe), one line says that
confirmation was needed and how to give it, the run ends `declined` (resumable) and the exit code is 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-c", "from intentos.cli import main; main()"]
TRASH = ["call", "files.trash", "--args", '{"path": "x.txt"}']
WRITE = ["call", "files.write", "--args", '{"path": "new.txt", "text": "hi"}']


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    root = tmp_path / "sb"
    root.mkdir()
    (root / "x.txt").write_text("keep me")
    return root


def start(args: list[str], stdin: Any, tmp_path: Path, env: dict[str, str] | None = None,
          close_stdin: bool = False) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([*CLI, *args], stdin=stdin, stdout=o, stderr=e, env={**os.environ, **(env or {})},
                                preexec_fn=(lambda: os.close(0)) if close_stdin else None)
    return proc, out, err


def finish(proc: subprocess.Popen[bytes], out: Path, err: Path) -> tuple[int, dict[str, Any], str]:
    code = proc.wait(timeout=60)
    stderr = err.read_text()
    assert "Traceback" not in stderr, stderr
    return code, json.loads(out.read_text()), stderr


def no_answer_line(stderr: str) -> str:
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("no answer")]
    return line


def assert_declined_and_resumable(out: dict[str, Any], sandbox: Path) -> None:
    assert out["status"] == "declined" and out["final_state"] == "call"
    assert [s["status"] for s in out["steps"]] == ["declined"]
    assert (sandbox / "x.txt").read_text() == "keep me"
    journal = Path(os.environ["INTENTOS_HOME"]) / "runs" / out["run_id"] / "journal.jsonl"
    assert json.loads(journal.read_text().splitlines()[-1])["status"] == "declined"


@pytest.mark.parametrize("how", ["closed", "devnull"])
def test_a_destructive_step_without_stdin_is_declined_at_once(how: str, sandbox: Path, tmp_path: Path) -> None:
    stdin = None if how == "closed" else subprocess.DEVNULL
    started = time.monotonic()
    proc, out, err = start([*TRASH, "--sandbox", str(sandbox), "--yes", "--json"], stdin, tmp_path,
                           close_stdin=how == "closed")
    code, result, stderr = finish(proc, out, err)
    assert time.monotonic() - started < 20
    assert code == 1
    assert_declined_and_resumable(result, sandbox)
    line = no_answer_line(stderr)
    reason = "stdin is closed" if how == "closed" else "stdin is at end of file"
    assert line.startswith(f"no answer ({reason}): step 'call' (files.trash, destructive) needed confirmation")
    assert "--yes does not cover it" in line and "intentos runs resume" in line

    # Resumable: answered on stdin this time, the step runs.
    proc, out, err = start(["runs", "resume", result["run_id"], "--json"], subprocess.PIPE, tmp_path)
    proc.stdin.write(b"y\n")
    proc.stdin.close()
    code, resumed, _ = finish(proc, out, err)
    assert code == 0 and resumed["status"] == "done"
    assert not (sandbox / "x.txt").exists()


def test_a_silent_pipe_times_out_and_declines(sandbox: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    proc, out, err = start([*WRITE, "--sandbox", str(sandbox), "--json"], subprocess.PIPE, tmp_path,
                           env={"INTENTOS_CONFIRM_TIMEOUT": "2"})
    try:
        code = proc.wait(timeout=30)  # the pipe stays open and silent the whole time
    finally:
        proc.stdin.close()
    elapsed = time.monotonic() - started
    assert 2 <= elapsed < 20
    code, result, stderr = finish(proc, out, err)
    assert code == 1
    assert result["status"] == "declined" and not (sandbox / "new.txt").exists()
    assert no_answer_line(stderr) == ("no answer (nothing on stdin within 2 s): step 'call' (files.write, write) "
                                      "needed confirmation and was declined; pass --yes to confirm write steps")


def test_answers_on_a_pipe_are_read_one_line_per_question(sandbox: Path, tmp_path: Path) -> None:
    plan = tmp_path / "two.yaml"
    plan.write_text("name: two\nworkflow:\n  states:\n"
                    "    - {name: first, call: files.write, args: {path: a.txt, text: one}}\n"
                    "    - {name: second, call: files.write, args: {path: b.txt, text: two}}\n")
    proc, out, err = start(["run", str(plan), "--sandbox", str(sandbox), "--json"], subprocess.PIPE, tmp_path)
    proc.stdin.write(b"y\nn\n")  # both answers at once: the second must still reach the second question
    proc.stdin.close()
    code, result, _ = finish(proc, out, err)
    assert code == 1
    assert [(s["state"], s["status"]) for s in result["steps"]] == [("first", "ok"), ("second", "declined")]
    assert (sandbox / "a.txt").exists() and not (sandbox / "b.txt").exists()


def test_a_bad_timeout_setting_is_bad_input(sandbox: Path, tmp_path: Path) -> None:
    proc, out, err = start([*WRITE, "--sandbox", str(sandbox)], subprocess.DEVNULL, tmp_path,
                           env={"INTENTOS_CONFIRM_TIMEOUT": "soon"})
    assert proc.wait(timeout=60) == 2
    assert err.read_text().strip() == ("error: INTENTOS_CONFIRM_TIMEOUT='soon': give the wait for a confirmation as "
                                       "a positive number of seconds")
    assert not (Path(os.environ["INTENTOS_HOME"]) / "runs").exists()
