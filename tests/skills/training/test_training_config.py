"""A malformed job file gives a clear error naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentos.cli import app
from intentos.skills.training.config import JobConfigError, load_config

GOOD = """\
name: ok
workload: {kind: digits}
strategy: {kind: diloco_dct, H: 4, tile: 32, k: 2}
steps: 8
eval_every: 4
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


def test_a_good_file_loads(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.strategy.kind == "diloco_dct" and cfg.strategy.k == 2 and cfg.checkpoint_period == 4


@pytest.mark.parametrize("change, message", [
    (("k: 2", "k: 0"), "strategy.k: Input should be greater than or equal to 1"),
    (("k: 2", "k: 2, sparsity: 3"), "strategy.sparsity: Extra inputs are not permitted"),
    (("eval_every: 4", "eval_every: 6"), "eval_every (6) must be a multiple of strategy.H (4)"),
    (("kind: digits", "kind: imagenet"), "workload"),
    (("steps: 8", "steps: many"), "steps: Input should be a valid integer"),
    (("name: ok", "name: ../escape"), "name: String should match pattern"),
])
def test_bad_fields_are_named(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(JobConfigError) as info:
        load_config(_write(tmp_path, GOOD.replace(*change)))
    assert message in str(info.value) and "job.yaml" in str(info.value)


def test_k_larger_than_tile_says_why(tmp_path: Path) -> None:
    with pytest.raises(JobConfigError, match=r"strategy: k \(64\) cannot exceed tile \(32\)"):
        load_config(_write(tmp_path, GOOD.replace("k: 2", "k: 64")))


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(JobConfigError, match=r"job.yaml:\d+: not valid YAML"):
        load_config(_write(tmp_path, GOOD.replace("workload: {kind: digits}", "workload: [kind: digits")))


def test_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JobConfigError, match="must be a YAML mapping"):
        load_config(_write(tmp_path, "- a list\n"))
    with pytest.raises(JobConfigError, match="cannot read the job file"):
        load_config(tmp_path / "nope.yaml")


def test_cli_refuses_a_bad_file_before_launching(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("steps: 8", "steps: 0"))
    result = CliRunner().invoke(app, ["train", str(path), "--root", str(tmp_path / "jobs"), "--json"])
    assert result.exit_code == 2
    assert "steps: Input should be greater than or equal to 1" in result.stdout
    assert not (tmp_path / "jobs").exists()
