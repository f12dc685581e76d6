"""The work of the `logs` skill on real paths, and its results.

`parse_log`, `find_anomalies`, `label_windows` and `check_source_quality` stream the log (or walk the
source tree), report bytes read to an optional progress callback and check an optional cancel event
at least once per chunk of lines (or per file, or per training step). The CLI (`intentos skills logs
...`) and the benchmarks call them directly; `app.py` maps sandbox paths onto them for the agent.

Results are pydantic models a person can read: totals always, long lists capped (`top`), and a
one-line `summary`. torch, scikit-learn and drain3 are imported inside the functions, so loading
the Function Table stays fast.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, model_validator

from intentos.errors import AppError
from intentos.skills import kit
from intentos.skills.logs.records import Format, LogRecord, ReadStats, read_records

if TYPE_CHECKING:
    from intentos.skills.logs.parsing import StateStore

MaskKind = Literal["block_ids", "ips", "paths", "ids", "hex", "numbers"]
Method = Literal["a2log", "supervised", "unseen_template", "statistics"]
LabelMethod = Literal["pull", "loglab"]
Progress = Callable[[int], None]  # called with the number of bytes read since the last call

TEXT_CAP = 300  # characters of a log line shown in a result
CHUNK = 4096  # lines scored and typed together: bounds memory, keeps session context within a chunk
MIN_TRAIN_LINES = 20
MAX_TRAIN_LINES = 50_000  # A2Log subsamples beyond this anyway; the taxonomy statistics stay small
MAX_LABEL_LINES = 1_000_000  # PULL learns on every line at once, so they must fit in memory
PROGRESS_EVERY = 2048  # records between progress callbacks and cancel checks
# A smaller, faster encoder (CLI --quick, tests): still ranks never-seen message types first on generated logs.
# One thread: a model this small gains nothing from more, and busy shared cores make extra threads spin.
QUICK_ENCODER: dict[str, Any] = {"epochs": 8, "steps_per_epoch": 40, "dim": 32, "ff_dim": 64, "layers": 1, "heads": 2,
                                 "batch_size": 32, "max_len": 32, "threads": 1}


# -- results ------------------------------------------------------------------------------------------


class OddLines(BaseModel):
    """Lines that were not plain good log lines; none of them stops the reading."""

    blank: int = 0
    binary_skipped: int = Field(0, description="mostly binary/undecodable lines, dropped")
    garbled: int = Field(0, description="kept, with invalid UTF-8 or control bytes replaced")
    truncated: int = Field(0, description="longer than 64 KiB, cut")
    unmatched: int = Field(0, description="no header of the format; kept as message-only lines")
    unterminated_last_line: bool = False

    @classmethod
    def of(cls, stats: ReadStats) -> OddLines:
        return cls(blank=stats.blank, binary_skipped=stats.binary_skipped, garbled=stats.garbled,
                   truncated=stats.truncated, unmatched=stats.unmatched,
                   unterminated_last_line=stats.unterminated_last_line)

    def total(self) -> int:
        return self.blank + self.binary_skipped + self.garbled + self.truncated + self.unmatched


class TemplateCount(BaseModel):
    id: int
    template: str
    count: int = Field(description="lines of this log with this template")
    share: float = Field(description="count / records")


class Parsed(BaseModel):
    path: str
    format: str
    lines: int = Field(description="physical lines read")
    records: int = Field(description="log records parsed (lines minus blank/binary ones)")
    templates: int = Field(description="distinct templates in this log")
    new_templates: int = Field(description="templates this log added to the parser state")
    top: list[TemplateCount] = Field(description="most frequent templates, capped at `top`")
    odd: OddLines
    state_file: str | None = None
    state_lines: int = Field(0, description="lines the saved parser state has seen in all")
    summary: str


class AnomalousLine(BaseModel):
    line: int
    score: float
    over_threshold: bool
    type: str = Field(description="template | attribute | contextual | unknown (taxonomy of the evidence)")
    reason: str
    template: str | None = Field(description="the normal template it matches; None for a never-seen one")
    text: str


class Anomalies(BaseModel):
    path: str
    method: str
    trained_on: str
    train_lines: int
    scored_lines: int
    threshold: float
    anomalous: int = Field(description="scored lines over the threshold")
    share: float
    by_type: dict[str, int] = Field(description="anomalous lines per anomaly type")
    top: list[AnomalousLine] = Field(description="highest-scoring lines, capped at `top`")
    odd: OddLines
    summary: str


class WindowSummary(BaseModel):
    start: str
    end: str
    lines: int
    anomalous: int
    top: list[AnomalousLine]


class Labelled(BaseModel):
    path: str
    output: str = Field(description="CSV with one row per line: line,timestamp,in_window,anomalous,score")
    method: str
    lines: int
    in_window: int
    anomalous: int
    iterations: int
    threshold: float
    windows: list[WindowSummary]
    odd: OddLines
    summary: str


class QualityIssue(BaseModel):
    file: str
    line: int
    level: str = Field(description="the level written in the code")
    text: str = Field(description="static text of the message, variables as <*>")
    problem: str = Field(description="level (the level does not fit the text) | linguistic (too little said)")
    suggestion: str
    confidence: float


class Quality(BaseModel):
    path: str
    files_scanned: int
    files_skipped: int
    statements_checked: int
    counts: dict[str, int] = Field(description="findings per problem, and total")
    findings: list[QualityIssue] = Field(description="most confident findings, capped at `top`, by file and line")
    skipped: list[str] = Field(description="files that could not be parsed")
    summary: str

# -- streaming helpers ---------------------------------------------------------------------------------


def _tracked(records: Iterable[LogRecord], progress: Progress | None, cancelled: kit.Cancel) -> Iterator[LogRecord]:
    """Pass records through, reporting (approximate) bytes read and stopping when cancelled."""
    pending = 0
    for i, rec in enumerate(records, start=1):
        pending += len(rec.raw) + 1
        if i % PROGRESS_EVERY == 0:
            kit.check(cancelled)
            if progress is not None:
                progress(pending)
            pending = 0
        yield rec
    if progress is not None and pending:
        progress(pending)


def count_lines(path: Path, cancelled: kit.Cancel = None) -> int:
    """Physical lines of a (possibly gzipped) file, by a byte scan: far faster than parsing them."""
    n, last, gz = 0, b"\n", False
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with (gzip.open if gz else open)(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                kit.check(cancelled)
                n += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError, zlib.error) as exc:
        what = "not valid gzip data" if gz else "read failed"
        raise AppError(f"{path}: {what}: {' '.join(str(exc).split()) or type(exc).__name__}") from None
    return n + (last != b"\n")


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_CAP else text[: TEXT_CAP - 1] + "…"


def epoch_seconds(dt: datetime) -> float:
    """A time as epoch seconds; without a zone it is UTC, as the log readers take zone-less times."""
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _parser_settings(masking: list[str] | None) -> Any:
    """The default miner (`tokens`, one configuration), or with masking kinds asked for, the drain3 baseline
    masking those kinds."""
    from intentos.skills.logs.parsing import MaskingSettings, ParserSettings

    if masking is None:
        return ParserSettings()
    kinds, known = set(masking), list(MaskingSettings.model_fields)
    unknown = sorted(kinds - set(known))
    if unknown:
        raise AppError(f"unknown masking kind(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return ParserSettings(algorithm="drain3", masking=MaskingSettings(**{k: k in kinds for k in known}))


# -- parse --------------------------------------------------------------------------------------------


def parse_log(path: Path, *, name: str | None = None, fmt: Format = "auto", masking: list[str] | None = None,
              state_path: Path | None = None, state_name: str | None = None, top: int = 20,
              progress: Progress | None = None, cancelled: kit.Cancel = None,
              store: StateStore | None = None) -> Parsed:
    """Mine the templates of a log, streaming; with a state file, continue (and save) a parser's state."""
    from intentos.skills.logs.parsing import LogParser

    name = name or str(path)
    stats = ReadStats(path=name)
    records = read_records(path, fmt, stats=stats, sessions=False)
    # An existing state keeps its own settings unless masking was asked for explicitly (then they must agree).
    exists = store.exists() if store is not None else bool(state_path and state_path.exists())
    settings = None if state_path is not None and exists and masking is None else _parser_settings(masking)
    parser = LogParser(settings, state_path, store=store)
    before = parser.template_count
    seen: Counter[int] = Counter()
    for p in parser.parse(_tracked(records, progress, cancelled)):
        seen[p.template_id] += 1
    counts: Counter[int] = Counter()  # by the ids templates have at the end (the tokens miner merges some)
    for tid, c in seen.items():
        counts[parser.current_id(tid)] += c
    n = stats.records
    rows = [TemplateCount(id=tid, template=parser.template(tid) or "", count=c, share=round(c / n, 4))
            for tid, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    odd = OddLines.of(stats)
    summary = (f"{n} records ({stats.lines} lines, format {stats.format}) in {len(counts)} templates"
               + (f"; {parser.template_count - before} new in the state {state_name}" if state_path else "")
               + (f"; {odd.total()} odd lines" if odd.total() else "")
               + ("" if n else "; the log is empty"))
    return Parsed(path=name, format=stats.format, lines=stats.lines, records=n, templates=len(counts),
                  new_templates=parser.template_count - before, top=rows, odd=odd, state_file=state_name,
                  state_lines=parser.lines_seen if state_path else 0, summary=summary)


# -- detect ----------------------------------------------------------------------------------------------


class _Scorer:
    """One detection method behind one interface: fit on normal lines, then score chunks with evidence."""

    def __init__(self, method: Method, encoder_overrides: dict[str, Any]) -> None:
        from intentos.skills.logs.taxonomy import TaxonomyModel

        self.method = method
        self.overrides = encoder_overrides
        self.taxonomy = TaxonomyModel()
        self.a2log: Any = None
        self.supervised: Any = None
        self.threshold = 0.5

    def fit(self, messages: list[str], sessions: list[str | None], labels: list[int | None],
            cancelled: kit.Cancel = None) -> None:
        # The evidence statistics learn normal behaviour: lines labelled anomalous are left out of them.
        normal = [i for i, label in enumerate(labels) if label != 1]
        self.taxonomy.fit([messages[i] for i in normal], [sessions[i] for i in normal])
        if self.method == "supervised":
            from intentos.skills.logs.supervised import SupervisedDetector

            if any(label is None for label in labels):
                raise ValueError("method supervised learns from labelled lines, and these lines have no labels "
                                 "(a BGL log or a LogHub structured CSV with a Label column has them)")
            self.supervised = SupervisedDetector().fit(messages, [int(label or 0) for label in labels])
            self.threshold = self.supervised.threshold
        elif self.method == "a2log":
            from intentos.skills.logs.a2log import A2Log, A2LogSettings
            from intentos.skills.logs.model import EncoderSettings

            settings = A2LogSettings(encoder=EncoderSettings(**self.overrides))
            self.a2log = A2Log(settings).fit(messages, cancelled=cancelled)
            self.threshold = float(self.a2log.threshold)

    def score(self, messages: list[str], sessions: list[str | None]) -> tuple[list[float], list[Any]]:
        evidence = self.taxonomy.explain(messages, sessions)
        if self.method == "a2log":
            scores = [float(s) for s in self.a2log.score(messages)]
        elif self.method == "supervised":
            scores = [float(s) for s in self.supervised.score(messages)]
        elif self.method == "unseen_template":
            scores = [1.0 if ev.template is None else 0.0 for ev in evidence]
        else:
            scores = [float(ev.rare_template) + len(ev.attributes) + len(ev.context) for ev in evidence]
        return scores, evidence


def _reason(ev: Any) -> str:
    if ev.template is None:
        return "template never seen in normal lines"
    if ev.rare_template:
        return "template rare in normal lines"
    parts = [*ev.attributes, *dict.fromkeys(ev.context)]
    return "; ".join(parts) if parts else "no specific evidence (scored high by the model)"


def _peek(it: Iterator[LogRecord]) -> tuple[LogRecord | None, Iterator[LogRecord]]:
    first = next(it, None)
    return first, (chain([first], it) if first is not None else it)


def find_anomalies(path: Path, *, name: str | None = None, reference: Path | None = None,
                   reference_name: str | None = None, fmt: Format = "auto", method: Method = "a2log",
                   train_fraction: float = 0.3, max_train_lines: int = MAX_TRAIN_LINES, top: int = 20,
                   encoder_overrides: dict[str, Any] | None = None, progress: Progress | None = None,
                   cancelled: kit.Cancel = None) -> Anomalies:
    """Learn normal behaviour (a reference log, or the first part of the log), then stream-score the log."""
    from intentos.skills.logs.taxonomy import AnomalyType

    name = name or str(path)
    stats = ReadStats(path=name)
    records = iter(_tracked(read_records(path, fmt, stats=stats), progress, cancelled))
    if reference is not None:
        reading = _tracked(read_records(reference, fmt), None, cancelled)
        train = [r for _, r in zip(range(max_train_lines), reading, strict=False)]
        trained_on = f"{len(train)} lines of {reference_name or reference}"
    else:
        n_train = min(max_train_lines, max(MIN_TRAIN_LINES, int(count_lines(path, cancelled) * train_fraction)))
        train = []
        for rec in records:
            if rec.lineno > n_train:
                records = chain([rec], records)
                break
            train.append(rec)
        trained_on = f"the first {len(train)} lines of {name}"
    if len(train) < MIN_TRAIN_LINES:
        where = reference_name or name
        raise AppError(f"{where} has {len(train)} log lines; at least {MIN_TRAIN_LINES} normal lines are needed "
                       "to learn from (give a longer log or a reference log of normal operation)")
    first, records = _peek(records)
    if first is None:
        if reference is not None:
            raise AppError(f"{name} has no log lines to score")
        raise AppError(f"{name}: no lines left to score after the {len(train)} learned from "
                       "(give a reference log, or a smaller train_fraction)")

    scorer = _Scorer(method, encoder_overrides or {})
    try:
        scorer.fit([r.message for r in train], [r.session for r in train], [r.label for r in train], cancelled)
    except ValueError as exc:
        raise AppError(f"cannot learn from {trained_on}: {exc}") from exc
    n_trained = len(train)
    del train
    by_type: Counter[str] = Counter()
    heap: list[tuple[float, int, AnomalousLine]] = []
    scored = flagged = 0
    while chunk := [r for _, r in zip(range(CHUNK), records, strict=False)]:
        kit.check(cancelled)  # reading checks too, but scoring a chunk is the slower part
        scores, evidence = scorer.score([r.message for r in chunk], [r.session for r in chunk])
        for rec, score, ev in zip(chunk, scores, evidence, strict=True):
            over = score > scorer.threshold
            kind = ev.kind.value
            if over:
                flagged += 1
                by_type[kind] += 1
            key = (score, -rec.lineno)
            if len(heap) < top or key > heap[0][:2]:
                line = AnomalousLine(line=rec.lineno, score=round(score, 4), over_threshold=over, type=kind,
                                     reason=_reason(ev), template=ev.template, text=_clip(rec.raw))
                item = (score, -rec.lineno, line)
                heapq.heappush(heap, item) if len(heap) < top else heapq.heapreplace(heap, item)
        scored += len(chunk)
    top_lines = [item[2] for item in sorted(heap, key=lambda t: (-t[0], -t[1]))]
    types = {t.value: by_type.get(t.value, 0) for t in AnomalyType}
    share = round(flagged / scored, 4) if scored else 0.0
    shown = ", ".join(f"{v} {k}" for k, v in types.items() if v)
    summary = (f"{flagged} of {scored} lines anomalous ({share:.1%}) by {method}, learned from {trained_on}"
               + (f": {shown}" if shown else ""))
    return Anomalies(path=name, method=method, trained_on=trained_on, train_lines=n_trained,
                     scored_lines=scored, threshold=round(float(scorer.threshold), 4), anomalous=flagged,
                     share=share, by_type=types, top=top_lines, odd=OddLines.of(stats), summary=summary)


# -- label from failure windows ----------------------------------------------------------------------------


class Window(BaseModel):
    start: datetime = Field(description="ISO time; without a zone, read like the log's zone-less times (UTC)")
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if epoch_seconds(self.end) < epoch_seconds(self.start):
            raise ValueError(f"window ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})")
        return self


def label_windows(path: Path, windows: list[Window], out: Path, *, name: str | None = None,
                  out_name: str | None = None, fmt: Format = "auto", method: LabelMethod = "pull", top: int = 5,
                  encoder_overrides: dict[str, Any] | None = None, max_lines: int = MAX_LABEL_LINES,
                  progress: Progress | None = None, cancelled: kit.Cancel = None,
                  write: Callable[[bytes], None] | None = None) -> Labelled:
    """Label every line anomalous/normal from estimated failure windows (PULL or LogLAB); write a CSV."""
    import numpy as np

    from intentos.skills.logs.model import EncoderSettings
    from intentos.skills.logs.pull import PullSettings, label_from_failure_windows

    name = name or str(path)
    stats = ReadStats(path=name)
    linenos: list[int] = []
    messages: list[str] = []
    stamps: list[float | None] = []
    for rec in _tracked(read_records(path, fmt, stats=stats), progress, cancelled):
        if len(messages) == max_lines:
            raise AppError(f"{name} has more than {max_lines} lines; window labelling learns on all lines at once, "
                           "so cut the log to the period around the windows first")
        linenos.append(rec.lineno)
        messages.append(rec.message)
        stamps.append(rec.timestamp)
    if not messages:
        raise AppError(f"{name} has no log lines to label")
    known = [t for t in stamps if t is not None]
    if not known:
        raise AppError(f"{name}: no line has a timestamp this reader understands (format {stats.format}), "
                       "so lines cannot be placed in time windows")
    # A line without a time (a stack-trace continuation) belongs to the last timed line before it.
    last = known[0]
    filled = []
    for t in stamps:
        last = t if t is not None else last
        filled.append(last)
    ts = np.asarray(filled, dtype=np.float64)
    spans = [(epoch_seconds(w.start), epoch_seconds(w.end)) for w in windows]
    overrides = {"epochs": 20, **(encoder_overrides or {})}
    settings = PullSettings(encoder=EncoderSettings(**overrides))
    try:
        result = label_from_failure_windows(ts, messages, spans, method, settings, cancelled=cancelled)
    except ValueError as exc:
        raise AppError(f"{name}: {exc}") from exc

    buffer = io.StringIO(newline="")
    _write_labels(buffer, linenos, ts, result)
    data = buffer.getvalue().encode("utf-8")
    if write is not None:  # the app: the bytes go through its Sandbox
        write(data)
    else:
        kit.write_local(out, data)
    rows = []
    for (start, end), w in zip(spans, windows, strict=True):
        inside = (ts >= start) & (ts <= end)
        hits = np.flatnonzero(inside & result.labels)
        best = hits[np.argsort(-result.scores[hits], kind="stable")[:top]]
        rows.append(WindowSummary(
            start=w.start.isoformat(), end=w.end.isoformat(), lines=int(inside.sum()), anomalous=len(hits),
            top=[AnomalousLine(line=linenos[i], score=round(float(result.scores[i]), 4), over_threshold=True,
                               type="unknown", reason=f"flagged by {method} inside the window", template=None,
                               text=_clip(messages[i])) for i in best]))
    n_in, n_bad = int(result.in_window.sum()), int(result.labels.sum())
    summary = (f"{n_bad} of {n_in} lines inside {len(windows)} window(s) labelled anomalous by {method} "
               f"({len(messages)} lines in all; labels in {out_name or out})")
    return Labelled(path=name, output=out_name or str(out), method=method, lines=len(messages), in_window=n_in,
                    anomalous=n_bad, iterations=result.iterations,
                    threshold=round(float(result.threshold), 4) if np.isfinite(result.threshold) else -1.0,
                    windows=rows, odd=OddLines.of(stats), summary=summary)


def _write_labels(fh: Any, linenos: list[int], ts: Any, result: Any) -> None:
    writer = csv.writer(fh)
    writer.writerow(["line", "timestamp", "in_window", "anomalous", "score"])
    for i, lineno in enumerate(linenos):
        writer.writerow([lineno, _iso(float(ts[i])), int(result.in_window[i]), int(result.labels[i]),
                         f"{float(result.scores[i]):.4f}"])


# -- quality --------------------------------------------------------------------------------------------


def check_source_quality(path: Path, *, name: str | None = None, top: int = 50,
                         relative: Callable[[str], str] | None = None,
                         exclude: frozenset[str] = frozenset(), files: list[Path] | None = None,
                         cancelled: kit.Cancel = None) -> Quality:
    """QuLog-style check of the log statements in Python/Java source under `path` (minus `exclude`d folders in it)."""
    from intentos.skills.logs.quality import check_quality

    name = name or str(path)
    if not path.exists():
        raise AppError(f"{name} does not exist")
    rel = relative or (lambda p: p)
    if files is not None:  # the caller chose the files (the app: found through its Sandbox)
        roots = files
    else:
        roots = [c for c in sorted(path.iterdir()) if c.name not in exclude] if path.is_dir() and exclude else [path]
    report = check_quality(roots, cancelled=cancelled)
    chosen = sorted(report.findings, key=lambda f: -f.confidence)[:top]
    findings = [QualityIssue(file=rel(f.file), line=f.line, level=f.level, text=_clip(f.text), problem=f.problem,
                             suggestion=f.suggestion, confidence=round(float(f.confidence), 3))
                for f in sorted(chosen, key=lambda f: (f.file, f.line, f.problem))]
    counts = report.counts
    if report.files_scanned == 0:
        summary = f"no Python or Java source files under {name}"
    else:
        summary = (f"{report.statements_checked} log statements in {report.files_scanned} files: "
                   f"{counts['level']} with a doubtful level, {counts['linguistic']} saying too little"
                   + (f"; {report.files_skipped} files could not be parsed" if report.files_skipped else ""))
    return Quality(path=name, files_scanned=report.files_scanned, files_skipped=report.files_skipped,
                   statements_checked=report.statements_checked, counts=counts, findings=findings,
                   skipped=[rel(s.split(": ", 1)[0]) + ": " + s.split(": ", 1)[-1] for s in report.skipped],
                   summary=summary)
