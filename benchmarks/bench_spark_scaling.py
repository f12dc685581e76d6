"""How much a second executor speeds up each Spark job on this machine (a local standalone cluster).

Rescaling can only bring a job closer to its runtime target if the scale-outs differ in runtime. This
prints, for each job and size, the wall time of the whole submission and of the job itself on 1 and on
W executors (static: no dynamic allocation), repeated, one run at a time.

    .venv/bin/python benchmarks/bench_spark_scaling.py                                    # about 6 minutes on 2 cores
    .venv/bin/python benchmarks/bench_spark_scaling.py --jobs pagerank --sizes 1000000 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from intentos.skills.dataflow.sparkcluster import LocalCluster


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", nargs="+", default=["kmeans", "sort", "sgd"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    w = args.workers
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp) / "work", workers=w) as cluster:
        print(f"{w} workers of 1 core, {args.partitions} partitions; seconds, mean of {args.repeats} "
              "(submission incl. driver start-up / job alone)")
        print(f"{'job':<9} {'size':>9} {'1 executor':>16} {f'{w} executors':>16} {'job speed-up':>12}")
        for job in args.jobs:
            for size in args.sizes:
                runs: dict[int, list[tuple[float, float]]] = {1: [], w: []}
                for _ in range(args.repeats):
                    for executors in (1, w):  # alternated, so drift in the machine's load hits both
                        run = cluster.submit(job, size, Path(tmp) / "events", executors=executors, dynamic=False,
                                             partitions=args.partitions)
                        runs[executors].append((run.seconds, float(run.result["seconds"])))
                shown = {n: (statistics.fmean(a for a, _ in r), statistics.fmean(b for _, b in r))
                         for n, r in runs.items()}
                speedup = shown[1][1] / shown[w][1]
                print(f"{job:<9} {size:>9,} {shown[1][0]:>7.1f} / {shown[1][1]:>6.1f} "
                      f"{shown[w][0]:>7.1f} / {shown[w][1]:>6.1f} {speedup:>11.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
