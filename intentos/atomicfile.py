"""Writing a file on the local disk (outside any sandbox) atomically, the one way intentos does it.

`mkstemp` creates an exclusive temporary file with a random name beside the target, so a link planted
at a guessable temporary name cannot redirect the write; the data is fsynced, then renamed over the
target, so a crash never leaves half a file. Sandbox files are written by `Sandbox.write_bytes` instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomically(path: Path, parts: Iterable[bytes | memoryview]) -> Path:
    """Write `parts`, in order, as the new content of `path` (its folder is created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for part in parts:
                fh.write(part)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # what a plain open() would have made, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
