"""Log parsing accuracy on LogHub, then throughput and memory: drain3 alone next to our pipeline.

    .venv/bin/python benchmarks/bench_logs_parse.py [--sizes 200000,1000000] [--kind hdfs] [--keep DIR]
    .venv/bin/python benchmarks/bench_logs_parse.py --ga-only       # the accuracy table alone

Accuracy: grouping accuracy (GA, Zhu et al. 2019) of our parsers, each with its one default
configuration, on every LogHub-2k sample in ../shared/data/loghub (`*_2k.log_structured.csv`, Content
scored against EventId): `tokens` (the default) and the `drain3` baseline, beside Drain's published
figure with per-system regexes and thresholds (evals/REFERENCES.md).

Throughput:
For each size a log is generated (generator.generate, with anomalies), then each mode runs in a fresh
process, so that its peak RSS (getrusage ru_maxrss) is its own:

- drain3:          TemplateMiner.add_log_message over the raw lines (plain file iteration, default config);
- drain3+masks:    the same with our masking instructions (ParserSettings().to_drain3());
- tokens:          templates.TemplateParser.add over the raw lines (our default miner alone);
- reader:          records.read_records alone (header parsing, odd-line handling), no mining;
- pipeline:        read_records + LogParser (the tokens miner, parameters on demand: what `logs.parse` runs);
- pipeline-drain3: the same with the drain3 baseline.

Lines/s is over the mining/reading loop only (imports excluded). Peak RSS includes the interpreter and
the imports ("baseline" row), so memory is bounded when it stays flat while the log grows.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("drain3", "drain3+masks", "tokens", "reader", "pipeline", "pipeline-drain3")
LOGHUB = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "loghub").resolve()
# Drain's grouping accuracy on LogHub-2k with per-system settings (logpai/logparser; evals/REFERENCES.md).
DRAIN_PUBLISHED = {
    "Android": 0.911, "Apache": 1.0, "BGL": 0.9625, "HDFS": 0.9975, "HPC": 0.887, "Hadoop": 0.9475,
    "HealthApp": 0.78, "Linux": 0.69, "Mac": 0.7865, "OpenSSH": 0.7875, "OpenStack": 0.7325, "Proxifier": 0.5265,
    "Spark": 0.92, "Thunderbird": 0.955, "Windows": 0.997, "Zookeeper": 0.9665,
}


def ga_table(folder: Path) -> None:
    """GA per LogHub system of our parser (default configuration), of our drain3 baseline, and Drain's
    published figure."""
    from intentos.skills.logs.parsing import ParserSettings, loghub_grouping_accuracy

    samples = sorted(folder.glob("*_2k.log_structured.csv"))
    if not samples:
        print(f"(no LogHub samples at {folder}: accuracy skipped)\n")
        return
    print(f"grouping accuracy on LogHub-2k ({folder}); ours: one configuration for every system\n")
    header = f"{'system':<12} {'tokens':>7} {'drain3':>7} {'Drain (published)':>18} {'tokens - Drain':>15}"
    print(header)
    print("-" * len(header))
    ours, baseline, drain = [], [], []
    for csv in samples:
        system = csv.name.split("_2k")[0]
        ga = loghub_grouping_accuracy(csv)
        ga3 = loghub_grouping_accuracy(csv, ParserSettings(algorithm="drain3"))
        published = DRAIN_PUBLISHED.get(system)
        ours.append(ga)
        baseline.append(ga3)
        drain += [published] if published is not None else []
        shown = f"{published:.3f}" if published is not None else "-"
        diff = f"{ga - published:+.3f}" if published is not None else "-"
        print(f"{system:<12} {ga:>7.3f} {ga3:>7.3f} {shown:>18} {diff:>15}", flush=True)
    print("-" * len(header))
    print(f"{'mean':<12} {sum(ours) / len(ours):>7.3f} {sum(baseline) / len(baseline):>7.3f} "
          f"{sum(drain) / max(len(drain), 1):>18.3f}")
    print(f"{'min':<12} {min(ours):>7.3f} {min(baseline):>7.3f}\n")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(mode: str, path: str) -> dict[str, float]:
    """One measurement, in this (fresh) process."""
    import logging

    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    from intentos.skills.logs.parsing import LogParser, ParserSettings
    from intentos.skills.logs.records import read_records

    logging.getLogger("drain3").setLevel(logging.WARNING)
    baseline = _rss_mb()
    lines = 0
    templates = 0
    start = time.perf_counter()
    if mode in ("drain3", "drain3+masks"):
        if mode == "drain3":
            config = TemplateMinerConfig()
            config.profiling_enabled = False
        else:
            config = ParserSettings().to_drain3()
        miner = TemplateMiner(None, config)
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                miner.add_log_message(line.rstrip("\n"))
                lines += 1
        templates = len(miner.drain.clusters)
    elif mode == "tokens":
        from intentos.skills.logs.templates import TemplateParser

        tokens_miner = TemplateParser()
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                tokens_miner.add(line.rstrip("\n"))
                lines += 1
        templates = len(tokens_miner.templates())
    elif mode == "reader":
        for _ in read_records(path, sessions=False):
            lines += 1
    elif mode in ("pipeline", "pipeline-drain3"):
        parser = LogParser(ParserSettings(algorithm="drain3" if mode == "pipeline-drain3" else "tokens"))
        for _ in parser.parse(read_records(path, sessions=False)):
            lines += 1
        templates = parser.template_count
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - start
    return {"lines": lines, "seconds": seconds, "lines_per_s": lines / seconds, "templates": templates,
            "peak_rss_mb": _rss_mb(), "baseline_rss_mb": baseline}


def run_mode(mode: str, path: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--worker", mode, str(path)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200000,1000000", help="comma-separated line counts")
    ap.add_argument("--kind", default="hdfs", choices=("hdfs", "service"))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--keep", type=Path, default=None, help="folder to keep the generated logs in")
    ap.add_argument("--loghub", type=Path, default=LOGHUB, help="folder of LogHub-2k samples")
    ap.add_argument("--ga-only", action="store_true", help="print the accuracy table only")
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    ga_table(args.loghub)
    if args.ga_only:
        return

    from intentos.skills.logs.generator import generate

    sizes = [int(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"log kind {args.kind}; each mode in a fresh process; peak RSS includes Python and the imports\n")
        header = f"{'lines':>9} {'file MB':>8} {'mode':<13} {'lines/s':>9} {'vs drain3':>9} {'templates':>9} " \
                 f"{'peak RSS MB':>11} {'baseline MB':>11}"
        print(header)
        print("-" * len(header))
        for n in sizes:
            path = folder / f"{args.kind}-{n}.log"
            start = time.perf_counter()
            generate(path, kind=args.kind, lines=n, anomaly_rate=0.02, seed=1)  # type: ignore[arg-type]
            gen_s = time.perf_counter() - start
            size_mb = path.stat().st_size / 1e6
            base = None
            for mode in modes:
                r = run_mode(mode, path)
                base = r["lines_per_s"] if mode == "drain3" else base
                ratio = f"{r['lines_per_s'] / base:.2f}x" if base else "-"
                print(f"{n:>9} {size_mb:>8.1f} {mode:<13} {r['lines_per_s']:>9,.0f} {ratio:>9} "
                      f"{int(r['templates']) or '-':>9} {r['peak_rss_mb']:>11.1f} {r['baseline_rss_mb']:>11.1f}",
                      flush=True)
            print(f"{'':>9} {'':>8} (generated in {gen_s:.1f} s, {n / gen_s:,.0f} lines/s)")


if __name__ == "__main__":
    main()
