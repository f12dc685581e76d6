"""Shared fixtures: a real sandbox in a temporary folder, a fixed clock, an isolated home."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from intentos.app import Context, UserProfile
from intentos.sandbox import Sandbox

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Tuesday 2026-03-10 09:00 in Berlin: fixed so date arithmetic in tests is exact.
FIXED_NOW = datetime(2026, 3, 10, 9, 0)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs, config and the default sandbox go to a temporary INTENTOS_HOME, never the user's."""
    home = tmp_path_factory.mktemp("intentos-home")
    monkeypatch.setenv("INTENTOS_HOME", str(home))
    return home


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
