"""Names inside a job folder, shared by the loop (which writes them) and the job tools (which read them).

Kept free of torch so the CLI and the app load fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from intentos.skills.training.config import JobConfigError

CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
LATEST = "latest"  # a file in CHECKPOINTS naming the newest complete checkpoint folder
CHECKPOINT_NAME = re.compile(r"step_\d{1,12}")
MAX_POINTER_BYTES = 256


def inside(path: Path, folder: Path) -> bool:
    """Whether `path`, with every symlink followed, stays inside `folder` (also resolved)."""
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def latest_checkpoint(job_dir: Path) -> Path | None:
    """The newest complete checkpoint folder, or None; a `latest` pointer naming anything but a
    `step_N` folder of this job (a path, a link out of it, binary data) is an error naming the file."""
    pointer = job_dir / CHECKPOINTS / LATEST
    if not pointer.is_file():
        return None
    if not inside(pointer, job_dir):
        raise JobConfigError(f"{pointer}: leads outside the job folder (a symbolic link?)")
    try:
        with pointer.open("rb") as fh:
            raw = fh.read(MAX_POINTER_BYTES + 1)
    except OSError as exc:
        raise JobConfigError(f"{pointer}: cannot read it ({exc.strerror or exc})") from None
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise JobConfigError(f"{pointer}: not UTF-8 text (a binary file?)") from None
    if len(raw) > MAX_POINTER_BYTES or not CHECKPOINT_NAME.fullmatch(name):
        raise JobConfigError(f"{pointer}: does not name a checkpoint folder (step_N), got {name[:40]!r}")
    folder = job_dir / CHECKPOINTS / name
    if not inside(folder, job_dir):
        raise JobConfigError(f"{folder}: leads outside the job folder (a symbolic link?)")
    return folder
