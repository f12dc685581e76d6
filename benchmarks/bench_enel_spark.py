"""Enel on real Spark runs: remaining-time error on held-out runs, and a runtime target met by rescaling.

    .venv/bin/python benchmarks/bench_enel_spark.py                 # about 10 minutes on 2 cores
    .venv/bin/python benchmarks/bench_enel_spark.py --seeds 2 --job grep --size 400000

Runs (a local standalone cluster, `--workers` workers of 1 core; every run of one job at one size, so
Enel sees one recurring application): for each seed, the job on 1 and on W executors, and two rescaled
runs, 1 -> W and W -> 1 executors once half of its Spark jobs are done (through the executor control
endpoint, as `dataflow.rescale` does). The last seed's runs are held out; Enel is trained on the others.

Remaining-time error: at every job boundary of a held-out run (the log as it was when that job ended,
`EventLog.until`), each predictor's remaining seconds against what the run really took:
- Enel trained on the real runs;
- Enel trained on the generator's event logs of the same job kind (eventgen), where it applies;
- linear extrapolation of stage progress: time since the first stage x (stages left / stages done),
  counting the stages that run in the training runs (Spark also lists stages it skips).

Target: a run starting on 1 executor with a runtime target between the 1- and W-executor runtimes, once
left alone and once rescaled by Enel's plan after its first job; how far each ends from the target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from intentos.skills.dataflow.enel import Enel, EnelConfig, rescale_decision
from intentos.skills.dataflow.eventlog import EventLog, parse_eventlog
from intentos.skills.dataflow.ops import QUICK_ENEL
from intentos.skills.dataflow.sparkcluster import LocalCluster, SparkApp
from intentos.skills.dataflow.sparkcontrol import ControlError, get_executors, set_executors


def wait_for_jobs(app: SparkApp, done: int, timeout_s: float = 300) -> EventLog | None:
    """The live log once `done` Spark jobs have ended (None if the application ended first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and app.process.poll() is None:
        path = app.eventlog()
        if path is not None:
            try:
                log = parse_eventlog(path)
                if sum(j.completed_ms is not None for j in log.jobs) >= done:
                    return log
            except Exception:  # noqa: BLE001, S110 - a log being written: try again
                pass
        time.sleep(0.3)
    return None


def live_run(cluster: LocalCluster, job: str, size: int, out: Path, seed: int, start: int, after_jobs: int,
             decide: object, partitions: int) -> EventLog:
    """A rescalable run starting on `start` executors; once `after_jobs` jobs are done, `decide(log)` gives
    the executors to scale to (None: leave it)."""
    app = cluster.launch(job, size, out, seed=seed, executors=start, rescalable=True, partitions=partitions)
    log = wait_for_jobs(app, after_jobs)
    if log is not None:
        target = decide(log)  # type: ignore[operator]
        if target is not None:
            try:
                if get_executors(app.control_url) != target:  # type: ignore[arg-type]
                    set_executors(app.control_url, target)  # type: ignore[arg-type]
            except ControlError as exc:
                print(f"  (rescale skipped: {exc})")
    return parse_eventlog(app.wait().eventlog)


def boundaries(log: EventLog) -> list[int]:
    """Times at which a job ended, except the last (nothing is left to predict there)."""
    ends = sorted(j.completed_ms for j in log.jobs if j.completed_ms is not None)
    return ends[:-1]


def linear(cut: EventLog, total_stages: float) -> float:
    """Remaining time if the stages left take as long on average as those done so far (timed from the first
    stage, so the application's start-up, which does not scale with the work, is not extrapolated)."""
    done = sum(s.completed_ms is not None for s in cut.stages)
    first = min((s.submitted_ms for s in cut.stages if s.submitted_ms is not None), default=cut.last_ms)
    elapsed = (cut.last_ms - first) / 1000
    return elapsed * max(total_stages - done, 0) / max(done, 1)


def errors(logs: list[EventLog], predict: object) -> list[float]:
    out = []
    for log in logs:
        end = log.end_ms or log.last_ms
        for t in boundaries(log):
            truth = (end - t) / 1000
            out.append(abs(predict(log.until(t)) - truth))  # type: ignore[operator]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--job", default="sgd")
    ap.add_argument("--size", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3, help="seeds of runs; the last one is held out")
    ap.add_argument("--epochs", type=int, default=None, help="Enel epochs (default: the quick settings')")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    w = args.workers
    config = EnelConfig(**{**QUICK_ENEL, **({"epochs": args.epochs} if args.epochs else {})})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp) / "work", workers=w) as cluster:
        out = Path(tmp) / "events"
        runs: dict[int, list[EventLog]] = {}
        print(f"{args.job} at {args.size:,} rows, {args.partitions} partitions, {w} workers of 1 core")
        print(f"{'seed':>4} {'executors':<10} {'runtime s':>9} {'jobs':>5} {'stages':>6}")
        half = 1  # the job boundary rescaled runs change at: half of the jobs, once the first run has shown them
        for seed in range(args.seeds):
            runs[seed] = []
            for start, then in ((1, None), (w, None), (1, w), (w, 1)):
                log = live_run(cluster, args.job, args.size, out, seed, start, after_jobs=half,
                               decide=lambda _log, n=then: n, partitions=args.partitions)
                runs[seed].append(log)
                half = max(1, len(log.jobs) // 2)
                shown = f"{start}" + (f"->{then} @{half}" if then else "")
                print(f"{seed:>4} {shown:<10} {log.runtime_s:>9.1f} {len(log.jobs):>5} {len(log.stages):>6}",
                      flush=True)
        train = [log for seed in range(args.seeds - 1) for log in runs[seed]]
        test = runs[args.seeds - 1]
        enel = Enel.train(train, config)
        total_stages = len(enel.template(test[0].app_name).stages)
        # Stages that run: Spark lists stages it then skips (their shuffle output exists), which never complete.
        ran = statistics.median(sum(s.completed_ms is not None for s in log.stages) for log in train)

        from intentos.skills.dataflow.eventgen import KINDS, generate_training_set

        generated = generate_training_set(Path(tmp) / "generated", kinds=(args.job,), scaleouts=(1, 2, 4),
                                          runs_per_scaleout=2) if args.job in KINDS else None
        rows = {
            "Enel, trained on real runs": errors(test, lambda cut: enel.predict_remaining(cut).remaining_s),
            "linear extrapolation of stage progress": errors(test, lambda cut: linear(cut, ran)),
        }
        note = ""
        if generated is not None:
            gen_logs = [parse_eventlog(p) for p in sorted((Path(tmp) / "generated").rglob("*.jsonl"))]
            gen = Enel.train(gen_logs, config)
            gen_tpl = next(iter(gen.header.templates.values()))
            note = (f"Enel trained on the generator's {args.job} logs does not apply: its {args.job} has "
                    f"{len(gen_tpl.stages)} stages in {gen_tpl.jobs} jobs, Spark's has {total_stages} stages in "
                    f"{len(test[0].jobs)} jobs (Enel predicts over the application's own stage graph)")
        n = len(rows["linear extrapolation of stage progress"])
        print(f"\nRemaining-time error on the {len(test)} held-out runs (seed {args.seeds - 1}), at {n} job boundaries;"
              f" Enel trained on {len(train)} runs\n")
        print(f"{'predictor':<42} {'MAE s':>7} {'median s':>9}")
        for name, errs in rows.items():
            print(f"{name:<42} {statistics.fmean(errs):>7.2f} {statistics.median(errs):>9.2f}")
        if note:
            print(f"\n{note}")

        # Target: between the 1- and W-executor runtimes of the held-out seed.
        one, many = test[0].runtime_s, test[1].runtime_s
        target = (one + many) / 2
        print(f"\nTarget {target:.1f} s (1 executor took {one:.1f} s, {w} took {many:.1f} s in the held-out seed)")
        alone = live_run(cluster, args.job, args.size, out, 100, 1, 1, lambda _log: None, args.partitions)
        plans: list[int] = []

        def plan(log: EventLog) -> int:
            pick = rescale_decision(enel, log, target, range(1, w + 1)).recommended_executors
            plans.append(pick)
            return pick

        rescaled = live_run(cluster, args.job, args.size, out, 100, 1, 1, plan, args.partitions)
        for name, log in (("left on 1 executor", alone), (f"rescaled by Enel (to {plans})", rescaled)):
            r = log.runtime_s
            print(f"  {name:<32} {r:>6.1f} s, {abs(r - target):>5.1f} s from the target")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
