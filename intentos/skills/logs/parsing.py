"""Template mining with drain3, persistent across processes, plus a tokenizer for models.

    parser = LogParser(ParserSettings(sim_th=0.5), state_path="state.json")
    for p in parser.parse(read_records("HDFS.log")):
        p.template_id, p.template, p.parameters
    parser.save()                      # also done when parse() runs to the end of its input
    parser.summary()                   # templates with counts, most frequent first

A new LogParser on the same state file continues with the same template ids. The state file holds
the settings too: masking or thresholds that differ from the saved ones would renumber templates,
so that is refused (pass settings=None to adopt the saved ones).

The state file is plain JSON built here from drain3's tree: the clusters (id, template tokens, size)
and the prefix-tree nodes (path of keys, cluster ids), validated with bounds on reading and rebuilt
from drain3's LogCluster and Node objects. drain3's own snapshots are jsonpickle, which rebuilds
whatever objects the file names (a state file from the sandbox could run code), so they are never
written or read.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from drain3 import TemplateMiner
from drain3.drain import Drain, LogCluster, Node
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from intentos.atomicfile import write_atomically
from intentos.errors import AppError, IntentosError
from intentos.skills.logs.records import LogRecord, read_records

STATE_FORMAT = "intentos-logparser"
STATE_VERSION = 2  # 1 held a drain3 (jsonpickle) snapshot: refused, never unpickled
# Bounds on a state file, so a hostile or broken one cannot exhaust memory while it is checked.
MAX_STATE_BYTES = 256 * 1024 * 1024
MAX_CLUSTERS = 1_000_000
MAX_NODES = 5_000_000
MAX_TEMPLATE_TOKENS = 1 << 16  # a 64 KiB line (the readers' cut) has at most 32 Ki tokens
MAX_TOKEN_CHARS = 1 << 20
MAX_DEPTH = 64

# drain3 logs every snapshot at INFO; a parser saving periodically would flood the user's log.
logging.getLogger("drain3").setLevel(logging.WARNING)


class ParserStateError(AppError):
    """A parser state file is corrupt, from another tool, or was made with other settings."""


# --- settings --------------------------------------------------------------------------------

# Why lookarounds instead of \b: "_" is a word character, so \b would miss "id_42" and "x=42".
_L = r"(?<![A-Za-z0-9])"
_R = r"(?![A-Za-z0-9])"
MASK_PATTERNS: dict[str, list[tuple[str, str]]] = {
    # kind -> [(regex, mask name)]; applied in the order of MASK_ORDER. No pattern matches whitespace,
    # so masking never changes the token count (parameters are read off token positions).
    "block_ids": [(r"blk_-?\d+", "BLK")],
    "ips": [(_L + r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}" + _R, "IP")],
    "paths": [(r"(?<![\w.<>/:])(?:/[\w.$@+~-]+){2,}/?", "PATH"), (r"(?<![\w])[A-Za-z]:\\[^\s:*?\"<>|]+", "PATH")],
    "ids": [
        (_L + r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}" + _R, "ID"),
        (_L + r"(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}" + _R, "ID"),
    ],
    "hex": [(_L + r"0[xX][0-9a-fA-F]+" + _R, "HEX")],
    "numbers": [(_L + r"[-+]?\d+(?:\.\d+)?" + _R, "NUM")],
}
MASK_ORDER = ("block_ids", "ips", "paths", "ids", "hex", "numbers")


class MaskingSettings(BaseModel):
    """Which kinds of variable text are masked before Drain sees a message."""

    model_config = ConfigDict(extra="forbid")

    block_ids: bool = True
    ips: bool = True
    paths: bool = True
    ids: bool = True
    hex: bool = True
    numbers: bool = True

    def instructions(self) -> list[MaskingInstruction]:
        return [
            MaskingInstruction(pattern, name)
            for kind in MASK_ORDER
            if getattr(self, kind)
            for pattern, name in MASK_PATTERNS[kind]
        ]


class ParserSettings(BaseModel):
    """Drain's knobs. sim_th: share of equal tokens to join a template; depth: prefix-tree depth."""

    model_config = ConfigDict(extra="forbid")

    masking: MaskingSettings = Field(default_factory=MaskingSettings)
    sim_th: float = Field(0.4, ge=0.0, le=1.0)
    depth: int = Field(4, ge=3, le=MAX_DEPTH)
    max_children: int = Field(100, ge=1, le=MAX_NODES)
    max_clusters: int | None = Field(None, ge=1, le=MAX_CLUSTERS)
    extra_delimiters: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=64)
    parametrize_numeric_tokens: bool = True

    def to_drain3(self) -> TemplateMinerConfig:
        config = TemplateMinerConfig()
        config.drain_sim_th = self.sim_th
        config.drain_depth = self.depth
        config.drain_max_children = self.max_children
        config.drain_max_clusters = self.max_clusters
        config.drain_extra_delimiters = list(self.extra_delimiters)
        config.parametrize_numeric_tokens = self.parametrize_numeric_tokens
        config.masking_instructions = self.masking.instructions()
        config.snapshot_compress_state = True
        config.profiling_enabled = False
        return config


# --- the state file ------------------------------------------------------------------------------

_Token = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TOKEN_CHARS)]
_Id = Annotated[int, Field(ge=1, le=2**53)]


class ClusterState(BaseModel):
    """One template: drain3's LogCluster as plain data."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: _Id
    tokens: list[_Token] = Field(max_length=MAX_TEMPLATE_TOKENS)
    size: int = Field(ge=1, le=2**63)


class NodeState(BaseModel):
    """One node of drain3's prefix tree: its keys from the root (token count, then leading tokens)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    path: list[_Token] = Field(min_length=1, max_length=MAX_DEPTH)
    clusters: list[_Id] = Field(default_factory=list, max_length=MAX_CLUSTERS)


class ParserState(BaseModel):
    """The whole state file. Checked for consistency, so the rebuilt tree is one drain3 could have built."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["intentos-logparser"]
    version: Literal[2]
    settings: ParserSettings
    lines: int = Field(0, ge=0, le=2**63)
    clusters_counter: int = Field(ge=0, le=2**53, strict=True)
    clusters: list[ClusterState] = Field(max_length=MAX_CLUSTERS)  # least recently used first
    tree: list[NodeState] = Field(max_length=MAX_NODES)

    @model_validator(mode="after")
    def _consistent(self) -> ParserState:
        by_id: dict[int, ClusterState] = {}
        for c in self.clusters:
            if c.id in by_id:
                raise ValueError(f"cluster {c.id} is listed twice")
            if c.id > self.clusters_counter:
                raise ValueError(f"cluster {c.id} is above clusters_counter {self.clusters_counter}")
            by_id[c.id] = c
        if self.settings.max_clusters is not None and len(by_id) > self.settings.max_clusters:
            raise ValueError(f"{len(by_id)} clusters, more than max_clusters {self.settings.max_clusters}")
        max_node_depth = self.settings.depth - 2
        paths: set[tuple[str, ...]] = set()
        placed: set[int] = set()
        for node in self.tree:
            key = tuple(node.path)
            if key in paths:
                raise ValueError(f"tree node {'/'.join(key)[:80]!r} is listed twice")
            paths.add(key)
            if not node.path[0].isdigit() or len(node.path[0]) > 6:
                raise ValueError(f"tree node {'/'.join(key)[:80]!r} does not start with a token count")
            if len(key) > max(1, max_node_depth):
                raise ValueError(f"tree node {'/'.join(key)[:80]!r} is deeper than depth {self.settings.depth}")
            if key == ("0",) and not node.clusters:
                raise ValueError("the node of empty messages has no cluster")
            for cid in node.clusters:
                cluster = by_id.get(cid)
                if cluster is None:
                    raise ValueError(f"tree node {'/'.join(key)[:80]!r} names unknown cluster {cid}")
                if cid in placed:
                    raise ValueError(f"cluster {cid} sits in more than one tree node")
                placed.add(cid)
                n = len(cluster.tokens)
                if node.path[0] != str(n) or len(key) != min(max_node_depth, max(n, 1)):
                    raise ValueError(f"cluster {cid} ({n} tokens) sits in the wrong tree node")
        missing = sorted(set(by_id) - placed)
        if missing:
            raise ValueError(f"cluster {missing[0]} is in no tree node")
        return self


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{msg}{more}"


def _snapshot(drain: Drain) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """drain3's clusters (least recently used first) and prefix-tree nodes as plain JSON data."""
    live = drain.id_to_cluster
    # An LRU cache (max_clusters) keeps its use order privately; keep it so eviction carries over.
    order = getattr(live, "_LRUCache__order", None)
    ids = list(order) if order is not None else list(live.keys())
    get = live.get  # LogClusterCache.get does not count as a use
    clusters = []
    for cid in ids:
        c = get(cid)
        if c is not None:
            clusters.append({"id": int(c.cluster_id), "tokens": list(c.log_template_tokens), "size": int(c.size)})
    nodes: list[dict[str, Any]] = []
    stack: list[tuple[list[str], Node]] = [([k], n) for k, n in reversed(drain.root_node.key_to_child_node.items())]
    while stack:
        path, node = stack.pop()
        alive = [cid for cid in node.cluster_ids if cid in live]  # drop ids of evicted clusters
        if path != ["0"] or alive:
            nodes.append({"path": path, "clusters": alive})
        stack.extend((path + [k], n) for k, n in reversed(node.key_to_child_node.items()))
    return clusters, nodes


def _rebuild(drain: Drain, state: ParserState) -> None:
    """Put validated clusters and tree nodes into a fresh drain3 Drain."""
    id_to_cluster = drain.id_to_cluster  # a dict, or drain3's LRU cache when max_clusters is set
    for c in state.clusters:
        cluster = LogCluster(c.tokens, c.id)
        cluster.size = c.size
        id_to_cluster[c.id] = cluster
    root = Node()
    for entry in state.tree:
        node = root
        for key in entry.path:
            child = node.key_to_child_node.get(key)
            if child is None:
                child = node.key_to_child_node[key] = Node()
            node = child
        node.cluster_ids = list(entry.clusters)
    drain.root_node = root
    drain.clusters_counter = state.clusters_counter


# --- results ---------------------------------------------------------------------------------


@dataclass(slots=True)
class ParsedRecord:
    """A record with its template. `template` is as mined so far: later lines can generalize it."""

    record: LogRecord
    template_id: int | None  # None only with learn=False for a message no template matches
    template: str | None
    parameters: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TemplateSummary:
    template_id: int
    template: str
    count: int


# --- the parser ------------------------------------------------------------------------------


class StateStore(Protocol):
    """Where a parser's state lives: a local file (the CLI) or a sandbox file (the app, via its Sandbox)."""

    def exists(self) -> bool:
        """Whether a state was saved there already."""

    def read(self, limit: int) -> bytes | None:
        """The bytes, None if there is no state yet; refuses (OSError/IntentosError) more than `limit`."""

    def write(self, data: bytes) -> None:
        """Replace the state atomically."""


class LocalStateFile:
    """A state file on the local disk; the write goes through an exclusive temp file with an unguessable name."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def read(self, limit: int) -> bytes | None:
        if not self.path.exists():
            return None
        with open(self.path, "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise OSError(f"more than the {limit} bytes a parser state may have")
        return data

    def write(self, data: bytes) -> None:
        write_atomically(self.path, [data])


class LogParser:
    """Streaming Drain template miner whose state can live in a file across processes."""

    def __init__(
        self,
        settings: ParserSettings | None = None,
        state_path: str | Path | None = None,
        *,
        autosave_every: int = 200_000,
        store: StateStore | None = None,
    ) -> None:
        self.state_path = Path(state_path) if state_path is not None else None
        self.store = store or (LocalStateFile(self.state_path) if self.state_path is not None else None)
        self.autosave_every = autosave_every
        saved = self._read_state() if self.state_path is not None else None
        if saved is not None:
            self.settings = self._check_settings(settings, saved)
            self.lines_seen = saved.lines
        else:
            self.settings = settings or ParserSettings()
            self.lines_seen = 0
        self._since_save = 0
        # No persistence handler on the miner: drain3 would jsonpickle the whole state on every new
        # template. We snapshot ourselves (plain JSON), every autosave_every lines and at the end of parse().
        self.miner = TemplateMiner(None, self.settings.to_drain3())
        if saved is not None:
            self._restore(saved)
        self._delimiters = list(self.settings.extra_delimiters)

    # State ------------------------------------------------------------------------------

    def _damaged(self, problem: str) -> ParserStateError:
        return ParserStateError(f"damaged parser state in {self.state_path}: {_one_line(problem)}")

    def _read_state(self) -> ParserState | None:
        assert self.store is not None
        try:
            raw = self.store.read(MAX_STATE_BYTES)
        except (OSError, IntentosError) as exc:
            raise self._damaged(f"cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
        if raw is None:
            return None
        try:
            saved = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise self._damaged("not UTF-8 text (a binary file?)") from None
        except (json.JSONDecodeError, RecursionError) as exc:
            raise self._damaged(f"not JSON ({exc})") from None
        if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
            raise self._damaged("not an intentos log-parser state file")
        version = saved.get("version")
        if version == 1:
            raise self._damaged("version 1 state (a drain3 jsonpickle snapshot), which is no longer loaded "
                                "because unpickling can run code; delete it or use a new state file")
        if version != STATE_VERSION:
            raise self._damaged(f"state version {version!r} is not supported")
        try:
            return ParserState.model_validate(saved)
        except ValidationError as exc:
            raise self._damaged(_describe(exc)) from None
        except RecursionError:
            raise self._damaged("nested too deeply") from None

    def _check_settings(self, settings: ParserSettings | None, saved: ParserState) -> ParserSettings:
        stored = saved.settings
        if settings is not None and settings != stored:
            raise ParserStateError(
                f"{self.state_path}: was made with other parser settings ({stored.model_dump()}); "
                "template ids would not carry over. Use the same settings, settings=None, or a new state file."
            )
        return stored

    def _restore(self, saved: ParserState) -> None:
        _rebuild(self.miner.drain, saved)

    def save(self) -> None:
        """Write the state file atomically (a crash mid-write leaves the previous state intact)."""
        if self.store is None:
            return
        clusters, nodes = _snapshot(self.miner.drain)
        state = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "settings": self.settings.model_dump(),
            "lines": self.lines_seen,
            "clusters_counter": int(self.miner.drain.clusters_counter),
            "clusters": clusters,
            "tree": nodes,
        }
        self.store.write(json.dumps(state, separators=(",", ":")).encode("utf-8"))
        self._since_save = 0

    def __enter__(self) -> LogParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.save()

    # Parsing ----------------------------------------------------------------------------

    def parse(self, records: Iterable[LogRecord | str], *, learn: bool = True) -> Iterator[ParsedRecord]:
        """Template every record, streaming. learn=False only matches known templates (no update)."""
        for lineno, item in enumerate(records, start=1):
            rec = item if isinstance(item, LogRecord) else LogRecord(lineno, item, item)
            yield self._learn(rec) if learn else self._match(rec)
        if learn:
            self.save()

    def parse_one(self, message: str) -> ParsedRecord:
        return self._learn(LogRecord(self.lines_seen + 1, message, message))

    def _learn(self, rec: LogRecord) -> ParsedRecord:
        result = self.miner.add_log_message(rec.message)
        self.lines_seen += 1
        self._since_save += 1
        if self.store is not None and self._since_save >= self.autosave_every:
            self.save()
        template = result["template_mined"]
        return ParsedRecord(rec, result["cluster_id"], template, self._parameters(template, rec.message))

    def _match(self, rec: LogRecord) -> ParsedRecord:
        cluster = self.miner.match(rec.message)
        if cluster is None:
            return ParsedRecord(rec, None, None, [])
        template = cluster.get_template()
        return ParsedRecord(rec, cluster.cluster_id, template, self._parameters(template, rec.message))

    def _tokens(self, text: str) -> list[str]:
        # The same split as drain3's Drain.get_content_as_tokens, so positions line up.
        text = text.strip()
        for d in self._delimiters:
            text = text.replace(d, " ")
        return text.split()

    def _parameters(self, template: str, message: str) -> list[str]:
        """Message tokens where the template has a mask or <*>; drain3's regex path as a fallback."""
        t_tokens, m_tokens = self._tokens(template), self._tokens(message)
        if len(t_tokens) == len(m_tokens):
            return [m for t, m in zip(t_tokens, m_tokens, strict=True) if t != m and "<" in t]
        return [p.value for p in self.miner.extract_parameters(template, message, exact_matching=False) or []]

    # Reporting --------------------------------------------------------------------------

    def summary(self) -> list[TemplateSummary]:
        """All templates with how many lines each has absorbed, most frequent first."""
        rows = [TemplateSummary(c.cluster_id, c.get_template(), c.size) for c in self.miner.drain.clusters]
        return sorted(rows, key=lambda r: (-r.count, r.template_id))

    def template(self, template_id: int) -> str | None:
        cluster = self.miner.drain.id_to_cluster.get(template_id)
        return cluster.get_template() if cluster is not None else None

    @property
    def template_count(self) -> int:
        return len(self.miner.drain.clusters)


# --- tokenizer for models ----------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"(?P<blk>blk_-?\d+)"
    r"|(?P<ip>(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.]))"
    r"|(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?<![A-Za-z0-9])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}(?![A-Za-z0-9]))"
    r"|(?P<hex>(?<![A-Za-z0-9])0[xX][0-9a-fA-F]+(?![A-Za-z0-9]))"
)
# Placeholders first; then camelCase pieces ("PacketResponder" -> packet, responder; "HTTPServer"
# -> http, server); digits become <num>. Everything else (punctuation, "_", "-") separates tokens.
_WORD = re.compile(r"<(?:blk|ip|id|hex)>|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+(?:\.\d+)?")
PLACEHOLDERS = ("<blk>", "<ip>", "<id>", "<hex>", "<num>")


def _placeholder(m: re.Match[str]) -> str:
    return f" <{m.lastgroup}> "


def tokenize(message: str) -> list[str]:
    """Lower-case word tokens for models: camelCase/snake_case/punctuation split, variable parts
    (block ids, IPs, UUIDs and hex ids, 0x.. numbers, numbers) replaced by PLACEHOLDERS."""
    text = _PLACEHOLDER.sub(_placeholder, message)
    return ["<num>" if w[0].isdigit() else w.lower() for w in _WORD.findall(text)]


# --- grouping accuracy ---------------------------------------------------------------------------


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    """The standard parsing metric (Zhu et al., "Tools and Benchmarks for Automated Log Parsing"):
    a line counts as correct when the set of lines in its predicted group is exactly the set of
    lines of its ground-truth event."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} ground-truth labels")
    if not truth:
        return 0.0
    truth_sizes = Counter(truth)
    members: dict[Hashable, list[Hashable]] = defaultdict(list)
    for p, t in zip(predicted, truth, strict=True):
        members[p].append(t)
    correct = 0
    for events in members.values():
        first = events[0]
        if truth_sizes[first] == len(events) and all(e == first for e in events):
            correct += len(events)
    return correct / len(truth)


def loghub_grouping_accuracy(structured_csv: str | Path, settings: ParserSettings | None = None) -> float:
    """Parse the Content column of a LogHub `*_structured.csv` and score it against its EventId."""
    parser = LogParser(settings)
    predicted: list[int | None] = []
    truth: list[str | None] = []
    for p in parser.parse(read_records(structured_csv, fmt="loghub-csv")):
        predicted.append(p.template_id)
        truth.append(p.record.event_id)
    return grouping_accuracy(predicted, truth)
