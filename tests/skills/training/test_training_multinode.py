"""A job on two machines: two torchrun "nodes" on localhost, each started by `jobs.start` with its own
job folder, meet at machine 0's address and keep bit-identical replicas (DiLoCo-DCT, 1 process each)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.cli import app as cli_app
from intentos.skills.training import jobs
from intentos.skills.training.config import JobConfig, parse_config
from intentos.skills.training.layout import latest_checkpoint

JOB = "two"


def _config(steps: int) -> JobConfig:
    return parse_config({"name": JOB, "steps": steps, "eval_every": 4, "checkpoint_every": 8,
                         "workload": {"kind": "lm", "seq_len": 16, "d_model": 16, "n_layers": 1, "n_heads": 2,
                                      "batch_size": 4, "eval_windows": 16},
                         "strategy": {"kind": "diloco_dct", "H": 4, "tile": 16, "k": 2},
                         "optimizer": {"lr": 0.003, "warmup": 3}})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_both(cfg: JobConfig, roots: list[Path], resume: bool = False) -> list[jobs.JobStatus]:
    """Start machine 1 first (it waits for machine 0's store), then machine 0; wait for both."""
    endpoint = f"127.0.0.1:{_free_port()}"
    try:
        for node in (1, 0):
            jobs.start(cfg, roots[node], nproc=1, resume=resume, nnodes=2, node_rank=node, rdzv_endpoint=endpoint)
        return [jobs.wait(root, JOB, timeout=180, poll=0.2) for root in roots]
    finally:
        for root in roots:  # nothing to do for a job that has ended; a hung one is not left behind
            if (root / JOB / "job.json").is_file():
                jobs.stop(root, JOB, grace=2)


def _records(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / JOB / "metrics.jsonl").read_text().splitlines()]


def _prints(root: Path) -> dict[int, str]:
    return {r["step"]: r["params_sha"] for r in _records(root) if "params_sha" in r}


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("multinode")
    roots = [base / "machine0", base / "machine1"]
    done = _run_both(_config(16), roots)
    for status in done:
        assert status.state == "finished", status.log_tail
    return roots


def test_two_machines_keep_identical_replicas(machines: list[Path]) -> None:
    first, second = (_prints(root) for root in machines)
    assert sorted(first) == [4, 8, 12, 16]  # every outer step (H=4) left a fingerprint on each machine
    assert first == second  # rank 0 (machine 0) and rank 1 (machine 1): bit-identical after every sync
    assert len(set(first.values())) == 4  # and the model moved between syncs
    starts = [next(r for r in _records(root) if r.get("event") == "start") for root in machines]
    assert [(s["rank"], s["world"]) for s in starts] == [(0, 2), (1, 2)]
    evals = [{r["step"]: r["eval_loss"] for r in _records(root) if "eval_loss" in r} for root in machines]
    assert evals[0] == evals[1] and sorted(evals[0]) == [4, 8, 12, 16]  # one model, evaluated on both machines


def test_each_machine_keeps_its_own_part(machines: list[Path]) -> None:
    for node, root in enumerate(machines):
        status = jobs.status(root, JOB)
        assert (status.state, status.step, status.nnodes, status.node_rank) == ("finished", 16, 2, node)
        assert status.eval_loss is not None and status.bytes > 0
        meta = json.loads((root / JOB / "job.json").read_text())
        assert (meta["nproc"], meta["nnodes"], meta["node_rank"]) == (1, 2, node)
        assert f"--node-rank={node}" in meta["command"] and "--standalone" not in meta["command"]
        latest = latest_checkpoint(root / JOB)
        assert latest is not None and latest.name == "step_0000016"
        assert [p.name for p in latest.iterdir()] == [f"rank{node}.pt"]  # global rank = node_rank * nproc


def test_resume_on_two_machines(machines: list[Path]) -> None:
    # A changed world shape is refused before anything starts, naming the shape it ran with.
    with pytest.raises(jobs.JobError, match=r"ran with 1 processes on each of 2 machines, this one node rank 1; "
                                            r"resume it with --nproc 1 --nnodes 2 --node-rank 1$"):
        jobs.start(_config(24), machines[1], nproc=1, resume=True)
    with pytest.raises(jobs.JobError, match="resume it with --nproc 1 --nnodes 2 --node-rank 1"):
        jobs.start(_config(24), machines[1], nproc=1, resume=True, nnodes=2, node_rank=0,
                   rdzv_endpoint="127.0.0.1:1234")
    before = _prints(machines[0])
    # As if the job had stopped between the two machines' `latest` updates at step 16: machine 1's
    # still names step 8. Both resume from step 8 (the older checkpoint is kept) and replay 9..16.
    (machines[1] / JOB / "checkpoints" / "latest").write_text("step_0000008")
    done = _run_both(_config(24), machines, resume=True)
    assert [s.state for s in done] == ["finished", "finished"], [s.log_tail for s in done]
    first, second = (_prints(root) for root in machines)
    assert first == second and sorted(first) == [4, 8, 12, 16, 20, 24]
    assert {step: first[step] for step in before} == before  # steps 9..16 replayed bit for bit
    for root in machines:
        records = _records(root)
        assert [r["step"] for r in records if "event" not in r] == list(range(1, 25))  # none lost or repeated
        assert [(r["step"], r["resumed"]) for r in records if r.get("event") == "start"] == [(0, False), (8, True)]


@pytest.mark.parametrize(("options", "message"), [
    ({"nnodes": 2, "node_rank": 2, "rdzv_endpoint": "127.0.0.1:29500"},
     "node_rank must be between 0 and 1 for a job on 2 machines, got 2"),
    ({"nnodes": 2, "node_rank": -1, "rdzv_endpoint": "127.0.0.1:29500"}, "node_rank must be between 0 and 1"),
    ({"nnodes": 1, "node_rank": 1}, "node_rank must be between 0 and 0 for a job on 1 machine, got 1"),
    ({"nnodes": 0}, "nnodes must be between 1 and 1024, got 0"),
    ({"nnodes": 2, "node_rank": 1}, "a job on 2 machines needs rdzv_endpoint HOST:PORT"),
    ({"nnodes": 2, "rdzv_endpoint": "machine0"}, "rdzv_endpoint 'machine0' is not HOST:PORT"),
    ({"nnodes": 2, "rdzv_endpoint": "machine0:99999"}, "is not HOST:PORT"),
    ({"nnodes": 2, "rdzv_endpoint": ":29500"}, "is not HOST:PORT"),
    ({"nnodes": 2, "rdzv_endpoint": "a b:29500"}, "is not HOST:PORT"),
    ({"rdzv_endpoint": "127.0.0.1:29500"}, "only for a job on several machines"),
], ids=["rank-too-high", "rank-negative", "rank-on-one", "no-nodes", "no-endpoint", "no-port", "bad-port",
        "no-host", "space", "endpoint-on-one"])
def test_bad_multinode_requests_are_one_line_errors(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(jobs.JobError) as exc:
        jobs.start(_config(8), tmp_path, nproc=1, **options)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert not any(tmp_path.iterdir())  # refused before any folder or process


def test_cli_passes_the_machine_options(tmp_path: Path) -> None:
    config = tmp_path / "job.yaml"
    config.write_text("name: two\nworkload: {kind: digits}\nstrategy: {kind: ddp}\nsteps: 1\neval_every: 1\n")
    result = CliRunner().invoke(cli_app, ["skills", "training", "start", str(config), "--nnodes", "2",
                                          "--node-rank", "1", "--rdzv-endpoint", "machine0", "--root",
                                          str(tmp_path / "jobs"), "--json"])
    assert result.exit_code == 2
    assert "is not HOST:PORT" in json.loads(result.stdout)["error"]
    assert not (tmp_path / "jobs").exists()
