"""Where intentos keeps things on this machine.

Everything lives under one home folder: `$INTENTOS_HOME`, else
`$XDG_DATA_HOME/intentos`, else `~/.local/share/intentos`. Tests point
INTENTOS_HOME at a temporary folder so they never touch a user's data.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    if env := os.environ.get("INTENTOS_HOME"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(base).expanduser() / "intentos"


def default_sandbox() -> Path:
    """The per-user sandbox when none is named: `$INTENTOS_SANDBOX` or `<home>/sandbox`."""
    if env := os.environ.get("INTENTOS_SANDBOX"):
        return Path(env).expanduser()
    return home() / "sandbox"


def runs_dir() -> Path:
    return home() / "runs"


def config_file() -> Path:
    """The YAML settings file: `$INTENTOS_CONFIG` or `<home>/config.yaml`."""
    if env := os.environ.get("INTENTOS_CONFIG"):
        return Path(env).expanduser()
    return home() / "config.yaml"
