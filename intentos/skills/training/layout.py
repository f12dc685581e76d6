"""Names inside a job folder, shared by the loop (which writes them) and the job tools (which read them).

Kept free of torch so the CLI and the app load fast.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
LATEST = "latest"  # a file in CHECKPOINTS naming the newest complete checkpoint folder


def latest_checkpoint(job_dir: Path) -> Path | None:
    pointer = job_dir / CHECKPOINTS / LATEST
    if not pointer.is_file():
        return None
    return job_dir / CHECKPOINTS / pointer.read_text().strip()
