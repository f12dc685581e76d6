"""Metric time series per component: readers for CSV (long or wide) and Prometheus range-query JSON,
alignment to a topology, and windows.

Formats (the first line of a CSV decides which):

- long:  `timestamp,component,metric,value` — one value per row;
- wide:  `timestamp,component,cpu,memory,net_in,net_out,disk_io,latency` — one row per component and
  sample (metric columns in any order; other columns are refused);
- Prometheus: the JSON a `query_range` returns (`resultType: matrix`); the component is the first of the
  labels `component`, `service`, `job`, `pod`, `instance`, the metric the label `metric` or `__name__`.

Timestamps are Unix seconds or ISO 8601. Samples are aligned on the union of timestamps; a gap is
filled from the previous sample (else the next). Errors name the file and line (CSV) or JSON field;
a file that is not UTF-8 text, or would align into more than MAX_VALUES values, is refused the same
way. Parsing works on the file's bytes (`parse_metrics`): the app reads them through the sandbox,
the CLI from any path.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from intentos.skills.faults.errors import FaultsInputError, read_input
from intentos.skills.kit.files import write_local

METRICS = ("cpu", "memory", "net_in", "net_out", "disk_io", "latency")
# Common exporter names, so a Prometheus export need not be renamed by hand.
ALIASES = {
    "cpu_percent": "cpu", "cpu_usage": "cpu", "container_cpu_usage": "cpu",
    "mem": "memory", "memory_mb": "memory", "container_memory_usage": "memory",
    "network_receive": "net_in", "net_rx": "net_in", "network_transmit": "net_out", "net_tx": "net_out",
    "disk": "disk_io", "disk_ops": "disk_io", "io": "disk_io",
    "latency_ms": "latency", "response_time": "latency", "request_latency": "latency",
}
COMPONENT_LABELS = ("component", "service", "job", "pod", "instance")
MAX_VALUES = 20_000_000  # components x metrics x timestamps of one aligned series (8 bytes each)
MAX_TIME = 253402300799.0  # 9999-12-31: a later (or negative) timestamp is not a time


@dataclass
class MetricSeries:
    """values[component, metric, time] for `components` x METRICS at `timestamps` (Unix seconds)."""

    timestamps: np.ndarray
    components: list[str]
    values: np.ndarray
    source: str = ""

    def select(self, components: list[str]) -> MetricSeries:
        """The series of exactly these components, in this order; an error names any without metrics."""
        index = {c: i for i, c in enumerate(self.components)}
        missing = [c for c in components if c not in index]
        if missing:
            raise FaultsInputError(self.source, f"no metrics for component(s) {', '.join(missing)} of the topology "
                                                f"(the file has {', '.join(self.components[:8]) or 'none'}"
                                                f"{', ...' if len(self.components) > 8 else ''})")
        return MetricSeries(self.timestamps, components, self.values[[index[c] for c in components]], self.source)

    def window(self, length: int, end: float | None = None, start: float | None = None) -> MetricSeries:
        """`length` samples ending at the last sample at or before `end` (or starting at `start`)."""
        n = len(self.timestamps)
        if start is not None:
            first = int(np.searchsorted(self.timestamps, start, side="left"))
            last = first + length
        else:
            last = n if end is None else int(np.searchsorted(self.timestamps, end, side="right"))
            first = last - length
        if first < 0 or last > n or last - first < length:
            span = f"{_iso(self.timestamps[0])} .. {_iso(self.timestamps[-1])}" if n else "no samples"
            raise FaultsInputError(self.source, f"a window of {length} samples does not fit there: the file has "
                                                f"{n} samples ({span})")
        return MetricSeries(self.timestamps[first:last], self.components, self.values[:, :, first:last], self.source)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="seconds")


def _timestamp(raw: str, where: tuple[str, int | None, str]) -> float:
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            value = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError, OSError):
            raise FaultsInputError(where[0], f"timestamp {_clip(raw)!r} is neither Unix seconds nor ISO 8601",
                                   where[1], where[2]) from None
    if not math.isfinite(value):
        raise FaultsInputError(where[0], f"timestamp {raw!r} is not a finite number", where[1], where[2])
    if not 0 <= value <= MAX_TIME:
        raise FaultsInputError(where[0], f"timestamp {_clip(raw)!r} is out of range (Unix seconds, 1970 to 9999)",
                               where[1], where[2])
    return value


def _number(raw: Any, where: tuple[str, int | None, str]) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise FaultsInputError(where[0], f"value {_clip(repr(raw))} is not a number", where[1], where[2]) from None
    if math.isnan(value) or math.isinf(value):
        raise FaultsInputError(where[0], f"value {_clip(repr(raw))} is not a finite number", where[1], where[2])
    return value


def metric_name(raw: str) -> str | None:
    name = raw.strip().lower()
    return name if name in METRICS else ALIASES.get(name)


class _Collector:
    """Samples keyed by (component, metric) -> {timestamp: value}, then one aligned array."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.samples: dict[str, dict[str, dict[float, float]]] = {}

    def add(self, component: str, metric: str, ts: float, value: float) -> None:
        self.samples.setdefault(component, {}).setdefault(metric, {})[ts] = value

    def series(self) -> MetricSeries:
        if not self.samples:
            raise FaultsInputError(self.source, "no samples in the file")
        stamps = np.array(sorted({t for per in self.samples.values() for s in per.values() for t in s}))
        index = {t: i for i, t in enumerate(stamps)}
        components = sorted(self.samples)
        cells = len(components) * len(METRICS) * len(stamps)
        if cells > MAX_VALUES:
            raise FaultsInputError(self.source, f"{len(components):,} components x {len(stamps):,} timestamps make "
                                                f"{cells:,} values; at most {MAX_VALUES:,} are read")
        values = np.full((len(components), len(METRICS), len(stamps)), np.nan)
        for ci, comp in enumerate(components):
            per = self.samples[comp]
            missing = [m for m in METRICS if m not in per]
            if missing:
                raise FaultsInputError(self.source, f"component {comp!r} has no samples of {', '.join(missing)} "
                                                    f"(needed: {', '.join(METRICS)})")
            for mi, m in enumerate(METRICS):
                for t, v in per[m].items():
                    values[ci, mi, index[t]] = v
        return MetricSeries(stamps, components, _fill(values), self.source)


def _fill(values: np.ndarray) -> np.ndarray:
    """Forward-fill gaps along time, then back-fill the leading ones (series with some sample each)."""
    flat = values.reshape(-1, values.shape[-1])
    mask = np.isnan(flat)
    if not mask.any():
        return values
    idx = np.where(~mask, np.arange(flat.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = flat[np.arange(flat.shape[0])[:, None], idx]
    first_valid = np.argmax(~np.isnan(filled), axis=1)
    lead = np.isnan(filled)
    filled[lead] = np.take_along_axis(filled, first_valid[:, None], axis=1).repeat(filled.shape[1], 1)[lead]
    return filled.reshape(values.shape)


def _parse_csv(data: bytes, name: str) -> MetricSeries:
    """A long or wide CSV (see the module docstring); errors name file, line and column."""
    collector = _Collector(name)
    # Decoded as it is read: a file that is not UTF-8 text is refused at its first bad byte.
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise FaultsInputError(name, "the file is empty")
        cols = [h.strip().lower() for h in header]
        if "timestamp" not in cols or "component" not in cols:
            raise FaultsInputError(name, "the header needs `timestamp` and `component` columns (long: timestamp,"
                                         "component,metric,value; wide: timestamp,component,cpu,memory,...)", 1)
        ti, ci = cols.index("timestamp"), cols.index("component")
        long = "metric" in cols and "value" in cols
        if long:
            mi, vi = cols.index("metric"), cols.index("value")
        else:
            metric_cols: list[tuple[int, str]] = []
            for i, c in enumerate(cols):
                if i in (ti, ci):
                    continue
                m = metric_name(c)
                if m is None:
                    raise FaultsInputError(name, f"column {_clip(header[i])!r} is not a metric "
                                                 f"({', '.join(METRICS)})", 1, _clip(header[i]))
                metric_cols.append((i, m))
            if not metric_cols:
                raise FaultsInputError(name, "no metric columns (long format needs `metric` and `value`)", 1)
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(cols):
                raise FaultsInputError(name, f"{len(row)} fields, the header has {len(cols)}", line)
            ts = _timestamp(row[ti], (name, line, "timestamp"))
            comp = row[ci].strip()
            if not comp:
                raise FaultsInputError(name, "empty component", line, "component")
            if long:
                m = metric_name(row[mi])
                if m is None:
                    raise FaultsInputError(name, f"unknown metric {_clip(row[mi])!r} ({', '.join(METRICS)})", line,
                                           "metric")
                collector.add(comp, m, ts, _number(row[vi], (name, line, "value")))
            else:
                for i, m in metric_cols:
                    collector.add(comp, m, ts, _number(row[i], (name, line, header[i])))
    except UnicodeDecodeError:
        raise _not_utf8(data, name) from None
    except csv.Error as exc:
        raise FaultsInputError(name, f"malformed CSV: {exc}", reader.line_num + 1) from None
    return collector.series()


def _parse_prometheus(data: bytes, name: str) -> MetricSeries:
    """A Prometheus range-query response; errors name the JSON line or field (data.result[i]...)."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise _not_utf8(data, name) from None
    except json.JSONDecodeError as exc:
        raise FaultsInputError(name, f"malformed JSON: {exc.msg}", exc.lineno) from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, nesting too deep
        raise FaultsInputError(name, f"malformed JSON: {str(exc) or 'nested too deeply'}") from None
    if not isinstance(doc, dict) or doc.get("status") != "success":
        raise FaultsInputError(name, "not a successful Prometheus response", field="status")
    data_ = doc.get("data")
    if not isinstance(data_, dict) or data_.get("resultType") != "matrix":
        raise FaultsInputError(name, "expected a range query result (resultType: matrix)", field="data.resultType")
    result = data_.get("result")
    if not isinstance(result, list):
        raise FaultsInputError(name, "expected a list", field="data.result")
    collector = _Collector(name)
    for i, entry in enumerate(result):
        here = f"data.result[{i}]"
        labels = entry.get("metric") if isinstance(entry, dict) else None
        if not isinstance(labels, dict):
            raise FaultsInputError(name, "expected an object with `metric` labels", field=f"{here}.metric")
        comp = next((str(labels[k]) for k in COMPONENT_LABELS if labels.get(k)), None)
        if comp is None:
            raise FaultsInputError(name, f"no component label (one of {', '.join(COMPONENT_LABELS)})",
                                   field=f"{here}.metric")
        raw_metric = str(labels.get("metric") or labels.get("__name__") or "")
        m = metric_name(raw_metric)
        if m is None:
            raise FaultsInputError(name, f"unknown metric {_clip(raw_metric)!r} ({', '.join(METRICS)})",
                                   field=f"{here}.metric.__name__")
        values = entry.get("values")
        if not isinstance(values, list):
            raise FaultsInputError(name, "expected a list of [timestamp, value] pairs", field=f"{here}.values")
        for j, pair in enumerate(values):
            where = (name, None, f"{here}.values[{j}]")
            if not isinstance(pair, list) or len(pair) != 2:
                raise FaultsInputError(name, "expected [timestamp, \"value\"]", field=where[2])
            collector.add(comp, m, _timestamp(str(pair[0]), where), _number(pair[1], where))
    return collector.series()


def read_metrics(path: Path, name: str | None = None) -> MetricSeries:
    """A metrics file anywhere (the CLI): `parse_metrics` of its bytes."""
    name = name or str(path)
    return parse_metrics(read_input(path, "metrics file", name), name)


def parse_metrics(data: bytes, name: str) -> MetricSeries:
    """CSV or Prometheus JSON by content (a JSON document starts with `{`), from the bytes of the file `name`."""
    if b"\x00" in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise _not_utf8(data, name) from None
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise FaultsInputError(name, "binary data (a NUL byte): not a metrics file", line)
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return _parse_prometheus(data, name) if head.startswith(b"{") else _parse_csv(data, name)


def _not_utf8(data: bytes, name: str) -> FaultsInputError:
    """Where exactly a file stops being UTF-8 text (decoding again, only when it already failed)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return FaultsInputError(name, f"not UTF-8 text ({exc.reason} at byte {exc.start})", line)
    return FaultsInputError(name, "not UTF-8 text")


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 60 else text[:57] + "..."


def csv_bytes(timestamps: np.ndarray, components: list[str], values: np.ndarray, layout: str = "wide") -> bytes:
    """values[component, metric, time] as a long or wide CSV (the formats parse_metrics reads)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    if layout == "long":
        w.writerow(["timestamp", "component", "metric", "value"])
        for t, ts in enumerate(timestamps):
            for c, comp in enumerate(components):
                for m, metric in enumerate(METRICS):
                    w.writerow([f"{ts:.1f}", comp, metric, f"{values[c, m, t]:.3f}"])
    else:
        w.writerow(["timestamp", "component", *METRICS])
        for t, ts in enumerate(timestamps):
            for c, comp in enumerate(components):
                w.writerow([f"{ts:.1f}", comp, *(f"{v:.3f}" for v in values[c, :, t])])
    return buf.getvalue().encode("utf-8")


def write_csv(path: Path, timestamps: np.ndarray, components: list[str], values: np.ndarray,
              layout: str = "wide") -> None:
    """Write a metrics CSV anywhere (CLI, tests); the app writes `csv_bytes` through the sandbox."""
    write_local(path, csv_bytes(timestamps, components, values, layout))
