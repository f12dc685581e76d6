"""A resumed job continues from its checkpoint exactly as an uninterrupted one would (2 gloo processes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from training_workers import run_distributed, train_jobs

from intentos.skills.training.layout import latest_checkpoint


def _config(steps: int) -> dict[str, Any]:
    return {"name": "resume", "steps": steps, "eval_every": 4, "checkpoint_every": 4,
            "workload": {"kind": "lm", "seq_len": 16, "d_model": 16, "n_layers": 1, "n_heads": 2, "batch_size": 4,
                         "eval_windows": 16},
            "strategy": {"kind": "diloco_dct", "H": 2, "tile": 16, "k": 2},
            "optimizer": {"lr": 0.003, "warmup": 3}}


def _steps(job_dir: Path) -> list[dict[str, Any]]:
    lines = (job_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "event" not in r]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("resume")
    whole, split = root / "whole", root / "split"
    run_distributed(train_jobs, 2, [(_config(8), str(whole), False),
                                    (_config(4), str(split), False),
                                    (_config(8), str(split), True)])
    return whole, split


def test_resumed_run_matches_the_uninterrupted_one(jobs: tuple[Path, Path]) -> None:
    whole, split = jobs
    a, b = _steps(whole), _steps(split)
    assert [r["step"] for r in b] == list(range(1, 9))  # no step lost or repeated
    for x, y in zip(a[4:], b[4:], strict=True):
        assert x["step"] == y["step"]
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
        assert x["bytes"] == y["bytes"]  # byte counters are part of the checkpoint
        assert x.get("eval_loss") == pytest.approx(y.get("eval_loss"), abs=1e-6)


def test_resume_is_recorded_and_checkpoints_are_per_rank(jobs: tuple[Path, Path]) -> None:
    _, split = jobs
    events = [r for r in map(json.loads, (split / "metrics.jsonl").read_text().splitlines()) if "event" in r]
    assert [(e["event"], e["step"]) for e in events if e["event"] == "start"] == [("start", 0), ("start", 4)]
    assert events[-1]["event"] == "done" and events[-1]["step"] == 8
    latest = latest_checkpoint(split)
    assert latest is not None and latest.name == "step_0000008"
    assert sorted(p.name for p in latest.iterdir()) == ["rank0.pt", "rank1.pt"]
