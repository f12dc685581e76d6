"""Metrics readers: CSV long and wide, Prometheus JSON, alignment, windows, and errors that say where."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from intentos.skills.faults.errors import FaultsInputError
from intentos.skills.faults.metrics import METRICS, read_metrics, write_csv

STAMPS = 1_700_000_000 + np.arange(8) / 2


def values() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.round(rng.uniform(1, 100, (2, len(METRICS), len(STAMPS))), 3)


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_csv_round_trips_in_both_layouts(tmp_path: Path, layout: str) -> None:
    path = tmp_path / f"{layout}.csv"
    write_csv(path, STAMPS, ["b", "a"], values(), layout)
    series = read_metrics(path)
    assert series.components == ["a", "b"]  # sorted; select() puts them in topology order
    picked = series.select(["b", "a"])
    np.testing.assert_allclose(picked.values, values(), atol=1e-3)
    np.testing.assert_allclose(series.timestamps, STAMPS)


def test_prometheus_range_query(tmp_path: Path) -> None:
    v = values()
    result = [{"metric": {"__name__": m, "service": comp}, "values": [[float(t), str(x)] for t, x in
                                                                      zip(STAMPS, v[c, mi], strict=True)]}
              for c, comp in enumerate(["b", "a"]) for mi, m in enumerate(METRICS)]
    path = tmp_path / "prom.json"
    path.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}))
    np.testing.assert_allclose(read_metrics(path).select(["b", "a"]).values, v)


def test_gaps_are_filled_and_iso_timestamps_read(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    rows = ["timestamp,component,metric,value"]
    for i, ts in enumerate(["2024-01-01T00:00:00", "2024-01-01T00:00:00.5", "2024-01-01T00:00:01Z"]):
        rows += [f"{ts},a,{m},{i + 1}" for m in METRICS if not (i == 1 and m == "cpu")]
    path.write_text("\n".join(rows) + "\n")
    series = read_metrics(path)
    assert series.values[0, 0].tolist() == [1, 1, 3]  # cpu missing at 0.5 s: the previous sample
    assert series.timestamps[2] - series.timestamps[0] == 1.0


def test_window_takes_the_samples_before_end(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    write_csv(path, STAMPS, ["a"], values()[:1], "wide")
    series = read_metrics(path)
    win = series.window(4, end=STAMPS[5])
    np.testing.assert_allclose(win.timestamps, STAMPS[2:6])
    np.testing.assert_allclose(series.window(3, start=STAMPS[1]).timestamps, STAMPS[1:4])
    np.testing.assert_allclose(series.window(8).timestamps, STAMPS)
    with pytest.raises(FaultsInputError, match="a window of 9 samples does not fit"):
        series.window(9)
    with pytest.raises(FaultsInputError, match=r"no metrics for component\(s\) zz"):
        series.select(["a", "zz"])


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("timestamp,component,metric,value\n1,a,cpu,3\n2,a,cpu,abc\n", 3, "value: value 'abc' is not a number"),
    ("timestamp,component,metric,value\n1,a,cpu,3\n2,a,heat,3\n", 3, "metric: unknown metric 'heat'"),
    ("timestamp,component,metric,value\nyesterday,a,cpu,3\n", 2, "timestamp: timestamp 'yesterday'"),
    ("timestamp,component,metric,value\n1,a,cpu\n", 2, "3 fields, the header has 4"),
    ("timestamp,component,cpu,heat\n1,a,3,4\n", 1, "heat: column 'heat' is not a metric"),
    ("time,host,cpu\n1,a,3\n", 1, "the header needs `timestamp` and `component`"),
    ("timestamp,component,cpu,memory\n1,a,3,nan\n", 2, "memory: value 'nan' is not a finite number"),
])
def test_malformed_csv_names_file_line_and_field(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(FaultsInputError) as info:
        read_metrics(path, "bad.csv")
    assert info.value.line == line and str(info.value).startswith(f"bad.csv:{line}: ")
    assert needle in str(info.value), str(info.value)


def test_a_component_without_some_metric_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("timestamp,component,cpu,memory\n1,a,3,4\n")
    with pytest.raises(FaultsInputError, match="component 'a' has no samples of net_in, net_out, disk_io, latency"):
        read_metrics(path)


@pytest.mark.parametrize(("doc", "needle"), [
    ('{"status": "success",\n "data": {"resultType": "matrix", "result": [}\n}', "m.json:2: malformed JSON"),
    ('{"status": "error"}', "not a successful Prometheus response"),
    ('{"status": "success", "data": {"resultType": "vector", "result": []}}', "data.resultType"),
    ('{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"__name__": "cpu"}, '
     '"values": []}]}}', "data.result[0].metric: no component label"),
    ('{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"__name__": "cpu", "job": "a"}, '
     '"values": [[1, "3"], [2, "x"]]}]}}', "data.result[0].values[1]: value 'x' is not a number"),
    ('{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"__name__": "heat", "job": "a"}, '
     '"values": []}]}}', "unknown metric 'heat'"),
])
def test_malformed_prometheus_names_the_field(tmp_path: Path, doc: str, needle: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(doc)
    with pytest.raises(FaultsInputError) as info:
        read_metrics(path, "m.json")
    assert needle in str(info.value), str(info.value)
