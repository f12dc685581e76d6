"""Every skill's command line behaves alike (the CLI kit): Ctrl-C ends a long command with exit code
130, and with --json an error is one JSON object on stdout, exit code 2.

Ctrl-C is the real thing for the process: `_thread.interrupt_main` makes Python raise
KeyboardInterrupt in the main thread, where the command runs, exactly as a SIGINT does.
"""

from __future__ import annotations

import _thread
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from intentos.cli import app as intentos_app
from intentos.clikit import command_groups
from intentos.skills.training import jobs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAINING_JOB = """\
name: long
workload: {kind: digits}
strategy: {kind: diloco, H: 4}
steps: 100000
eval_every: 1000
"""


def skills() -> dict[str, typer.Typer]:
    return {g.path[-1]: g.app for g in command_groups()[0] if g.path[:1] == ("skills",)}


def run(*args: str | Path) -> object:
    return CliRunner().invoke(intentos_app, ["skills", *map(str, args)])


@pytest.fixture(scope="module", autouse=True)
def _heavy_imports_done() -> None:
    """A Ctrl-C in the middle of importing torch leaves it half set up for the rest of the process: the
    libraries the commands load on first use are loaded before any Ctrl-C is pressed."""
    import sklearn.linear_model  # noqa: F401 - Ernest
    import torch
    import torch_geometric.nn  # noqa: F401 - the fault localizers

    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([weight])  # its first step loads torch._dynamo
    weight.sum().backward()
    optimizer.step()


@pytest.fixture
def ctrl_c_after() -> Iterator[Callable[[float], None]]:
    """Press Ctrl-C once, `delay` seconds from now; the test fails if the command ended before that."""
    timers: list[threading.Timer] = []
    # interrupt_main calls whatever SIGINT handler this process has; a library used earlier in the session may
    # have left its own (a SparkContext does). A command run from a shell has Python's: test with that one.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def arm(delay: float) -> None:
        timers.append(threading.Timer(delay, _thread.interrupt_main))
        timers[-1].start()

    yield arm
    for timer in timers:
        timer.cancel()
        timer.join()
    try:  # a Ctrl-C that came after the command ended must not reach the next test
        for _ in range(20):
            time.sleep(0.01)
    except KeyboardInterrupt:
        pass
    signal.signal(signal.SIGINT, previous)


def test_the_four_skills_register_their_commands_through_entry_points() -> None:
    assert set(skills()) >= {"logs", "dataflow", "faults", "training"}


def _long_commands(tmp_path: Path) -> dict[str, list[str | Path]]:
    """A command per skill that runs far longer than the Ctrl-C delay."""
    faults = tmp_path / "shop"
    assert run("faults", "simulate", faults, "-n", "12", "-w", "32").exit_code == 0
    job = tmp_path / "job.yaml"
    job.write_text(TRAINING_JOB)
    return {
        "logs": ["logs", "generate", tmp_path / "big.log", "--lines", "50000000"],
        "faults": ["faults", "train", faults, "--epochs", "1000", "--out", tmp_path / "m.pt"],
        "dataflow": ["dataflow", "train", DATA / "c3o" / "kmeans.tsv", "--out", tmp_path / "b.pt"],
        "training": ["training", "start", job, "--root", tmp_path / "jobs", "--wait"],
    }


@pytest.mark.parametrize("skill", ["logs", "faults", "dataflow", "training"])
@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_exits_130(skill: str, as_json: bool, tmp_path: Path, ctrl_c_after: Callable[[float], None]) -> None:
    command = _long_commands(tmp_path)[skill] + (["--json"] if as_json else [])
    ctrl_c_after(1.5)
    try:
        result = run(*command)
    finally:
        if skill == "training":
            for status in jobs.list_jobs(tmp_path / "jobs"):
                if status.state == "running":
                    jobs.stop(tmp_path / "jobs", status.job_id)
    assert result.exit_code == 130, f"{result.output} {result.exception!r}"  # not 0: it was still running
    if as_json:
        assert json.loads(result.stdout) == {"error": "interrupted"}
    else:
        assert "interrupted" in result.output


@pytest.mark.parametrize("command", [
    ["logs", "parse", "{missing}"],
    ["logs", "detect", "{missing}"],
    ["faults", "localize", "{missing}", "{missing}", "--model", "{missing}"],
    ["faults", "topology", "{missing}"],
    ["dataflow", "predict", "{missing}"],
    ["dataflow", "rescale", "{missing}", "--target", "100"],
    ["training", "status", "no-such-job", "--root", "{tmp}"],
    ["training", "start", "{missing}", "--root", "{tmp}"],
])
def test_errors_are_one_json_object_with_json(command: list[str], tmp_path: Path) -> None:
    args = [a.format(missing=tmp_path / "missing.file", tmp=tmp_path) for a in command]
    result = run(*args, "--json")
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert isinstance(error, str) and "\n" not in error and error
