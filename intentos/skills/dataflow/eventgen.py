"""Synthetic Spark event logs, for training Enel and for tests (pyspark cannot run here).

The logs follow Spark's own event-log schema (the JSON lines written with `spark.eventLog.enabled`):
LogStart, ApplicationStart, ExecutorAdded/Removed, JobStart (with "Stage Infos"), StageSubmitted,
TaskEnd, StageCompleted, JobEnd, ApplicationEnd, with Spark's field names, so the same parser reads
real history.

An application is a recurring job: a fixed DAG of jobs and stages per kind (grep, sort, kmeans,
pagerank, sgd), the same for every run of that kind and template seed. A run draws its data scale and
noise from its own seed. A stage's duration at n executors of c cores is waves x task time (tasks
spread over n·c slots) plus a shuffle cost that grows with log n and a fixed scheduling cost. A
rescaling between two jobs adds/removes executors (new ones arrive after a start-up delay) and slows
the next job's first stages by an overhead that grows with the number of executors changed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from intentos.skills.kit.files import write_local

Kind = Literal["grep", "sort", "kmeans", "pagerank", "sgd"]
KINDS: tuple[Kind, ...] = ("grep", "sort", "kmeans", "pagerank", "sgd")
START_MS = 1_700_000_000_000  # a fixed epoch keeps generated logs byte-for-byte reproducible


class StageSpec(BaseModel):
    stage_id: int
    name: str
    parents: list[int] = Field(default_factory=list)
    tasks: int
    work_s: float = Field(description="task-seconds of work at data scale 1")
    shuffle_s: float = Field(0.0, description="seconds of shuffle per log2(executors)")


class JobSpec(BaseModel):
    job_id: int
    stages: list[StageSpec]


class AppSpec(BaseModel):
    name: str
    jobs: list[JobSpec]


class Rescale(BaseModel):
    """Change the executor count when job `after_job` has ended (Enel rescales at job boundaries)."""

    after_job: int = Field(ge=0)
    executors: int = Field(ge=1)


class StageTruth(BaseModel):
    stage_id: int
    job_id: int
    executors: int
    duration_s: float
    overhead_s: float


class GeneratedRun(BaseModel):
    path: str
    kind: str
    executors: int
    rescales: list[Rescale]
    seed: int
    data_scale: float
    runtime_s: float
    complete: bool
    stages: list[StageTruth]


def app_template(kind: Kind, template_seed: int = 0) -> AppSpec:
    """The DAG of jobs and stages of one recurring application (same for every run of it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown application kind {kind!r}; known: {', '.join(KINDS)}")
    rng = np.random.default_rng([KINDS.index(kind), template_seed])
    jobs: list[JobSpec] = []
    sid = 0

    def stage(name: str, parents: list[int], tasks: int, work: float, shuffle: float = 0.0) -> StageSpec:
        nonlocal sid
        spec = StageSpec(stage_id=sid, name=name, parents=parents, tasks=tasks,
                         work_s=float(work * rng.uniform(0.8, 1.25)), shuffle_s=float(shuffle * rng.uniform(0.8, 1.2)))
        sid += 1
        return spec

    def job(*stages: StageSpec) -> None:
        jobs.append(JobSpec(job_id=len(jobs), stages=list(stages)))

    parts = int(rng.choice([32, 48, 64]))
    if kind == "grep":
        a = stage("textFile at Grep.scala:21", [], parts, 900)
        job(a)
        b = stage("filter at Grep.scala:24", [], parts, 700)
        job(b, stage("saveAsTextFile at Grep.scala:27", [b.stage_id], parts // 2, 250, 2.0))
    elif kind == "sort":
        job(stage("sortByKey at Sort.scala:30", [], parts, 300))
        m = stage("map at Sort.scala:29", [], parts, 900, 3.0)
        job(m, stage("saveAsTextFile at Sort.scala:33", [m.stage_id], parts, 800, 4.0))
    elif kind == "kmeans":
        job(stage("textFile at KMeans.scala:40", [], parts, 800))
        for _ in range(int(rng.integers(5, 8))):
            m = stage("mapPartitions at KMeans.scala:280", [], parts, 300)
            job(m, stage("collectAsMap at KMeans.scala:305", [m.stage_id], 16, 15, 1.5))
    elif kind == "pagerank":
        links = stage("distinct at PageRank.scala:52", [], parts, 600, 2.0)
        job(links, stage("groupByKey at PageRank.scala:53", [links.stage_id], parts, 400, 3.0))
        for _ in range(int(rng.integers(3, 6))):
            a0 = stage("flatMap at PageRank.scala:60", [], parts, 250)
            a1 = stage("mapValues at PageRank.scala:58", [], parts, 120)
            b = stage("join at PageRank.scala:60", [a0.stage_id, a1.stage_id], parts, 300, 3.0)
            job(a0, a1, b, stage("reduceByKey at PageRank.scala:64", [b.stage_id], parts, 200, 2.5))
    else:  # sgd
        job(stage("textFile at SGD.scala:35", [], parts, 700))
        for _ in range(int(rng.integers(6, 10))):
            m = stage("treeAggregate at GradientDescent.scala:239", [], parts, 160)
            job(m, stage("treeAggregate at GradientDescent.scala:239", [m.stage_id], 8, 6, 1.0))
    return AppSpec(name=kind, jobs=jobs)


def stage_duration(spec: StageSpec, executors: int, cores: int, data_scale: float, noise: float = 1.0) -> float:
    """Seconds one stage takes at a scale-out, without rescaling overhead."""
    slots = executors * cores
    waves = math.ceil(spec.tasks / slots)
    task_s = spec.work_s * data_scale / spec.tasks
    return (waves * task_s + spec.shuffle_s * math.log2(executors + 1) + 0.4) * noise


def rescale_overhead(before: int, after: int, rng: np.random.Generator) -> float:
    """Executors that join must start and fetch data; ones that leave take their cached blocks along."""
    delta = after - before
    base = 4.0 + 1.2 * delta if delta > 0 else 2.0 + 1.5 * -delta
    return float(base * rng.uniform(0.85, 1.15)) if delta else 0.0


def generate_eventlog(path: str | Path, kind: Kind = "kmeans", executors: int = 4, *,
                      rescales: list[Rescale] | None = None, seed: int = 0, template_seed: int = 0,
                      cores: int = 4, data_scale: float | None = None, stop_after_job: int | None = None,
                      max_tasks_logged: int | None = None) -> GeneratedRun:
    """Write one application's event log; `stop_after_job` cuts it there, like a job still running."""
    if executors < 1:
        raise ValueError("executors must be at least 1")
    rng = np.random.default_rng([seed, KINDS.index(kind), executors])
    spec = app_template(kind, template_seed)
    scale = float(rng.uniform(0.7, 1.4)) if data_scale is None else data_scale
    plan = {r.after_job: r.executors for r in (rescales or [])}
    events: list[dict] = []
    now = START_MS
    app_id = f"app-{seed:04d}{executors:03d}-{KINDS.index(kind):04d}"
    events.append({"Event": "SparkListenerLogStart", "Spark Version": "3.3.2"})
    events.append({"Event": "SparkListenerApplicationStart", "App Name": spec.name, "App ID": app_id,
                   "Timestamp": now, "User": "spark"})
    live: list[str] = []
    next_exec = 1

    def add_executors(n: int, at: int) -> None:
        nonlocal next_exec
        for _ in range(n):
            eid = str(next_exec)
            next_exec += 1
            live.append(eid)
            events.append({"Event": "SparkListenerExecutorAdded", "Timestamp": at, "Executor ID": eid,
                           "Executor Info": {"Host": f"10.0.0.{int(eid) % 250 + 1}", "Total Cores": cores,
                                             "Log Urls": {}, "Attributes": {}, "Resources": {},
                                             "Resource Profile Id": 0}})

    add_executors(executors, now + 2000)
    now += 3000
    current, overhead_next = executors, 0.0
    truths: list[StageTruth] = []
    task_id = 0
    complete = True
    for job in spec.jobs:
        stage_infos = [_stage_info(s) for s in job.stages]
        events.append({"Event": "SparkListenerJobStart", "Job ID": job.job_id, "Submission Time": now,
                       "Stage Infos": stage_infos, "Stage IDs": [s.stage_id for s in job.stages],
                       "Properties": {"spark.job.description": f"{spec.name} job {job.job_id}"}})
        finish: dict[int, int] = {}
        for s in job.stages:  # stages are listed in topological order
            start = max([now, *(finish[p] for p in s.parents if p in finish)]) + 5
            noise = float(rng.lognormal(0.0, 0.03))
            overhead = overhead_next if not s.parents else 0.0  # the job's source stages pay for the rescale
            dur = stage_duration(s, current, cores, scale, noise) + overhead
            end = start + int(round(dur * 1000))
            finish[s.stage_id] = end
            truths.append(StageTruth(stage_id=s.stage_id, job_id=job.job_id, executors=current,
                                     duration_s=dur, overhead_s=overhead))
            events.append({"Event": "SparkListenerStageSubmitted",
                           "Stage Info": {**_stage_info(s), "Submission Time": start}, "Properties": {}})
            logged = s.tasks if max_tasks_logged is None else min(s.tasks, max_tasks_logged)
            for i in range(logged):
                eid = live[i % len(live)]
                wave = i // (current * cores)
                per = (end - start) / max(math.ceil(s.tasks / (current * cores)), 1)
                t0 = start + int(wave * per)
                t1 = min(end, t0 + int(per * rng.uniform(0.85, 1.0)))
                events.append(_task_end(s.stage_id, task_id, i, eid, t0, t1))
                task_id += 1
            events.append({"Event": "SparkListenerStageCompleted",
                           "Stage Info": {**_stage_info(s), "Submission Time": start, "Completion Time": end}})
        overhead_next = 0.0
        now = max(finish.values()) + 10
        events.append({"Event": "SparkListenerJobEnd", "Job ID": job.job_id, "Completion Time": now,
                       "Job Result": {"Result": "JobSucceeded"}})
        if stop_after_job is not None and job.job_id >= stop_after_job:
            complete = job.job_id == spec.jobs[-1].job_id
            break
        target = plan.get(job.job_id)
        if target is not None and target != current:
            overhead_next = rescale_overhead(current, target, rng)
            if target > current:
                add_executors(target - current, now + int(overhead_next * 500))
            else:
                for eid in live[target:]:
                    events.append({"Event": "SparkListenerExecutorRemoved", "Timestamp": now, "Executor ID": eid,
                                   "Removed Reason": "Executor killed by driver."})
                del live[target:]
            current = target
    if complete:
        events.append({"Event": "SparkListenerApplicationEnd", "Timestamp": now + 500})
    path = write_local(path, "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode("utf-8"))
    return GeneratedRun(path=str(path), kind=kind, executors=executors, rescales=rescales or [], seed=seed,
                        data_scale=scale, runtime_s=(now + (500 if complete else 0) - START_MS) / 1000,
                        complete=complete, stages=truths)


def _stage_info(s: StageSpec) -> dict:
    return {"Stage ID": s.stage_id, "Stage Attempt ID": 0, "Stage Name": s.name, "Number of Tasks": s.tasks,
            "RDD Info": [], "Parent IDs": list(s.parents), "Details": f"org.apache.spark.rdd.RDD.{s.name}",
            "Accumulables": [], "Resource Profile Id": 0}


def _task_end(stage_id: int, task_id: int, index: int, executor: str, t0: int, t1: int) -> dict:
    return {"Event": "SparkListenerTaskEnd", "Stage ID": stage_id, "Stage Attempt ID": 0,
            "Task Type": "ShuffleMapTask", "Task End Reason": {"Reason": "Success"},
            "Task Info": {"Task ID": task_id, "Index": index, "Attempt": 0, "Launch Time": t0,
                          "Executor ID": executor, "Host": f"10.0.0.{int(executor) % 250 + 1}",
                          "Locality": "PROCESS_LOCAL", "Speculative": False, "Getting Result Time": 0,
                          "Finish Time": t1, "Failed": False, "Killed": False, "Accumulables": []},
            "Task Metrics": {"Executor Run Time": t1 - t0, "Executor CPU Time": (t1 - t0) * 900_000,
                             "Result Size": 2048, "JVM GC Time": 0, "Memory Bytes Spilled": 0,
                             "Disk Bytes Spilled": 0}}


def generate_training_set(folder: str | Path, kinds: list[Kind] | tuple[Kind, ...] = KINDS,
                          scaleouts: tuple[int, ...] = (2, 4, 6, 8, 12), runs_per_scaleout: int = 2,
                          seed: int = 0, max_tasks_logged: int | None = 4) -> list[GeneratedRun]:
    """Complete logs of every kind at several scale-outs, half of them rescaled once mid-run; seeded."""
    rng = np.random.default_rng(seed)
    out = []
    folder = Path(folder)
    for kind in kinds:
        n_jobs = len(app_template(kind).jobs)
        for n in scaleouts:
            for rep in range(runs_per_scaleout):
                rescales = []
                if rep % 2 == 1 and n_jobs > 2:  # a rescaling point somewhere in the middle
                    target = int(rng.choice([s for s in scaleouts if s != n]))
                    rescales = [Rescale(after_job=int(rng.integers(0, n_jobs - 1)), executors=target)]
                run_seed = int(rng.integers(0, 2**31 - 1))
                out.append(generate_eventlog(folder / f"{kind}-{n}-{rep}.jsonl", kind, n, rescales=rescales,
                                             seed=run_seed, max_tasks_logged=max_tasks_logged))
    return out
