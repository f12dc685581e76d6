"""Execution histories of dataflow jobs: one row per run (scale-out, context properties, runtime).

Two formats are read:

- C3O (TSV): instance_count, machine_type, slots, memory, data_size_MB, job parameters..., gross_runtime (s).
  Every column between data_size_MB and gross_runtime is a job parameter.
- Bell (CSV): Nodes, Runtime (ms). One context per file; the runtime is converted to seconds.

A row that cannot be read raises a HistoryFileError naming the file and the line, so a user can fix it;
so does a file that is not UTF-8 text, not CSV, or too large (see MAX_RUNS, MAX_COLUMNS). Parsing works
on the file's bytes (`parse_history`): the app reads them through the sandbox, the CLI from any path.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path, PurePath
from typing import Literal

from pydantic import BaseModel, Field

from intentos.errors import IntentosError
from intentos.skills.kit.files import LocalReadError, TextProblem, decode_text, read_local

HistoryFormat = Literal["auto", "c3o", "bell"]
C3O_HEAD = ["instance_count", "machine_type", "slots", "memory", "data_size_MB"]
C3O_TARGET = "gross_runtime"
BELL_HEAD = ["Nodes", "Runtime"]
MAX_RUNS = 50_000  # rows of one history (each a training example; C3O's largest has 1,410)
MAX_COLUMNS = 32  # C3O columns (the job parameters among them are encoded for every run)


class HistoryFileError(IntentosError):
    """A history file could not be read; names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {one_line(message)}")


def one_line(text: str, limit: int = 400) -> str:
    """An error message on one line and of a readable length, whatever a file put into it."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Run(BaseModel):
    """One execution of a job: where it ran, on what, how long it took."""

    scaleout: int = Field(ge=1, description="machines (instance count / nodes)")
    machine_type: str = ""
    slots: float = 0.0
    memory: float = 0.0
    data_size_mb: float = 0.0
    params: dict[str, str] = Field(default_factory=dict, description="job parameters, as written in the file")
    runtime_s: float = Field(gt=0)
    line: int = 0

    def context_key(self) -> tuple[str, ...]:
        """A context: one distinct (machine_type, data size, job parameters) combination."""
        return (self.machine_type, _num_text(self.data_size_mb), *(self.params[k] for k in sorted(self.params)))


class History(BaseModel):
    """Every run of one algorithm, read from one file."""

    algorithm: str
    source: str
    format: Literal["c3o", "bell"]
    param_names: list[str]
    runs: list[Run]

    def contexts(self) -> dict[tuple[str, ...], list[Run]]:
        groups: dict[tuple[str, ...], list[Run]] = defaultdict(list)
        for run in self.runs:
            groups[run.context_key()].append(run)
        return dict(groups)

    def scaleouts(self) -> list[int]:
        return sorted({r.scaleout for r in self.runs})


def _num_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _number(path: str, line: int, column: str, raw: str, *, positive: bool = False) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise HistoryFileError(path, f"column {column}: {raw!r} is not a number", line) from None
    if not math.isfinite(value) or (positive and value <= 0) or value < 0:
        need = "a positive number" if positive else "a non-negative number"
        raise HistoryFileError(path, f"column {column}: {raw!r} is not {need}", line)
    return value


def _scaleout(path: str, line: int, column: str, raw: str) -> int:
    value = _number(path, line, column, raw, positive=True)
    if not value.is_integer():
        raise HistoryFileError(path, f"column {column}: {raw!r} is not a whole number of machines", line)
    return int(value)


def detect_format(text: str, name: str = "") -> Literal["c3o", "bell"]:
    """C3O files are tab-separated with instance_count first; Bell files are CSV with Nodes first."""
    head = text.split("\n", 1)[0].rstrip("\r")
    if head.split("\t")[0].strip() == "instance_count":
        return "c3o"
    if [c.strip() for c in head.split(",")][:2] == BELL_HEAD:
        return "bell"
    raise HistoryFileError(name, "neither a C3O TSV (instance_count\\tmachine_type...) nor a Bell CSV "
                                 "(Nodes,Runtime) header", 1)


def load_history(path: str | Path, fmt: HistoryFormat = "auto", *, algorithm: str | None = None) -> History:
    """Read a C3O or Bell history file anywhere (the CLI); the algorithm defaults to its stem (grep.tsv -> grep)."""
    try:
        data = read_local(path, what="history file")
    except LocalReadError as exc:
        raise HistoryFileError(path, str(exc)) from None
    return parse_history(data, str(path), fmt, algorithm=algorithm)


def parse_history(data: bytes, name: str, fmt: HistoryFormat = "auto", *, algorithm: str | None = None) -> History:
    """A C3O or Bell history from the bytes of the file `name` (named in every error)."""
    text = _text(data, name)
    if not text.strip():
        raise HistoryFileError(name, "the file is empty")
    kind = detect_format(text, name) if fmt == "auto" else fmt
    algo = algorithm or PurePath(name).stem
    return _load_c3o(text, name, algo) if kind == "c3o" else _load_bell(text, name, algo)


def _text(data: bytes, name: str) -> str:
    try:
        return decode_text(data, "history file")
    except TextProblem as exc:
        raise HistoryFileError(name, exc.message, exc.line) from None


def _rows(text: str, name: str, delimiter: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if not rows or any(c.strip() for c in row):
                rows.append((reader.line_num, row))
            if len(rows) > MAX_RUNS + 1:
                raise HistoryFileError(name, f"more than {MAX_RUNS:,} runs; a history may have at most that many",
                                       reader.line_num)
    except csv.Error as exc:
        raise HistoryFileError(name, f"malformed CSV: {exc}", reader.line_num + 1) from None
    if not rows:
        raise HistoryFileError(name, "the file is empty")
    header = [c.strip() for c in rows[0][1]]
    if len(header) > MAX_COLUMNS:
        raise HistoryFileError(name, f"{len(header)} columns; a history may have at most {MAX_COLUMNS}", 1)
    return header, rows[1:]


def _load_c3o(text: str, path: str, algorithm: str) -> History:
    header, rows = _rows(text, path, "\t")
    if header[: len(C3O_HEAD)] != C3O_HEAD or len(header) <= len(C3O_HEAD) or header[-1] != C3O_TARGET:
        raise HistoryFileError(path, f"C3O header must start with {', '.join(C3O_HEAD)} and end with "
                                     f"{C3O_TARGET}; found {', '.join(header)}", 1)
    params = header[len(C3O_HEAD):-1]
    runs = []
    for line, row in rows:
        if len(row) != len(header):
            raise HistoryFileError(path, f"expected {len(header)} tab-separated columns, found {len(row)}", line)
        cells = dict(zip(header, (c.strip() for c in row), strict=True))
        if not cells["machine_type"]:
            raise HistoryFileError(path, "column machine_type is empty", line)
        for p in params:
            if not cells[p]:
                raise HistoryFileError(path, f"column {p} is empty", line)
        runs.append(Run(
            scaleout=_scaleout(path, line, "instance_count", cells["instance_count"]),
            machine_type=cells["machine_type"],
            slots=_number(path, line, "slots", cells["slots"]),
            memory=_number(path, line, "memory", cells["memory"]),
            data_size_mb=_number(path, line, "data_size_MB", cells["data_size_MB"]),
            params={p: cells[p] for p in params},
            runtime_s=_number(path, line, C3O_TARGET, cells[C3O_TARGET], positive=True),
            line=line,
        ))
    if not runs:
        raise HistoryFileError(path, "no runs in the file")
    return History(algorithm=algorithm, source=str(path), format="c3o", param_names=params, runs=runs)


def _load_bell(text: str, path: str, algorithm: str) -> History:
    header, rows = _rows(text, path, ",")
    if header != BELL_HEAD:
        raise HistoryFileError(path, f"Bell header must be Nodes,Runtime; found {','.join(header)}", 1)
    runs = []
    for line, row in rows:
        if len(row) != 2:
            raise HistoryFileError(path, f"expected 2 comma-separated columns, found {len(row)}", line)
        runtime_ms = _number(path, line, "Runtime", row[1].strip(), positive=True)
        runs.append(Run(scaleout=_scaleout(path, line, "Nodes", row[0].strip()), runtime_s=runtime_ms / 1000.0,
                        line=line))
    if not runs:
        raise HistoryFileError(path, "no runs in the file")
    return History(algorithm=algorithm, source=str(path), format="bell", param_names=[], runs=runs)
