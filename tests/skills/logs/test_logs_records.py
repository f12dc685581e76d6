"""Streaming log readers: formats, odd lines, unreadable files, LogHub CSVs."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from intentos.errors import AppError, IntentosError
from intentos.skills.logs import records
from intentos.skills.logs.records import (
    LogReader,
    LogReadError,
    ReadStats,
    detect_format,
    find_session,
    read_records,
)

LOGHUB = Path(__file__).resolve().parents[4] / "shared" / "data" / "loghub"
needs_loghub = pytest.mark.skipif(not (LOGHUB / "HDFS_2k.log").exists(), reason="../shared/data/loghub absent")

HDFS_LINES = (
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 "
    "terminating\n"
    "081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: "
    "10.251.73.220:50010 is added to blk_-7128370237687728475 size 67108864\n"
)
BGL_LINES = (
    "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO "
    "instruction cache parity error corrected\n"
    "KERNDTLB 1118536327 2005.06.11 R30-M0-N9-C:J16-U01 2005-06-11-17.32.07.581048 R30-M0-N9-C:J16-U01 RAS KERNEL "
    "FATAL data TLB error interrupt\n"
)


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_hdfs_fields(tmp_path: Path) -> None:
    recs = list(read_records(write(tmp_path / "h.log", HDFS_LINES)))
    assert [r.lineno for r in recs] == [1, 2]
    first, second = recs
    assert first.level == "INFO" and first.component == "dfs.DataNode$PacketResponder"
    assert first.message == "PacketResponder 1 for block blk_38865049064139660 terminating"
    assert first.session == "blk_38865049064139660" and second.session == "blk_-7128370237687728475"
    assert first.timestamp == pytest.approx(1226262975.0)  # 2008-11-09 20:36:15 UTC
    assert second.timestamp - first.timestamp == 230
    assert first.raw == HDFS_LINES.splitlines()[0]


def test_bgl_label_and_alert(tmp_path: Path) -> None:
    path = write(tmp_path / "b.log", BGL_LINES)
    assert detect_format(path) == "bgl"
    normal, alert = read_records(path)
    assert (normal.label, normal.alert, alert.label, alert.alert) == (0, None, 1, "KERNDTLB")
    assert alert.level == "FATAL" and alert.component == "KERNEL" and alert.session == "R30-M0-N9-C:J16-U01"
    assert alert.message == "data TLB error interrupt"
    assert normal.timestamp == pytest.approx(1117838570.675872)


@pytest.mark.parametrize(
    ("line", "level", "component", "message"),
    [
        (
            "2024-03-04 08:00:00.019 INFO  gateway: request_id=adb5555600e6a305 GET /api/products",
            "INFO",
            "gateway",
            "request_id=adb5555600e6a305 GET /api/products",
        ),
        (
            "2015-07-29 17:41:44,747 - WARN  [Send[myid=1]/0:2181:X@688] - Send worker leaving",
            "WARN",
            None,
            "Send worker leaving",
        ),
        (
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
            None,
            "sshd(pam_unix)",
            "check pass; user unknown",
        ),
        (
            "17/06/09 20:10:40 INFO spark.SecurityManager: Changing view acls to: yarn",
            "INFO",
            "spark.SecurityManager",
            "Changing view acls to: yarn",
        ),
    ],
)
def test_generic_headers(tmp_path: Path, line: str, level: str | None, component: str | None, message: str) -> None:
    (rec,) = read_records(write(tmp_path / "g.log", line + "\n"), fmt="generic", year=2020)
    assert (rec.level, rec.component, rec.message, rec.matched) == (level, component, message, True)
    assert rec.timestamp is not None


def test_odd_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    good = HDFS_LINES.splitlines()[0].encode()
    data = b"\n".join(
        [
            good,  # 1
            b"",  # 2 blank
            b"\x00" * 40,  # 3 NUL run left by a crash
            good.replace(b"terminating", b"termin\xff\xfeating"),  # 4 invalid UTF-8
            bytes(b for b in range(256) if b != 10) * 4,  # 5 binary blob (no newline inside)
            good + b" " + b"x" * 5000,  # 6 too long
            b"this line fits no header at all",  # 7
            good.replace(b"PacketResponder 1", b"Packet\x00Responder 1"),  # 8 embedded NUL
            good[:40],  # 9 cut-off last line, no newline
        ]
    )
    stats = ReadStats(path="")
    recs = list(read_records(write(tmp_path / "odd.log", data), fmt="hdfs", max_line_bytes=1024, stats=stats))
    by_line = {r.lineno: r for r in recs}
    assert sorted(by_line) == [1, 4, 6, 7, 8, 9]
    assert by_line[4].garbled and "\ufffd" in by_line[4].message and by_line[4].matched
    assert by_line[6].truncated and len(by_line[6].raw) == 1024
    assert not by_line[7].matched and by_line[7].message == "this line fits no header at all"
    assert by_line[8].garbled and "PacketResponder 1" in by_line[8].message
    assert not by_line[9].matched and by_line[9].raw == good[:40].decode()
    assert (stats.lines, stats.records, stats.blank, stats.binary_skipped) == (9, 6, 1, 2)
    assert (stats.garbled, stats.truncated, stats.unmatched, stats.unterminated_last_line) == (2, 1, 2, True)


def test_huge_line_memory_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    with open(path, "wb") as fh:
        fh.write(b"a" * (8 << 20) + b"\n" + HDFS_LINES.encode())
    reader = LogReader(path, fmt="hdfs", max_line_bytes=4096)
    recs = list(reader)
    assert [r.lineno for r in recs] == [1, 2, 3] and len(recs[0].raw) == 4096
    assert reader.stats.truncated == 1 and recs[1].matched


def test_unreadable_files_raise_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(LogReadError, match="missing.log"):
        read_records(tmp_path / "missing.log")
    with pytest.raises(LogReadError, match="not a regular file"):
        read_records(tmp_path)
    blob = write(tmp_path / "image.log", bytes(range(256)) * 200)
    with pytest.raises(LogReadError, match="image.log.*binary"):
        read_records(blob)
    bad_csv = write(tmp_path / "x_structured.csv", "LineId,Foo\n1,2\n")
    with pytest.raises(LogReadError, match="no Content column") as info:
        list(read_records(bad_csv, fmt="loghub-csv"))
    assert isinstance(info.value, AppError) and isinstance(info.value, IntentosError)
    with pytest.raises(LogReadError, match="unknown log format"):
        LogReader(blob, fmt="xml")  # type: ignore[arg-type]


def test_gzip_and_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "h.log.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(HDFS_LINES.encode())
    assert [r.session for r in read_records(path)] == ["blk_38865049064139660", "blk_-7128370237687728475"]
    broken = write(tmp_path / "broken.gz", path.read_bytes()[:30])
    with pytest.raises(LogReadError, match="broken.gz"):
        list(read_records(broken, fmt="hdfs"))


def test_reading_is_lazy(tmp_path: Path) -> None:
    path = write(tmp_path / "h.log", HDFS_LINES * 1000)
    it = read_records(path)
    assert next(it).lineno == 1  # an iterator, not a list built up front
    assert sum(1 for _ in it) == 1999


@needs_loghub
@pytest.mark.parametrize("system", ["HDFS", "BGL"])
def test_loghub_raw_matches_structured_csv(system: str) -> None:
    raw_path, csv_path = LOGHUB / f"{system}_2k.log", LOGHUB / f"{system}_2k.log_structured.csv"
    assert detect_format(raw_path) == system.lower() and detect_format(csv_path) == "loghub-csv"
    raw, rows = list(read_records(raw_path)), list(read_records(csv_path))
    assert len(raw) == len(rows) == 2000
    assert all(r.message.strip() == c.message.strip() for r, c in zip(raw, rows, strict=True))
    assert all(c.event_id and c.event_template for c in rows)
    assert all(r.timestamp is not None and c.timestamp is not None for r, c in zip(raw, rows, strict=True))
    if system == "BGL":
        assert sum(r.label for r in raw) == sum(c.label for c in rows) == 143
        assert {r.alert for r in raw if r.label} == {c.alert for c in rows if c.label}


@needs_loghub
def test_every_loghub_csv_reads() -> None:
    for csv_path in sorted(LOGHUB.glob("*_structured.csv")):
        stats = ReadStats(path="")
        rows = list(read_records(csv_path, stats=stats))
        assert len(rows) == 2000 and stats.records == 2000, csv_path.name
        assert sum(r.timestamp is not None for r in rows) == 2000, csv_path.name


def test_not_text_is_refused_whatever_the_format(tmp_path: Path) -> None:
    """Binary, non-UTF-8 and fake or damaged gzip files fail at the call with one line naming the file."""
    deflated = gzip.compress(HDFS_LINES.encode() * 200)
    cases = {
        "blob.log": (bytes((i * 37 + 11) % 256 for i in range(5000)), "looks like binary data"),
        "latin1.log": (HDFS_LINES.replace("block", "blöck").encode("latin-1") * 5, "not UTF-8 text"),
        "fake.gz": (b"\x1f\x8b" + b"plain text, not gzip\n" * 10, "not valid gzip data"),
        "bits.gz": (deflated[:10] + bytes(b ^ 0x5A for b in deflated[10:200]) + deflated[200:], "not valid gzip data"),
    }
    for name, (data, problem) in cases.items():
        path = write(tmp_path / name, data)
        for fmt in ("auto", "hdfs", "generic", "loghub-csv"):
            with pytest.raises(LogReadError) as info:
                list(read_records(path, fmt=fmt))  # type: ignore[arg-type]
            message = str(info.value)
            assert message.startswith(f"{path}: ") and problem in message and "\n" not in message, message


@pytest.mark.parametrize("block", [64, 700, 4096])
def test_where_blocks_end_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """Lines are read in blocks; a block ending inside a long, garbled or CRLF line must not show."""
    good = HDFS_LINES.encode().splitlines()
    odd = [
        good[0] + b" " + b"y" * 3000,  # longer than the limit, spans blocks
        good[1].replace(b"blockMap", b"block\x00Map"),
        good[0].replace(b"terminating", b"term\xffinating"),
        good[1] + b"\r",  # a CRLF line
        b"",
        b"   ",
        b"no header here",
    ]
    lines = [odd[i % len(odd)] if i % 5 == 3 else good[i % 2] for i in range(400)]
    path = write(tmp_path / "mixed.log", b"\n".join(lines))  # and no newline at the end

    def read(block_bytes: int) -> tuple[list[tuple[object, ...]], ReadStats]:
        monkeypatch.setattr(records, "BLOCK_BYTES", block_bytes)
        stats = ReadStats(path="")
        recs = read_records(path, fmt="hdfs", max_line_bytes=1024, stats=stats)
        return [(r.lineno, r.raw, r.session, r.matched, r.garbled, r.truncated) for r in recs], stats

    whole, whole_stats = read(1 << 20)
    assert read(block) == (whole, whole_stats)
    n = lines.count
    assert (whole_stats.lines, whole_stats.blank, whole_stats.truncated, whole_stats.garbled) == (
        400, n(odd[4]) + n(odd[5]), n(odd[0]), n(odd[1]) + n(odd[2]))
    assert whole_stats.unterminated_last_line and whole_stats.records == 400 - whole_stats.blank
    assert all(raw.startswith("081109") for _, raw, _, matched, *_ in whole if matched)
    assert not any("\r" in raw for _, raw, *_ in whole)


def test_sessions_are_the_leftmost_id_and_optional(tmp_path: Path) -> None:
    assert find_session("x blk_-12 and request_id=abc") == "blk_-12"
    assert find_session("request_id=zz for blk_1") == "zz"
    assert find_session("Req-ID: q-1 for 123e4567-e89b-12d3-a456-426614174000") == "q-1"
    assert find_session("job 123e4567-e89b-12d3-a456-426614174000 blk_5") == "123e4567-e89b-12d3-a456-426614174000"
    assert find_session("no id in 2024-03-04 here") is None
    path = write(tmp_path / "h.log", HDFS_LINES)
    assert [r.session for r in read_records(path, sessions=False)] == [None, None]
