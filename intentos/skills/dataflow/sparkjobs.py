"""The five C3O-style Spark jobs (grep, sort, kmeans, pagerank, sgd), to produce real Spark event logs.

Each job generates its data inside Spark from a seed (no input files, nothing large through the driver),
then runs a DAG of several stages with shuffles, like the C3O/Bell benchmark jobs it stands in for:

    grep      text lines -> filter on a keyword -> count matches per first word (reduceByKey) -> sortBy
    sort      (key, value) records -> sortByKey (sampling job + range shuffle) -> per-partition check
    kmeans    points around 5 centres in 8-d -> repartition -> pyspark.ml KMeans -> cluster sizes (groupBy)
    pagerank  nodes with 5 out-edges -> partitionBy -> 5 iterations of join + reduceByKey
    sgd       labelled points in 10-d -> repartition -> pyspark.ml LogisticRegression -> confusion (groupBy)

Run one as its own process (one JSON line on stdout), e.g. with an event log:

    python -m intentos.skills.dataflow.sparkjobs sort --size 200000 --master local[2] --app-name sort \\
        --conf spark.eventLog.enabled=true --conf spark.eventLog.dir=/tmp/events

pyspark is imported lazily, so this module imports without it (it is the optional `spark` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JOBS: tuple[str, ...] = ("grep", "sort", "kmeans", "pagerank", "sgd")
MISSING_PYSPARK = "pyspark is not installed: pip install 'intentos[spark]'"

GREP_KEYWORD = "spark"
GREP_WORDS_PER_LINE = 10
KMEANS_K = 5
KMEANS_DIM = 8
PAGERANK_OUT_EDGES = 5
PAGERANK_ITERATIONS = 5
SGD_DIM = 10
SGD_ITERATIONS = 10

Output = dict[str, int | float | bool | str]
Chunk = tuple[int, int, str | None, str | None, bool]  # a sorted partition: (index, count, first, last, in order)
Best = tuple[float, tuple[float, int]]  # PageRank's aggregate: (rank sum, top (rank, -node))


class JobResult(BaseModel):
    """One run of a job: what ran, how long the job itself took, and a few figures from its result."""

    job: str
    size: int = Field(description="rows/records/points/nodes generated")
    seed: int
    seconds: float = Field(description="wall time of the job itself (data generation included, session start not)")
    output: Output = Field(default_factory=dict, description="job-specific result figures")
    partitions: int | None = Field(None, description="partitions the data was generated in (results depend on it)")


def run_job(spark: SparkSession, job: str, size: int, *, seed: int = 0, partitions: int | None = None) -> JobResult:
    """Run `job` on `size` generated rows, deterministic for (seed, partitions); raises ValueError on bad input."""
    if job not in JOBS:
        raise ValueError(f"unknown Spark job {job!r}; known jobs: {', '.join(JOBS)}")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    parts = spark.sparkContext.defaultParallelism if partitions is None else partitions
    if parts < 1:
        raise ValueError(f"partitions must be at least 1, got {parts}")
    parts = min(parts, size)  # an empty partition would only add empty tasks
    started = time.perf_counter()
    output = _RUNNERS[job](spark, size, seed, parts)
    return JobResult(
        job=job, size=size, seed=seed, seconds=time.perf_counter() - started, output=output, partitions=parts
    )


# The functions shipped to Python workers are closures over stdlib modules and plain constants only: cloudpickle
# then sends them by value, so executors need no `intentos` on their path (only pyspark, as for any PySpark job).


def _grep(spark: SparkSession, size: int, seed: int, parts: int) -> Output:
    from operator import add

    # 100 words with the keyword among them: a line of 10 words holds it with probability ~0.1.
    words = [GREP_KEYWORD, *(f"w{i:02d}" for i in range(99))]
    per_line = GREP_WORDS_PER_LINE
    keyword = GREP_KEYWORD

    def lines(index: int, ids: Iterable[int]) -> Iterator[str]:
        rng = random.Random(f"grep:{seed}:{index}")  # str seeds hash with SHA-512: same in every process
        for _ in ids:
            yield " ".join(rng.choice(words) for _ in range(per_line))

    text = spark.sparkContext.range(0, size, numSlices=parts).mapPartitionsWithIndex(lines)
    matches = text.filter(lambda line: keyword in line.split())
    per_word = matches.map(lambda line: (line.split(" ", 1)[0], 1)).reduceByKey(add, numPartitions=parts)
    ranked = per_word.sortBy(lambda kv: (-kv[1], kv[0]), numPartitions=parts).collect()  # <= 100 rows
    top_word, top_count = ranked[0] if ranked else ("", 0)
    return {
        "lines": size,
        "matches": sum(count for _, count in ranked),
        "first_words": len(ranked),
        "top_word": top_word,
        "top_count": top_count,
    }


def _sort(spark: SparkSession, size: int, seed: int, parts: int) -> Output:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

    def records(index: int, ids: Iterable[int]) -> Iterator[tuple[str, str]]:
        rng = random.Random(f"sort:{seed}:{index}")
        for i in ids:  # a TeraSort-like record: a 10-character key and a payload
            yield "".join(rng.choices(alphabet, k=10)), f"{i:012d}" + "x" * 38

    def summary(index: int, items: Iterable[tuple[str, str]]) -> Iterator[Chunk]:
        count, first, last, ordered = 0, None, None, True
        for key, _ in items:
            if last is not None and key < last:
                ordered = False
            first = key if first is None else first
            last = key
            count += 1
        yield index, count, first, last, ordered

    data = spark.sparkContext.range(0, size, numSlices=parts).mapPartitionsWithIndex(records)
    chunks = sorted(data.sortByKey(numPartitions=parts).mapPartitionsWithIndex(summary).collect())
    filled = [chunk for chunk in chunks if chunk[1]]
    ordered = all(chunk[4] for chunk in filled) and all(a[3] <= b[2] for a, b in pairwise(filled))
    return {
        "records": sum(chunk[1] for chunk in chunks),
        "sorted": ordered,
        "first_key": filled[0][2] if filled else "",
        "last_key": filled[-1][3] if filled else "",
    }


def _kmeans(spark: SparkSession, size: int, seed: int, parts: int) -> Output:
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    # Generated on the JVM with seeded rand/randn (deterministic per partition): no Python workers needed.
    rng = random.Random(f"kmeans:{seed}")
    centres = [[rng.uniform(-10.0, 10.0) for _ in range(KMEANS_DIM)] for _ in range(KMEANS_K)]
    labelled = spark.range(size, numPartitions=parts).select((F.rand(seed) * KMEANS_K).cast("int").alias("c"))
    columns = [
        (F.element_at(F.array(*(F.lit(c[j]) for c in centres)), F.col("c") + 1) + F.randn(seed * 1000 + j + 1)).alias(
            f"f{j}"
        )
        for j in range(KMEANS_DIM)
    ]
    points = VectorAssembler(inputCols=[f"f{j}" for j in range(KMEANS_DIM)], outputCol="features").transform(
        labelled.select(*columns)
    )
    # The repartition is the load-and-redistribute shuffle of the C3O job; caching keeps KMeans from regenerating.
    data = points.select("features").repartition(parts).cache()
    try:
        model = KMeans(k=KMEANS_K, seed=seed, maxIter=10).fit(data)
        sizes = [row["count"] for row in model.transform(data).groupBy("prediction").count().collect()]
        return {
            "k": KMEANS_K,
            "centres": len(model.clusterCenters()),
            "cost": round(model.summary.trainingCost, 3),
            "iterations": model.summary.numIter,
            "points": sum(sizes),
            "largest_cluster": max(sizes),
            "smallest_cluster": min(sizes),
        }
    finally:
        data.unpersist()


def _pagerank(spark: SparkSession, size: int, seed: int, parts: int) -> Output:
    from operator import add

    out_edges = PAGERANK_OUT_EDGES

    def adjacency(index: int, nodes: Iterable[int]) -> Iterator[tuple[int, list[int]]]:
        rng = random.Random(f"pagerank:{seed}:{index}")
        for node in nodes:
            yield node, [rng.randrange(size) for _ in range(out_edges)]

    def contributions(item: tuple[int, tuple[list[int], float]]) -> list[tuple[int, float]]:
        _, (targets, rank) = item
        share = rank / len(targets)
        return [(target, share) for target in targets]

    sc = spark.sparkContext
    # Hash-partitioned and cached, so every iteration's join with the ranks shuffles only the ranks.
    links = sc.range(0, size, numSlices=parts).mapPartitionsWithIndex(adjacency).partitionBy(parts).cache()
    try:
        zeros = links.mapValues(lambda _: 0.0)  # every node keeps a rank, even without in-links
        ranks = links.mapValues(lambda _: 1.0)
        for _ in range(PAGERANK_ITERATIONS):
            contribs = links.join(ranks).flatMap(contributions)
            # No dangling nodes (all have out-edges), so the ranks keep summing to the node count.
            ranks = contribs.union(zeros).reduceByKey(add, numPartitions=parts).mapValues(lambda r: 0.15 + 0.85 * r)

        def seq(acc: Best, item: tuple[int, float]) -> Best:
            return acc[0] + item[1], max(acc[1], (item[1], -item[0]))

        def comb(a: Best, b: Best) -> Best:
            return a[0] + b[0], max(a[1], b[1])

        total, (top_rank, top_node) = ranks.aggregate((0.0, (float("-inf"), 0)), seq, comb)
        return {
            "nodes": size,
            "iterations": PAGERANK_ITERATIONS,
            "rank_sum": round(total, 6),
            "top_node": -top_node,
            "top_rank": round(top_rank, 6),
        }
    finally:
        links.unpersist()


def _sgd(spark: SparkSession, size: int, seed: int, parts: int) -> Output:
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    rng = random.Random(f"sgd:{seed}")
    weights = [rng.gauss(0.0, 1.0) for _ in range(SGD_DIM)]
    base = spark.range(size, numPartitions=parts).select(
        *(F.randn(seed * 1000 + j + 1).alias(f"x{j}") for j in range(SGD_DIM)),
        F.randn(seed * 1000).alias("noise"),
    )
    margin = sum((F.col(f"x{j}") * w for j, w in enumerate(weights)), F.col("noise") * 0.5)
    labelled = base.withColumn("label", (margin > 0).cast("double"))
    points = VectorAssembler(inputCols=[f"x{j}" for j in range(SGD_DIM)], outputCol="features").transform(labelled)
    data = points.select("features", "label").repartition(parts).cache()
    try:
        # tol=0: always SGD_ITERATIONS iterations, so every run has the same DAG (a recurring job, as Enel expects).
        model = LogisticRegression(maxIter=SGD_ITERATIONS, regParam=0.01, tol=0.0).fit(data)
        confusion = model.transform(data).groupBy("label", "prediction").count().collect()
        total = sum(row["count"] for row in confusion)
        right = sum(row["count"] for row in confusion if row["label"] == row["prediction"])
        return {
            "points": total,
            "accuracy": round(right / total, 6),
            "positives": sum(row["count"] for row in confusion if row["label"] == 1.0),
            "iterations": model.summary.totalIterations,
            "loss": round(model.summary.objectiveHistory[-1], 6),
        }
    finally:
        data.unpersist()


_RUNNERS: dict[str, Callable[[SparkSession, int, int, int], Output]] = {
    "grep": _grep,
    "sort": _sort,
    "kmeans": _kmeans,
    "pagerank": _pagerank,
    "sgd": _sgd,
}


def _conf_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), value


def _control(spark: SparkSession, port: int, executors: int | None) -> Any:
    """Wait for the first executors, scale to `executors`, then serve the control endpoint (sparkcontrol)."""
    from intentos.skills.dataflow.sparkcontrol import ExecutorControl, serve

    control = ExecutorControl(spark.sparkContext)
    deadline = time.monotonic() + 60
    while not control.ids() and time.monotonic() < deadline:
        time.sleep(0.2)
    control.target = len(control.ids())
    if executors is not None:
        control.scale_to(executors)
    return serve(control, port)


def main(argv: list[str] | None = None) -> int:
    """Run one job in its own SparkSession and print its JobResult as one JSON line on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m intentos.skills.dataflow.sparkjobs", description="Run one C3O-style Spark job."
    )
    parser.add_argument("job", choices=JOBS)
    parser.add_argument("--size", type=int, default=20_000, help="rows/records/points/nodes (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--partitions", type=int, default=None, help="default: Spark's default parallelism")
    parser.add_argument("--master", default=None, help="e.g. local[2], spark://host:7077 (default: Spark's)")
    parser.add_argument("--app-name", default=None, help="default: intentos-JOB")
    parser.add_argument("--conf", type=_conf_pair, action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--control-port", type=int, default=None,
                        help="serve the executor control endpoint on 127.0.0.1:PORT (dynamic allocation off)")
    parser.add_argument("--executors", type=int, default=None, help="with --control-port: executors to start with")
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error(f"--size must be at least 1, got {args.size}")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        print(MISSING_PYSPARK, file=sys.stderr)
        return 2

    # Workers default to `python3` on PATH; this interpreter is the one known to match the driver's version.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(args.app_name or f"intentos-{args.job}")
    if args.master:
        builder = builder.master(args.master)
    for key, value in args.conf:
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    server = None
    try:
        if args.control_port is not None:
            server = _control(spark, args.control_port, args.executors)
        result = run_job(spark, args.job, args.size, seed=args.seed, partitions=args.partitions)
    finally:
        if server is not None:
            server.shutdown()
        spark.stop()
    print(json.dumps(result.model_dump()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
