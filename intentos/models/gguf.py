"""A small, bounded reader for the start of a GGUF file: the header and the metadata keys we check.

GGUF (little-endian): magic `GGUF`, uint32 version, uint64 tensor count, uint64 metadata KV count,
then KV pairs: a string key (uint64 length + UTF-8 bytes), a uint32 value type and the value.
We read pairs until `general.architecture`, `general.name` and the architecture's `context_length`
are found, skipping the others,
and refuse anything absurd (a key, string or array longer than a bound, more bytes read than a cap)
so a hostile file cannot make us allocate or read without limit. Nothing here loads tensors.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from intentos.errors import IntentosError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_KEY = 1 << 16            # bytes in one key
MAX_STRING = 1 << 20         # bytes in one string value (the keys we want are short; tokens are shorter)
MAX_ARRAY = 1 << 24          # elements in one array (a tokenizer has ~150k)
MAX_TENSORS = 1 << 24
MAX_KV = 1 << 16
MAX_READ = 256 << 20         # bytes read in all before giving up on finding the two keys
WANTED = ("general.architecture", "general.name")

# value type -> struct format of a scalar
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GGUFError(IntentosError):
    """The file does not start with a GGUF header we can read."""


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    tensor_count: int
    kv_count: int
    metadata: dict[str, Any]  # only the keys in WANTED that were found

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return value if isinstance(value, str) else None

    @property
    def context_length(self) -> int | None:
        """The context window the model was trained with (`{architecture}.context_length`), when given."""
        value = self.metadata.get(f"{self.architecture}.context_length")
        return value if isinstance(value, int) and value > 0 else None


class _Reader:
    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self.stream, self.limit, self.done = stream, limit, 0

    def take(self, n: int) -> bytes:
        if self.done + n > self.limit:
            raise GGUFError(f"the metadata runs past {self.limit} bytes without {' and '.join(WANTED)}")
        data = self.stream.read(n)
        if len(data) != n:
            raise GGUFError(f"the file ends inside the header (at byte {self.done + len(data)})")
        self.done += n
        return data

    def skip(self, n: int) -> None:
        while n > 0:
            step = min(n, 1 << 20)
            self.take(step)
            n -= step

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self, bound: int, what: str) -> bytes:
        length = self.unpack("<Q")
        if length > bound:
            raise GGUFError(f"{what} claims {length} bytes (more than {bound})")
        return self.take(length)


def _value(r: _Reader, vtype: int, keep: bool) -> Any:
    if vtype in _SCALARS:
        return r.unpack(_SCALARS[vtype])
    if vtype == _STRING:
        raw = r.string(MAX_STRING, "a string value")
        if not keep:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GGUFError(f"a string value is not UTF-8 ({exc.reason})") from exc
    if vtype == _ARRAY:
        etype, count = r.unpack("<I"), r.unpack("<Q")
        if count > MAX_ARRAY:
            raise GGUFError(f"an array claims {count} elements (more than {MAX_ARRAY})")
        if etype == _ARRAY:
            raise GGUFError("nested arrays are not supported")
        if etype in _SCALARS:
            r.skip(count * struct.calcsize(_SCALARS[etype]))
        elif etype == _STRING:
            for _ in range(count):
                r.skip(_checked_len(r))
        else:
            raise GGUFError(f"unknown array element type {etype}")
        return None
    raise GGUFError(f"unknown value type {vtype}")


def _checked_len(r: _Reader) -> int:
    length = r.unpack("<Q")
    if length > MAX_STRING:
        raise GGUFError(f"an array string claims {length} bytes (more than {MAX_STRING})")
    return length


def read_header_from(stream: IO[bytes], limit: int = MAX_READ) -> GGUFHeader:
    """Parse the header at the stream's position; stops once both WANTED keys are found."""
    r = _Reader(stream, limit)
    magic = r.take(4)
    if magic != MAGIC:
        raise GGUFError(f"no GGUF magic (the file starts with {magic!r})")
    version = r.unpack("<I")
    if version not in SUPPORTED_VERSIONS:
        raise GGUFError(f"unsupported GGUF version {version} (expected one of {SUPPORTED_VERSIONS})")
    tensors, kvs = r.unpack("<Q"), r.unpack("<Q")
    if tensors > MAX_TENSORS:
        raise GGUFError(f"the header claims {tensors} tensors (more than {MAX_TENSORS})")
    if kvs > MAX_KV:
        raise GGUFError(f"the header claims {kvs} metadata keys (more than {MAX_KV})")
    found: dict[str, Any] = {}
    wanted = set(WANTED)
    for _ in range(kvs):
        raw = r.string(MAX_KEY, "a metadata key")
        try:
            key = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GGUFError(f"a metadata key is not UTF-8 ({exc.reason})") from exc
        vtype = r.unpack("<I")
        value = _value(r, vtype, keep=key in wanted)
        if key in wanted:
            found[key] = value
            if key == "general.architecture" and isinstance(value, str):
                wanted.add(f"{value}.context_length")  # it comes right after the general.* keys
            if wanted <= found.keys():
                break
    return GGUFHeader(version=version, tensor_count=tensors, kv_count=kvs, metadata=found)


def read_header(path: str | Path, limit: int = MAX_READ) -> GGUFHeader:
    with open(path, "rb") as f:
        return read_header_from(f, limit)


# -- writing: only what the tests need to build a small valid-looking GGUF ----------------------------------


def _pack_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def build_header(metadata: dict[str, str | int], tensor_count: int = 0, version: int = 3) -> bytes:
    """A GGUF header with string and uint32 metadata values (no tensor infos): for tests and fixtures."""
    out = bytearray(MAGIC + struct.pack("<IQQ", version, tensor_count, len(metadata)))
    for key, value in metadata.items():
        out += _pack_string(key)
        if isinstance(value, str):
            out += struct.pack("<I", _STRING) + _pack_string(value)
        else:
            out += struct.pack("<I", 4) + struct.pack("<I", value)
    return bytes(out)
