"""Synthetic logs with ground truth, for tests and benchmarks of the log skills.

    gt = generate("hdfs.log", kind="hdfs", lines=100_000, anomaly_rate=0.02, seed=7)
    gt.counts                      # anomalous lines per type
    labels = gt.line_labels()      # {lineno: LineTruth(type, subtype, incident)} from hdfs.log.truth.jsonl
    gt.windows                     # failure windows as a monitoring system would report them

Two kinds: "hdfs" (block lifecycles in LogHub's HDFS format, read back by records fmt="hdfs") and
"service" (a web service with request ids, ISO timestamps, read back by fmt="generic").

Anomalies follow the taxonomy of arXiv:2111.13462 (as used by arXiv:2312.14748):
- "template": a message type that normal runs never produce (exceptions, errors);
- "attribute": a normal template with an abnormal value (size 0, latency 30 s, status 500);
- "contextual": normal messages in an abnormal context (a missing step, a wrong order, a retry burst).
Anomalies come in incidents (a few sessions hit in a row, one type each). The failure windows are
deliberately imprecise, like alert intervals: padded by random amounts on both sides (so shifted),
covering many normal lines, plus a few false alarms; but every anomalous line lies inside one, which
is what weak supervision (LogLAB/PULL: outside a window = normal) relies on.

Output is streamed: memory is bounded by the number of concurrent sessions and incidents, not lines.
Sessions still open when `lines` is reached are cut off, as in any log excerpt; only injected
anomalies are labelled. Everything is deterministic in `seed`.
"""

from __future__ import annotations

import bisect
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

from intentos.errors import AppError

Kind = Literal["hdfs", "service"]
ANOMALY_TYPES: tuple[str, ...] = ("template", "attribute", "contextual")
DEFAULT_START = datetime(2024, 3, 4, 8, 0, tzinfo=UTC).timestamp()


class GeneratorError(AppError):
    """Bad generator arguments (unknown kind or anomaly type, negative sizes)."""


# --- ground truth --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineTruth:
    type: str  # template | attribute | contextual
    subtype: str  # e.g. exception, zero_size, missing_step
    incident: int
    session: str


@dataclass
class Incident:
    id: int
    type: str
    start: float | None = None  # time of its first / last anomalous line
    end: float | None = None
    lines: int = 0
    sessions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FailureWindow:
    start: float
    end: float
    incident: int | None  # None: a false alarm


@dataclass
class GroundTruth:
    log_path: str
    truth_path: str  # JSONL, one object per anomalous line
    kind: str
    seed: int
    lines: int
    anomaly_rate: float
    types: list[str]
    anomalous_lines: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    subtype_counts: dict[str, int] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    windows: list[FailureWindow] = field(default_factory=list)
    start_time: float = 0.0
    end_time: float = 0.0
    window_time_fraction: float = 0.0  # share of the log's time span inside a failure window

    @property
    def summary_path(self) -> str:
        return summary_path_for(self.log_path)

    def line_labels(self) -> dict[int, LineTruth]:
        """{lineno: LineTruth} for every anomalous line (read from the JSONL next to the log)."""
        return read_line_truth(self.truth_path)

    def in_window(self, timestamp: float) -> bool:
        """Whether a failure window (incl. false alarms) covers `timestamp`."""
        starts, ends = self._merged()
        i = bisect.bisect_right(starts, timestamp) - 1
        return i >= 0 and timestamp <= ends[i]

    def _merged(self) -> tuple[list[float], list[float]]:
        starts: list[float] = []
        ends: list[float] = []
        for w in sorted(self.windows, key=lambda w: w.start):
            if starts and w.start <= ends[-1]:
                ends[-1] = max(ends[-1], w.end)
            else:
                starts.append(w.start)
                ends.append(w.end)
        return starts, ends

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def load(cls, log_or_summary: str | Path) -> GroundTruth:
        """From the summary JSON written by generate() (pass it, or the log path)."""
        path = Path(log_or_summary)
        if not path.name.endswith(".truth.json"):
            path = Path(summary_path_for(path))
        data = json.loads(path.read_text(encoding="utf-8"))
        data["incidents"] = [Incident(**i) for i in data["incidents"]]
        data["windows"] = [FailureWindow(**w) for w in data["windows"]]
        return cls(**data)


def truth_path_for(log_path: str | Path) -> str:
    return f"{log_path}.truth.jsonl"


def summary_path_for(log_path: str | Path) -> str:
    return f"{log_path}.truth.json"


def read_line_truth(truth_jsonl: str | Path) -> dict[int, LineTruth]:
    out: dict[int, LineTruth] = {}
    with open(truth_jsonl, encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            out[d["lineno"]] = LineTruth(d["type"], d["subtype"], d["incident"], d["session"])
    return out


# --- sessions --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    level: str
    component: str
    message: str
    anomaly: str | None = None  # subtype; the type is the session's
    pid: int = 0


@dataclass(slots=True)
class _Session:
    sid: str
    lines: list[_Line]
    incident: Incident | None = None
    anomaly_type: str | None = None
    pos: int = 0


_STAMP_CACHE: dict[str, tuple[int, str]] = {}


def _stamp(ts: float, fmt: str) -> str:
    # Many lines share a second; strftime per line would be a third of the generator's time.
    sec = int(ts)
    hit = _STAMP_CACHE.get(fmt)
    if hit is None or hit[0] != sec:
        hit = (sec, time.strftime(fmt, time.gmtime(sec)))
        _STAMP_CACHE[fmt] = hit
    return hit[1]


def _mark(lines: list[_Line], i: int, subtype: str) -> None:
    lines[i].anomaly = subtype


# --- HDFS ------------------------------------------------------------------------------------

_HDFS_EXCEPTIONS = (
    ("WARN", "dfs.DataNode$DataXceiver", "{dn}:50010:Got exception while serving {blk} to /{peer}:"),
    (
        "INFO",
        "dfs.DataNode$DataXceiver",
        "writeBlock {blk} received exception java.io.IOException: Could not read from stream",
    ),
    (
        "WARN",
        "dfs.DataNode$PacketResponder",
        "IOException in BlockReceiver.run(): java.io.IOException: Connection reset by peer",
    ),
    ("INFO", "dfs.DataNode$BlockReceiver", "Exception in receiveBlock for block {blk} java.io.EOFException"),
    ("WARN", "dfs.FSDataset", "Unexpected error trying to delete block {blk}. BlockInfo not found in volumeMap."),
    (
        "INFO",
        "dfs.DataNode$PacketResponder",
        "PacketResponder {blk} 1 Exception java.net.SocketTimeoutException: "
        "63000 millis timeout while waiting for channel to be ready for read",
    ),
)


class _HdfsSim:
    """Block lifecycles: allocate, receive on 3 replicas, respond, addStoredBlock, serve, delete."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nodes = [f"10.25{rng.randint(0, 1)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}" for _ in range(120)]
        self.job = f"{rng.randint(200811090000, 200811099999)}"
        self.task = 0

    def session(self, anomaly: str | None) -> _Session:
        rng = self.rng
        blk = f"blk_{rng.getrandbits(63) - (1 << 62)}"
        nodes = rng.sample(self.nodes, 3)
        size = 67108864 if rng.random() < 0.8 else rng.randint(1 << 16, 67108863)
        lines = self._normal(blk, nodes, size)
        if anomaly is not None:
            getattr(self, f"_{anomaly}")(lines, blk, nodes)
        return _Session(blk, lines)

    def _normal(self, blk: str, nodes: list[str], size: int) -> list[_Line]:
        rng = self.rng
        self.task += 1
        path = (
            f"/user/root/rand{rng.randint(1, 9)}/_temporary/_task_{self.job}_0001_m_{self.task % 10**6:06d}_0/"
            f"part-{self.task % 10**5:05d}. {blk}"
        )
        lines = [_Line("INFO", "dfs.FSNamesystem", f"BLOCK* NameSystem.allocateBlock: {path}", pid=rng.randint(20, 40))]
        for dn in nodes:
            src = nodes[0] if dn != nodes[0] else rng.choice(self.nodes)
            lines.append(
                _Line(
                    "INFO",
                    "dfs.DataNode$DataXceiver",
                    f"Receiving block {blk} src: /{src}:{rng.randint(32768, 60999)} dest: /{dn}:50010",
                )
            )
        for i in rng.sample(range(3), 3):
            dn = nodes[i]
            lines.append(
                _Line("INFO", "dfs.DataNode$PacketResponder", f"Received block {blk} of size {size} from /{dn}")
            )
            lines.append(
                _Line("INFO", "dfs.DataNode$PacketResponder", f"PacketResponder {i} for block {blk} terminating")
            )
            lines.append(
                _Line(
                    "INFO",
                    "dfs.FSNamesystem",
                    f"BLOCK* NameSystem.addStoredBlock: blockMap updated: {dn}:50010 is added to {blk} size {size}",
                    pid=rng.randint(20, 40),
                )
            )
        for _ in range(rng.choice((0, 0, 1, 2))):
            lines.append(
                _Line(
                    "INFO", "dfs.DataNode", f"{rng.choice(nodes)}:50010 Served block {blk} to /{rng.choice(self.nodes)}"
                )
            )
        if rng.random() < 0.4:
            lines.extend(self._delete(blk, nodes))
        for ln in lines:
            ln.pid = ln.pid or rng.randint(100, 900)
        return lines

    def _delete(self, blk: str, nodes: list[str]) -> list[_Line]:
        sub = self.rng.randint(0, 63)
        out = [
            _Line(
                "INFO",
                "dfs.FSNamesystem",
                f"BLOCK* NameSystem.delete: {blk} is added to invalidSet of {dn}:50010",
                pid=self.rng.randint(20, 40),
            )
            for dn in nodes
        ]
        out += [
            _Line(
                "INFO",
                "dfs.FSDataset",
                f"Deleting block {blk} file /mnt/hadoop/dfs/data/current/subdir{sub}/{blk}",
                pid=self.rng.randint(100, 900),
            )
            for _ in nodes
        ]
        return out

    # anomalies (each mutates a normal lifecycle in place and marks the abnormal lines)

    def _template(self, lines: list[_Line], blk: str, nodes: list[str]) -> None:
        rng = self.rng
        for _ in range(rng.choice((1, 1, 2))):
            level, comp, text = rng.choice(_HDFS_EXCEPTIONS)
            msg = text.format(blk=blk, dn=rng.choice(nodes), peer=rng.choice(self.nodes))
            lines.insert(rng.randint(2, len(lines)), _Line(level, comp, msg, "exception", rng.randint(100, 900)))

    def _attribute(self, lines: list[_Line], blk: str, nodes: list[str]) -> None:
        rng = self.rng
        sub = rng.choice(("zero_size", "foreign_source", "oversized"))
        if sub == "foreign_source":  # a replica written from outside the cluster's address space
            i = next(i for i, ln in enumerate(lines) if ln.message.startswith("Receiving block"))
            head, tail = lines[i].message.split(" src: /")
            tail = tail.split(" dest:")[1]
            lines[i].message = f"{head} src: /203.0.113.{rng.randint(1, 254)}:{rng.randint(32768, 60999)} dest:{tail}"
            _mark(lines, i, sub)
            return
        bad = "0" if sub == "zero_size" else str(rng.randint(10**10, 10**11))
        for i, ln in enumerate(lines):  # one replica reports the abnormal size
            if ln.message.startswith("Received block"):
                ln.message = (
                    ln.message.rsplit(" of size ", 1)[0] + f" of size {bad} from " + ln.message.split(" from ")[-1]
                )
                _mark(lines, i, sub)
                break

    def _contextual(self, lines: list[_Line], blk: str, nodes: list[str]) -> None:
        rng = self.rng
        sub = rng.choice(("missing_step", "wrong_order", "retry_burst"))
        if sub == "missing_step":  # no allocateBlock: the first receive happens for an unknown block
            lines.pop(0)
            _mark(lines, 0, sub)
        elif sub == "wrong_order":  # a replica is deleted before the block was ever written
            deletes = self._delete(blk, nodes[:1])
            for k, ln in enumerate(deletes):
                ln.anomaly = sub
                lines.insert(1 + k, ln)
        else:  # the same receive retried over and over
            first = lines[1]
            for k in range(rng.randint(3, 6)):
                lines.insert(2 + k, _Line(first.level, first.component, first.message, sub, first.pid))

    def format(self, ts: float, line: _Line) -> str:
        return f"{_stamp(ts, '%y%m%d %H%M%S')} {line.pid} {line.level} {line.component}: {line.message}"


# --- service ---------------------------------------------------------------------------------

_ENDPOINTS = (
    ("GET", "/api/orders/{id}", "orders", "SELECT * FROM orders WHERE id = ?"),
    ("GET", "/api/users/{id}", "users", "SELECT * FROM users WHERE id = ?"),
    ("POST", "/api/orders", "orders", "INSERT INTO orders (user_id, total) VALUES (?, ?)"),
    ("GET", "/api/products", "products", "SELECT * FROM products ORDER BY rank LIMIT ?"),
    ("PUT", "/api/cart/{id}", "cart", "UPDATE cart SET items = ? WHERE id = ?"),
    ("DELETE", "/api/cart/{id}", "cart", "DELETE FROM cart WHERE id = ?"),
)
_OK = {"GET": 200, "POST": 201, "PUT": 200, "DELETE": 204}
_SERVICE_ERRORS = (
    ("ERROR", "db", "request_id={rid} query failed: OperationalError: could not connect to server: Connection refused"),
    (
        "ERROR",
        "orders",
        "request_id={rid} unhandled exception java.lang.NullPointerException at "
        "OrderService.load(OrderService.java:212)",
    ),
    ("WARN", "cache", "request_id={rid} cache backend timeout after 500 ms, circuit breaker open"),
    ("ERROR", "payments", "request_id={rid} payment provider returned invalid signature"),
    ("ERROR", "db", "request_id={rid} deadlock detected while updating table {table}, transaction rolled back"),
)


class _ServiceSim:
    """HTTP requests through gateway, auth, cache and db; occasional background jobs."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.clients = [f"10.0.{rng.randint(0, 7)}.{rng.randint(2, 254)}" for _ in range(200)]

    def session(self, anomaly: str | None) -> _Session:
        rng = self.rng
        if anomaly is None and rng.random() < 0.04:
            return self._background()
        rid = f"{rng.getrandbits(64):016x}"
        lines = self._request(rid)
        if anomaly is not None:
            getattr(self, f"_{anomaly}")(lines, rid)
        return _Session(rid, lines)

    def _background(self) -> _Session:
        rng = self.rng
        msg = rng.choice(
            (
                f"connection pool stats active={rng.randint(1, 20)} idle={rng.randint(0, 30)} max=50",
                f"job cleanup-sessions finished in {rng.randint(5, 400)} ms removed={rng.randint(0, 500)}",
                f"health check ok uptime={rng.randint(1000, 900000)} s",
            )
        )
        return _Session(f"bg-{rng.getrandbits(32):08x}", [_Line("INFO", "scheduler", msg)])

    def _request(self, rid: str) -> list[_Line]:
        rng = self.rng
        method, path, table, sql = rng.choice(_ENDPOINTS)
        path = path.format(id=rng.randint(1, 99999))
        user = rng.randint(1000, 99999)
        lines = [
            _Line("INFO", "gateway", f"request_id={rid} {method} {path} from {rng.choice(self.clients)} user=u{user}"),
            _Line("DEBUG", "auth", f"request_id={rid} token verified for user=u{user} in {rng.randint(1, 9)} ms"),
        ]
        if method == "GET" and rng.random() < 0.6:
            lines.append(_Line("INFO", "cache", f"request_id={rid} cache hit key={table}:{path.rsplit('/', 1)[-1]}"))
        else:
            if method == "GET":
                lines.append(
                    _Line("INFO", "cache", f"request_id={rid} cache miss key={table}:{path.rsplit('/', 1)[-1]}")
                )
            for _ in range(rng.choice((1, 1, 2, 3))):
                lines.append(
                    _Line(
                        "INFO",
                        "db",
                        f"request_id={rid} query {sql} rows={rng.randint(0, 50)} "
                        f"took {max(1, int(rng.lognormvariate(2.3, 0.6)))} ms",
                    )
                )
        status = 404 if rng.random() < 0.01 else (304 if method == "GET" and rng.random() < 0.05 else _OK[method])
        latency = max(2, int(rng.lognormvariate(3.6, 0.5)))
        size = 0 if status in (204, 304) else rng.randint(120, 48000)
        lines.append(
            _Line(
                "INFO",
                "gateway",
                f"request_id={rid} {method} {path} -> {status} in {min(latency, 1900)} ms bytes={size}",
            )
        )
        return lines

    def _template(self, lines: list[_Line], rid: str) -> None:
        rng = self.rng
        level, comp, text = rng.choice(_SERVICE_ERRORS)
        msg = text.format(rid=rid, table=rng.choice(("orders", "cart", "users")))
        lines.insert(rng.randint(2, len(lines) - 1), _Line(level, comp, msg, "exception"))

    def _attribute(self, lines: list[_Line], rid: str) -> None:
        rng = self.rng
        sub = rng.choice(("high_latency", "server_error", "slow_query", "empty_body"))
        last = lines[-1]
        head, rest = last.message.split(" -> ")
        status, _, _, _, size = rest.split()
        latency = rest.split(" in ")[1].split(" ms")[0]
        if sub == "high_latency":
            latency = str(rng.randint(30000, 60000))
        elif sub == "server_error":
            status = str(rng.choice((500, 502, 503)))
        elif sub == "empty_body":
            status, size = "200", "bytes=0"
        else:
            for i, ln in enumerate(lines):
                if ln.component == "db":
                    ln.message = ln.message.rsplit(" took ", 1)[0] + f" took {rng.randint(20000, 45000)} ms"
                    _mark(lines, i, sub)
                    return
            latency = str(rng.randint(30000, 60000))  # no db call in this request: a slow response instead
            sub = "high_latency"
        last.message = f"{head} -> {status} in {latency} ms {size}"
        _mark(lines, len(lines) - 1, sub)

    def _contextual(self, lines: list[_Line], rid: str) -> None:
        rng = self.rng
        sub = rng.choice(("missing_step", "wrong_order", "retry_burst"))
        if sub == "missing_step":  # served without the auth check
            lines.pop(1)
            _mark(lines, 1, sub)
        elif sub == "wrong_order":  # the response goes out before the work is done
            lines.insert(1, lines.pop())
            _mark(lines, 1, sub)
        else:  # the same lookup hammered in a tight loop
            i = next((i for i, ln in enumerate(lines) if ln.component in ("db", "cache")), 1)
            for k in range(rng.randint(3, 6)):
                src = lines[i]
                lines.insert(i + 1 + k, _Line(src.level, src.component, src.message, sub))

    def format(self, ts: float, line: _Line) -> str:
        ms = int((ts % 1) * 1000)
        return f"{_stamp(ts, '%Y-%m-%d %H:%M:%S')}.{ms:03d} {line.level:<5} {line.component}: {line.message}"


# --- the engine --------------------------------------------------------------------------------


class _Engine:
    """Interleaves concurrent sessions on a monotone clock and injects incidents at the target rate."""

    def __init__(
        self,
        sim: _HdfsSim | _ServiceSim,
        rng: random.Random,
        gt: GroundTruth,
        concurrency: int,
        lines_per_second: float,
    ) -> None:
        self.sim, self.rng, self.gt = sim, rng, gt
        self.concurrency = concurrency
        self.mean_gap = 1.0 / lines_per_second
        self.active: list[_Session] = []
        self.incident: Incident | None = None
        self.incident_until = 0.0
        self.incident_seconds = (10.0, 90.0)
        self.intensity = 0.0
        self.clock = 0.0
        self.planned_lines = 0
        self.planned_anomalous = 0
        self.planned_by_type = dict.fromkeys(gt.types, 0)

    def _new_session(self) -> _Session:
        rng, gt = self.rng, self.gt
        target = gt.anomaly_rate * self.planned_lines
        if self.incident is not None and (
            self.clock > self.incident_until or self.planned_anomalous > 1.5 * target + 50
        ):
            self.incident = None  # over, or far past the requested rate (matters in short logs)
        if self.incident is None and gt.types and gt.anomaly_rate > 0:
            if (
                self.planned_anomalous < target and rng.random() < 0.02
            ):  # random spacing; the rate check keeps the long-run share
                self._start_incident()
        if self.incident is not None and rng.random() < self.intensity:
            session = self.sim.session(self.incident.type)
            session.incident, session.anomaly_type = self.incident, self.incident.type
            self.incident.sessions.append(session.sid)
            marked = sum(ln.anomaly is not None for ln in session.lines)
            self.planned_anomalous += marked
            self.planned_by_type[self.incident.type] += marked
        else:
            session = self.sim.session(None)
        self.planned_lines += len(session.lines)
        return session

    def _start_incident(self) -> None:
        # An incident lasts a while (log time) and hits a share of the sessions that start meanwhile.
        rng = self.rng
        # The type furthest behind in anomalous lines goes next, so every type gets its share.
        kind = min(self.gt.types, key=lambda t: (self.planned_by_type[t], rng.random()))
        self.incident = Incident(len(self.gt.incidents) + 1, kind)
        self.gt.incidents.append(self.incident)
        self.incident_until = self.clock + rng.uniform(*self.incident_seconds)
        self.intensity = rng.uniform(0.3, 0.9)

    def run(self, out: IO[str], truth: IO[str], clock: float) -> float:
        rng, gt, active = self.rng, self.gt, self.active
        fmt = self.sim.format
        self.clock = clock
        for lineno in range(1, gt.lines + 1):
            while len(active) < self.concurrency:
                active.append(self._new_session())
            k = rng.randrange(len(active))
            session = active[k]
            line = session.lines[session.pos]
            session.pos += 1
            if session.pos == len(session.lines):
                active[k] = active[-1]
                active.pop()
            self.clock = clock = clock + rng.expovariate(1.0) * self.mean_gap
            out.write(fmt(clock, line) + "\n")
            if line.anomaly is not None and session.incident is not None:
                self._record(truth, lineno, clock, line, session)
        return clock

    def _record(self, truth: IO[str], lineno: int, ts: float, line: _Line, session: _Session) -> None:
        inc, gt = session.incident, self.gt
        assert inc is not None and session.anomaly_type is not None
        truth.write(
            json.dumps(
                {
                    "lineno": lineno,
                    "type": session.anomaly_type,
                    "subtype": line.anomaly,
                    "incident": inc.id,
                    "session": session.sid,
                    "timestamp": round(ts, 3),
                }
            )
            + "\n"
        )
        inc.start = ts if inc.start is None else inc.start
        inc.end = ts
        inc.lines += 1
        gt.anomalous_lines += 1
        gt.counts[session.anomaly_type] = gt.counts.get(session.anomaly_type, 0) + 1
        gt.subtype_counts[line.anomaly] = gt.subtype_counts.get(line.anomaly, 0) + 1


def _failure_windows(
    gt: GroundTruth, rng: random.Random, min_width_s: float, padding: tuple[float, float], false_alarm_rate: float
) -> None:
    """Padded (asymmetrically, hence shifted) windows around each incident, plus false alarms."""
    for inc in gt.incidents:
        if inc.start is None or inc.end is None:
            continue
        base = max(inc.end - inc.start, min_width_s)
        gt.windows.append(
            FailureWindow(inc.start - base * rng.uniform(*padding), inc.end + base * rng.uniform(*padding), inc.id)
        )
    span = gt.end_time - gt.start_time
    for _ in range(round(false_alarm_rate * len(gt.windows))):
        start = gt.start_time + rng.random() * span
        gt.windows.append(FailureWindow(start, start + min_width_s * rng.uniform(1.0, 3.0), None))
    gt.windows.sort(key=lambda w: w.start)
    starts, ends = gt._merged()
    covered = sum(min(e, gt.end_time) - max(s, gt.start_time) for s, e in zip(starts, ends, strict=True))
    gt.window_time_fraction = round(max(0.0, covered) / span, 4) if span > 0 else 0.0
    gt.incidents = [inc for inc in gt.incidents if inc.lines]  # cut off by the end of the log


def _check_args(kind: str, lines: int, anomaly_rate: float, types: Sequence[str], concurrency: int) -> None:
    if kind not in ("hdfs", "service"):
        raise GeneratorError(f"unknown log kind {kind!r}; one of hdfs, service")
    unknown = [t for t in types if t not in ANOMALY_TYPES]
    if unknown:
        raise GeneratorError(f"unknown anomaly type(s) {unknown}; known: {', '.join(ANOMALY_TYPES)}")
    if lines < 0 or not 0.0 <= anomaly_rate < 1.0 or concurrency < 1:
        raise GeneratorError("need lines >= 0, 0 <= anomaly_rate < 1 and concurrency >= 1")


def generate(
    path: str | Path,
    kind: Kind = "hdfs",
    lines: int = 100_000,
    anomaly_rate: float = 0.02,
    seed: int = 0,
    types: Sequence[str] = ANOMALY_TYPES,
    *,
    start: float = DEFAULT_START,
    lines_per_second: float = 20.0,
    concurrency: int = 16,
    window_min_s: float = 60.0,
    window_padding: tuple[float, float] = (0.1, 0.6),
    false_alarm_rate: float = 0.1,
) -> GroundTruth:
    """Write `lines` log lines to `path`, the anomalous lines to `<path>.truth.jsonl` and the summary
    (counts, incidents, failure windows) to `<path>.truth.json`. anomaly_rate is the share of lines.
    Each window pads its incident by base * U(window_padding) on each side, base = max(span, window_min_s)."""
    _check_args(kind, lines, anomaly_rate, types, concurrency)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    gt = GroundTruth(
        str(path),
        truth_path_for(path),
        kind,
        seed,
        lines,
        anomaly_rate,
        list(types),
        counts={t: 0 for t in types},
        start_time=start,
    )
    sim = _HdfsSim(rng) if kind == "hdfs" else _ServiceSim(rng)
    engine = _Engine(sim, rng, gt, concurrency, lines_per_second)
    with (
        open(path, "w", encoding="utf-8", buffering=1 << 20) as out,
        open(gt.truth_path, "w", encoding="utf-8", buffering=1 << 16) as truth,
    ):
        gt.end_time = engine.run(out, truth, start)
    _failure_windows(gt, random.Random(seed ^ 0x5EED), window_min_s, window_padding, false_alarm_rate)
    Path(gt.summary_path).write_text(json.dumps(gt.to_json()), encoding="utf-8")
    return gt
