"""Synthetic logs: determinism, anomaly types as the taxonomy defines them, failure windows, streaming."""

from __future__ import annotations

import tracemalloc
from collections import defaultdict
from pathlib import Path

import pytest

from intentos.skills.logs.generator import GeneratorError, GroundTruth, generate, read_line_truth
from intentos.skills.logs.parsing import LogParser, ParserSettings
from intentos.skills.logs.records import ReadStats, read_records

KINDS = ("hdfs", "service")


@pytest.fixture(scope="module", params=KINDS)
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[GroundTruth, list]:
    path = tmp_path_factory.mktemp("gen") / f"{request.param}.log"
    gt = generate(path, kind=request.param, lines=20_000, anomaly_rate=0.02, seed=11)
    return gt, list(read_records(path))


def test_deterministic_in_seed(tmp_path: Path) -> None:
    for kind in KINDS:
        a = generate(tmp_path / f"a_{kind}.log", kind=kind, lines=3000, seed=5)
        b = generate(tmp_path / f"b_{kind}.log", kind=kind, lines=3000, seed=5)
        c = generate(tmp_path / f"c_{kind}.log", kind=kind, lines=3000, seed=6)
        assert Path(a.log_path).read_bytes() == Path(b.log_path).read_bytes() != Path(c.log_path).read_bytes()
        assert Path(a.truth_path).read_bytes() == Path(b.truth_path).read_bytes()
        assert a.windows == b.windows


def test_lines_timestamps_and_format(generated: tuple[GroundTruth, list]) -> None:
    gt, recs = generated
    stats = ReadStats(path="")
    assert sum(1 for _ in read_records(gt.log_path, stats=stats)) == 20_000
    assert stats.format == ("hdfs" if gt.kind == "hdfs" else "generic") and stats.unmatched == 0
    stamps = [r.timestamp for r in recs]
    assert all(a <= b for a, b in zip(stamps, stamps[1:], strict=False))  # monotone
    assert stamps[-1] - stamps[0] > 600  # ~20 lines/s: a realistic span, not all in one second
    with_id = [r for r in recs if "blk_" in r.message or "request_id=" in r.message]
    assert len(with_id) > 0.95 * len(recs) and all(r.session for r in with_id)


def test_ground_truth_files_agree(generated: tuple[GroundTruth, list]) -> None:
    gt, recs = generated
    labels = read_line_truth(gt.truth_path)
    assert len(labels) == gt.anomalous_lines == sum(gt.counts.values()) == sum(gt.subtype_counts.values())
    assert 0.01 <= gt.anomalous_lines / gt.lines <= 0.03  # asked for 0.02
    assert set(gt.counts) == {"template", "attribute", "contextual"} and all(gt.counts.values())
    incidents = {inc.id: inc for inc in gt.incidents}
    for lineno, truth in labels.items():
        assert incidents[truth.incident].type == truth.type
        assert recs[lineno - 1].session in (truth.session, None)  # some HDFS exceptions name no block
    loaded = GroundTruth.load(gt.log_path)
    assert loaded.counts == gt.counts and loaded.windows == gt.windows and loaded.incidents == gt.incidents


def test_failure_windows_cover_anomalies_and_normal_lines(generated: tuple[GroundTruth, list]) -> None:
    gt, recs = generated
    labels = gt.line_labels()
    assert all(gt.in_window(recs[n - 1].timestamp) for n in labels)  # what PU learning relies on
    inside = [r for r in recs if gt.in_window(r.timestamp)]
    normal_inside = sum(r.lineno not in labels for r in inside)
    assert normal_inside > 3 * len(labels)  # imprecise: mostly normal lines inside
    assert len(inside) < 0.9 * len(recs)  # ...but not the whole log
    for w in gt.windows:
        inc = next((i for i in gt.incidents if i.id == w.incident), None)
        if inc is not None:
            assert w.start < inc.start and w.end > inc.end


def _templates(recs: list) -> list[int]:
    return [p.template_id for p in LogParser(ParserSettings(sim_th=0.5)).parse(recs)]


def test_anomaly_types_follow_the_taxonomy(generated: tuple[GroundTruth, list]) -> None:
    gt, recs = generated
    labels = gt.line_labels()
    tids = _templates(recs)
    normal_templates = {t for r, t in zip(recs, tids, strict=True) if r.lineno not in labels}
    by_type: dict[str, list[int]] = defaultdict(list)
    for n, truth in labels.items():
        by_type[truth.type].append(n)
    # template anomalies: message types that normal lines never produce
    assert all(tids[n - 1] not in normal_templates for n in by_type["template"])
    # attribute and contextual anomalies: normal message types (values or context are what is wrong)
    for kind in ("attribute", "contextual"):
        normal_type = sum(tids[n - 1] in normal_templates for n in by_type[kind])
        assert normal_type / len(by_type[kind]) > 0.95, kind
    for n in by_type["attribute"]:
        msg = recs[n - 1].message
        assert any(s in msg for s in ("size 0 ", "203.0.113.", "-> 50", "bytes=0")) or _big_number(msg), msg


def _big_number(message: str) -> bool:
    return any(tok.isdigit() and int(tok) >= 20000 and not tok.startswith("0") for tok in message.split()[1:])


def test_contextual_subtypes_are_what_they_claim(tmp_path: Path) -> None:
    gt = generate(tmp_path / "ctx.log", kind="hdfs", lines=8000, anomaly_rate=0.05, seed=2, types=("contextual",))
    recs = list(read_records(gt.log_path))
    sessions: dict[str, list] = defaultdict(list)
    for r in recs:
        sessions[r.session].append(r)
    labels = gt.line_labels()
    assert set(gt.counts) == {"contextual"} and set(gt.subtype_counts) == {"missing_step", "wrong_order", "retry_burst"}
    for n, truth in labels.items():
        lines = sessions[truth.session]
        first = lines[0].message
        if truth.subtype == "missing_step" and lines[0].lineno == n:
            assert "allocateBlock" not in " ".join(r.message for r in lines)
        elif truth.subtype == "wrong_order":
            assert "delet" in recs[n - 1].message.lower() and "allocateBlock" in first
        elif truth.subtype == "retry_burst":
            assert sum(r.message == recs[n - 1].message for r in lines) >= 2


def test_types_and_zero_rate(tmp_path: Path) -> None:
    gt = generate(tmp_path / "attr.log", kind="service", lines=5000, anomaly_rate=0.04, seed=1, types=("attribute",))
    assert set(gt.counts) == {"attribute"} and gt.anomalous_lines > 0
    alarms = generate(tmp_path / "fa.log", kind="hdfs", lines=5000, anomaly_rate=0.02, seed=1, false_alarm_rate=1.0)
    assert sum(w.incident is None for w in alarms.windows) == sum(w.incident is not None for w in alarms.windows) > 0
    clean = generate(tmp_path / "clean.log", kind="service", lines=2000, anomaly_rate=0.0, seed=1)
    assert clean.anomalous_lines == 0 and clean.windows == [] and Path(clean.truth_path).read_text() == ""
    with pytest.raises(GeneratorError, match="unknown anomaly"):
        generate(tmp_path / "x.log", types=("point",))
    with pytest.raises(GeneratorError, match="unknown log kind"):
        generate(tmp_path / "x.log", kind="syslog")  # type: ignore[arg-type]


def test_memory_does_not_grow_with_lines(tmp_path: Path) -> None:
    peaks = []
    for n in (5_000, 40_000):
        tracemalloc.start()
        generate(tmp_path / f"m{n}.log", kind="service", lines=n, anomaly_rate=0.01, seed=4)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 2 * peaks[0] + 200_000, peaks  # 8x the lines, about the same peak
