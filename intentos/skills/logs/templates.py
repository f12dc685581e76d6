"""Fast online log template parser: general preprocessing, exact grouping, distinct-value merging.

    parser = TemplateParser()
    tid = parser.add("Accepted connection from 10.0.0.1:5432 after 12 ms")   # -> template id
    parser.template(tid)      # "Accepted connection from <*> after <*>"
    parser.templates()        # {id: template} for the current (canonical) templates

Design, and why:

1. Preprocessing does most of the work (Qin et al. 2024, "preprocessing is all you need"). One
   combined regex replaces what general log-format knowledge says is a value: timestamps/dates,
   sizes and durations with their unit ("13.9 KB", "250 ms"), and any chunk of a token that holds a
   digit (numbers, IPs, host:port, versions, hex, ids, paths with numbers). A chunk stops at the
   delimiters `= , ; ( ) [ ] { } " ' |` so "uid=0" keeps its key and "(x)" its parentheses.
2. Tokens are those chunks plus each delimiter on its own, so a value always sits at the same
   position for lines of one event. The masked token tuple is the group key: a dict lookup per
   line, and a bounded cache of whole messages skips even the regex for repeated lines.
3. Values without digits that no rule recognizes (user names, plain words) survive masking.
   Brain's observation (Yu et al. 2023) handles them: at a variable position many distinct values
   occur among otherwise identical lines. For each key and each position we count the distinct
   tokens seen with the rest of the line fixed; when a position reaches MIN_DISTINCT values it
   becomes `<*>` and those groups merge. Two or three values are more often different events
   ("... by client A" vs "... by client B"), so they stay apart.
4. Ids are stable: a merge keeps every old id valid as an alias of the surviving group
   (union-find), `add` returns the canonical id at the time, `canonical(id)` the current one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

WILDCARD = "<*>"
MIN_DISTINCT = 4  # distinct values at one position (rest of the line equal) that make it a variable
MESSAGE_CACHE = 100_000  # whole messages remembered (cleared when full)
MAX_CACHED_CHARS = 1_000  # longer messages are not remembered, so the cache stays small in bytes too
# Looking for variable positions costs a tuple per position per new key (quadratic in its length), so it
# is bounded: longer keys (real log lines have under 110 tokens) are grouped exactly, and once the slot
# tuples hold SLOT_BUDGET tokens in all, new keys are grouped exactly too. Memory and time stay bounded
# on any input (a megabyte of garbage, a line of a million words).
MAX_OBSERVED_TOKENS = 128
SLOT_BUDGET = 4_000_000

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_DELIM = "=,;()\\[\\]{}\"'|"
_CHUNK = f"[^\\s{_DELIM}]"
_UNIT = r"(?:[KMGTPE]?i?B|[Bb]ytes?|ms|us|ns|sec|secs|seconds?|min|mins|minutes?|hours?|days?)"
# Values, longest forms first. Each alternative is general log-format knowledge:
_VALUE = re.compile(
    # Every value starts a chunk (after whitespace, a delimiter or ".."): checked once up front, so
    # the scan fails fast at all other positions and never rescans a chunk from its middle.
    rf"(?:(?<![^\s{_DELIM}])|(?<=\.\.))(?:"
    # dates: "Wed Jun 29 10:48:01 2005", "Jun 29 10:48:01"
    rf"\b(?:{_DAY},?\s+)?{_MONTH}\s+\d{{1,2}},?\s+(?:\d{{4}}\s+)?\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?(?:\s+\d{{4}})?\b"
    # a size or duration with its unit, with an alternate form in parentheses: "850 bytes (0.83 KB)", "<1 sec"
    rf"|(?<![\w.])[<>~]?\d+(?:\.\d+)?\s?{_UNIT}\b(?:\s*\([^()]*\d[^()]*\))?"
    # a lone value in parentheses or brackets, or an empty pair: "(10.0.0.1)", "()", "[]"
    r"|(?<!\S)(?:\([^\s=()]*\d[^\s=()]*\)|\[[^\s=\[\]]*\d[^\s=\[\]]*\]|\(\)|\[\]|\{\})(?=[\s:,;.]|$)"
    # paths and anything with a path separator: "/usr/lib/x", "C:\\x\\y", "com.app/.Main"
    rf"|{_CHUNK}*[/\\]{_CHUNK}+"
    # quoted values of key="value", long hex runs: 'tag="Audio Mix"', "ffffffff"
    r'|(?<==)"[^"]*"|(?<![\w.-])[0-9a-fA-F]{8,}(?![\w.-])'
    # host names and dotted lowercase names: "zummit.com", "mail.example.org:25"
    r"|(?<![\w.-])[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?::\d+)?(?![\w.-])"
    # any other delimiter-free chunk with a digit: numbers, IPs, host:port, versions, hex, ids;
    # except a short name ending in one digit, which names a thing: "eth0", "md5", "IPv4"
    rf"|(?![A-Za-z]+\d(?![\w.-]))(?:{_CHUNK}(?<!\.\.))*\d{_CHUNK}*"
    ")"
)
# On bytes: bytes.translate is a table lookup, str.translate with a mapping is an order of magnitude slower.
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_DIGIT = re.compile(r"\d")
_K = TypeVar("_K", str, bytes)
# Tokens: delimiter-free chunks (an ellipsis "..." splits them), and each delimiter on its own.
_TOKEN = re.compile(f"[^\\s{_DELIM}.]+(?:\\.(?!\\.\\.)[^\\s{_DELIM}.]*)*|\\.{{3,}}|\\.+|[{_DELIM}]")


def _remember(cache: dict[_K, int], key: _K, gid: int) -> None:
    if len(cache) >= MESSAGE_CACHE:
        cache.clear()
    cache[key] = gid


class TemplateParser:
    """Online template miner: `add` one message at a time, ids never change meaning."""

    def __init__(self, min_distinct: int = MIN_DISTINCT) -> None:
        self.min_distinct = min_distinct
        self._key_group: dict[tuple[str, ...], int] = {}  # masked token tuple -> group id (maybe alias)
        self._parent: list[int] = []  # union-find over group ids
        self._template: list[tuple[str, ...]] = []  # per group id (valid for canonical ids)
        # Per group id: "1" where a token stood right after the one before it in the first line seen
        # ("uid=<*>"), "0" where whitespace came between, so a template reads like its lines.
        self._glue: list[str] = []
        self._shown: dict[int, str] = {}  # template text per canonical id, dropped when the template changes
        # (length, first token) -> generalized templates (keys with merged <*>), fewest wildcards first
        self._general: dict[tuple[int, str], list[tuple[str, ...]]] = {}
        self._count: list[int] = []
        # (length, position, tokens with that position blanked) -> {value: group id}
        self._slots: dict[tuple[int, tuple[str, ...]], dict[str, int]] = {}
        self._slot_tokens = 0  # tokens held by the slot tuples (bounded by SLOT_BUDGET)
        self._variable: set[tuple[int, tuple[str, ...]]] = set()  # slots that became variables
        self._cache: dict[bytes, int] = {}  # message shape -> group id
        self._exact: dict[str, int] = {}  # message -> group id, for messages whose key keeps a digit
        # Every distinct key in the order first seen: replaying them rebuilds this parser exactly (a state file).
        self._keys: list[tuple[tuple[str, ...], str]] = []

    @classmethod
    def replay(cls, keys: Iterable[tuple[tuple[str, ...], str]], counts: Iterable[int] = (),
               min_distinct: int = MIN_DISTINCT) -> TemplateParser:
        """The parser that saw these distinct keys (with their glue) in this order (`keys()`), with these
        group counts."""
        parser = cls(min_distinct)
        for key, glue in keys:
            if key not in parser._key_group and len(glue) == len(key) and set(glue) <= {"0", "1"}:
                parser._keys.append((key, glue))
                parser._new_key(key, glue)
        for gid, n in enumerate(counts):
            if gid < len(parser._count):
                parser._count[gid] = n
        return parser

    def keys(self) -> list[tuple[tuple[str, ...], str]]:
        """The distinct keys in the order first seen, each with its glue (see `replay`)."""
        return list(self._keys)

    def counts(self) -> list[int]:
        """Lines per group id (an id merged into another keeps what it had then; its root holds the sum)."""
        return list(self._count)

    # --- public --------------------------------------------------------------------------------

    def add(self, message: str) -> int:
        # Which digits a message has never changes its key, except in a name kept whole ("eth0"): lines
        # are remembered by their shape (every digit a 0), unless their key keeps a digit.
        shape = message.encode("utf-8", "surrogatepass").translate(_ZEROS)
        gid = self._cache.get(shape)
        if gid is None:
            gid = self._exact.get(message)
        if gid is None:
            masked = _VALUE.sub(WILDCARD, message)
            key = tuple(_TOKEN.findall(masked))
            gid = self._key_group.get(key)
            if gid is None:
                glue = _glue(masked)
                self._keys.append((key, glue))
                gid = self._new_key(key, glue)
            if len(message) <= MAX_CACHED_CHARS:
                if _DIGIT.search("".join(key)):
                    _remember(self._exact, message, gid)
                else:
                    _remember(self._cache, shape, gid)
        gid = self.canonical(gid)
        self._count[gid] += 1
        return gid

    def match(self, message: str) -> int | None:
        """The group a message belongs to, learning nothing; None when no template fits it."""
        key = tokens(message)
        gid = self._key_group.get(key)
        if gid is None:
            gid = self._match_variable(key)
        return None if gid is None else self.canonical(gid)

    def parameters(self, message: str, gid: int) -> list[str]:
        """The values of `message` at the variable positions of template `gid`, in order."""
        values: list[str] = []
        key = tokens(message, values)
        template = self._template[self.canonical(gid)]
        if len(template) != len(key):
            return values
        found, it = [], iter(values)
        for k, t in zip(key, template, strict=True):
            if k == WILDCARD:
                found.append(next(it, k))
            elif t == WILDCARD:
                found.append(k)
        return found

    def add_all(self, messages: Iterable[str]) -> list[int]:
        return [self.add(m) for m in messages]

    def canonical(self, gid: int) -> int:
        parent = self._parent
        root = gid
        while parent[root] != root:
            root = parent[root]
        while parent[gid] != root:  # path compression
            parent[gid], gid = root, parent[gid]
        return root

    def template(self, gid: int) -> str:
        root = self.canonical(gid)
        shown = self._shown.get(root)
        if shown is None:
            glue = self._glue[root]
            shown = self._shown[root] = "".join(t if i == 0 or glue[i] == "1" else " " + t
                                                for i, t in enumerate(self._template[root]))
        return shown

    def templates(self) -> dict[int, str]:
        return {g: self.template(g) for g in range(len(self._template)) if self._parent[g] == g}

    @property
    def groups(self) -> int:
        """Group ids handed out so far, merged ones included."""
        return len(self._parent)

    def count(self, gid: int) -> int:
        return self._count[self.canonical(gid)]

    # --- grouping ------------------------------------------------------------------------------

    def _new_group(self, key: tuple[str, ...], glue: str) -> int:
        gid = len(self._parent)
        self._parent.append(gid)
        self._template.append(key)
        self._glue.append(glue)
        self._count.append(0)
        return gid

    def _new_key(self, key: tuple[str, ...], glue: str) -> int:
        # A key matching an already generalized template joins it; otherwise it is a new group.
        gid = self._match_variable(key)
        if gid is None:
            gid = self._new_group(key, glue)
        self._key_group[key] = gid
        self._observe(key, gid)
        return self.canonical(gid)

    def _match_variable(self, key: tuple[str, ...]) -> int | None:
        # Blank every position that is a known variable slot (repeat: a slot is recorded with the
        # wildcards its template had then), and look up the template that remains.
        n = len(key)
        if n > MAX_OBSERVED_TOKENS:
            return None
        cur = key
        changed = True
        while changed:
            changed = False
            for i in range(1, n):
                if cur[i] == WILDCARD:
                    continue
                blanked = cur[:i] + (WILDCARD,) + cur[i + 1 :]
                if (n, blanked) in self._variable:
                    cur, changed = blanked, True
        found = None if cur is key else self._key_group.get(cur)
        if found is None and n:
            # Values new at two generalized positions at once match no recorded slot: compare with the
            # generalized templates of this length and first token, the most specific first.
            for general in self._general.get((n, key[0]), ()):
                if all(g == WILDCARD or g == k for g, k in zip(general, key, strict=True)):
                    return self._key_group[general]
        return found

    def _observe(self, key: tuple[str, ...], gid: int) -> None:
        n = len(key)
        if n > MAX_OBSERVED_TOKENS or self._slot_tokens + n * n > SLOT_BUDGET:
            return
        self._slot_tokens += n * n
        for i in range(1, n):  # the first token names the event (Drain's tree key), never a variable
            value = key[i]
            if value == WILDCARD:
                continue
            blanked = key[:i] + (WILDCARD,) + key[i + 1 :]
            slot = (n, blanked)
            values = self._slots.setdefault(slot, {})
            if value in values:
                continue
            values[value] = gid
            if slot in self._variable:
                continue
            if len(values) >= self.min_distinct:
                self._variable.add(slot)
                self._merge(blanked, values.values())

    def _merge(self, blanked: tuple[str, ...], gids: Iterable[int]) -> None:
        roots = sorted({self.canonical(g) for g in gids})
        existing = self._key_group.get(blanked)
        if existing is not None:
            roots = sorted(set(roots) | {self.canonical(existing)})
        keep = roots[0]
        for r in roots[1:]:
            self._parent[r] = keep
            self._count[keep] += self._count[r]
        self._template[keep] = _join(self._template[keep], blanked)
        self._shown.pop(keep, None)
        self._key_group[blanked] = keep
        joined = self._template[keep]
        self._key_group.setdefault(joined, keep)
        general = self._general.setdefault((len(joined), joined[0]), [])
        general += [t for t in (blanked, joined) if t not in general]
        general.sort(key=lambda t: t.count(WILDCARD))
        # The generalized template is itself a key: observe it so it can generalize further.
        self._observe(blanked, keep)


def _join(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(x if x == y else WILDCARD for x, y in zip(a, b, strict=True))


def _glue(masked: str) -> str:
    """For each token of a masked message: "1" if nothing separates it from the token before, else "0"."""
    flags, end = [], None
    for m in _TOKEN.finditer(masked):
        flags.append("1" if m.start() == end else "0")
        end = m.end()
    return "".join(flags)


def tokens(message: str, values: list[str] | None = None) -> tuple[str, ...]:
    """The masked tokens of a message: values replaced by `<*>`, delimiters as their own tokens.
    With `values`, the text each `<*>` replaced is appended to it, in order."""
    if values is None:
        return tuple(_TOKEN.findall(_VALUE.sub(WILDCARD, message)))

    def keep(m: re.Match[str]) -> str:
        values.append(m.group())
        return WILDCARD

    return tuple(_TOKEN.findall(_VALUE.sub(keep, message)))
