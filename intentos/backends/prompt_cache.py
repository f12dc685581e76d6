"""A prompt cache that survives restarts: llama.cpp's state after a prompt's static prefix, on disk.

The planner's prompt starts with what is the same for every intent (role, rules, the Function
Table) and ends with what changes (context with the time and app state, examples, the intent).
Reading that prefix is most of the work of a first intent (minutes for a 1.5B model and the whole
table on two cores). So the llama.cpp backend evaluates the prefix once, saves the sequence's
state (its KV cache) here, and a later process loads it and evaluates only the rest.

Where: `$INTENTOS_HOME/cache/prompts` when INTENTOS_HOME is set, else
`$XDG_CACHE_HOME/intentos/prompts`, else `~/.cache/intentos/prompts`.

A file's name is a hash of everything its state depends on: the model file's sha256 (hashed once
and remembered in `model-hashes.json` by path, size and mtime), the llama-cpp-python version, n_ctx,
the KV cache's types, the GPU layers, and the prefix's tokens. So a changed Function Table, another
model, another context size or another llama.cpp is another file, never a wrong one.

A file is a fixed magic, a JSON header, the prefix tokens (little-endian int32) and llama.cpp's
sequence state, raw. The header names the sha256 of both parts; a file whose header or data does
not check out (truncated, damaged, written for something else) is removed and treated as a miss.
Nothing is ever pickled. Files are written to a temporary name and renamed into place, so a reader
never sees half a file. The directory is bounded: the newest `max_files` files within `max_bytes`
are kept (reading a file counts as using it).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from intentos.atomicfile import write_atomically
from intentos.backends.base import Message

MAGIC = b"INTENTOS-KV\x00"
FORMAT = 1
SUFFIX = ".kvstate"
HASHES_FILE = "model-hashes.json"
_HEADER_MAX = 64 * 1024
_STALE_TMP_S = 3600.0


class StaticPrefixMessage(Message):
    """A message whose first `static_chars` characters are the same for every call (the cacheable prefix).

    The Controller marks its system message this way: role, rules and Function Table first, the
    context (time, app state) after. Backends that cannot use it see an ordinary Message; it is
    not serialised (a trace shows role and content only).
    """

    static_chars: int = Field(0, ge=0, exclude=True)


def static_prefix_chars(messages: Sequence[Message]) -> tuple[int, int] | None:
    """(message index, characters) of the static prefix: a marked message, else the first system message whole."""
    if not messages:
        return None
    first = messages[0]
    if isinstance(first, StaticPrefixMessage):
        return (0, min(first.static_chars, len(first.content))) if first.static_chars else None
    if first.role == "system" and first.content:
        return 0, len(first.content)
    return None


def cache_dir() -> Path:
    """Where prompt states are kept (see the module docstring)."""
    if env := os.environ.get("INTENTOS_HOME"):
        return Path(env).expanduser() / "cache" / "prompts"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "intentos" / "prompts"

# -- the model file's sha256, hashed once per (path, size, mtime) --------------------------------------------------

_HASH_LOCK = threading.Lock()
_HASHED: dict[tuple[str, int, int], str] = {}


def model_sha256(path: Path, directory: Path | None = None) -> str:
    """The file's sha256, from memory, else the sidecar in `directory` (path+size+mtime must match), else read."""
    path = Path(path).resolve()
    st = path.stat()
    ident = (str(path), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        if ident in _HASHED:
            return _HASHED[ident]
        sidecar = (directory or cache_dir()) / HASHES_FILE
        known: dict[str, Any] = {}
        try:
            loaded = json.loads(sidecar.read_text(encoding="utf-8"))
            known = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            pass
        entry = known.get(str(path))
        if (isinstance(entry, dict) and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns
                and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64):
            digest = entry["sha256"]
        else:
            h = hashlib.sha256()
            with path.open("rb") as f:
                while chunk := f.read(4 * 2**20):
                    h.update(chunk)
            digest = h.hexdigest()
            known = {p: e for p, e in known.items() if isinstance(e, dict) and Path(p).exists()}  # forget gone files
            known[str(path)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            try:
                write_atomically(sidecar, [json.dumps(known, indent=1, sort_keys=True).encode()])
            except OSError:
                pass  # a read-only cache folder: hash again next time
        _HASHED[ident] = digest
        return digest


# -- state files ---------------------------------------------------------------------------------------------------


def tokens_bytes(tokens: Sequence[int]) -> bytes:
    import numpy as np

    return np.asarray(tokens, dtype="<i4").tobytes()


def tokens_sha256(tokens: Sequence[int]) -> str:
    return hashlib.sha256(tokens_bytes(tokens)).hexdigest()


class CacheFileError(ValueError):
    """A state file that is damaged or was not written for what it is asked for."""


def write_state_file(path: Path, header: dict[str, Any], tokens: Sequence[int], state: bytes | memoryview) -> int:
    """Write one state file atomically; returns its size in bytes."""
    raw_tokens = tokens_bytes(tokens)
    state_view = memoryview(state).cast("B")
    header = {**header, "format": FORMAT, "n_tokens": len(tokens),
              "tokens_sha256": hashlib.sha256(raw_tokens).hexdigest(),
              "state_bytes": state_view.nbytes, "state_sha256": hashlib.sha256(state_view).hexdigest()}
    head = json.dumps(header, sort_keys=True).encode()
    write_atomically(path, [MAGIC, struct.pack("<I", len(head)), head, raw_tokens, state_view])
    return len(MAGIC) + 4 + len(head) + len(raw_tokens) + state_view.nbytes


def read_header(f: Any) -> dict[str, Any]:
    if f.read(len(MAGIC)) != MAGIC:
        raise CacheFileError("not an intentos prompt state (bad magic)")
    size = f.read(4)
    if len(size) != 4:
        raise CacheFileError("truncated header")
    (n,) = struct.unpack("<I", size)
    if not 0 < n <= _HEADER_MAX:
        raise CacheFileError(f"header of {n} bytes")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CacheFileError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CacheFileError("header of another format")
    for name in ("n_tokens", "state_bytes"):
        if not isinstance(header.get(name), int) or header[name] < 0:
            raise CacheFileError(f"header field {name} is not a count")
    return header


def read_state_file(path: Path, expect: dict[str, Any], tokens: Sequence[int]) -> bytearray:
    """The state bytes of a file written for `expect` (header fields) and exactly `tokens`; else CacheFileError."""
    with path.open("rb") as f:
        header = read_header(f)
        for name, value in expect.items():
            if header.get(name) != value:
                raise CacheFileError(f"written for {name}={header.get(name)!r}, not {value!r}")
        raw_tokens = tokens_bytes(tokens)
        if header["n_tokens"] != len(tokens) or header.get("tokens_sha256") != hashlib.sha256(raw_tokens).hexdigest():
            raise CacheFileError("written for other prefix tokens")
        if f.read(len(raw_tokens)) != raw_tokens:
            raise CacheFileError("the stored tokens differ from the header's")
        state = bytearray(header["state_bytes"])
        if f.readinto(state) != len(state) or f.read(1):
            raise CacheFileError("the state is truncated or followed by extra bytes")
    if hashlib.sha256(state).hexdigest() != header.get("state_sha256"):
        raise CacheFileError("the state's sha256 does not match (damaged)")
    return state


@dataclass
class CacheResult:
    """What one lookup or save did, for traces and tests."""

    path: Path
    ok: bool
    why: str = ""
    bytes: int = 0
    seconds: float = 0.0


class PromptCache:
    """One folder of state files, bounded in count and bytes."""

    def __init__(self, directory: Path | None = None, max_files: int = 16, max_bytes: int = 2 * 2**30) -> None:
        self.directory = Path(directory) if directory is not None else cache_dir()
        self.max_files = max_files
        self.max_bytes = max_bytes

    @staticmethod
    def key(signature: dict[str, Any], tokens: Sequence[int]) -> str:
        """The file name stem for a state: a hash of what it depends on and of the prefix tokens."""
        blob = json.dumps({"format": FORMAT, **signature, "tokens_sha256": tokens_sha256(tokens)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def load(self, signature: dict[str, Any], tokens: Sequence[int]) -> tuple[bytearray | None, CacheResult]:
        """The saved state for this prefix, or None (no file, or a bad one, which is then removed)."""
        start = time.perf_counter()
        path = self.path(self.key(signature, tokens))
        if not path.is_file():
            return None, CacheResult(path, False, "no file")
        try:
            state = read_state_file(path, signature, tokens)
        except (OSError, CacheFileError, MemoryError) as exc:
            self.discard(path)
            return None, CacheResult(path, False, f"ignored and removed: {exc}", seconds=time.perf_counter() - start)
        try:
            os.utime(path)  # recently used: kept longest
        except OSError:
            pass
        try:
            size = path.stat().st_size
        except OSError:
            size = len(state)
        return state, CacheResult(path, True, "hit", size, time.perf_counter() - start)

    def save(self, signature: dict[str, Any], tokens: Sequence[int], state: bytes | memoryview,
             info: dict[str, Any] | None = None) -> CacheResult:
        start = time.perf_counter()
        path = self.path(self.key(signature, tokens))
        try:
            size = write_state_file(path, {**(info or {}), **signature, "created": time.time()}, tokens, state)
        except OSError as exc:  # a full disk or a read-only folder costs the cache, not the answer
            return CacheResult(path, False, f"not saved: {exc}", seconds=time.perf_counter() - start)
        self.prune(keep=path)
        return CacheResult(path, True, "saved", size, time.perf_counter() - start)

    @staticmethod
    def discard(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    def entries(self) -> list[tuple[Path, os.stat_result]]:
        """State files, newest first."""
        found = []
        try:
            for entry in os.scandir(self.directory):
                if entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False):
                    found.append((Path(entry.path), entry.stat(follow_symlinks=False)))
        except OSError:
            return []
        found.sort(key=lambda e: e[1].st_mtime_ns, reverse=True)
        return found

    def prune(self, keep: Path | None = None) -> list[Path]:
        """Remove the oldest files beyond max_files or max_bytes (never `keep`), and stale temporary files."""
        removed: list[Path] = []
        total, count = 0, 0
        entries = self.entries()
        if keep is not None:  # the file just written counts first, whatever the clocks say
            entries.sort(key=lambda e: e[0] != keep)
        for path, st in entries:
            if path != keep and (count >= self.max_files or total + st.st_size > self.max_bytes):
                self.discard(path)
                removed.append(path)
                continue
            count += 1
            total += st.st_size
        now = time.time()
        try:
            for entry in os.scandir(self.directory):
                if entry.name.endswith(".tmp") and now - entry.stat(follow_symlinks=False).st_mtime > _STALE_TMP_S:
                    self.discard(Path(entry.path))
        except OSError:
            pass
        return removed


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    import numpy as np

    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64))
    return int(diff[0]) if diff.size else n
