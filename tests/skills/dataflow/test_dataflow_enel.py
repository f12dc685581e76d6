"""Spark event logs (the committed one from the project's generator), the generator, and Enel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from intentos.skills.dataflow.enel import Enel, EnelConfig, rescale_decision, template_of
from intentos.skills.dataflow.eventgen import Rescale, generate_eventlog, generate_training_set
from intentos.skills.dataflow.eventlog import EventLogError, parse_eventlog, parse_eventlog_bytes
from intentos.skills.dataflow.ops import QUICK_ENEL

FIXTURE = Path(__file__).resolve().parent / "data" / "kmeans-rescaled.jsonl"
torch.set_num_threads(1)


def test_the_committed_spark_event_log_parses_into_a_stage_graph() -> None:
    log = parse_eventlog(FIXTURE)
    assert (log.app_name, log.complete, len(log.jobs), len(log.stages)) == ("kmeans", True, 6, 11)
    assert all(j.result == "JobSucceeded" and j.completed_ms for j in log.jobs)
    reduce = log.stage(2)
    assert reduce is not None and reduce.parents == [1] and reduce.job_id == 1 and reduce.num_tasks == 16
    assert reduce.duration_s and reduce.duration_s > 0 and reduce.tasks_done == 3 and reduce.task_time_ms > 0
    # Started on 4 executors, rescaled to 6 after job 1.
    assert log.executors_at(log.start_ms + 5000) == 4 and log.executors_at(log.end_ms or 0) == 6
    assert log.max_executors() == 6
    assert template_of(log).jobs == 6 and template_of(log).stages[2].parents == [1]


def test_the_generator_is_deterministic_and_scales(tmp_path: Path) -> None:
    a = generate_eventlog(tmp_path / "a.jsonl", "kmeans", 4, rescales=[Rescale(after_job=1, executors=6)], seed=7,
                          max_tasks_logged=3)
    assert (tmp_path / "a.jsonl").read_bytes() == FIXTURE.read_bytes()  # the fixture is this generator's output
    slow = generate_eventlog(tmp_path / "s.jsonl", "pagerank", 2, seed=1, data_scale=1.0, max_tasks_logged=0)
    fast = generate_eventlog(tmp_path / "f.jsonl", "pagerank", 8, seed=1, data_scale=1.0, max_tasks_logged=0)
    assert fast.runtime_s < slow.runtime_s and a.complete
    cut = generate_eventlog(tmp_path / "c.jsonl", "sgd", 4, seed=1, stop_after_job=2)
    log = parse_eventlog(tmp_path / "c.jsonl")
    assert not cut.complete and not log.complete and len(log.jobs) == 3


def test_a_log_until_a_time_is_what_the_running_application_had_written(tmp_path: Path) -> None:
    log = parse_eventlog(FIXTURE)
    end = log.jobs[2].completed_ms
    assert end is not None
    t = end - 1  # job 2's last stage still running
    cut = log.until(t)
    running = parse_eventlog_bytes(b"".join(_events_until(FIXTURE, t)), "cut")  # the same log, written up to t
    assert not cut.complete and cut.last_ms == t >= running.last_ms  # "now" is t, not the last event before it
    assert [j.job_id for j in cut.jobs] == [j.job_id for j in running.jobs] == [0, 1, 2]
    assert [(s.stage_id, s.completed_ms) for s in cut.stages] == [(s.stage_id, s.completed_ms) for s in running.stages]
    assert cut.executors_now() == running.executors_now() == 6
    assert cut.stage(0) is not None and cut.stage(9) is None  # its stage index is its own, not the whole log's


def _events_until(path: Path, t_ms: int) -> list[bytes]:
    import json

    keys = ("Timestamp", "Submission Time", "Completion Time")
    kept = []
    for line in path.read_bytes().splitlines(keepends=True):
        event = json.loads(line)
        info = event.get("Stage Info") or event.get("Task Info") or {}
        times = [event.get(k) for k in keys] + [info.get(k) for k in (*keys, "Finish Time")]
        if event["Event"] == "SparkListenerStageCompleted":
            times = [info.get("Completion Time")]
        if all(x is None or x <= t_ms for x in times):
            kept.append(line)
    return kept


def test_broken_event_logs_name_file_and_line(tmp_path: Path) -> None:
    lines = FIXTURE.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:5] + ["{not json"] + lines[5:]) + "\n")
    with pytest.raises(EventLogError, match=r"bad\.jsonl:6: not a JSON event"):
        parse_eventlog(bad)
    bad.write_text(lines[0] + "\n" + lines[1] + '\n{"Event": "SparkListenerJobStart", "Job ID": 0}\n')
    with pytest.raises(EventLogError, match=r"bad\.jsonl:3: SparkListenerJobStart has no 'Submission Time'"):
        parse_eventlog(bad)
    bad.write_text('{"Event": "SparkListenerLogStart"}\n')
    with pytest.raises(EventLogError, match="no SparkListenerApplicationStart"):
        parse_eventlog(bad)
    # A log still being written may end in half a line: skipped, not an error.
    running = tmp_path / "running.jsonl"
    running.write_text("\n".join(lines[:30]) + "\n" + lines[30][:40])
    log = parse_eventlog(running)
    assert log.skipped_last_line and not log.complete


@pytest.fixture(scope="module")
def enel(tmp_path_factory: pytest.TempPathFactory) -> Enel:
    folder = tmp_path_factory.mktemp("enel")
    runs = generate_training_set(folder, kinds=("kmeans",), scaleouts=(2, 4, 8), runs_per_scaleout=2, seed=0)
    return Enel.train([parse_eventlog(r.path) for r in runs], EnelConfig(**{**QUICK_ENEL, "epochs": 40}))


def test_enel_predicts_remaining_time_and_picks_the_smallest_scaleout_meeting_the_target(
        enel: Enel, tmp_path: Path) -> None:
    part = generate_eventlog(tmp_path / "run.jsonl", "kmeans", 4, seed=99, stop_after_job=1)
    log = parse_eventlog(tmp_path / "run.jsonl")
    errors = []
    for n in (2, 4, 8):
        full = generate_eventlog(tmp_path / f"full{n}.jsonl", "kmeans", 4, seed=99,
                                 rescales=[Rescale(after_job=1, executors=n)])
        truth = full.runtime_s - part.runtime_s
        errors.append(abs(enel.predict_remaining(log, n).remaining_s - truth) / truth)
    assert max(errors) < 0.35, errors
    rem = {n: enel.predict_remaining(log, n).remaining_s for n in (2, 8)}
    assert rem[8] < rem[2]
    elapsed = (log.last_ms - log.start_ms) / 1000
    loose = rescale_decision(enel, log, elapsed + rem[2] + 50)
    tight = rescale_decision(enel, log, elapsed + rem[8] + 1)
    assert loose.meets_target and loose.recommended_executors == 2  # the smallest that fits
    assert tight.meets_target and tight.recommended_executors > loose.recommended_executors
    hopeless = rescale_decision(enel, log, 1)
    assert not hopeless.meets_target
    assert hopeless.recommended_executors == min(hopeless.candidates, key=lambda c: c.total_s).executors


def test_enel_saves_and_loads(enel: Enel, tmp_path: Path) -> None:
    loaded = Enel.load(enel.save(tmp_path / "enel.pt"))
    log = parse_eventlog(FIXTURE)
    assert loaded.header == enel.header
    assert loaded.predict_remaining(log, 4).remaining_s == pytest.approx(enel.predict_remaining(log, 4).remaining_s)
    from intentos.skills.dataflow.bellamy import ModelFileError

    with pytest.raises(ModelFileError, match="knows no application 'grep'"):
        generate_eventlog(tmp_path / "g.jsonl", "grep", 2, seed=1, stop_after_job=0)
        loaded.predict_remaining(parse_eventlog(tmp_path / "g.jsonl"), 2)
