"""Anomaly taxonomy for log lines (arXiv:2111.13462, used by arXiv:2312.14748) and which detector fits which type.

- point anomalies, split into
  - TEMPLATE: the message type itself is abnormal (rare or never seen in normal data);
  - ATTRIBUTE: a normal template whose parameter values are abnormal (latency 45 s, status 503);
- CONTEXTUAL: a normal message that is abnormal only given its neighbours in the same session
  (a missing step, a wrong order, a burst of repeats).

Evidence is deliberately simple and transparent, learned from normal reference data:
template counts (parsing.LogParser, the default miner), per-template parameter distributions (categorical
values for low-cardinality positions, the /16 network of IPv4 addresses, robust z-scores on log1p for
numeric ones, only outside the observed range), and per-session template transitions and repeat-run lengths.
"""

from __future__ import annotations

import math
import random
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from intentos.errors import AppError
from intentos.skills.logs.parsing import LogParser, ParserSettings

if TYPE_CHECKING:
    from intentos.skills.logs.a2log import A2LogSettings
    from intentos.skills.logs.pull import PullSettings

# A value is numeric when it is one number, optionally "key=" prefixed or unit suffixed ("42", "bytes=0",
# "45ms", "45 ms", "<1 sec", "850 bytes (0.83 KB)": the template miner keeps a unit with its number);
# ids that contain digits (blk_-123, 10.0.0.1:50010, part-00005) are not quantities.
_IPV4 = re.compile(r"^/?(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}(?::\d+)?$")
_NUMERIC = re.compile(r"^(?:[A-Za-z]+[=:])?[<>~]?([-+]?\d+(?:\.\d+)?) ?[A-Za-z%]*(?: ?\([^()]*\))?$")
START = -1  # pseudo template id before a session's first line
UNMATCHED = -2  # template id of a line that matches no template learned from normal data
MAX_NUMBERS = 5000  # numeric values kept per parameter position (reservoir sample): bounded memory


class TaxonomyError(AppError, ValueError):
    """Bad input to the taxonomy (no normal data, misaligned sessions, not fitted yet)."""


class AnomalyType(StrEnum):
    TEMPLATE = "template"
    ATTRIBUTE = "attribute"
    CONTEXTUAL = "contextual"
    UNKNOWN = "unknown"  # flagged by a detector, but no evidence of any type


@dataclass
class TaxonomySettings:
    rare_count: int = 1  # a template seen at most this often in normal data counts as rare
    categorical_max_values: int = 12  # positions with at most this many distinct values are categorical
    min_observations: int = 20  # a position needs this many normal values before it can be judged
    attribute_z: float = 4.0  # robust z (on log1p) beyond which an out-of-range number is abnormal
    seed: int = 0  # for the reservoir sample of numeric values


@dataclass
class Evidence:
    template: str | None
    rare_template: bool = False
    attributes: list[str] = field(default_factory=list)  # "pos 2: 503 unseen", ...
    context: list[str] = field(default_factory=list)  # "unseen transition", "burst x9"

    @property
    def kind(self) -> AnomalyType:
        if self.rare_template:
            return AnomalyType.TEMPLATE
        if self.attributes:
            return AnomalyType.ATTRIBUTE
        if self.context:
            return AnomalyType.CONTEXTUAL
        return AnomalyType.UNKNOWN


@dataclass
class _Position:
    values: Counter[str] = field(default_factory=Counter)
    numbers: list[float] = field(default_factory=list)
    stats: tuple[float, float, float, float] | None = None  # median, mad, min, max of log1p|x|
    seen_numbers: int = 0
    networks: Counter[str] = field(default_factory=Counter)  # /16 prefixes of IPv4 values


class TaxonomyModel:
    """Statistics of normal data; explains and classifies lines flagged by any detector."""

    def __init__(self, settings: TaxonomySettings | None = None, parser_settings: ParserSettings | None = None) -> None:
        self.settings = settings or TaxonomySettings()
        # The default miner keeps a word with few variants (a status word) in the template: a new one is a
        # template anomaly here, where drain3's typed masks would have made it an unseen categorical value.
        self.parser = LogParser(parser_settings or ParserSettings())
        self.counts: Counter[int] = Counter()
        self.positions: dict[tuple[int, int], _Position] = defaultdict(_Position)
        self.transitions: set[tuple[int, int]] = set()
        self.max_run: Counter[int] = Counter()
        self.fitted = False
        self._rng = random.Random(self.settings.seed)

    def fit(self, messages: Sequence[str], sessions: Sequence[str | None] | None = None) -> TaxonomyModel:
        """Learn from normal messages (in log order); `sessions` groups lines for the context statistics.

        Lines whose session is None (when `sessions` is given) count for templates and attributes but not
        for context: without a session there is no sequence to be out of order in."""
        if not messages:
            raise TaxonomyError("the taxonomy needs normal log messages to learn from, got none")
        _check_sessions(messages, sessions)
        for _ in self.parser.parse(messages):  # pass 1: mine templates
            pass
        parsed = list(self.parser.parse(messages, learn=False))  # pass 2: final templates and parameters
        for p in parsed:
            if p.template_id is None:
                continue
            self.counts[p.template_id] += 1
            for i, value in enumerate(p.parameters):
                self._observe(self.positions[(p.template_id, i)], value)
        for pos in self.positions.values():
            if pos.numbers:
                x = np.log1p(np.abs(np.asarray(pos.numbers)))
                med = float(np.median(x))
                pos.stats = (med, float(np.median(np.abs(x - med))), float(x.min()), float(x.max()))
        for seq in _sessions([p.template_id for p in parsed], sessions).values():
            prev = START
            for tid, run in _runs(seq):
                self.transitions.add((prev, tid))
                self.max_run[tid] = max(self.max_run[tid], run)
                prev = tid
        self.fitted = True
        return self

    def _observe(self, pos: _Position, value: str) -> None:
        pos.values[value] += 1
        if ip := _IPV4.match(value):
            pos.networks[f"{ip.group(1)}.{ip.group(2)}"] += 1
        m = _NUMERIC.match(value)
        if m:
            pos.seen_numbers += 1
            if len(pos.numbers) < MAX_NUMBERS:
                pos.numbers.append(float(m.group(1)))
            elif (j := self._rng.randrange(pos.seen_numbers)) < MAX_NUMBERS:
                pos.numbers[j] = float(m.group(1))

    def explain(self, messages: Sequence[str], sessions: Sequence[str | None] | None = None) -> list[Evidence]:
        """Evidence for every line (normal lines usually get none)."""
        if not self.fitted:
            raise TaxonomyError("the taxonomy model is not fitted: call fit() with normal messages first")
        _check_sessions(messages, sessions)
        parsed = list(self.parser.parse(messages, learn=False))
        out: list[Evidence] = []
        for p in parsed:
            ev = Evidence(p.template)
            if p.template_id is None or self.counts[p.template_id] <= self.settings.rare_count:
                ev.rare_template = True
            else:
                ev.attributes = [
                    f"param {i}: {value!r}"
                    for i, value in enumerate(p.parameters)
                    if self._abnormal_value(self.positions.get((p.template_id, i)), value)
                ]
            out.append(ev)
        tids = [p.template_id if p.template_id is not None else UNMATCHED for p in parsed]
        for seq_lines in _session_lines(tids, sessions).values():
            prev = START
            i = 0
            while i < len(seq_lines):
                tid = tids[seq_lines[i]]
                j = i
                while j + 1 < len(seq_lines) and tids[seq_lines[j + 1]] == tid:
                    j += 1
                run = j - i + 1
                # After an unmatched line the transition is new by construction: that line explains it.
                if (
                    tid >= 0
                    and prev != UNMATCHED
                    and (prev, tid) not in self.transitions
                    and self.counts[tid] > self.settings.rare_count
                ):
                    out[seq_lines[i]].context.append("unseen transition")
                if tid >= 0 and self.max_run[tid] and run > self.max_run[tid]:
                    for k in range(i + 1, j + 1):
                        out[seq_lines[k]].context.append(f"burst x{run}")
                prev, i = tid, j + 1
        return out

    def _abnormal_value(self, pos: _Position | None, value: str) -> bool:
        s = self.settings
        if pos is None or sum(pos.values.values()) < s.min_observations:
            return False
        if len(pos.values) <= s.categorical_max_values:
            return value not in pos.values
        # Addresses: many distinct hosts, but few networks; a host from an unseen /16 is abnormal.
        if (ip := _IPV4.match(value)) and 0 < len(pos.networks) <= s.categorical_max_values:
            return f"{ip.group(1)}.{ip.group(2)}" not in pos.networks
        m = _NUMERIC.match(value)
        if pos.stats is None or m is None:
            return False
        med, mad, lo, hi = pos.stats
        x = math.log1p(abs(float(m.group(1))))
        return (x > hi or x < lo) and abs(x - med) / (1.4826 * mad + 1e-3) > s.attribute_z

    def classify(
        self, messages: Sequence[str], detected: np.ndarray | None = None, sessions: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """Type per line as strings; "" where `detected` is False (all lines are typed when it is None)."""
        kinds = np.array([ev.kind.value for ev in self.explain(messages, sessions)], dtype=object)
        if detected is not None:
            kinds[~np.asarray(detected, dtype=bool)] = ""
        return kinds

    def detect(self, messages: Sequence[str], sessions: Sequence[str | None] | None = None) -> np.ndarray:
        """The statistics as a detector of their own: any evidence of any type."""
        return np.array([ev.kind is not AnomalyType.UNKNOWN for ev in self.explain(messages, sessions)])


def summarize(types: Sequence[str] | np.ndarray) -> dict[str, int]:
    """Count of detected lines per anomaly type (empty strings = not detected are skipped)."""
    counts = Counter(str(t) for t in types if t)
    return {k.value: counts.get(k.value, 0) for k in AnomalyType}


def unseen_template_baseline(train_messages: Sequence[str], test_messages: Sequence[str],
                             settings: ParserSettings | None = None) -> np.ndarray:
    """The trivial baseline: a test line whose template never occurred in training is anomalous (the
    default miner; pass ParserSettings(algorithm="drain3") for Drain's templates)."""
    parser = LogParser(settings or ParserSettings())
    for _ in parser.parse(train_messages):
        pass
    return np.array([p.template_id is None for p in parser.parse(test_messages, learn=False)])


def _check_sessions(messages: Sequence[str], sessions: Sequence[str | None] | None) -> None:
    if sessions is not None and len(sessions) != len(messages):
        raise TaxonomyError(f"{len(messages)} messages but {len(sessions)} session ids")


def _sessions(tids: Sequence[int | None], sessions: Sequence[str | None] | None) -> dict[Any, list[int]]:
    """Template ids per session; without `sessions` the whole log is one sequence."""
    out: dict[Any, list[int]] = defaultdict(list)
    for i, tid in enumerate(tids):
        key = sessions[i] if sessions is not None else ""
        if tid is not None and key is not None:
            out[key].append(tid)
    return out


def _session_lines(tids: Sequence[int], sessions: Sequence[str | None] | None) -> dict[Any, list[int]]:
    out: dict[Any, list[int]] = defaultdict(list)
    for i in range(len(tids)):
        key = sessions[i] if sessions is not None else ""
        if key is not None:
            out[key].append(i)
    return out


def _runs(seq: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for tid in seq:
        if runs and runs[-1][0] == tid:
            runs[-1] = (tid, runs[-1][1] + 1)
        else:
            runs.append((tid, 1))
    return runs


# --- detector fit ------------------------------------------------------------------------------

REASONS = {
    "template": (
        "Message-level detectors fit: the tokens themselves are new, so Logsy/A2Log push them away from the "
        "centre and PULL/LogLAB see a message type that never occurs outside failure windows. The unseen-template "
        "baseline is strong here too (high scores on HDFS/BGL/Thunderbird), and template anomalies dominate "
        "Thunderbird/Spirit/BGL (arXiv:2111.13462)."
    ),
    "attribute": (
        "Token models see a value only if the tokenizer keeps it: categorical values (a status word) change the "
        "tokens, but numbers become <num>, so a 45 s latency looks normal to A2Log/PULL. Per-template parameter "
        "statistics are the fitting tool; PULL helps only where the abnormal value changes the tokens."
    ),
    "contextual": (
        "Every message is normal on its own, so single-message scorers (Logsy, A2Log, LogLAB, PULL) cannot flag "
        "it by construction; this needs sequence/session models (transitions, counts, bursts). BGL has many "
        "contextual anomalies, which is where message-level methods lose recall."
    ),
}


@dataclass
class LabelledLog:
    """A log as arrays: messages, timestamps, sessions, per-line truth type ("" = normal), windows."""

    messages: list[str]
    timestamps: np.ndarray
    sessions: list[str | None]
    types: np.ndarray
    windows: list[tuple[float, float]]

    @property
    def anomalous(self) -> np.ndarray:
        return self.types != ""

    def slice(self, lo: int, hi: int) -> LabelledLog:
        return LabelledLog(
            self.messages[lo:hi], self.timestamps[lo:hi], self.sessions[lo:hi], self.types[lo:hi], self.windows
        )


def load_generated(log_path: str | Path) -> LabelledLog:
    """Read a log written by generator.generate() with its ground truth."""
    from intentos.skills.logs.generator import GroundTruth
    from intentos.skills.logs.records import read_records

    gt = GroundTruth.load(log_path)
    truth = gt.line_labels()
    records = list(read_records(log_path))
    return LabelledLog(
        messages=[r.message for r in records],
        timestamps=np.array([r.timestamp or 0.0 for r in records], dtype=np.float64),
        sessions=[r.session for r in records],
        types=np.array([truth[r.lineno].type if r.lineno in truth else "" for r in records], dtype=object),
        windows=[(w.start, w.end) for w in gt.windows],
    )


@dataclass
class FitReport:
    kind: str
    counts: dict[str, int]  # anomalous test lines per type
    recall: dict[str, dict[str, float]]  # detector -> type -> recall
    precision: dict[str, float]  # detector -> precision over all types
    reasons: dict[str, str] = field(default_factory=lambda: dict(REASONS))

    def best(self) -> dict[str, str]:
        """Per type, the detector with the highest measured recall ("none" when no detector finds any)."""
        out = {}
        for t in self.counts:
            name = max(self.recall, key=lambda d: self.recall[d].get(t, 0.0))
            out[t] = name if self.recall[name].get(t, 0.0) > 0 else "none"
        return out

    def table(self) -> str:
        types = list(self.counts)
        head = f"{'detector':<22}" + "".join(f"{t + ' (' + str(self.counts[t]) + ')':>18}" for t in types)
        rows = [head + f"{'precision':>11}"]
        for det, rec in self.recall.items():
            rows.append(
                f"{det:<22}" + "".join(f"{rec.get(t, 0.0):>18.2f}" for t in types) + f"{self.precision[det]:>11.2f}"
            )
        return "\n".join(rows)


def measure_fit(log: LabelledLog, kind: str, detections: dict[str, np.ndarray]) -> FitReport:
    """Recall per truth type and overall precision for each detector's boolean predictions."""
    detections = {name: np.asarray(pred, dtype=bool) for name, pred in detections.items()}
    for name, pred in detections.items():
        if len(pred) != len(log.messages):
            raise TaxonomyError(f"detector {name!r} gave {len(pred)} decisions for {len(log.messages)} lines")
    types = [t for t in ("template", "attribute", "contextual") if (log.types == t).any()]
    recall = {name: {t: float(pred[log.types == t].mean()) for t in types} for name, pred in detections.items()}
    precision = {name: float(log.anomalous[pred].mean()) if pred.any() else 0.0 for name, pred in detections.items()}
    return FitReport(kind, {t: int((log.types == t).sum()) for t in types}, recall, precision)


# Generator settings for short evaluation logs: a slower clock makes incidents (10-90 s of log time) a
# few hundred lines long and narrower windows leave known-normal time between them (PULL needs that).
EVAL_GENERATOR: dict[str, Any] = {"lines_per_second": 4.0, "window_min_s": 20.0}


def generated_split(
    directory: str | Path, kind: str = "service", lines: int = 6000, seed: int = 0, anomaly_rate: float = 0.03
) -> tuple[LabelledLog, LabelledLog]:
    """(train, test): an anomaly-free log of the system (seed) for the detectors that learn normal behaviour,
    and a log with injected anomalies and failure windows (seed + 1) to evaluate on."""
    from intentos.skills.logs.generator import generate

    out = []
    for offset, rate in ((0, 0.0), (1, anomaly_rate)):
        path = Path(directory) / f"{kind}-{seed + offset}.log"
        generate(path, kind=kind, lines=lines, anomaly_rate=rate, seed=seed + offset, **EVAL_GENERATOR)  # type: ignore[arg-type]
        out.append(load_generated(path))
    return out[0], out[1]


def detector_fit(
    kind: str = "service",
    lines: int = 6000,
    seed: int = 0,
    anomaly_rate: float = 0.03,
    a2log_settings: A2LogSettings | None = None,
    pull_settings: PullSettings | None = None,
) -> FitReport:
    """Measure recall per anomaly type of A2Log, PULL, the unseen-template baseline and these statistics on
    generated logs: the detectors learn from an anomaly-free log (A2Log, statistics, baseline) or from the
    test log's failure windows (PULL), and are scored on the test log (see generated_split)."""
    from intentos.skills.logs.a2log import A2Log
    from intentos.skills.logs.pull import label_from_failure_windows

    with tempfile.TemporaryDirectory() as tmp:
        train, test = generated_split(tmp, kind, lines, seed, anomaly_rate)
    detections = {
        "A2Log": A2Log(a2log_settings).fit(train.messages).predict(test.messages),
        "PULL": label_from_failure_windows(test.timestamps, test.messages, test.windows, "pull", pull_settings).labels,
        "unseen template": unseen_template_baseline(train.messages, test.messages),
        "taxonomy statistics": TaxonomyModel().fit(train.messages, train.sessions).detect(test.messages, test.sessions),
    }
    return measure_fit(test, kind, detections)
