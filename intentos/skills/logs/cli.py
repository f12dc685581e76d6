"""`intentos skills logs ...`: the log skills on the command line, on any file (no sandbox).

    intentos skills logs generate app.log --kind service --lines 20000
    intentos skills logs parse app.log --state parser.json
    intentos skills logs detect app.log --reference normal.log
    intentos skills logs label app.log --window 2024-03-04T08:00:00/2024-03-04T08:05:00
    intentos skills logs quality src/

Each command prints rich tables (or JSON with --json) and shows a progress bar over the bytes read
while it works through a log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from intentos.clikit import JsonOpt, emit, fail, guard
from intentos.skills.logs.ops import (
    QUICK_ENCODER,
    Anomalies,
    AnomalousLine,
    Labelled,
    OddLines,
    Parsed,
    Quality,
    Window,
    check_source_quality,
    find_anomalies,
    label_windows,
    parse_log,
)

app = typer.Typer(help="Log skills: templates, anomalous lines, labels from failure windows, log statement "
                       "quality, synthetic logs with ground truth.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

FormatOpt = typer.Option("auto", "--format", "-f", help="auto | hdfs | bgl | generic | loghub-csv")
TopOpt = typer.Option(20, "--top", "-n", min=1, help="how many rows to list")
EpochsOpt = typer.Option(None, "--epochs", min=1, help="training epochs of the neural model (fewer: faster)")
QuickOpt = typer.Option(False, "--quick", help="a smaller, faster neural model (less accurate)")


# -- plumbing ---------------------------------------------------------------------------------------------


@contextmanager
def _progress(path: Path, what: str) -> Iterator[Callable[[int], None]]:
    """A bar over the bytes of `path` (uncompressed bytes have no known total for a .gz file)."""
    total: int | None = None
    try:
        with open(path, "rb") as fh:
            total = None if fh.read(2) == b"\x1f\x8b" else path.stat().st_size
    except OSError:
        pass  # the reader itself reports a missing or unreadable file
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"{what} {path.name}", total=total)
        yield lambda n: bar.advance(task, n)


def _odd(odd: OddLines) -> None:
    parts = [f"{v} {k.replace('_', ' ')}" for k, v in odd.model_dump().items() if v and k != "unterminated_last_line"]
    if odd.unterminated_last_line:
        parts.append("last line cut off (no newline)")
    if parts:
        out.print(f"[yellow]odd lines:[/yellow] {', '.join(parts)}", highlight=False)


def _lines_table(title: str, rows: list[AnomalousLine]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("line", "score", "type", "reason", "text"):
        table.add_column(col, justify="right" if col in ("line", "score") else "left",
                         overflow="fold", max_width=None if col != "text" else 80)
    for r in rows:
        score = f"{r.score:.3f}" + ("" if r.over_threshold else " ·")
        table.add_row(str(r.line), score, r.type, r.reason, r.text)
    return table


def _overrides(epochs: int | None, quick: bool) -> dict[str, Any]:
    return {**(QUICK_ENCODER if quick else {}), **({"epochs": epochs} if epochs else {})}


# -- commands -----------------------------------------------------------------------------------------------


@app.command()
def parse(
    log: Path = typer.Argument(..., help="log file (plain or .gz, or a LogHub *_structured.csv)"),
    fmt: str = FormatOpt,
    mask: list[str] = typer.Option(None, "--mask", help="use the drain3 baseline masking only these kinds (repeat): "
                                                       "block_ids, ips, paths, ids, hex, numbers"),
    no_mask: bool = typer.Option(False, "--no-mask", help="use the drain3 baseline masking nothing"),
    state: Path | None = typer.Option(None, "--state", help="parser state JSON: continue and save template ids"),
    top: int = TopOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Mine the message templates of a log: counts per template, odd lines (--mask: the drain3 baseline)."""
    masking = [] if no_mask else (mask or None)

    def run() -> Parsed:
        with _progress(log, "parsing") as progress:
            return parse_log(log, fmt=fmt, masking=masking, state_path=state,  # type: ignore[arg-type]
                             state_name=str(state) if state else None, top=top, progress=progress)

    emit(guard(run, as_json), as_json, _render_parsed)


def _render_parsed(r: Parsed) -> None:
    out.print(r.summary, highlight=False)
    table = Table(title=f"top {len(r.top)} of {r.templates} templates", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    table.add_column("template", overflow="fold")
    for t in r.top:
        table.add_row(str(t.id), str(t.count), f"{t.share:.1%}", t.template)
    out.print(table)
    _odd(r.odd)


@app.command()
def detect(
    log: Path = typer.Argument(..., help="log file to search for anomalous lines"),
    reference: Path | None = typer.Option(None, "--reference", "-r", help="log of normal operation to learn from"),
    method: str = typer.Option("a2log", "--method", "-m", help="a2log | supervised | unseen_template | statistics"),
    train_fraction: float = typer.Option(0.3, "--train-fraction", help="without --reference: share of the log "
                                                                       "(from its start) learned from"),
    fmt: str = FormatOpt,
    epochs: int | None = EpochsOpt,
    quick: bool = QuickOpt,
    top: int = TopOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find anomalous lines: top lines with scores, count over the threshold, per-type summary."""

    def run() -> Anomalies:
        with _progress(log, "scoring") as progress:
            return find_anomalies(log, reference=reference, fmt=fmt, method=method,  # type: ignore[arg-type]
                                  train_fraction=train_fraction, top=top, encoder_overrides=_overrides(epochs, quick),
                                  progress=progress)

    emit(guard(run, as_json), as_json, _render_anomalies)


def _render_anomalies(r: Anomalies) -> None:
    out.print(r.summary, highlight=False)
    types = Table(title="anomalous lines per type", title_justify="left")
    for t in r.by_type:
        types.add_column(t, justify="right")
    types.add_row(*(str(v) for v in r.by_type.values()))
    out.print(types)
    out.print(_lines_table(f"top {len(r.top)} lines (threshold {r.threshold:.3f}; · = below it)", r.top))
    _odd(r.odd)


@app.command()
def label(
    log: Path = typer.Argument(..., help="log file with timestamps"),
    window: list[str] = typer.Option(None, "--window", "-w", help="failure window START/END in ISO time (repeat)"),
    windows_file: Path | None = typer.Option(None, "--windows-file", help="JSON list of {start, end} objects"),
    from_truth: bool = typer.Option(False, "--from-truth", help="use the windows in <log>.truth.json (generated "
                                                                "logs)"),
    output: Path | None = typer.Option(None, "--out", "-o", help="labels CSV (default <log>.labels.csv)"),
    method: str = typer.Option("pull", "--method", "-m", help="pull | loglab"),
    fmt: str = FormatOpt,
    epochs: int | None = EpochsOpt,
    quick: bool = QuickOpt,
    top: int = typer.Option(5, "--top", "-n", min=0, help="lines listed per window"),
    as_json: bool = JsonOpt,
) -> None:
    """Label every line anomalous/normal from failure windows (PULL/LogLAB); writes a CSV of labels."""

    def run() -> Labelled:
        windows = _windows(log, window or [], windows_file, from_truth, as_json)
        with _progress(log, "reading") as progress:
            return label_windows(log, windows, output or Path(f"{log}.labels.csv"), fmt=fmt,  # type: ignore[arg-type]
                                 method=method, top=top, encoder_overrides=_overrides(epochs, quick),  # type: ignore[arg-type]
                                 progress=progress)

    emit(guard(run, as_json), as_json, _render_labelled)


def _windows(log: Path, given: list[str], windows_file: Path | None, from_truth: bool,
             as_json: bool) -> list[Window]:
    raw: list[dict[str, Any]] = []
    for text in given:
        start, sep, end = text.partition("/")
        if not sep:
            fail(f"--window {text!r}: expected START/END, e.g. 2024-03-04T08:00:00/2024-03-04T08:05:00", as_json)
        raw.append({"start": start.strip(), "end": end.strip()})
    if windows_file is not None:
        try:
            data = json.loads(windows_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"{windows_file}: not a readable JSON list of windows: {exc}", as_json)
        if not isinstance(data, list):
            fail(f"{windows_file}: expected a JSON list of {{start, end}} objects", as_json)
        raw.extend(data)
    if from_truth:
        from intentos.skills.logs.generator import GroundTruth

        try:
            gt = GroundTruth.load(log)
        except (OSError, ValueError, KeyError) as exc:
            fail(f"{log}: no readable generator truth next to it: {exc}", as_json)
        raw.extend({"start": w.start, "end": w.end} for w in gt.windows)
    if not raw:
        fail("give at least one failure window (--window, --windows-file or --from-truth)", as_json)
    return [Window.model_validate(w) for w in raw]


def _render_labelled(r: Labelled) -> None:
    out.print(r.summary, highlight=False)
    table = Table(title="failure windows", title_justify="left")
    for col in ("start", "end", "lines", "anomalous"):
        table.add_column(col, justify="right" if col in ("lines", "anomalous") else "left")
    for w in r.windows:
        table.add_row(w.start, w.end, str(w.lines), str(w.anomalous))
    out.print(table)
    for w in r.windows:
        if w.top:
            out.print(_lines_table(f"window {w.start}: top {len(w.top)}", w.top))
    _odd(r.odd)


@app.command()
def quality(
    path: Path = typer.Argument(..., help="Python/Java source file or folder"),
    top: int = typer.Option(50, "--top", "-n", min=1, help="how many findings to list"),
    as_json: bool = JsonOpt,
) -> None:
    """Check log statements in source code: levels that do not fit, messages that say too little (QuLog)."""
    emit(guard(lambda: check_source_quality(path, top=top), as_json), as_json, _render_quality)


def _render_quality(r: Quality) -> None:
    out.print(r.summary, highlight=False)
    if r.findings:
        table = Table(title=f"{len(r.findings)} of {r.counts.get('total', 0)} findings", title_justify="left")
        for col in ("where", "problem", "level", "text", "suggestion"):
            table.add_column(col, overflow="fold")
        for f in r.findings:
            table.add_row(f"{f.file}:{f.line}", f.problem, f.level, f.text, f.suggestion)
        out.print(table)
    for s in r.skipped:
        out.print(f"[yellow]skipped[/yellow] {s}", highlight=False)


@app.command()
def generate(
    path: Path = typer.Argument(..., help="log file to write (ground truth goes next to it)"),
    kind: str = typer.Option("service", "--kind", "-k", help="service | hdfs"),
    lines: int = typer.Option(100_000, "--lines", "-l", min=0),
    anomaly_rate: float = typer.Option(0.02, "--anomaly-rate", help="share of anomalous lines"),
    seed: int = typer.Option(0, "--seed"),
    lines_per_second: float = typer.Option(20.0, "--lines-per-second", min=0.001, help="log density; lower spreads "
                                                                                        "the lines over more time"),
    as_json: bool = JsonOpt,
) -> None:
    """Write a synthetic log with known anomalies (template/attribute/contextual) and failure windows."""
    from intentos.skills.logs.generator import generate as write_log

    gt = guard(lambda: write_log(path, kind=kind, lines=lines, anomaly_rate=anomaly_rate,  # type: ignore[arg-type]
                                 seed=seed, lines_per_second=lines_per_second), as_json)
    if as_json:
        data = {"path": str(path), "truth": gt.truth_path, "summary": gt.summary_path, "lines": gt.lines,
                "anomalous_lines": gt.anomalous_lines, "counts": gt.counts, "incidents": len(gt.incidents),
                "windows": len(gt.windows)}
        print(json.dumps(data))  # one line, as `emit` prints the other results
        return
    out.print(f"wrote {gt.lines} lines to {path} ({gt.anomalous_lines} anomalous in {len(gt.incidents)} incidents, "
              f"{len(gt.windows)} failure windows); truth in {gt.truth_path}", highlight=False)
    table = Table(title="anomalous lines per type", title_justify="left")
    for t in gt.counts:
        table.add_column(t, justify="right")
    table.add_row(*(str(v) for v in gt.counts.values()))
    out.print(table)

