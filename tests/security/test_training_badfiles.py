"""Item 16 (training): a binary, non-UTF-8 or wrongly typed job file, job.json, metrics file or
checkpoint gives one error line naming the file (sandbox-relative) and the problem, never a traceback
or a message without the file. Driven through `intentos call training.*`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from intentos.cli import app
from intentos.sandbox import Sandbox

CONFIG = {"name": "bad", "workload": {"kind": "digits", "batch_size": 16, "channels": 4},
          "strategy": {"kind": "ddp"}, "steps": 4, "eval_every": 2}
JOB = "training/jobs/bad"
BINARY = bytes(range(256)) * 4
LATIN1 = '{"job_id": "café"}'.encode("latin-1")


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    """A stopped job `bad` with a valid job.json, metrics and a checkpoint pointer; tests damage one file."""
    sandbox = Sandbox(tmp_path / "sb")
    sandbox.write_text("jobs/bad.yaml", yaml.safe_dump(CONFIG))
    sandbox.write_text(f"{JOB}/job.json", json.dumps({"job_id": "bad", "nproc": 1, "pid": None, "config": CONFIG}))
    sandbox.write_text(f"{JOB}/metrics.jsonl", json.dumps({"step": 2, "loss": 1.0, "bytes": 10, "eval_loss": 1.1})
                       + "\n")
    sandbox.write_text(f"{JOB}/checkpoints/latest", "step_0000002")
    (sandbox.root / JOB / "checkpoints" / "step_0000002").mkdir()
    return sandbox


def _call(sandbox: Sandbox, function: str, **args: Any) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["call", function, "--args", json.dumps(args), "--sandbox", str(sandbox.root),
                                      "--json", "--yes"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.stdout)


def _error(done: dict[str, Any], file: str) -> str:
    assert done["status"] == "failed", done
    error = done["error"]
    assert "\n" not in error and "Traceback" not in error
    assert error.startswith(file), f"{error!r} does not start with {file!r}"
    return error


def test_the_undamaged_job_reads(box: Sandbox) -> None:
    done = _call(box, "training.status", job_id="bad")
    assert done["status"] == "done" and done["result"]["jobs"][0]["step"] == 2


@pytest.mark.parametrize(("content", "problem"), [
    (BINARY, "not UTF-8 text"),
    (LATIN1, "not UTF-8 text"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a job record"),
    (json.dumps({"job_id": "bad", "nproc": "two", "config": CONFIG}).encode(),
     "nproc: Input should be a valid integer"),
    (json.dumps({"job_id": "bad", "nproc": 1, "config": "x"}).encode(), "config: Input should be a valid dictionary"),
    (json.dumps({"job_id": "bad", "nproc": 1, "pid": [1], "config": CONFIG}).encode(), "pid: "),
    (json.dumps({"job_id": "bad", "nproc": 1}).encode(), "config: Field required"),
], ids=["binary", "latin-1", "not-json", "a-list", "nproc-string", "config-string", "pid-list", "no-config"])
def test_a_damaged_job_json_is_named(box: Sandbox, content: bytes, problem: str) -> None:
    (box.root / JOB / "job.json").write_bytes(content)
    for function, args in (("training.status", {"job_id": "bad"}), ("training.status", {}),
                           ("training.stop", {"job_id": "bad"}), ("training.compare", {"job_ids": ["bad"]}),
                           ("training.start", {"config": "jobs/bad.yaml", "resume": True, "nproc": 1})):
        error = _error(_call(box, function, **args), f"{JOB}/job.json: ")
        assert problem in error


def test_a_job_json_whose_config_is_wrong_is_named(box: Sandbox) -> None:
    (box.root / JOB / "job.json").write_text(json.dumps({"job_id": "bad", "nproc": 1, "config": {"name": "bad"}}))
    error = _error(_call(box, "training.status", job_id="bad"), f"{JOB}/job.json (config): ")
    assert "workload: Field required" in error


@pytest.mark.parametrize(("content", "problem"), [
    (BINARY, "binary data"),
    (LATIN1 + b"\n", "not UTF-8 text"),
    (b"[1, 2]\n", "must be a JSON object"),
    (b'{"step": "two"}\n', "'step' must be an integer"),
    (b'{"step": 2, "eval_loss": "low"}\n', "'eval_loss' must be a number"),
    (b"{not json\n{}\n", "not a JSON record"),
], ids=["binary", "latin-1", "a-list", "step-string", "eval-loss-string", "not-json"])
def test_a_damaged_metrics_file_is_named(box: Sandbox, content: bytes, problem: str) -> None:
    (box.root / JOB / "metrics.jsonl").write_bytes(content)
    for function, args in (("training.status", {"job_id": "bad"}), ("training.compare", {})):
        error = _error(_call(box, function, **args), f"{JOB}/metrics.jsonl:1: ")
        assert problem in error


@pytest.mark.parametrize(("content", "problem"), [
    (BINARY, "not UTF-8 text"),
    (LATIN1, "not UTF-8 text"),
    (b"[1, 2]\n", "a job file must be a YAML mapping"),
    (yaml.safe_dump({**CONFIG, "steps": "many"}).encode(), "steps: Input should be a valid integer"),
    (b"name: [unclosed\n", "not valid YAML"),
], ids=["binary", "latin-1", "a-list", "steps-string", "bad-yaml"])
def test_a_damaged_job_file_is_named(box: Sandbox, content: bytes, problem: str) -> None:
    box.write_bytes("jobs/broken.yaml", content)
    error = _error(_call(box, "training.start", config="jobs/broken.yaml", job_id="other", nproc=1), "jobs/broken.yaml")
    assert problem in error


@pytest.mark.parametrize(("content", "problem"), [
    (BINARY, "not UTF-8 text"),
    (b"../../../../etc", "does not name a checkpoint folder"),
    (b"step_1/../../../x", "does not name a checkpoint folder"),
], ids=["binary", "path", "step-path"])
def test_a_damaged_checkpoint_pointer_is_named(box: Sandbox, content: bytes, problem: str) -> None:
    (box.root / JOB / "checkpoints" / "latest").write_bytes(content)
    error = _error(_call(box, "training.start", config="jobs/bad.yaml", resume=True, nproc=1),
                   f"{JOB}/checkpoints/latest: ")
    assert problem in error


def _not_a_checkpoint(path: Path) -> None:
    torch.save({"step": 2, "model": "x"}, path)


@pytest.mark.parametrize(("write", "problem"), [
    (lambda p: p.write_bytes(BINARY), "not a checkpoint intentos can load"),
    (lambda p: p.write_bytes(b""), "not a readable checkpoint"),
    (lambda p: torch.save([1, 2], p), "not an intentos training checkpoint"),
    (_not_a_checkpoint, "not an intentos training checkpoint (no 'wall')"),
], ids=["binary", "empty", "a-list", "missing-keys"])
def test_a_damaged_checkpoint_is_named(box: Sandbox, write: Any, problem: str) -> None:
    write(box.root / JOB / "checkpoints" / "step_0000002" / "rank0.pt")
    error = _error(_call(box, "training.start", config="jobs/bad.yaml", resume=True, nproc=1),
                   f"{JOB}/checkpoints/step_0000002/rank0.pt: ")
    assert problem in error
    assert not (box.root / JOB / "log.txt").exists()  # refused before anything started


def test_a_symbolic_link_in_a_job_folder_is_refused(box: Sandbox, tmp_path: Path) -> None:
    """A planted log.txt linking to a file outside must not be shown (a died job shows its log's tail)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n")
    os.symlink(secret, box.root / JOB / "log.txt")
    done = _call(box, "training.status", job_id="bad")
    error = _error(done, f"{JOB}/log.txt is a symbolic link")
    assert "TOP SECRET" not in json.dumps(done)
    _error(_call(box, "training.start", config="jobs/bad.yaml", resume=True, nproc=1), f"{JOB}/log.txt")
    assert secret.read_text() == "TOP SECRET\n"
    assert "refusing" in error
