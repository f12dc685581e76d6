"""Key-to-screen latency of the TUI: idle, and while the embedded model generates in its worker.

    .venv/bin/python benchmarks/bench_tui.py                 # 30 presses per row, llamacpp:smollm2
    .venv/bin/python benchmarks/bench_tui.py --presses 50 --model llamacpp:/path/to/model.gguf

The real app runs headless (textual's `run_test`, 120x40) with the office fixture in a scratch
sandbox. A press is timed from the moment its key event is posted to the app until the first
frame the screen composes in which the key's effect is visible: a character in the intent box,
or the help screen opened/closed. Frames are observed where textual hands each composed update
to the terminal (`App._display`), so the figure includes handling the key, layout and rendering.

"Generating" rows are measured while a real resolve runs in the model worker (prompt reading
and token streaming); when the model finishes early, the intent is sent again, and presses that
straddle the end of a generation are discarded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INTENT = "Remind me to call mum on Friday"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=30, help="presses per row (default 30)")
    parser.add_argument("--model", default=None, help="model spec (default: the settings' model, llamacpp:smollm2)")
    return parser.parse_args()


class FrameClock:
    """Wraps the app's display hook: when a frame is composed while `visible()` holds, that is the time."""

    def __init__(self, app: Any) -> None:
        self.visible: Callable[[], bool] | None = None
        self.seen_at: float | None = None
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            shown = renderable is not None and screen is app.screen  # a frame of the screen now in front
            if shown and self.visible is not None and self.seen_at is None and self.visible():
                self.seen_at = time.perf_counter()

        app._display = display  # an instance attribute: this app only, for measuring

    async def press(self, app: Any, key: str, visible: Callable[[], bool], timeout: float = 30.0) -> float:
        """Post one key (as the terminal driver does) and wait for the first frame that shows its effect."""
        from textual import events

        self.visible, self.seen_at = visible, None
        started = time.perf_counter()
        app.post_message(events.Key(key, key if len(key) == 1 else None))
        while self.seen_at is None:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{key!r}: no frame showed its effect within {timeout} s")
            await asyncio.sleep(0.0005)
        self.visible = None
        return self.seen_at - started


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    from intentos.config import load_settings, make_context
    from intentos.fixture import Fixture
    from intentos.table import FunctionTable
    from intentos.tui.app import IntentosApp
    from intentos.tui.screens.help import HelpScreen
    from intentos.tui.screens.main import MainScreen
    from intentos.tui.widgets.intent_box import IntentBox

    fixture = Fixture.load(ROOT / "workflows" / "fixtures" / "office.yaml")
    scratch = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    os.environ["INTENTOS_HOME"] = str(scratch / "home")  # runs, history and traces stay in the scratch folder
    ctx = make_context(load_settings(), sandbox=scratch / "sandbox", fixed_now=fixture.now,
                       timezone=fixture.timezone, user=fixture.user)
    table = FunctionTable.discover()
    fixture.apply(ctx, table)
    app = IntentosApp(table=table, ctx=ctx, model=args.model)
    samples: dict[str, list[float]] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        box = screen.query_one(IntentBox)
        clock = FrameClock(app)
        await app.workers.wait_for_complete()
        await pilot.pause()

        async def type_one(char: str) -> float:
            before = len(box.value)
            return await clock.press(app, char, lambda: len(box.value) > before)

        async def help_toggle() -> float:
            opened = await clock.press(app, "f1", lambda: isinstance(app.screen, HelpScreen))
            closed = await clock.press(app, "escape", lambda: app.screen is screen)
            return (opened + closed) / 2

        async def row(name: str, action: Callable[[], Any], generating: bool) -> None:
            kept: list[float] = []
            while len(kept) < args.presses:
                if generating and screen.phase != "resolving":
                    screen.start_resolve(INTENT)  # the model finished: give it the intent again
                    await pilot.pause()
                    continue
                latency = await action()
                if not generating or screen.phase == "resolving":  # the model worked for the whole press
                    kept.append(latency)
                if len(box.value) > 60:
                    box.value = ""
            samples[name] = kept

        await row("idle · type a character", lambda: type_one("x"), generating=False)
        await row("idle · open/close help", help_toggle, generating=False)
        screen.start_resolve(INTENT)
        await pilot.pause()
        await row("generating · type a character", lambda: type_one("y"), generating=True)
        await row("generating · open/close help", help_toggle, generating=True)
        screen.stop.set()  # cancel the generation in flight before the app closes
        await app.workers.wait_for_complete()
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    samples = asyncio.run(measure(args))
    print(f"TUI key-to-screen latency, ms ({args.presses} presses per row, 120x40, "
          f"model {args.model or 'from the settings'}, {os.cpu_count()} CPUs, {time.perf_counter() - started:.0f} s)")
    print(f"{'':34} {'p50':>8} {'p90':>8} {'max':>8} {'n':>4}")
    for name, values in samples.items():
        ms = [v * 1000 for v in values]
        print(f"{name:34} {statistics.median(ms):8.1f} {percentile(ms, 0.9):8.1f} {max(ms):8.1f} {len(ms):4d}")


if __name__ == "__main__":
    sys.exit(main())
