"""A third-party app installed only for the tests, through the `intentos.apps` entry point.

`probe.wait_for` blocks until a file appears, so a test can kill a run while a step is
in flight; `probe.mark` appends a line to a file, so a test can count how often a step ran;
`probe.append` does the same through the sandbox (undo-logged) and can then wait or cancel the run.
It imports only the public plugin API (`from intentos import ...`), as a third-party app should.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

from intentos import App, AppError, Effect, function


class WaitArgs(BaseModel):
    path: str
    timeout_s: float = 60.0


class Waited(BaseModel):
    path: str
    waited_s: float


class MarkArgs(BaseModel):
    path: str
    text: str


class Marked(BaseModel):
    path: str
    lines: int


class AppendArgs(BaseModel):
    path: str
    text: str
    wait_for: str | None = None  # after appending, wait until this file exists in the sandbox
    cancel_unless: str | None = None  # after appending, cancel the run unless this file exists in the sandbox


class SleepArgs(BaseModel):
    seconds: float


class Slept(BaseModel):
    seconds: float


class ProbeApp(App):
    name = "probe"
    description = "test probes"

    @function(Effect.READ)
    def wait_for(self, args: WaitArgs) -> Waited:
        """Wait until a file exists in the sandbox."""
        start = time.monotonic()
        target = self.sandbox.resolve(args.path)
        while not target.exists():
            if time.monotonic() - start > args.timeout_s:
                raise AppError(f"{args.path} did not appear within {args.timeout_s} s")
            time.sleep(0.02)
        return Waited(path=args.path, waited_s=time.monotonic() - start)

    @function(Effect.WRITE)
    def mark(self, args: MarkArgs) -> Marked:
        """Append a line to a file in the sandbox."""
        target = self.sandbox.resolve(args.path)
        with open(target, "a") as fh:
            fh.write(args.text + "\n")
        return Marked(path=args.path, lines=len(target.read_text().splitlines()))

    @function(Effect.WRITE)
    def append(self, args: AppendArgs) -> Marked:
        """Append a line to a file through the sandbox (so a step's undo log notes it), then maybe wait or cancel."""
        before = self.sandbox.read_text(args.path) if self.sandbox.exists(args.path) else ""
        self.sandbox.write_text(args.path, before + args.text + "\n")
        start = time.monotonic()
        while args.wait_for and not self.sandbox.exists(args.wait_for) and time.monotonic() - start < 60:
            time.sleep(0.02)
        if args.cancel_unless and not self.sandbox.exists(args.cancel_unless):
            self.ctx.cancelled.set()
        return Marked(path=args.path, lines=len((before + args.text).splitlines()))

    @function(Effect.READ)
    def sleep(self, args: SleepArgs) -> Slept:
        """Sleep, noticing cancellation."""
        end = time.monotonic() + args.seconds
        while time.monotonic() < end and not self.ctx.cancelled.is_set():
            time.sleep(0.01)
        return Slept(seconds=args.seconds)

    @function(Effect.DESTRUCTIVE)
    def shred(self, args: MarkArgs) -> Marked:
        """Move a file to the trash (a destructive step for confirmation tests)."""
        self.sandbox.trash(args.path)
        return Marked(path=args.path, lines=0)

    @function(Effect.READ)
    def crash(self, args: SleepArgs) -> Slept:
        """Raise an unexpected exception (a bug in an app)."""
        raise ZeroDivisionError("division by zero")

    @function(Effect.EXTERNAL)
    def post(self, args: MarkArgs) -> Marked:
        """Stand-in for an effect outside the sandbox: appends to a file OUTSIDE it, then waits for `go`."""
        from pathlib import Path

        with open(Path(args.path), "a") as fh:  # deliberately outside: nothing can roll this back
            fh.write(args.text + "\n")
        start = time.monotonic()
        while not self.sandbox.exists("go") and time.monotonic() - start < 60:
            time.sleep(0.02)
        return Marked(path=args.path, lines=len(Path(args.path).read_text().splitlines()))
