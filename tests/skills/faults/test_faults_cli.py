"""The faults CLI through typer's CliRunner on real files: tables, --json, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.skills.faults.cli import app


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "shop"
    result = invoke("simulate", str(folder), "--incidents", "24", "--window", "32", "--seed", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["incidents"] == 24 and data["components"] == 19 and data["samples"] == 24 * 32
    trained = invoke("train", str(folder), "--model", "arvalus", "--epochs", "2", "--json")
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["model"] == str(folder / "model.pt")
    return folder


def test_simulate_prints_tables(tmp_path: Path) -> None:
    result = invoke("simulate", str(tmp_path / "s"), "-n", "6", "-w", "20", "-s", "colocated", "--layout", "long")
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert text.startswith("6 windows of 20 samples") and "colocated" in text and "anomaly kinds" in text
    assert (tmp_path / "s/metrics.csv").read_text().startswith("timestamp,component,metric,value")


def test_localize_table_and_json(shop: Path) -> None:
    args = ("localize", str(shop / "topology.yaml"), str(shop / "metrics.csv"), "--model", str(shop / "model.pt"))
    table = invoke(*args, "--top", "4")
    assert table.exit_code == 0, table.output
    assert "components by anomaly probability (arvalus, 32 samples)" in flat(table.stdout)
    data = json.loads(invoke(*args, "--json", "--start", "1700000000").stdout)
    assert data["window_start"] == "2023-11-14T22:13:20+00:00" and len(data["ranking"]) == 10
    topology = json.loads(invoke("topology", str(shop / "topology.yaml"), "--json").stdout)
    assert {s["component"] for s in data["ranking"]} <= {c["name"] for c in topology["components"]}
    assert data["anomalous"] == bool(data["origins"])


def test_topology_table(shop: Path) -> None:
    result = invoke("topology", str(shop / "topology.yaml"))
    assert result.exit_code == 0
    text = flat(result.stdout)
    assert text.startswith("webshop: 19 components on 7 hosts, 23 dependencies") and "api-gateway" in text


def test_errors_are_one_line_with_exit_code_2(shop: Path, tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("components:\n  - {name: a, host: h}\ndependencies:\n  - {from: a, to: b}\n")
    result = invoke("topology", str(bad))
    assert result.exit_code == 2 and f"{bad}:4: dependencies.0.to: unknown component 'b'" in flat(result.stderr)
    as_json = invoke("localize", str(bad), str(shop / "metrics.csv"), "--model", str(shop / "model.pt"), "--json")
    assert as_json.exit_code == 2 and "unknown component 'b'" in json.loads(as_json.stdout)["error"]
    assert invoke("simulate", str(tmp_path / "x"), "-s", "sideways").exit_code == 2
    assert invoke("train", "--epochs", "1").exit_code == 2  # no folder, no files
    missing = invoke("train", str(tmp_path / "nothing"), "--epochs", "1")
    assert missing.exit_code == 2 and "no such file" in flat(missing.stderr)


def test_ctrl_c_is_exit_code_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("intentos.skills.faults.cli.simulate_files", interrupted)
    result = invoke("simulate", str(tmp_path / "s"), "--json")
    assert result.exit_code == 130 and json.loads(result.stdout) == {"error": "interrupted"}
