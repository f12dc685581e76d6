"""The `logs` app: parse logs into templates, find anomalous lines, label lines from failure windows,
check the quality of log statements in source code.

The argument models and `LogsApp`, which maps sandbox paths onto the work in `ops.py`: every path is
resolved inside the sandbox (a path leading out is refused), results name sandbox-relative paths,
errors follow the kit's one policy and the context's cancel flag reaches every long loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from intentos.app import App
from intentos.errors import AppError, SandboxError
from intentos.function import Effect, function
from intentos.sandbox import INTERNAL
from intentos.skills import kit
from intentos.skills.logs import ops
from intentos.skills.logs.ops import (
    Anomalies,
    Format,
    Labelled,
    LabelMethod,
    MaskKind,
    Method,
    Parsed,
    Quality,
    Window,
)

if TYPE_CHECKING:
    from intentos.sandbox import Sandbox

# -- arguments -----------------------------------------------------------------------------------------


class ParseArgs(BaseModel):
    path: str = Field(description="log file in the sandbox (plain or .gz; LogHub *_structured.csv too)")
    format: Format = Field("auto", description="log format; auto detects it from the first lines")
    masking: list[MaskKind] | None = Field(
        None, description="mine with the drain3 baseline masking only these kinds ([] masks nothing); default: the "
                          "tokens miner, which needs no choice")
    state_file: str | None = Field(
        None, description="parser state JSON in the sandbox: template ids carry over between calls; written")
    top: int = Field(20, ge=1, le=1000, description="how many templates to list")


class DetectArgs(BaseModel):
    path: str = Field(description="log file to search for anomalous lines")
    reference: str | None = Field(
        None, description="a log of normal operation to learn from; default: the first part of `path`")
    train_fraction: float = Field(
        0.3, gt=0.0, lt=1.0, description="without a reference, the share of `path` (from the start) learned from")
    method: Method = Field("a2log", description="a2log: neural scorer trained on normal lines (default); "
                                                "supervised: a classifier trained on labelled lines (the reference "
                                                "must carry labels, e.g. BGL); "
                                                "unseen_template: lines with a template never seen in training; "
                                                "statistics: rare templates, odd values, odd order")
    format: Format = "auto"
    top: int = Field(20, ge=1, le=1000, description="how many lines to list")


class LabelArgs(BaseModel):
    path: str = Field(description="log file with timestamps")
    windows: list[Window] = Field(min_length=1, description="estimated failure windows, e.g. from alerts")
    output: str | None = Field(None, description="CSV to write the per-line labels to; default <path>.labels.csv")
    method: LabelMethod = Field("pull", description="pull (iterative PU learning, default) or loglab (one round)")
    format: Format = "auto"
    overwrite: bool = Field(False, description="replace an existing output (the old one goes to the trash)")
    top: int = Field(5, ge=0, le=100, description="lines listed per window")


class QualityArgs(BaseModel):
    path: str = Field(".", description="Python/Java source file or folder in the sandbox")
    top: int = Field(50, ge=1, le=5000, description="how many findings to list")


# -- the app ---------------------------------------------------------------------------------------------


class _SandboxStateFile:
    """A parser state kept in the sandbox: read and replaced only through the Sandbox (no path is trusted)."""

    def __init__(self, sandbox: Sandbox, rel: str) -> None:
        self.sandbox, self.rel = sandbox, rel

    def exists(self) -> bool:
        return self.sandbox.lstat(self.rel) is not None

    def read(self, limit: int) -> bytes | None:
        if not self.exists():
            return None
        return self.sandbox.read_bytes(self.rel, limit=limit)

    def write(self, data: bytes) -> None:
        self.sandbox.write_bytes(self.rel, data)


class LogsApp(App):
    name = "logs"
    description = "logs: templates of a log, anomalous lines, labels from failure windows, log statement quality"

    @function(Effect.WRITE)
    def parse(self, args: ParseArgs) -> Parsed:
        """Mine the message templates of a log file: counts per template, odd lines; writes state_file if given."""
        with kit.skill_errors(self.sandbox):
            path = self._log(args.path)
            state = self._target(args.state_file) if args.state_file else None
            store = _SandboxStateFile(self.sandbox, self._rel(state)) if state is not None else None
            return ops.parse_log(path, name=self._rel(path), fmt=args.format, masking=args.masking, state_path=state,
                                 state_name=state and self._rel(state), top=args.top, cancelled=self.ctx.cancelled,
                                 store=store)

    @function(Effect.READ)
    def detect_anomalies(self, args: DetectArgs) -> Anomalies:
        """Find anomalous lines in a log, learning normal from a reference log or the log's first part."""
        with kit.skill_errors(self.sandbox):
            path = self._log(args.path)
            ref = self._log(args.reference) if args.reference else None
            return ops.find_anomalies(path, name=self._rel(path), reference=ref,
                                      reference_name=ref and self._rel(ref), fmt=args.format, method=args.method,
                                      train_fraction=args.train_fraction, top=args.top,
                                      encoder_overrides=self._encoder_overrides(), cancelled=self.ctx.cancelled)

    @function(Effect.WRITE)
    def label_from_failure_windows(self, args: LabelArgs) -> Labelled:
        """Label each log line anomalous or normal from failure time windows; writes the labels as CSV."""
        with kit.skill_errors(self.sandbox):
            path = self._log(args.path)
            out = self._target(args.output or f"{args.path}.labels.csv")
            if out == path:
                raise AppError("the labels output would overwrite the log itself; choose another output")
            if out.exists():
                if not args.overwrite:
                    raise AppError(f"{self._rel(out)} already exists; pass overwrite: true to replace it "
                                   "(the old version goes to the trash)")
                self.sandbox.trash(out)
            out_rel = self._rel(out)
            return ops.label_windows(path, args.windows, out, name=self._rel(path), out_name=out_rel,
                                     fmt=args.format, method=args.method, top=args.top,
                                     encoder_overrides=self._encoder_overrides(), cancelled=self.ctx.cancelled,
                                     write=lambda data: self.sandbox.write_bytes(out_rel, data))

    @function(Effect.READ)
    def check_quality(self, args: QualityArgs) -> Quality:
        """Check log statements in Python/Java source: levels that do not fit the text, messages saying too little."""
        with kit.skill_errors(self.sandbox):
            path = self.sandbox.resolve(args.path)
            if not self.sandbox.exists(args.path):
                raise AppError(self.sandbox.missing(args.path))
            files = None
            if self.sandbox.is_dir(args.path):
                # Only regular files found without entering a link, and none with a hard link leading out:
                # the checker reads files by path, so what it is given must be inside.
                files = [self.sandbox.resolve(e.path) for e in self.sandbox.walk(args.path, skip=INTERNAL)
                         if e.is_file and e.name.endswith((".py", ".java")) and self._inside(e.path)]
            elif not self._inside(args.path):
                raise AppError(f"{args.path} has hard links outside the sandbox; it is not read")
            return ops.check_source_quality(path, name=self._rel(path), top=args.top, relative=self._rel_str,
                                            files=files, cancelled=self.ctx.cancelled)

    # -- paths --------------------------------------------------------------------------------------------

    def _inside(self, rel: str) -> bool:
        try:
            with self.sandbox.open_read(rel):
                return True
        except (OSError, SandboxError):
            return False

    def _rel(self, path: Path) -> str:
        return self.sandbox.relative(path)

    def _rel_str(self, raw: str) -> str:
        try:
            return self.sandbox.relative(Path(raw))
        except ValueError:
            return raw

    def _log(self, raw: str) -> Path:
        path = kit.existing_file(self.sandbox, raw, "log file")
        if not self._inside(raw):  # the readers open it by path: it must have no name outside the sandbox
            raise AppError(f"{raw} has hard links outside the sandbox; it is not read")
        return path

    def _target(self, raw: str) -> Path:
        return kit.target(self.sandbox, raw)

    def _encoder_overrides(self) -> dict[str, Any]:
        """Encoder size/training knobs from the context settings (`logs: {encoder: {...}}`), e.g. for tests."""
        return kit.section(self.ctx, "logs", "encoder")
