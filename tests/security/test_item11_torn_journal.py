"""Item 11: a journal whose last line was torn by a kill mid-write.

Reading ignores the torn line; reopening the journal to append (a resume) moves the torn bytes aside
(`journal.torn`) and cuts them off, so the next record starts on its own line and the run stays
readable (`runs show`) and listed (`runs`) afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from intentos.cli import app

TORN = b'{"seq": 7, "event": "step_started", "state": "call", "call": "files.wr'


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def declined_write(sandbox: Path) -> str:
    """A one-step run that stops `declined` (a write without --yes and without an answer)."""
    result = invoke("call", "files.write", "--args", json.dumps({"path": "a.txt", "text": "hi"}),
                    "--sandbox", str(sandbox), "--json")
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["status"] == "declined"
    return out["run_id"]


def journal_of(home: Path, run_id: str) -> Path:
    return home / "runs" / run_id / "journal.jsonl"


def test_a_torn_last_line_is_cut_off_on_resume_and_the_run_stays_readable(tmp_path: Path,
                                                                          isolated_home: Path) -> None:
    sandbox = tmp_path / "sb"
    sandbox.mkdir()
    run_id = declined_write(sandbox)
    journal = journal_of(isolated_home, run_id)
    intact = journal.read_bytes()
    with open(journal, "ab") as fh:
        fh.write(TORN)  # killed mid-write: half a record, no newline

    # Reading ignores the torn line.
    shown = invoke("runs", "show", run_id, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["status"] == "declined"

    resumed = invoke("runs", "resume", run_id, "--yes", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["status"] == "done"
    assert (sandbox / "a.txt").read_text() == "hi"

    raw = journal.read_bytes()
    assert raw.startswith(intact) and raw.endswith(b"\n")  # nothing that was whole is lost
    records = [json.loads(line) for line in raw.decode().splitlines()]  # every line is one whole record
    assert [r["event"] for r in records][-3:] == ["step_started", "step_finished", "run_finished"]
    assert (journal.parent / "journal.torn").read_bytes() == TORN + b"\n"  # the torn bytes are kept aside

    shown = invoke("runs", "show", run_id, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["status"] == "done"
    listed = invoke("runs", "--json")
    assert listed.exit_code == 0
    assert [(r["run_id"], r["status"]) for r in json.loads(listed.stdout)] == [(run_id, "done")]
    assert "damaged" not in invoke("runs").output


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path: Path, isolated_home: Path) -> None:
    sandbox = tmp_path / "sb"
    sandbox.mkdir()
    run_id = declined_write(sandbox)
    journal = journal_of(isolated_home, run_id)
    journal.write_bytes(journal.read_bytes().rstrip(b"\n"))  # the crash came between the record and its newline
    before = journal.read_bytes()

    resumed = invoke("runs", "resume", run_id, "--yes", "--json")
    assert resumed.exit_code == 0, resumed.output
    raw = journal.read_bytes()
    assert raw.startswith(before + b"\n")
    events = [json.loads(line)["event"] for line in raw.decode().splitlines()]
    assert events.count("run_finished") == 2 and events[-1] == "run_finished"  # the declined end is still there
    assert not (journal.parent / "journal.torn").exists()
    view = json.loads(invoke("runs", "show", run_id, "--json").stdout)
    assert [s["status"] for s in view["steps"]] == ["declined", "ok"] and view["status"] == "done"


def test_a_torn_line_that_is_not_last_is_damage_named_by_line(tmp_path: Path, isolated_home: Path) -> None:
    # What the old bug left behind: the resumed record appended onto the torn line.
    sandbox = tmp_path / "sb"
    sandbox.mkdir()
    run_id = declined_write(sandbox)
    journal = journal_of(isolated_home, run_id)
    lines = journal.read_bytes().count(b"\n")
    with open(journal, "ab") as fh:
        fh.write(TORN + b'{"seq": 3, "event": "run_resumed"}\n{"seq": 4, "event": "run_resumed"}\n')
    shown = invoke("runs", "show", run_id)
    assert shown.exit_code == 2
    assert f"{journal}:{lines + 1}: damaged journal record" in " ".join(shown.stderr.split())
    assert "Traceback" not in shown.output
