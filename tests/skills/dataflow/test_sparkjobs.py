"""The C3O-style Spark jobs, on real Spark (local[2]): plausible results, determinism, bad input, the process driver."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from intentos.skills.dataflow.sparkjobs import JOBS, JobResult, main, run_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
    reason="needs pyspark (pip install 'intentos[spark]') and a Java runtime (`java` on PATH)",
)

ROOT = Path(__file__).resolve().parents[3]
SIZES = {"grep": 2000, "sort": 2000, "kmeans": 2000, "pagerank": 1000, "sgd": 2000}


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    from pyspark.sql import SparkSession

    # Python workers default to `python3` on PATH; use this interpreter so their version matches the driver's.
    old = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    # A SparkContext installs its own SIGINT handler in this process (it cancels the context's jobs) and
    # leaves it after stop(): put Python's back, or a later test's Ctrl-C reaches a stopped context.
    sigint = signal.getsignal(signal.SIGINT)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("intentos-sparkjobs-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "512m")
        .getOrCreate()
    )
    try:
        yield session
    finally:
        session.stop()
        signal.signal(signal.SIGINT, sigint)
        if old is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = old


def _check(job: str, size: int, out: dict) -> None:
    if job == "grep":
        assert out["lines"] == size and 0 < out["matches"] < size
        assert out["top_count"] <= out["matches"] and out["first_words"] <= 100
    elif job == "sort":
        assert out["records"] == size and out["sorted"] is True
        assert out["first_key"] <= out["last_key"] and len(out["first_key"]) == 10
    elif job == "kmeans":
        assert out["k"] == out["centres"] == 5 and out["points"] == size
        assert 0 < out["smallest_cluster"] <= out["largest_cluster"] < size
        assert 0 < out["cost"] / size < 50  # ~8 (unit noise in 8 dimensions) when the clusters are found
    elif job == "pagerank":
        assert out["nodes"] == size and out["iterations"] == 5
        assert out["rank_sum"] == pytest.approx(size, rel=1e-6)  # no dangling nodes: rank is conserved
        assert 0 <= out["top_node"] < size and out["top_rank"] > 1.0
    elif job == "sgd":
        assert out["points"] == size and out["accuracy"] > 0.7
        assert 0 < out["positives"] < size and 0 < out["iterations"] <= 10


@pytest.mark.parametrize("job", JOBS)
def test_job_runs_with_plausible_and_repeatable_output(spark: SparkSession, job: str) -> None:
    size = SIZES[job]
    first = run_job(spark, job, size, seed=7)
    assert (first.job, first.size, first.seed, first.partitions) == (job, size, 7, 2)
    assert first.seconds > 0
    _check(job, size, first.output)
    again = run_job(spark, job, size, seed=7)
    assert again.output == pytest.approx(first.output)  # floats are rounded; approx only guards the last digit


def test_another_seed_gives_other_data(spark: SparkSession) -> None:
    a = run_job(spark, "grep", 2000, seed=1)
    b = run_job(spark, "grep", 2000, seed=2, partitions=3)
    assert b.partitions == 3 and a.output != b.output


def test_bad_job_or_size_is_refused(spark: SparkSession) -> None:
    with pytest.raises(ValueError, match="known jobs: grep, sort, kmeans, pagerank, sgd"):
        run_job(spark, "wordcount", 100)
    with pytest.raises(ValueError, match="size"):
        run_job(spark, "sort", 0)


def test_main_runs_a_job_in_its_own_process() -> None:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    command = [sys.executable, "-m", "intentos.skills.dataflow.sparkjobs", "sort", "--size", "2000", "--seed", "3"]
    command += ["--master", "local[1]", "--app-name", "t", "--conf", "spark.ui.enabled=false"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout
    result = JobResult.model_validate(json.loads(lines[0]))
    assert (result.job, result.size, result.seed, result.partitions) == ("sort", 2000, 3, 1)
    assert result.output["records"] == 2000 and result.output["sorted"] is True


def test_main_without_pyspark_says_how_to_install() -> None:
    # A None entry in sys.modules makes `import pyspark` fail as if it were not installed, in a fresh process.
    code = "import sys; sys.modules['pyspark'] = None; from intentos.skills.dataflow.sparkjobs import main; "
    code += "sys.exit(main(['sort']))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "pyspark is not installed: pip install 'intentos[spark]'"


def test_main_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["wordcount"])
    assert exited.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sort", "--conf", "no-equals-sign"])
    assert "expected key=value" in capsys.readouterr().err
