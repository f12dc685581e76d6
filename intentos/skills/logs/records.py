"""Streaming log readers: one `LogRecord` per line, never the whole file in memory.

    for rec in read_records("HDFS.log"):            # format detected from the first lines
        ...
    reader = LogReader("app.log", fmt="generic")   # the same, with counts of what was odd
    records = list(reader); print(reader.stats)

Formats: "hdfs" (LogHub HDFS), "bgl" (LogHub BGL, with its label column), "generic" (ISO-8601,
syslog, Spark, Android and Apache style headers; anything else is kept as a message-only record)
and "loghub-csv" (LogHub's `*_structured.csv` with EventId/EventTemplate ground truth).
Gzip files are read transparently. Timestamps without a zone are taken as UTC; headers without a
year (syslog, Android) use `year`.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, AnyStr, Literal

from intentos.errors import AppError

Format = Literal["auto", "hdfs", "bgl", "generic", "loghub-csv"]
FORMATS: tuple[str, ...] = ("auto", "hdfs", "bgl", "generic", "loghub-csv")
DEFAULT_MAX_LINE_BYTES = 64 * 1024
SNIFF_BYTES = 64 * 1024
BLOCK_BYTES = 1 << 20
SNIFF_LINES = 50
# What reading a damaged or fake .gz raises: BadGzipFile is an OSError, zlib.error is not, EOFError a cut file.
_READ_ERRORS = (OSError, EOFError, zlib.error)


class LogReadError(AppError):
    """A log file is missing, unreadable, binary or not in the format asked for; names the file."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(slots=True)
class LogRecord:
    """One log line. `message` is the free text after the header; `raw` the whole (decoded) line."""

    lineno: int
    message: str
    raw: str
    timestamp: float | None = None  # epoch seconds, UTC
    level: str | None = None
    component: str | None = None
    session: str | None = None  # HDFS block id, request id, BGL node
    label: int | None = None  # ground truth where the format has it: 1 anomalous, 0 normal
    alert: str | None = None  # BGL alert tag (e.g. KERNDTLB); None for normal lines
    event_id: str | None = None  # LogHub structured CSV ground truth
    event_template: str | None = None
    matched: bool = True  # False: the line fit no header of the format, message == raw
    truncated: bool = False  # the line was longer than max_line_bytes and was cut
    garbled: bool = False  # NUL bytes, control characters or invalid UTF-8 were replaced


@dataclass
class ReadStats:
    """What a reader met besides good lines. `lines` counts physical lines (CSV: data rows)."""

    path: str
    format: str = ""
    lines: int = 0
    records: int = 0
    blank: int = 0
    binary_skipped: int = 0  # lines that were mostly NULs/control bytes/undecodable: dropped
    garbled: int = 0  # kept, with bad bytes replaced
    truncated: int = 0
    unmatched: int = 0  # kept as message-only records
    unterminated_last_line: bool = False


# --- small helpers -------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Session ids, by kind. One alternation over all of them cost ~6 µs a line (its UUID branch starts
# at every position); each kind alone is searched only when a cheap substring test says it can match.
_BLOCK_ID = re.compile(r"blk_-?\d+", re.IGNORECASE)
_REQUEST_ID = re.compile(r"request_id=([\w-]+)|\breq(?:uest)?[-_]?id[=:]\s*([\w-]+)", re.IGNORECASE)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_MONTHS = {m: i for i, m in enumerate(("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec").split(), start=1)}


def find_session(message: str) -> str | None:
    """The block id / request id / UUID a message is about, if any (the leftmost one wins)."""
    low = message.lower()
    first = _BLOCK_ID.search(message) if "blk_" in low else None
    for needed, pattern in (("req" in low, _REQUEST_ID), (message.count("-") >= 4, _UUID)):
        if needed and (m := pattern.search(message)) and (first is None or m.start() < first.start()):
            first = m
    if first is None:
        return None
    return first.group(first.lastindex or 0)  # a request id is its value group; the others the whole match


@lru_cache(maxsize=4096)
def _day_epoch(year: int, month: int, day: int) -> float:
    # Cached: logs have few distinct days, and datetime arithmetic per line is the slow part.
    return float(calendar.timegm((year, month, day, 0, 0, 0)))


def _hms(h: str, m: str, s: str) -> int:
    return int(h) * 3600 + int(m) * 60 + int(s)


def _iso_epoch(text: str, tz: str | None) -> float | None:
    try:
        dt = datetime.fromisoformat(text.replace(",", ".") + (tz.replace("Z", "+00:00") if tz else ""))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _clean_line(data: bytes) -> tuple[str, bool, bool]:
    """Decode one line: (text, garbled, mostly_binary)."""
    garbled = False
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
        garbled = True
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        garbled = True
    text = text.rstrip("\r\n")
    if garbled or _CONTROL.search(text):
        bad = text.count("\ufffd") + len(_CONTROL.findall(text))
        # Why 0.3: real log text has almost no control bytes; a third means a binary blob.
        if text and bad / len(text) > 0.3:
            return "", True, True
        text = _CONTROL.sub(" ", text)
        garbled = True
    return text, garbled, False


def _whole_lines(block: AnyStr, newline: AnyStr) -> list[AnyStr]:
    """The lines of a block that ends with a newline (or at the end of the file), without it.
    Not splitlines: that also splits at \r, \x0b, \x0c and \x1c-\x1e, which belong to a line here."""
    lines = block.split(newline)
    if not lines[-1]:
        lines.pop()
    return lines


def _clean_block(block: bytes) -> str | None:
    """A block of whole lines as text, when it is all valid UTF-8 without control bytes; else None."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return None if _CONTROL.search(text) else text


# --- line formats ----------------------------------------------------------------------------

_HDFS = re.compile(r"^(\d{6} \d{6}) \d+ ([A-Z]+) (\S+?): (.*)$")
_BGL = re.compile(
    r"^(\S+) (\d+) (\S+) (\S+) \d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d\.(\d+) (\S+) (\S+) (\S+) (\S+)(?: (.*))?$"
)
_LEVELS = r"(?i:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|CRIT|FATAL|SEVERE|ALERT|EMERG)"
_ISO = re.compile(
    r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?)(Z|[+-]\d\d:?\d\d)?,?\s+(?:-\s+)?"
    rf"(?:({_LEVELS})\b\s*)?(?:-\s+)?(?:\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]\s*)?"
    r"(?:-\s+|(?:([\w.$@/()-]+):\s+)?)(.*)$"
)
_SYSLOG = re.compile(
    r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+(\d{1,2}) (\d\d):(\d\d):(\d\d) (\S+) "
    r"([^\s:\[]+(?:\([^)]*\))?)(?:\[\d+\])?:\s?(.*)$"
)
_SLASH = re.compile(r"^(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) ([A-Z]+) (\S+?): (.*)$")
_ANDROID = re.compile(r"^(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)\s+\d+\s+\d+ ([VDIWEF]) (.+?)\s*: (.*)$")
_APACHE = re.compile(r"^\[\w{3} (\w{3}) (\d\d) (\d\d):(\d\d):(\d\d) (\d{4})\] \[(\w+)\] (.*)$")
_ANDROID_LEVELS = {"V": "VERBOSE", "D": "DEBUG", "I": "INFO", "W": "WARN", "E": "ERROR", "F": "FATAL"}


def _parse_hdfs(lineno: int, text: str, year: int) -> LogRecord | None:
    m = _HDFS.match(text)
    if m is None:
        return None
    stamp, level, comp, msg = m.groups()
    return LogRecord(lineno, msg, text, _yymmdd_epoch(stamp), level, comp)


@lru_cache(maxsize=4096)
def _yymmdd_epoch(stamp: str) -> float | None:
    # Cached: consecutive lines share their second, and int() six times a line is most of a header's cost.
    mo = int(stamp[2:4])
    if not 1 <= mo <= 12:
        return None
    return _day_epoch(2000 + int(stamp[:2]), mo, int(stamp[4:6])) + _hms(stamp[7:9], stamp[9:11], stamp[11:13])


def _parse_bgl(lineno: int, text: str, year: int) -> LogRecord | None:
    m = _BGL.match(text)
    if m is None:
        return None
    tag, epoch, _date, node, micros, _node2, _typ, comp, level, msg = m.groups()
    normal = tag == "-"
    ts = int(epoch) + int(micros) / 10 ** len(micros)
    return LogRecord(
        lineno, msg or "", text, ts, level, comp, node, label=0 if normal else 1, alert=None if normal else tag
    )


def _generic_iso(lineno: int, text: str, year: int) -> LogRecord | None:
    m = _ISO.match(text)
    if m is None:
        return None
    ts_text, tz, level, comp, msg = m.groups()
    return LogRecord(lineno, msg, text, _iso_epoch(ts_text, tz), level and level.upper(), comp)


def _generic_syslog(lineno: int, text: str, year: int) -> LogRecord | None:
    m = _SYSLOG.match(text)
    if m is None:
        return None
    mon, day, h, mi, s, _host, comp, msg = m.groups()
    ts = _day_epoch(year, _MONTHS[mon], int(day)) + _hms(h, mi, s) if int(day) <= 31 else None
    return LogRecord(lineno, msg, text, ts, None, comp)


def _generic_slash(lineno: int, text: str, year: int) -> LogRecord | None:
    m = _SLASH.match(text)
    if m is None:
        return None
    yy, mo, dd, h, mi, s, level, comp, msg = m.groups()
    ts = _day_epoch(2000 + int(yy), int(mo), int(dd)) + _hms(h, mi, s) if 1 <= int(mo) <= 12 else None
    return LogRecord(lineno, msg, text, ts, level, comp)


def _generic_android(lineno: int, text: str, year: int) -> LogRecord | None:
    m = _ANDROID.match(text)
    if m is None:
        return None
    mo, dd, h, mi, s, frac, lv, comp, msg = m.groups()
    ts = _day_epoch(year, int(mo), int(dd)) + _hms(h, mi, s) + float(frac) if 1 <= int(mo) <= 12 else None
    return LogRecord(lineno, msg, text, ts, _ANDROID_LEVELS[lv], comp)


def _generic_apache(lineno: int, text: str, year: int) -> LogRecord | None:
    m = _APACHE.match(text)
    if m is None or m.group(1) not in _MONTHS:
        return None
    mon, dd, h, mi, s, yyyy, level, msg = m.groups()
    ts = _day_epoch(int(yyyy), _MONTHS[mon], int(dd)) + _hms(h, mi, s)
    return LogRecord(lineno, msg, text, ts, level.upper(), None)


_GENERIC = [_generic_iso, _generic_syslog, _generic_slash, _generic_android, _generic_apache]


_LineParser = Callable[[int, str, int], "LogRecord | None"]  # (lineno, text, year) -> a record, None: no match


class _GenericParser:
    """Tries each header shape, the last one that matched first (a file rarely mixes them)."""

    def __init__(self) -> None:
        self.order = list(_GENERIC)

    def __call__(self, lineno: int, text: str, year: int) -> LogRecord | None:
        for i, parse in enumerate(self.order):
            rec = parse(lineno, text, year)
            if rec is not None:
                if i:
                    self.order.insert(0, self.order.pop(i))
                return rec
        return None


# --- opening and sniffing ------------------------------------------------------------------


def _open_binary(path: Path) -> IO[bytes]:
    if not path.exists():
        raise LogReadError(path, "no such log file")
    if not path.is_file():
        raise LogReadError(path, "not a regular file")
    try:
        fh: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller
        if fh.read(2) == b"\x1f\x8b":
            fh.close()
            fh = gzip.open(path, "rb")
        else:
            fh.seek(0)
        return fh
    except _READ_ERRORS as exc:
        raise LogReadError(path, f"cannot read: {_why(exc)}") from None


def _why(exc: BaseException, fh: object = None) -> str:
    """One line saying why reading failed; a .gz that does not decompress says so."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(fh, gzip.GzipFile) or isinstance(exc, (gzip.BadGzipFile, zlib.error, EOFError)):
        return f"not valid gzip data ({text})"
    return text


def _sniff_lines(path: Path) -> list[str]:
    """The first non-empty lines, decoded; raises when the head of the file is binary or not UTF-8."""
    with _open_binary(path) as fh:
        try:
            head = fh.read(SNIFF_BYTES)
        except _READ_ERRORS as exc:
            raise LogReadError(path, f"cannot read: {_why(exc, fh)}") from None
    if not head:
        return []
    text = head.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") + len(_CONTROL.findall(text))
    if bad / len(text) > 0.5:
        raise LogReadError(path, "looks like binary data, not a text log")
    raw_lines = [b for b in (head.split(b"\n")[:-1] or [head]) if b.strip()]
    invalid = sum(1 for b in raw_lines if not _is_utf8(b))
    # A log with a few garbled lines is read (they are counted); one whose lines are mostly not UTF-8 is
    # in another encoding, and every line would come out garbled.
    if invalid and invalid * 2 > len(raw_lines):
        raise LogReadError(path, f"not UTF-8 text ({invalid} of the first {len(raw_lines)} lines are not valid "
                                 "UTF-8); convert it first, e.g. iconv -f latin1 -t utf-8")
    lines = [ln for ln in (_clean_line(b)[0] for b in raw_lines) if ln.strip()]
    return lines[:SNIFF_LINES]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def detect_format(path: str | Path) -> str:
    """Guess the format from the first lines: the line format matching most of them wins."""
    return _detect(_sniff_lines(Path(path)))


def _detect(lines: list[str]) -> str:
    if lines and lines[0].startswith("LineId,") and "Content" in lines[0].split(","):
        return "loghub-csv"
    generic = _GenericParser()
    scores = {
        "hdfs": sum(_HDFS.match(ln) is not None for ln in lines),
        "bgl": sum(_BGL.match(ln) is not None for ln in lines),
        "generic": sum(generic(0, ln, 2000) is not None for ln in lines),
    }
    best = max(scores, key=lambda k: scores[k])  # ties: the more specific formats come first
    return best if scores[best] else "generic"


# --- the reader ----------------------------------------------------------------------------


class LogReader:
    """Iterate a log file as LogRecords, streaming; `stats` fills in as lines are read."""

    def __init__(
        self,
        path: str | Path,
        fmt: Format = "auto",
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        year: int | None = None,
        sessions: bool = True,
    ) -> None:
        if fmt not in FORMATS:
            raise LogReadError(path, f"unknown log format {fmt!r}; one of {', '.join(FORMATS)}")
        self.path = Path(path)
        self.fmt = fmt
        self.max_line_bytes = max_line_bytes
        self.year = year or datetime.now(UTC).year
        # Finding a message's session id is a search a line; mining templates alone does not need it.
        self.sessions = sessions
        self.stats = ReadStats(path=str(path))
        self._head: list[str] | None = None

    def check(self) -> list[str]:
        """Read the head once: a missing, binary, non-UTF-8 or undecompressable file fails here, named."""
        if self._head is None:
            self._head = _sniff_lines(self.path)
        return self._head

    @property
    def format(self) -> str:
        if self.fmt == "auto":
            self.fmt = _detect(self.check())  # type: ignore[assignment]
        return self.fmt

    def __iter__(self) -> Iterator[LogRecord]:
        self.check()
        fmt = self.format
        self.stats.format = fmt
        if fmt == "loghub-csv":
            yield from self._csv_records()
        else:
            parser: _LineParser = {"hdfs": _parse_hdfs, "bgl": _parse_bgl}.get(fmt) or _GenericParser()
            yield from self._line_records(parser)

    # Lines ------------------------------------------------------------------------------
    # The file is read in blocks of whole lines. A block that decodes as UTF-8 and holds no control
    # byte (nearly every block of a real log) is split and parsed as text directly; any other block
    # goes line by line through _clean_line. Memory stays bounded: a line longer than max_line_bytes
    # is cut where it is read, and the rest of it is skipped without being kept.

    def _blocks(self, fh: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
        """(whole lines, False) blocks, or (one line cut at the limit, True)."""
        limit = self.max_line_bytes
        rest = b""
        while data := fh.read(BLOCK_BYTES):
            buf = rest + data if rest else data
            end = buf.rfind(b"\n") + 1
            if end:
                yield buf[:end], False
            rest = buf[end:]
            if len(rest) > limit:  # a line longer than the limit, not ended yet: cut it, skip to its end
                yield rest[:limit], True
                rest = self._skip_line(fh)
        if rest:  # end of file without a newline: a cut-off last line
            self.stats.unterminated_last_line = True
            yield rest, False

    @staticmethod
    def _skip_line(fh: IO[bytes]) -> bytes:
        """Read past the end of the current line; what follows it in the last read."""
        while data := fh.read(BLOCK_BYTES):
            end = data.find(b"\n") + 1
            if end:
                return data[end:]
        return b""

    def _line_records(self, parse: _LineParser) -> Iterator[LogRecord]:
        stats, year, limit = self.stats, self.year, self.max_line_bytes
        lineno = 0
        with _open_binary(self.path) as fh:
            try:
                for block, cut in self._blocks(fh):
                    text = None if cut else _clean_block(block)
                    if text is None:  # bad bytes somewhere in the block, or a cut line: line by line
                        for data in [block] if cut else _whole_lines(block, b"\n"):
                            lineno += 1
                            long = len(data) > limit and len(data.rstrip(b"\r\n")) > limit
                            rec = self._dirty_line(lineno, data[:limit] if long else data, cut or long, parse, year)
                            if rec is not None:
                                yield rec
                        continue
                    for line in _whole_lines(text, "\n"):
                        lineno += 1
                        if len(line) * 4 > limit and len(line.encode()) > limit:  # can't be cut while reading
                            rec = self._dirty_line(lineno, line.encode()[:limit], True, parse, year)
                        elif not line or line.isspace():
                            stats.blank += 1
                            continue
                        else:
                            rec = self._record(lineno, line, parse, year)
                        if rec is not None:
                            yield rec
            except _READ_ERRORS as exc:
                raise LogReadError(self.path, f"read failed: {_why(exc, fh)}", lineno + 1) from None
            finally:
                stats.lines = lineno

    def _record(self, lineno: int, text: str, parse: _LineParser, year: int) -> LogRecord:
        """A line with text: its header parsed (message-only when no header fits), its session found, counted."""
        rec = parse(lineno, text, year)
        if rec is None:
            self.stats.unmatched += 1
            rec = LogRecord(lineno, text, text, matched=False)
        if self.sessions and rec.session is None:
            rec.session = find_session(rec.message)
        self.stats.records += 1
        return rec

    def _dirty_line(self, lineno: int, data: bytes, truncated: bool, parse: _LineParser, year: int) -> LogRecord | None:
        stats = self.stats
        text, garbled, binary = _clean_line(data)
        if binary:
            stats.binary_skipped += 1
            return None
        if not text.strip():
            if garbled:
                stats.binary_skipped += 1  # e.g. a run of NULs left by a crash
            else:
                stats.blank += 1
            return None
        rec = self._record(lineno, text, parse, year)
        if truncated:
            stats.truncated += 1
            rec.truncated = True
        if garbled:
            stats.garbled += 1
            rec.garbled = True
        return rec

    # LogHub structured CSV --------------------------------------------------------------

    def _csv_records(self) -> Iterator[LogRecord]:
        stats = self.stats
        with _open_binary(self.path) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
            rows = csv.reader(text)
            header = self._csv_header(rows)
            col = {name: i for i, name in enumerate(header)}
            stamp = _CsvTimestamp(col, self.year)
            while True:
                try:
                    row = next(rows)
                except StopIteration:
                    return
                except csv.Error:  # e.g. a field over csv.field_size_limit(): drop the row
                    stats.lines += 1
                    stats.binary_skipped += 1
                    continue
                except _READ_ERRORS as exc:
                    raise LogReadError(self.path, f"read failed: {_why(exc, fh)}", stats.lines + 1) from None
                stats.lines += 1
                rec = self._csv_row(row, col, stamp)
                if rec is not None:
                    stats.records += 1
                    yield rec

    def _csv_header(self, rows: Iterator[list[str]]) -> list[str]:
        try:
            header = next(rows, None)
        except csv.Error as exc:
            raise LogReadError(self.path, f"not a LogHub structured CSV: {exc}", 1) from exc
        except _READ_ERRORS as exc:
            raise LogReadError(self.path, f"read failed: {_why(exc)}", 1) from None
        if not header or "Content" not in header:
            raise LogReadError(self.path, "not a LogHub structured CSV: no Content column in the header", 1)
        return header

    def _csv_row(self, row: list[str], col: dict[str, int], stamp: _CsvTimestamp) -> LogRecord | None:
        def get(name: str) -> str | None:
            i = col.get(name)
            return row[i] if i is not None and i < len(row) else None

        content = get("Content")
        if content is None:
            self.stats.unmatched += 1
            return None
        if _CONTROL.search(content):
            content = _CONTROL.sub(" ", content)
            self.stats.garbled += 1
        line_id = get("LineId")
        lineno = int(line_id) if line_id and line_id.isdigit() else self.stats.lines
        tag = get("Label")
        label = None if tag is None else int(tag != "-")
        return LogRecord(
            lineno,
            content,
            content,
            stamp(row),
            get("Level"),
            get("Component"),
            get("Node") if "Label" in col and get("Node") else find_session(content) if self.sessions else None,
            label=label,
            alert=tag if label else None,
            event_id=get("EventId"),
            event_template=get("EventTemplate"),
        )


class _CsvTimestamp:
    """Best-effort epoch seconds from LogHub's varied Date/Time/Month/Day/Timestamp columns."""

    FORMATS = (
        "%y%m%d %H%M%S",
        "%Y-%m-%d %H:%M:%S.%f",
        "%Y-%m-%d %H:%M:%S",
        "%y/%m/%d %H:%M:%S",
        "%a %b %d %H:%M:%S %Y",
        "%b %d %H:%M:%S",
        "%m-%d %H:%M:%S.%f",
        "%m.%d %H:%M:%S",
    )

    def __init__(self, col: dict[str, int], year: int) -> None:
        self.parts = [col[n] for n in ("Month", "Date", "Day", "Time") if n in col]
        self.epoch_col = col.get("Timestamp")
        self.year = year
        self.last: str | None = None

    def __call__(self, row: list[str]) -> float | None:
        try:
            if self.epoch_col is not None and row[self.epoch_col].isdigit():
                return float(row[self.epoch_col])
            text = " ".join(row[i] for i in self.parts).replace(",", ".")
        except IndexError:
            return None
        if text.isdigit() and len(text) >= 9:  # HPC: the Time column is epoch seconds
            return float(text)
        for fmt in ([self.last] if self.last else []) + list(self.FORMATS):
            try:
                dt = datetime.strptime(text, fmt)
            except ValueError:
                continue
            self.last = fmt
            if "%Y" not in fmt and "%y" not in fmt:
                dt = dt.replace(year=self.year)
            return dt.replace(tzinfo=UTC).timestamp()
        return None


def read_records(
    path: str | Path,
    fmt: Format = "auto",
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    year: int | None = None,
    stats: ReadStats | None = None,
    sessions: bool = True,
) -> Iterator[LogRecord]:
    """Stream LogRecords from `path`. Pass a ReadStats to get the counts of odd lines filled in;
    sessions=False leaves `session` None where it would be read off the message."""
    reader = LogReader(path, fmt, max_line_bytes=max_line_bytes, year=year, sessions=sessions)
    reader.check()  # now, so a missing, binary or non-UTF-8 file fails at the call, not later
    reader.format  # noqa: B018 - detected now too
    if stats is not None:
        reader.stats = stats
        stats.path = str(path)
    return iter(reader)
