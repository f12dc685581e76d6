"""The real `intentos` program in a real terminal: tmux runs it, send-keys types, capture-pane reads the screen.

This is what a person sees: the installed console script, its own settings and model, a
120x40 terminal. Each test uses a private tmux server (its own socket) and kills it at the end.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentos.cli import app as cli_app

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
INTENTOS = Path(sys.executable).parent / "intentos"  # the console script installed next to this interpreter
WIDTH, HEIGHT = 120, 40


class Terminal:
    """One detached tmux session running one command, on a private server."""

    def __init__(self, folder: Path, name: str) -> None:
        self.socket, self.name = folder / "tmux.sock", name
        # No user configuration; the default size is ours too (with no client attached tmux may otherwise
        # resize a detached window to its 80x24 default); a program that dies stays readable on the pane.
        self.config = folder / "tmux.conf"
        self.config.write_text(f"set -g default-size {WIDTH}x{HEIGHT}\n"
                               "set -g remain-on-exit on\n")

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TMUX, "-u", "-f", str(self.config), "-S", str(self.socket), *args],
                              capture_output=True, text=True, check=check, timeout=30)

    def start(self, command: list[str], env: dict[str, str]) -> None:
        setenv = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        # COLUMNS/LINES, when the environment has them (a test runner's may say 80x24), would win over the
        # terminal's real size: the program must ask the terminal, as it does for a person.
        unset = ["env", "-u", "COLUMNS", "-u", "LINES"]
        self.tmux("new-session", "-d", "-s", self.name, "-x", str(WIDTH), "-y", str(HEIGHT), *setenv,
                  shlex.join([*unset, *command]))

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)

    def wait_for(self, what: str | Callable[[str], bool], timeout: float) -> str:
        """Poll the pane until it shows `what` (or the predicate holds) on two captures in a row.

        Two identical captures: a frame is written in pieces, and one capture can fall between them.
        """
        test = (lambda s: what in s) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        previous = None
        while True:
            shown = self.screen()
            if test(shown) and shown == previous:
                return shown
            if time.monotonic() > deadline:
                pytest.fail(f"the terminal did not show {what!r} within {timeout:g} s; it shows:\n{shown}")
            previous = shown
            time.sleep(0.25)

    def exited(self) -> bool:
        return self.tmux("display-message", "-p", "-t", self.name, "#{pane_dead}", check=False).stdout.strip() == "1"


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if not Path(TMUX).exists():
        pytest.skip("tmux is not installed (apt-get install tmux): the real-terminal test needs it")
    term = Terminal(tmp_path, "intentos")
    try:
        yield term
    finally:
        term.tmux("kill-server", check=False)


def program_env(tmp_path: Path) -> dict[str, str]:
    return {"INTENTOS_HOME": str(tmp_path / "home"), "INTENTOS_SANDBOX": str(tmp_path / "sandbox"),
            "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}


def test_no_command_opens_the_tui_on_a_terminal_and_ctrl_q_quits(terminal: Terminal, tmp_path: Path) -> None:
    terminal.start([str(INTENTOS)], program_env(tmp_path))
    shown = terminal.wait_for("What do you want to do?", timeout=90)
    assert "intentos" in shown and "F1 help" in shown and "llamacpp:smollm2" in shown
    assert "palette" in shown.splitlines()[HEIGHT - 1], shown  # the footer on the last row: the whole terminal
    terminal.keys("F1")
    shown = terminal.wait_for("Key bindings", timeout=30)
    assert "Confirm the plan and run it" in shown
    terminal.keys("Escape")
    terminal.wait_for(lambda s: "Key bindings" not in s and "What do you want to do?" in s, timeout=30)
    terminal.keys("C-q")
    deadline = time.monotonic() + 30
    while not terminal.exited():
        assert time.monotonic() < deadline, f"ctrl+q did not quit; the terminal shows:\n{terminal.screen()}"
        time.sleep(0.25)


@pytest.mark.model
def test_intent_to_result_in_the_real_program(terminal: Terminal, tmp_path: Path, default_model: str) -> None:
    # About planning (the plan must add the task), so the default planning model, not the plumbing one.
    sandbox = tmp_path / "sandbox"
    terminal.start([str(INTENTOS), "tui", "--sandbox", str(sandbox)],
                   program_env(tmp_path) | {"INTENTOS_MODELS_DIR": os.environ["INTENTOS_MODELS_DIR"],
                                            "INTENTOS_MODEL": default_model})
    terminal.wait_for("What do you want to do?", timeout=90)
    terminal.keys("Remind me to call mum on Friday", literal=True)
    terminal.keys("Enter")
    # The embedded model generates in a worker; the progress line says so until the plan is there.
    shown = terminal.wait_for(lambda s: "valid state machine" in s or "no plan after" in s or "⚠" in s,
                              timeout=240)
    assert "valid state machine" in shown, shown
    assert f"resolved by {default_model}" in shown and "tasks.add" in shown and "→ done" in shown
    assert "· pending" in shown
    terminal.keys("C-r")
    shown = terminal.wait_for(lambda s: "run done" in s or "run failed" in s, timeout=60)
    assert "run done" in shown, shown
    assert "✓ ok" in shown and "· pending" not in shown and "tasks.add · ok" in shown, shown
    tasks = json.loads((sandbox / "Tasks" / "tasks.json").read_text())
    assert any("mum" in t["title"].lower() for t in tasks)
    assert any(t["title"] in shown for t in tasks)  # the new task, as the result panel shows it


def test_no_command_without_a_terminal_prints_the_help(isolated_home: Path) -> None:
    result = CliRunner().invoke(cli_app, [])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "tui" in result.output and "resolve" in result.output


def test_tui_without_a_terminal_says_it_needs_one(isolated_home: Path) -> None:
    result = CliRunner().invoke(cli_app, ["tui"])
    assert result.exit_code == 2
    assert "the TUI needs a terminal" in result.output
