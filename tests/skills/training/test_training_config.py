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


def test_2d_tiles_and_feedback_decay_load_and_old_files_still_validate(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, GOOD.replace("k: 2", "k: 100, tiles: 2d, tile_side: 16, feedback_decay: 0.9")))
    assert (cfg.strategy.tiles, cfg.strategy.tile_side, cfg.strategy.k, cfg.strategy.feedback_decay) == (
        "2d", 16, 100, 0.9)  # k may exceed tile (32) with 2-D blocks: 1-D tiles send min(k, tile)
    old = load_config(_write(tmp_path, GOOD.replace("k: 2", "k: 2, feedback: residual, residual_decay: 0.5")))
    assert (old.strategy.tiles, old.strategy.tile_side, old.strategy.feedback_decay) == ("1d", 64, 1.0)
    assert old.strategy.residual_decay == 0.5


@pytest.mark.parametrize("change, message", [
    ("k: 300, tiles: 2d, tile_side: 16", "strategy: k (300) cannot exceed tile_side² (256) with tiles=2d"),
    ("k: 64, tile_side: 64", "strategy: k (64) cannot exceed tile (32)"),  # 1d: the old rule, whatever tile_side
    ("k: 2, tiles: 3d", "strategy.tiles: Input should be '1d' or '2d'"),
    ("k: 2, tile_side: 0", "strategy.tile_side: Input should be greater than or equal to 1"),
    ("k: 2, tile_side: 257", "strategy.tile_side: Input should be less than or equal to 256"),
    ("k: 2, feedback_decay: 1.5", "strategy.feedback_decay: Input should be less than or equal to 1"),
    ("k: 2, feedback_decay: -0.1", "strategy.feedback_decay: Input should be greater than or equal to 0"),
])
def test_2d_and_decay_errors_are_one_line(tmp_path: Path, change: str, message: str) -> None:
    with pytest.raises(JobConfigError) as info:
        load_config(_write(tmp_path, GOOD.replace("k: 2", change)))
    text = str(info.value)
    assert message in text and "job.yaml" in text and "\n" not in text
