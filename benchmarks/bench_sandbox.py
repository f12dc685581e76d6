"""What the safe sandbox I/O costs: descriptor-walked reads, atomic writes, listings, and a step's undo log.

Prints per-operation times of the Sandbox next to plain pathlib doing the same (which follows links and
checks nothing), for paths 1 and 6 folders deep, and the time of files.write in a journaled step with and
without its undo log.

    python benchmarks/bench_sandbox.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from intentos.sandbox import Sandbox

REPEATS = 400


def per_op(fn: Callable[[int], object], n: int = REPEATS) -> float:
    """Median of 5 rounds of n calls, in microseconds per call."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        rounds.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(rounds)


def _rows(sb: Sandbox, depth: int) -> list[tuple[str, float, float]]:
    """The same operations through the Sandbox and through pathlib, on a path `depth` folders deep."""
    root = sb.root
    folder = "/".join(f"d{i}" for i in range(depth - 1))
    rel = f"{folder}/f.txt" if folder else "f.txt"
    sb.write_text(rel, "x" * 4096)
    many = f"{folder}/many" if folder else "many"
    for i in range(50):
        sb.write_text(f"{many}/{i}.txt", "y")
    return [
        (f"read 4 KiB, depth {depth}", per_op(lambda i: sb.read_bytes(rel)),
         per_op(lambda i: (root / rel).read_bytes())),
        (f"stat, depth {depth}", per_op(lambda i: sb.stat(rel)), per_op(lambda i: (root / rel).stat())),
        (f"atomic write 4 KiB, depth {depth}", per_op(lambda i: sb.write_bytes(rel, b"z" * 4096), 100),
         per_op(lambda i: (root / rel).write_bytes(b"z" * 4096), 100)),
        (f"list 50 entries, depth {depth}", per_op(lambda i: sb.scandir(many), 100),
         per_op(lambda i: sorted((root / many).iterdir()), 100)),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sb = Sandbox(Path(tmp) / "sb")
        rows = [row for depth in (1, 6) for row in _rows(sb, depth)]
        print(f"{'operation':<32} {'sandbox µs':>12} {'pathlib µs':>12} {'ratio':>7}")
        for name, safe, plain in rows:
            print(f"{name:<32} {safe:>12.1f} {plain:>12.1f} {safe / plain:>7.1f}")
        print("(pathlib's write is neither atomic nor fsynced; the sandbox's is both, so most of its cost is fsync)")

        def step_write(i: int, logged: bool) -> None:
            if logged:
                sb.begin_step(f"bench.{i}")
            sb.write_bytes("step.txt", b"w" * 4096)
            if logged:
                sb.end_step()

        plain = per_op(lambda i: step_write(i, False), 100)
        logged = per_op(lambda i: step_write(i, True), 100)
        print(f"\nreplace a file in a step: {plain:.0f} µs without the undo log, {logged:.0f} µs with it "
              f"(+{logged - plain:.0f} µs: the log's folder, one fsynced note, a hard link, the discard)")


if __name__ == "__main__":
    main()
