"""Items 4 and 5, logs skill: the parser state is written only through the Sandbox (a link planted at the
old temporary name, or at the state's own name, leads nowhere outside), and a source folder holding links or
hard links to outside files is checked without reading them."""

from __future__ import annotations

import os
from pathlib import Path

from intentos.app import Context
from intentos.executor import Executor
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable
from intentos.workflow import Workflow

LOG = "".join(f"2026-03-10 09:00:{i % 60:02d} INFO worker {i} finished job {i * 7}\n" for i in range(200))
SOURCE = "import logging\nlog = logging.getLogger(__name__)\n\ndef f(x):\n    log.info('done')\n    return x\n"


def _call(sb: Sandbox, name: str, args: dict) -> dict:
    wf = Workflow.model_validate({"states": [{"name": "go", "call": name, "args": args}]})
    view = Executor(FunctionTable.discover(), Context(sandbox=sb), assume_yes=True).run(wf)
    step = view.steps[-1]
    return {"status": step.status, "result": step.result, "error": step.error}


def test_parser_state_is_not_written_through_planted_links(tmp_path: Path) -> None:
    sb = Sandbox(tmp_path / "sb")
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    sb.write_text("app.log", LOG)
    (sb.root / "logs").mkdir()
    os.symlink(outside, sb.root / "logs" / "parser.json.tmp")
    done = _call(sb, "logs.parse", {"path": "app.log", "state_file": "logs/parser.json"})
    assert done["status"] == "ok", done
    assert outside.read_text() == "untouched"
    assert (sb.root / "logs" / "parser.json").is_file() and not (sb.root / "logs" / "parser.json").is_symlink()
    # A link at the state's own name that leads out is refused, not written through.
    os.symlink(outside, sb.root / "logs" / "evil.json")
    refused = _call(sb, "logs.parse", {"path": "app.log", "state_file": "logs/evil.json"})
    assert refused["status"] == "error" and "outside the sandbox" in refused["error"]
    assert outside.read_text() == "untouched"


def test_quality_check_does_not_read_links_or_hard_links_out(tmp_path: Path) -> None:
    sb = Sandbox(tmp_path / "sb")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "secret.py").write_text(SOURCE.replace("done", "TOP SECRET"))
    sb.write_text("src/ok.py", SOURCE)
    os.symlink(secret / "secret.py", sb.root / "src" / "link.py")
    os.symlink(secret, sb.root / "src" / "linked_dir")
    os.link(secret / "secret.py", sb.root / "src" / "hard.py")
    done = _call(sb, "logs.check_quality", {"path": "src"})
    assert done["status"] == "ok", done
    assert done["result"]["files_scanned"] == 1
    assert "TOP SECRET" not in str(done["result"])
    refused = _call(sb, "logs.check_quality", {"path": "src/hard.py"})
    assert refused["status"] == "error" and "hard links outside" in refused["error"]
    os.link(secret / "secret.py", sb.root / "hard.log")
    refused = _call(sb, "logs.parse", {"path": "hard.log"})
    assert refused["status"] == "error" and "hard links outside" in refused["error"]
