"""Generation progress: spinner, model, time elapsed, fragments streamed and the tail of the text.

The model streams from a worker thread. Fragments are only appended to a list there
(cheap, thread-safe under the GIL); a timer on the UI side redraws ten times a second,
so a fast model cannot flood the message queue and keys stay responsive.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import Static

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
TAIL_CHARS = 160


class GenerationProgress(Static):
    def __init__(self, clock: Callable[[], float], **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.clock = clock
        self.parts: list[str] = []
        self.model = ""
        self.started = 0.0
        self.active = False
        self.cancelling = False
        self._frame = 0

    def on_mount(self) -> None:
        self._timer = self.set_interval(0.1, self._tick, pause=True)
        self.display = False

    def begin(self, model: str) -> None:
        self.parts = []
        self.model, self.started, self.active, self.cancelling = model, self.clock(), True, False
        self.display = True
        self._timer.resume()
        self._tick()

    def feed(self, piece: str) -> None:
        """Called from the model's worker thread with each streamed fragment."""
        self.parts.append(piece)

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def end(self, line: str | None = None) -> None:
        """Stop the spinner; keep one summary line, or hide when there is nothing to say."""
        self.active = False
        self._timer.pause()
        if line is None:
            self.display = False
        else:
            self.update(Text(line, style="dim"))

    def _tick(self) -> None:
        if not self.active:
            return
        self._frame = (self._frame + 1) % len(SPINNER)
        head = Text(f"{SPINNER[self._frame]} ", style="bold cyan")
        state = "cancelling…" if self.cancelling else ("generating" if self.parts else "loading / reading prompt")
        head.append(f"{state} with {self.model} · {self.elapsed:.1f} s · {len(self.parts)} fragments", style="bold")
        head.append("   esc cancels", style="dim")
        tail = "".join(self.parts)[-TAIL_CHARS:].replace("\n", " ")
        if tail:
            head.append("\n" + tail, style="dim italic")
        self.update(head)
