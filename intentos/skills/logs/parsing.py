"""Template mining, persistent across processes, plus a tokenizer for models.

Two miners behind one LogParser: `tokens` (the default, `templates.TemplateParser`: one-pass
general preprocessing and exact grouping, one configuration for every log) and `drain3` (the
baseline, Drain's prefix tree with per-kind masking and a similarity threshold).

    parser = LogParser(ParserSettings(), state_path="state.json")
    for p in parser.parse(read_records("HDFS.log")):
        p.template_id, p.template, p.parameters
    parser.save()                      # also done when parse() runs to the end of its input
    parser.summary()                   # templates with counts, most frequent first

A new LogParser on the same state file continues with the same template ids. The state file holds
the settings too: masking or thresholds that differ from the saved ones would renumber templates,
so that is refused (pass settings=None to adopt the saved ones).

The state file is plain JSON. For `tokens` it is the distinct masked keys in the order first seen
(replaying them rebuilds the miner exactly) and the line count of each template. For `drain3` it
is built here from drain3's tree: the clusters (id, template tokens, size)
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
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
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
from intentos.skills.logs.templates import TemplateParser

STATE_FORMAT = "intentos-logparser"
STATE_VERSION = 3  # the tokens miner's state
DRAIN3_STATE_VERSION = 2  # drain3's tree as plain JSON; 1 held a drain3 (jsonpickle) snapshot: refused, never unpickled
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
    """Which miner, and drain3's knobs (masking, sim_th: share of equal tokens to join a template,
    depth: prefix-tree depth ...), which the `tokens` miner does not need: it has one configuration."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["tokens", "drain3"] = "tokens"
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


class _StateFile(BaseModel):
    """What every parser state file starts with: its format, the settings it was made with, lines seen."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["intentos-logparser"]
    settings: ParserSettings
    lines: int = Field(0, ge=0, le=2**63)


class ParserState(_StateFile):
    """The drain3 state file. Checked for consistency, so the rebuilt tree is one drain3 could have built."""

    version: Literal[2]
    clusters_counter: int = Field(ge=0, le=2**53, strict=True)
    clusters: list[ClusterState] = Field(max_length=MAX_CLUSTERS)  # least recently used first
    tree: list[NodeState] = Field(max_length=MAX_NODES)

    @model_validator(mode="after")
    def _consistent(self) -> ParserState:
        if self.settings.algorithm != "drain3":
            raise ValueError("a drain3 state holds settings of another miner")
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


class TokenParserState(_StateFile):
    """The state file of the `tokens` miner: its distinct keys in the order first seen, and lines per template."""

    version: Literal[3]
    keys: list[list[_Token]] = Field(max_length=MAX_CLUSTERS)
    # per key: "1" where a token is glued to the one before it (how its template is shown)
    glue: list[Annotated[str, StringConstraints(pattern=r"^[01]*$", max_length=MAX_TEMPLATE_TOKENS)]] = Field(
        max_length=MAX_CLUSTERS)
    counts: list[Annotated[int, Field(ge=0, le=2**63)]] = Field(max_length=MAX_CLUSTERS)

    @model_validator(mode="after")
    def _bounded(self) -> TokenParserState:
        if self.settings.algorithm != "tokens":
            raise ValueError("a tokens state holds settings of another miner")
        if len(self.glue) != len(self.keys):
            raise ValueError(f"{len(self.keys)} keys but {len(self.glue)} glue strings")
        for key, glue in zip(self.keys, self.glue, strict=True):
            if len(key) > MAX_TEMPLATE_TOKENS or len(glue) != len(key):
                raise ValueError(f"a key of {len(key)} tokens with glue for {len(glue)}")
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
    """A record with its template. `template` is as mined so far: later lines can generalize it.
    `parameters` (the message's values at the template's variable positions) are read off when asked
    for, so mining a log without looking at them never pays for it."""

    record: LogRecord
    template_id: int | None  # None only with learn=False for a message no template matches
    template: str | None
    _parameters: list[str] | Callable[[], list[str]] = field(default_factory=list)

    @property
    def parameters(self) -> list[str]:
        if callable(self._parameters):
            self._parameters = self._parameters()
        return self._parameters


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


class _Miner(Protocol):
    """What LogParser needs of a template miner (ids, templates, counts, state)."""

    def learn(self, message: str) -> tuple[int, str, Callable[[], list[str]]]: ...
    def match(self, message: str) -> tuple[int, str, Callable[[], list[str]]] | None: ...
    def summary(self) -> list[TemplateSummary]: ...
    def template(self, template_id: int) -> str | None: ...
    def count(self) -> int: ...
    def state(self) -> dict[str, Any]: ...
    def current(self, template_id: int) -> int: ...


class _TokensMiner:
    """`templates.TemplateParser` behind the miner interface."""

    def __init__(self, saved: TokenParserState | None) -> None:
        if saved is None:
            self.parser = TemplateParser()
        else:
            self.parser = TemplateParser.replay(((tuple(k), g) for k, g in zip(saved.keys, saved.glue, strict=True)),
                                                saved.counts)

    def learn(self, message: str) -> tuple[int, str, Callable[[], list[str]]]:
        gid = self.parser.add(message)
        return gid, self.parser.template(gid), partial(self.parser.parameters, message, gid)

    def match(self, message: str) -> tuple[int, str, Callable[[], list[str]]] | None:
        gid = self.parser.match(message)
        if gid is None:
            return None
        return gid, self.parser.template(gid), partial(self.parser.parameters, message, gid)

    def summary(self) -> list[TemplateSummary]:
        return [TemplateSummary(gid, template, self.parser.count(gid))
                for gid, template in self.parser.templates().items()]

    def template(self, template_id: int) -> str | None:
        return self.parser.template(template_id) if 0 <= template_id < self.parser.groups else None

    def count(self) -> int:
        return len(self.parser.templates())

    def current(self, template_id: int) -> int:
        return self.parser.canonical(template_id)

    def state(self) -> dict[str, Any]:
        keys = self.parser.keys()
        return {"version": STATE_VERSION, "keys": [list(k) for k, _ in keys], "glue": [g for _, g in keys],
                "counts": self.parser.counts()}


class _Drain3Miner:
    """drain3's TemplateMiner behind the miner interface. No persistence handler on the miner: drain3
    would jsonpickle the whole state on every new template; LogParser saves plain JSON itself."""

    def __init__(self, settings: ParserSettings, saved: ParserState | None) -> None:
        self.miner = TemplateMiner(None, settings.to_drain3())
        if saved is not None:
            _rebuild(self.miner.drain, saved)
        self._delimiters = list(settings.extra_delimiters)

    def learn(self, message: str) -> tuple[int, str, Callable[[], list[str]]]:
        result = self.miner.add_log_message(message)
        template = result["template_mined"]
        return result["cluster_id"], template, partial(self._parameters, template, message)

    def match(self, message: str) -> tuple[int, str, Callable[[], list[str]]] | None:
        cluster = self.miner.match(message)
        if cluster is None:
            return None
        template = cluster.get_template()
        return cluster.cluster_id, template, partial(self._parameters, template, message)

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

    def summary(self) -> list[TemplateSummary]:
        return [TemplateSummary(c.cluster_id, c.get_template(), c.size) for c in self.miner.drain.clusters]

    def template(self, template_id: int) -> str | None:
        cluster = self.miner.drain.id_to_cluster.get(template_id)
        return cluster.get_template() if cluster is not None else None

    def count(self) -> int:
        return len(self.miner.drain.clusters)

    def current(self, template_id: int) -> int:
        return template_id  # a drain3 cluster keeps its id while its template generalizes

    def state(self) -> dict[str, Any]:
        clusters, nodes = _snapshot(self.miner.drain)
        return {"version": DRAIN3_STATE_VERSION, "clusters_counter": int(self.miner.drain.clusters_counter),
                "clusters": clusters, "tree": nodes}


class LogParser:
    """Streaming template miner (`tokens` by default, or `drain3`) whose state can live in a file across processes."""

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
        saved = self._read_state() if self.store is not None else None
        if saved is not None:
            self.settings = self._check_settings(settings, saved)
            self.lines_seen = saved.lines
        else:
            self.settings = settings or ParserSettings()
            self.lines_seen = 0
        self._since_save = 0
        self.miner: _Miner
        if self.settings.algorithm == "drain3":
            self.miner = _Drain3Miner(self.settings, saved if isinstance(saved, ParserState) else None)
        else:
            self.miner = _TokensMiner(saved if isinstance(saved, TokenParserState) else None)

    # State ------------------------------------------------------------------------------

    def _damaged(self, problem: str) -> ParserStateError:
        return ParserStateError(f"damaged parser state in {self.state_path}: {_one_line(problem)}")

    def _read_state(self) -> ParserState | TokenParserState | None:
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
        model = {DRAIN3_STATE_VERSION: ParserState, STATE_VERSION: TokenParserState}.get(version)
        if model is None:
            raise self._damaged(f"state version {version!r} is not supported")
        if model is ParserState and isinstance(saved.get("settings"), dict):
            saved["settings"].setdefault("algorithm", "drain3")  # version 2 was written before there was a choice
        try:
            return model.model_validate(saved)
        except ValidationError as exc:
            raise self._damaged(_describe(exc)) from None
        except RecursionError:
            raise self._damaged("nested too deeply") from None

    def _check_settings(self, settings: ParserSettings | None, saved: ParserState | TokenParserState) -> ParserSettings:
        stored = saved.settings
        if settings is not None and settings != stored:
            raise ParserStateError(
                f"{self.state_path}: was made with other parser settings ({stored.model_dump()}); "
                "template ids would not carry over. Use the same settings, settings=None, or a new state file."
            )
        return stored

    def save(self) -> None:
        """Write the state file atomically (a crash mid-write leaves the previous state intact)."""
        if self.store is None:
            return
        state = {"format": STATE_FORMAT, "settings": self.settings.model_dump(), "lines": self.lines_seen,
                 **self.miner.state()}
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
        template_id, template, parameters = self.miner.learn(rec.message)
        self.lines_seen += 1
        self._since_save += 1
        if self.store is not None and self._since_save >= self.autosave_every:
            self.save()
        return ParsedRecord(rec, template_id, template, parameters)

    def _match(self, rec: LogRecord) -> ParsedRecord:
        found = self.miner.match(rec.message)
        if found is None:
            return ParsedRecord(rec, None, None, [])
        return ParsedRecord(rec, *found)

    # Reporting --------------------------------------------------------------------------

    def summary(self) -> list[TemplateSummary]:
        """All templates with how many lines each has absorbed, most frequent first."""
        return sorted(self.miner.summary(), key=lambda r: (-r.count, r.template_id))

    def template(self, template_id: int) -> str | None:
        return self.miner.template(template_id)

    def current_id(self, template_id: int) -> int:
        """The id a template handed out earlier has now: the tokens miner merges templates that turn out to
        be one (the old id stays valid and leads here); a drain3 cluster keeps its id."""
        return self.miner.current(template_id)

    @property
    def template_count(self) -> int:
        return self.miner.count()


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
    """Parse the Content column of a LogHub `*_structured.csv` and score it against its EventId, each
    line in the group its template is in once the whole file is parsed (as the benchmark scores Drain)."""
    parser = LogParser(settings)
    predicted: list[int | None] = []
    truth: list[str | None] = []
    for p in parser.parse(read_records(structured_csv, fmt="loghub-csv")):
        predicted.append(p.template_id)
        truth.append(p.record.event_id)
    return grouping_accuracy([None if p is None else parser.current_id(p) for p in predicted], truth)
