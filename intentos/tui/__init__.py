"""The terminal UI (textual): intent in, the workflow shown as a state machine, confirm, watch it run.

    intentos            # or `intentos tui`
    IntentosApp(backend=..., table=..., ctx=...).run()   # parts injectable, for tests and embedding

Importing this package does not import textual; `run_tui` and `IntentosApp` load it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from intentos.tui.app import IntentosApp

__all__ = ["IntentosApp", "run_tui"]


def run_tui(**kwargs: Any) -> None:
    """Open the TUI with the settings' defaults for whatever is not given (see IntentosApp)."""
    from intentos.tui.app import IntentosApp

    IntentosApp(**kwargs).run()


def __getattr__(name: str) -> Any:
    if name == "IntentosApp":
        from intentos.tui.app import IntentosApp

        return IntentosApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
