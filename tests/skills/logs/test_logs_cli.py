"""`intentos skills logs ...`, driven in-process through typer's CliRunner on real generated files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.cli import app
from intentos.skills.logs.generator import GroundTruth


@pytest.fixture(scope="module")
def cli() -> CliRunner:
    return CliRunner()


def invoke(cli: CliRunner, *args: str) -> Any:
    result = cli.invoke(app, ["skills", "logs", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def log(cli: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "app.log"
    result = invoke(cli, "generate", str(path), "--lines", "2500", "--anomaly-rate", "0.05", "--seed", "7",
                    "--lines-per-second", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["lines"] == 2500 and data["anomalous_lines"] == sum(data["counts"].values()) > 0
    return path


def test_generate_prints_counts_per_type(cli: CliRunner, tmp_path: Path) -> None:
    result = invoke(cli, "generate", str(tmp_path / "s.log"), "--kind", "hdfs", "--lines", "500", "--seed", "1")
    assert result.exit_code == 0
    assert flat(result.stdout).startswith(f"wrote 500 lines to {tmp_path / 's.log'}")
    assert "template" in result.stdout and (tmp_path / "s.log.truth.json").is_file()


def test_parse_table_and_state(cli: CliRunner, log: Path, tmp_path: Path) -> None:
    result = invoke(cli, "parse", str(log), "--top", "3")
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert text.startswith("2500 records (2500 lines, format generic)")
    assert "top 3 of" in text and "request_id=<*>" in text

    state = tmp_path / "parser.json"
    first = json.loads(invoke(cli, "parse", str(log), "--state", str(state), "--json").stdout)
    again = json.loads(invoke(cli, "parse", str(log), "--state", str(state), "--json").stdout)
    assert first["new_templates"] == first["templates"] > 0 and again["new_templates"] == 0
    assert again["state_lines"] == 5000
    bogus = invoke(cli, "parse", str(log), "--mask", "ips", "--mask", "bogus")
    assert bogus.exit_code == 2 and "unknown masking kind(s) bogus" in flat(bogus.stderr)
    refused = invoke(cli, "parse", str(log), "--state", str(state), "--no-mask")
    assert refused.exit_code == 2 and "other parser settings" in flat(refused.stderr)


def test_detect_lists_the_injected_anomalies_first(cli: CliRunner, log: Path) -> None:
    truth = GroundTruth.load(log).line_labels()
    result = invoke(cli, "detect", str(log), "--method", "unseen_template", "--train-fraction", "0.4", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    flagged = [line["line"] for line in found["top"] if line["over_threshold"]]
    assert flagged and all(n > found["train_lines"] for n in flagged)
    assert sum(n in truth for n in flagged) >= 0.6 * len(flagged)
    table = invoke(cli, "detect", str(log), "--method", "statistics", "--top", "5")
    assert "anomalous lines per type" in table.stdout and "top 5 lines" in table.stdout


def test_label_writes_a_csv_from_the_generated_windows(cli: CliRunner, log: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    result = invoke(cli, "label", str(log), "--from-truth", "--method", "loglab", "--quick", "--epochs", "3",
                    "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == found["lines"] == 2500
    assert sum(r["anomalous"] == "1" for r in rows) == found["anomalous"]
    assert len(found["windows"]) == len(GroundTruth.load(log).windows)

    bad = invoke(cli, "label", str(log), "--window", "2024-03-04T09:00:00")
    assert bad.exit_code == 2 and "expected START/END" in flat(bad.stderr)
    backwards = invoke(cli, "label", str(log), "--window", "2024-03-04T09:00:00/2024-03-04T08:00:00")
    assert backwards.exit_code == 2 and "before it starts" in flat(backwards.stderr)
    none = invoke(cli, "label", str(log))
    assert none.exit_code == 2 and "at least one failure window" in flat(none.stderr)


def test_quality_lists_findings(cli: CliRunner, tmp_path: Path) -> None:
    source = 'import logging\nlog = logging.getLogger()\nlog.error("Job finished successfully")\n'
    (tmp_path / "job.py").write_text(source)
    result = invoke(cli, "quality", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["statements_checked"] == 1
    assert [(f["line"], f["problem"]) for f in found["findings"]] == [(3, "level")]


def test_bad_input_is_one_clear_line(cli: CliRunner, tmp_path: Path) -> None:
    missing = invoke(cli, "parse", str(tmp_path / "nope.log"))
    assert missing.exit_code == 2 and "nope.log: no such log file" in flat(missing.stderr)
    (tmp_path / "blob.log").write_bytes(bytes(range(256)) * 20)
    binary = invoke(cli, "detect", str(tmp_path / "blob.log"))
    assert binary.exit_code == 2 and "looks like binary data" in flat(binary.stderr)
    assert "Traceback" not in binary.output
