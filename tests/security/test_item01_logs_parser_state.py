"""Item 1: a planted logs.parse state file must never reach jsonpickle (or any unpickler).

The attack: `intentos call logs.parse --args '{"path": "a.log", "state_file": "state.json"}'` with a
state.json whose `drain3` field is a jsonpickle payload (py/reduce of os.system), wrapped in zlib and
base64 as the parser used to save it. Before the fix the command ran, then the parser reported a
"damaged parser state". Now the file is refused with one line naming it, and nothing runs.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.app import Context
from intentos.cli import app
from intentos.errors import AppError
from intentos.sandbox import Sandbox
from intentos.skills.logs.app import LogsApp, ParseArgs

LOG = "".join(f"2024-03-04 08:00:{i % 60:02d}.000 INFO  svc: request {i} served in {i % 7} ms\n" for i in range(40))


def _payload(marker: Path) -> str:
    """A real jsonpickle document that runs `touch marker` when decoded."""
    return json.dumps({"py/reduce": [{"py/function": "os.system"}, {"py/tuple": [f"touch {marker}"]}]})


def _old_state(marker: Path, **overrides: Any) -> dict[str, Any]:
    """The payload in the shape the parser used to write: base64(base64(zlib(jsonpickle)))."""
    compressed = base64.b64encode(zlib.compress(_payload(marker).encode()))
    return {"format": "intentos-logparser", "version": 1, "settings": {}, "lines": 0,
            "drain3": base64.b64encode(compressed).decode("ascii"), **overrides}


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(tmp_path / "sb")
    sandbox.write_text("a.log", LOG)
    return sandbox


def _call(sandbox: Sandbox, args: dict[str, Any]) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["call", "logs.parse", "--args", json.dumps(args), "--sandbox",
                                      str(sandbox.root), "--json", "--yes"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.stdout)


def test_the_payload_is_live(tmp_path: Path) -> None:
    """The test file is a real exploit: jsonpickle itself, given the payload, runs the command."""
    marker = tmp_path / "proof"
    code = "import jsonpickle, sys; jsonpickle.decode(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, _payload(marker)], check=True, capture_output=True, timeout=30)
    assert marker.exists()


def test_jsonpickle_state_file_runs_nothing_through_intentos_call(box: Sandbox, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    box.write_text("state.json", json.dumps(_old_state(marker)))
    done = _call(box, {"path": "a.log", "state_file": "state.json"})
    assert not marker.exists()
    assert done["status"] == "failed"
    error = done["error"]
    assert "\n" not in error and error.startswith("damaged parser state in state.json: ")
    assert json.loads(box.resolve("state.json").read_text())["drain3"]  # left as it was, not overwritten


@pytest.mark.parametrize("shape", ["v2-clusters", "v2-tree", "v2-settings", "no-version"])
def test_payload_anywhere_in_a_state_file_is_refused(box: Sandbox, tmp_path: Path, shape: str) -> None:
    """The payload put where the new format keeps data: validated as plain data, never decoded."""
    marker = tmp_path / "pwned"
    evil = json.loads(_payload(marker))
    good = {"format": "intentos-logparser", "version": 2, "settings": {}, "lines": 1, "clusters_counter": 1,
            "clusters": [{"id": 1, "tokens": ["hello"], "size": 1}], "tree": [{"path": ["1"], "clusters": [1]}]}
    state = {"v2-clusters": {**good, "clusters": [evil]},
             "v2-tree": {**good, "tree": [evil]},
             "v2-settings": {**good, "settings": evil},
             "no-version": _old_state(marker, version=None)}[shape]
    box.write_text("state.json", json.dumps(state))
    logs = LogsApp(Context(sandbox=box))
    with pytest.raises(AppError) as info:
        logs.parse(ParseArgs(path="a.log", state_file="state.json"))
    assert not marker.exists()
    assert "\n" not in str(info.value) and str(info.value).startswith("damaged parser state in state.json: ")


def test_a_saved_state_is_plain_json_and_resumes(box: Sandbox) -> None:
    logs = LogsApp(Context(sandbox=box))
    first = logs.parse(ParseArgs(path="a.log", state_file="state.json"))
    text = box.resolve("state.json").read_text()
    assert "py/" not in text and "drain3" not in json.loads(text)
    again = logs.parse(ParseArgs(path="a.log", state_file="state.json"))
    assert again.new_templates == 0 and again.state_lines == 2 * first.records
    assert [t.id for t in again.top] == [t.id for t in first.top]


def test_no_unpickler_is_used_on_sandbox_data_in_the_logs_skill() -> None:
    """The logs skill never loads sandbox data with pickle, joblib, jsonpickle, unsafe torch.load or yaml.load."""
    root = Path(__file__).resolve().parents[2] / "intentos" / "skills" / "logs"
    for source in root.glob("*.py"):
        code = "\n".join(line.split("#", 1)[0] for line in source.read_text().splitlines())
        for banned in ("pickle.load", "joblib", "jsonpickle.", "weights_only=False", "yaml.load(", "eval(",
                       "load_state()", "MemoryBufferPersistence"):
            assert banned not in code.replace(".eval()", ""), f"{source.name} uses {banned}"


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_planted_model_bundle_runs_nothing(tmp_path: Path) -> None:
    """The logs skill's other loader: detector model bundles are read with weights_only=True."""
    import torch

    from intentos.skills.logs.a2log import A2Log
    from intentos.skills.logs.model import LogModelError

    marker = tmp_path / "pwned"
    bundle = tmp_path / "a2log.pt"
    torch.save(_Evil(marker), bundle)
    with pytest.raises(LogModelError) as info:
        A2Log.load(bundle)
    assert not marker.exists()
    message = str(info.value)
    assert message.startswith(f"{bundle}: not a readable model file") and "\n" not in message
    assert "weights_only" not in message  # torch's advice to load it unsafely is not passed on
