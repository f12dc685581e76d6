"""Shared fixtures: a real sandbox in a temporary folder, a fixed clock, an isolated home."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from intentos.app import Context, UserProfile
from intentos.backends.spec import DEFAULT_SPEC, parse_spec
from intentos.config import load_settings, make_context
from intentos.fixture import Fixture
from intentos.models.store import models_dir
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OFFICE = Path(__file__).resolve().parents[1] / "workflows" / "fixtures" / "office.yaml"
# Tuesday 2026-03-10 09:00 in Berlin: fixed so date arithmetic in tests is exact.
FIXED_NOW = datetime(2026, 3, 10, 9, 0)


# Where the user's pulled models are (`make test` pulls the default model there first), read before any test
# points INTENTOS_HOME elsewhere.
USER_MODELS = models_dir()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs, config and the default sandbox go to a temporary INTENTOS_HOME, never the user's; a test that
    does not name a model gets the embedded SmolLM2 (fast plumbing), not the default planning model."""
    home = tmp_path_factory.mktemp("intentos-home")
    monkeypatch.setenv("INTENTOS_HOME", str(home))
    monkeypatch.setenv("INTENTOS_MODEL", "llamacpp:smollm2")
    return home


@pytest.fixture
def default_model(monkeypatch: pytest.MonkeyPatch) -> str:
    """The default planning model's spec, found among the user's pulled models (`make test` pulls it)."""
    name = parse_spec(DEFAULT_SPEC).model
    path = USER_MODELS / f"{name}.gguf"
    if not path.is_file():
        pytest.fail(f"the default model is not pulled into {USER_MODELS}: run `make pull-default` "
                    f"(or `intentos models pull {name}`) first; `make test` does")
    monkeypatch.setenv("INTENTOS_MODELS_DIR", str(USER_MODELS))
    monkeypatch.delenv("INTENTOS_MODEL")
    return DEFAULT_SPEC


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path / "sandbox")


@pytest.fixture
def ctx(sandbox: Sandbox) -> Context:
    return Context(
        sandbox=sandbox,
        timezone="Europe/Berlin",
        user=UserProfile(name="Alex Doe", email="alex@example.org"),
        fixed_now=FIXED_NOW,
    )


PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"


@pytest.fixture
def probe_plugin(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the test-only `probe` app the way a third party would: a distribution with an entry point."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.setenv("PYTHONPATH", str(PLUGIN_DIR))  # for subprocesses
    return PLUGIN_DIR


_RUN_WORKFLOW = """
import sys
from intentos.app import Context
from intentos.executor import Executor
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable
from intentos.workflow import Workflow
wf = Workflow.from_yaml(open(sys.argv[2]).read())
Executor(FunctionTable.discover(), Context(sandbox=Sandbox(sys.argv[1])), assume_yes=True).run(wf, run_id=sys.argv[3])
"""


@pytest.fixture
def killed_run() -> Callable[..., None]:
    """Run a workflow file in a child process (everything confirmed) as run `run_id`, and SIGKILL it as soon
    as `ready()` holds; the test fails with `never` when that does not happen within `timeout` seconds."""

    def run(sandbox: Path, workflow: Path, run_id: str, ready: Callable[[], bool], never: str,
            timeout: float = 60) -> None:
        proc = subprocess.Popen([sys.executable, "-c", _RUN_WORKFLOW, str(sandbox), str(workflow), run_id],
                                env=os.environ.copy())
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(never)
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` on the embedded model; yields its /v1 base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "intentos.backends.llamacpp_server", "--model", str(_embedded_model_path()),
           "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "8192"]
    log = tmp_path_factory.mktemp("llama-server") / "server.log"  # a file: its verbose log would fill a pipe
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer /v1/models within 60 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _embedded_model_path() -> Path:
    from intentos.backends.spec import embedded_model_path

    return embedded_model_path()


@pytest.fixture
def office(tmp_path: Path) -> tuple[Context, FunctionTable]:
    """The office fixture seeded into a sandbox, with the user's settings (so the default model backend)."""
    fixture = Fixture.load(OFFICE)
    ctx = make_context(load_settings(), sandbox=tmp_path / "sandbox", fixed_now=fixture.now,
                       timezone=fixture.timezone, user=fixture.user)
    table = FunctionTable.discover()
    fixture.apply(ctx, table)
    return ctx, table
