"""`intentos skills dataflow ...` driven in-process through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from intentos.skills.dataflow import cli as dataflow_cli
from intentos.skills.dataflow.cli import app

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
FIXTURE = Path(__file__).resolve().parent / "data" / "kmeans-rescaled.jsonl"
torch.set_num_threads(1)
cli = CliRunner()


def test_predict_and_recommend_tables_and_json() -> None:
    result = cli.invoke(app, ["predict", str(DATA / "bell" / "sgd.csv"), "-s", "8", "-s", "40", "--quick"])
    assert result.exit_code == 0, result.output
    assert "Bellamy (s)" in result.stdout and "Ernest (s)" in result.stdout and "40" in result.stdout
    result = cli.invoke(app, ["recommend", str(DATA / "bell" / "sgd.csv"), "--target", "400", "--price", "0.5",
                              "-s", "4", "-s", "16", "-s", "60", "--quick", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recommended"] in (4, 16, 60) and len(data["candidates"]) == 3


def test_generate_train_rescaler_and_rescale(tmp_path: Path) -> None:
    for n in (2, 6):
        r = cli.invoke(app, ["generate-eventlog", str(tmp_path / "hist" / f"k{n}.jsonl"), "--kind", "kmeans",
                             "--executors", str(n), "--rescale", "1:4", "--tasks", "2", "--seed", str(n)])
        assert r.exit_code == 0 and "complete" in r.stdout, r.output
    r = cli.invoke(app, ["generate-eventlog", str(tmp_path / "run.jsonl"), "--executors", "4",
                         "--stop-after-job", "1", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["complete"] is False
    r = cli.invoke(app, ["train-rescaler", str(tmp_path / "hist"), "--out", str(tmp_path / "enel.pt"), "--quick"])
    assert r.exit_code == 0 and "Enel trained on 2 complete runs" in r.stdout, r.output
    r = cli.invoke(app, ["rescale", str(tmp_path / "run.jsonl"), "--target", "200", "--model",
                         str(tmp_path / "enel.pt"), "--json"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["app_name"] == "kmeans" and plan["jobs_done"] == 2 and plan["candidates"]
    r = cli.invoke(app, ["rescale", str(FIXTURE), "--target", "200", "--model", str(tmp_path / "enel.pt")])
    assert r.exit_code == 0 and "recommended" in r.stdout or "no scale-out" in r.stdout, r.output


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("instance_count\tmachine_type\tslots\tmemory\tdata_size_MB\tgross_runtime\n2\tm4\t1\t1\tx\t3\n")
    r = cli.invoke(app, ["predict", str(bad)])
    assert r.exit_code == 2 and f"{bad}:2: column data_size_MB" in " ".join(r.output.split())
    r = cli.invoke(app, ["predict", str(bad), "--json"])
    assert r.exit_code == 2 and "error" in json.loads(r.stdout)
    r = cli.invoke(app, ["rescale", str(FIXTURE), "--target", "10"])
    assert r.exit_code == 2 and "--model or --history" in r.output
    r = cli.invoke(app, ["generate-eventlog", str(tmp_path / "x.jsonl"), "--rescale", "oops"])
    assert r.exit_code == 2


def test_every_command_gives_its_errors_as_json_and_ctrl_c_exits_130(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    missing = str(tmp_path / "missing")
    (tmp_path / "file").write_text("a file where a folder should be\n")
    for argv in (["predict", missing], ["recommend", missing, "--target", "9"],
                 ["train", missing, "--out", str(tmp_path / "m.pt")],
                 ["train-rescaler", missing, "--out", str(tmp_path / "e.pt")],
                 ["rescale", missing, "--target", "9", "--model", missing],
                 ["generate-eventlog", str(tmp_path / "file" / "run.jsonl")]):
        r = cli.invoke(app, [*argv, "--json"])
        assert r.exit_code == 2, (argv, r.output)
        error = json.loads(r.stdout)["error"]
        assert str(tmp_path) in error and "\n" not in error, (argv, error)

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(dataflow_cli, "load_history", interrupted)
    r = cli.invoke(app, ["predict", missing, "--json"])
    assert r.exit_code == 130 and json.loads(r.stdout) == {"error": "interrupted"}
    r = cli.invoke(app, ["train", missing, "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 130 and "interrupted" in r.output
