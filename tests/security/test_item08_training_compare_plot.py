"""Item 8: training.compare's plot never replaces a user's file or intentos' own records.

The attacks: `intentos call training.compare --args '{"plot": "docs/important.txt"}'` replaced that
file with a PNG (no overwrite check, no trash copy); `"plot": ".trash/<id>/entry.json"` corrupted a
trash record. Now the plot must be a .png outside intentos' own folders (.trash, .intentos), and an
existing file is replaced only with overwrite: true, after the old one went to the trash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.cli import app
from intentos.sandbox import Sandbox

CONFIG = {"name": "done", "workload": {"kind": "digits", "batch_size": 16, "channels": 4},
          "strategy": {"kind": "ddp"}, "steps": 4, "eval_every": 2}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    """A finished job to compare, a user's document, and one trash record."""
    box = Sandbox(tmp_path / "sb")
    box.write_text("training/jobs/done/job.json", json.dumps({"job_id": "done", "nproc": 1, "pid": None,
                                                               "config": CONFIG}))
    box.write_text("training/jobs/done/exit_code", "0\n")
    box.write_text("training/jobs/done/metrics.jsonl", "".join(
        json.dumps({"step": s, "loss": 2.0 / s, "bytes": 1000 * s, "wall": 0.1 * s, "eval_loss": 2.1 / s,
                    "eval_acc": 0.2 * s}) + "\n" for s in (2, 4)))
    box.write_text("docs/important.txt", "the user's words\n")
    box.write_text("old.txt", "to be trashed\n")
    box.trash("old.txt")
    return box


def _compare(sandbox: Sandbox, **args: Any) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["call", "training.compare", "--args", json.dumps(args), "--sandbox",
                                      str(sandbox.root), "--json", "--yes"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.stdout)


def _failed(done: dict[str, Any]) -> str:
    assert done.get("status", "failed") == "failed" and done.get("result") is None
    return done["error"]


def test_a_users_file_is_not_replaced_by_the_plot(sandbox: Sandbox) -> None:
    for overwrite in (False, True):
        error = _failed(_compare(sandbox, plot="docs/important.txt", overwrite=overwrite))
        assert "docs/important.txt" in error and ".png" in error
    assert sandbox.resolve("docs/important.txt").read_text() == "the user's words\n"


def test_intentos_own_folders_are_refused(sandbox: Sandbox) -> None:
    entry = sandbox.trash_entries()[0]
    record = sandbox.trash_dir / entry.id / "entry.json"
    before = record.read_bytes()
    _failed(_compare(sandbox, plot=f".trash/{entry.id}/entry.json", overwrite=True))
    for plot in (f".trash/{entry.id}/plot.png", ".intentos/plot.png", "sub/.trash/plot.png"):
        error = _failed(_compare(sandbox, plot=plot, overwrite=True))
        assert "keeps for itself" in error and "\n" not in error
    assert record.read_bytes() == before and sandbox.trash_entries() == [entry]


def test_an_existing_png_is_replaced_only_with_overwrite_and_then_trashed(sandbox: Sandbox) -> None:
    sandbox.write_bytes("plots/cmp.png", PNG + b"the user's old plot")
    error = _failed(_compare(sandbox, plot="plots/cmp.png"))
    assert error.startswith("plots/cmp.png already exists; pass overwrite: true")
    assert sandbox.resolve("plots/cmp.png").read_bytes() == PNG + b"the user's old plot"

    done = _compare(sandbox, plot="plots/cmp.png", overwrite=True)
    assert done["status"] == "done" and done["result"]["plot"] == "plots/cmp.png"
    assert sandbox.resolve("plots/cmp.png").read_bytes().startswith(PNG)
    trashed = [e for e in sandbox.trash_entries() if e.original == "plots/cmp.png"]
    assert len(trashed) == 1
    assert (sandbox.trash_dir / trashed[0].id / "cmp.png").read_bytes() == PNG + b"the user's old plot"


def test_a_new_plot_is_written(sandbox: Sandbox) -> None:
    done = _compare(sandbox, plot="plots/new.png")
    assert done["status"] == "done" and sandbox.resolve("plots/new.png").read_bytes().startswith(PNG)


def test_a_png_name_linking_to_another_file_is_refused(sandbox: Sandbox) -> None:
    os.symlink(sandbox.root / "docs" / "important.txt", sandbox.root / "link.png")
    error = _failed(_compare(sandbox, plot="link.png", overwrite=True))
    assert "docs/important.txt" in error and "not a .png" in error
    assert sandbox.resolve("docs/important.txt").read_text() == "the user's words\n"
