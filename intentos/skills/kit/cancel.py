"""Cancelling a long computation: the Executor sets the context's event, the work checks it.

A skill passes `ctx.cancelled` down into every loop that can run long (an epoch, a chunk of lines,
a simulated run) and calls `check(cancelled)` there, so a cancelled step stops within a second
instead of running on in the abandoned worker thread.
"""

from __future__ import annotations

import threading

from intentos.errors import AppError

Cancel = threading.Event | None  # None: the computation cannot be cancelled (the CLIs, benchmarks)


class Cancelled(AppError):
    """The step was cancelled while it ran; what it had done so far is dropped."""

    def __init__(self) -> None:
        super().__init__("cancelled")


def check(cancelled: Cancel) -> None:
    """Raise Cancelled when the event is set."""
    if cancelled is not None and cancelled.is_set():
        raise Cancelled()
