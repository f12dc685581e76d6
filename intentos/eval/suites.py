"""What `--suite` names: a suite file, or an external benchmark written `SCHEME:NAME` (`bfcl:simple_python`).

The command layer picks the loader here; the suite format (`intentos.eval.suite`) knows
no benchmark, and the runner takes any Suite, handing the trials of one that runs its own
(an `ExternalSuite`, see `intentos.eval.runner`) to that suite.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from intentos.eval.suite import Suite
from intentos.table import FunctionTable


def _bfcl(category: str) -> Suite:
    # Imported on use: the BFCL adapter is not needed by any other command, which should not pay for it.
    from intentos.eval.bfcl.suite import load_bfcl_suite

    return load_bfcl_suite(category)


EXTERNAL: dict[str, Callable[[str], Suite]] = {"bfcl": _bfcl}  # scheme → loader of the name after the colon


def external_loader(ref: str | Path) -> Callable[[str], Suite] | None:
    """The loader of the external benchmark `ref` names, or None for a suite file."""
    scheme, colon, _ = str(ref).partition(":")
    return EXTERNAL.get(scheme) if colon else None


def load_suite(ref: str | Path, table: FunctionTable | None = None) -> Suite:
    """A suite file (with a table, its calls are checked too), or an external benchmark named `SCHEME:NAME`."""
    text = str(ref)
    if (load := external_loader(text)) is not None:
        return load(text.split(":", 1)[1])
    return Suite.load(Path(text), table)


def find_suite(ref: str, table: FunctionTable | None = None) -> Suite | None:
    """The suite `ref` names, or None when it names a suite file that is not there (a recorded run's suite
    that has moved)."""
    if external_loader(ref) is None and not Path(ref).is_file():
        return None
    return load_suite(ref, table)
