"""Item 12: a run killed with SIGKILL at any moment, even inside a step, resumes to exactly the result of
an uninterrupted run: no step's effect applied twice (appends, copies, unzips), none lost, every journal
readable, every run reaching `done`.

A long pinned workflow of file steps runs as a real `intentos run` process; it is killed at random moments
(spread over the time an uninterrupted run takes), then resumed with `intentos runs resume`, itself killed
at random moments now and then, until the run is done. The sandbox then must equal the reference run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

KILLS = 24
MAX_KILLS = 48  # kill times are random against a wall clock: more kills until 3 landed inside a step
SOURCE_FILES = 150

WORKFLOW = """\
name: crash-long
intent: a long run of file steps that each change the sandbox
workflow:
  states:
    - {name: folder, call: files.mkdir, args: {path: work}}
    - {name: first, call: files.append, args: {path: work/log.txt, text: "line 1"}}
    - {name: clone, call: files.copy, args: {source: src, destination: work/copy}}
    - {name: second, call: files.append, args: {path: work/log.txt, text: "line 2"}}
    - {name: pack, call: files.zip, args: {paths: [src], archive: work/src.zip}}
    - {name: third, call: files.append, args: {path: work/log.txt, text: "line 3"}}
    - {name: unpack, call: files.unzip, args: {archive: work/src.zip, destination: work/unpacked}}
    - {name: fourth, call: files.append, args: {path: work/log.txt, text: "line 4"}}
    - {name: rename, call: files.move, args: {source: work/copy, destination: work/moved}}
    - {name: big, call: files.write, args: {path: work/big.txt, text: "BIG"}}
    - {name: fifth, call: files.append, args: {path: src/file-000.txt, text: "appended once"}}
    - {name: replace, call: files.write, args: {path: work/big.txt, text: "small now", overwrite: true}}
    - {name: again, call: files.copy, args: {source: work/unpacked, destination: work/second-copy}}
    - {name: sixth, call: files.append, args: {path: work/log.txt, text: "line 6"}}
""".replace("BIG", "x" * 200_000)


def _intentos(home: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INTENTOS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([str(Path(sys.executable).parent / "intentos"), *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def _make_source(root: Path) -> None:
    (root / "src" / "deeper").mkdir(parents=True)
    for i in range(SOURCE_FILES):
        folder = root / "src" / ("deeper" if i % 3 == 0 else "")
        (folder / f"file-{i:03d}.txt").write_text(f"file {i}\n" + "data " * (i % 40))
    stamp = time.time() - 3600  # one fixed mtime, so both sandboxes' archives hold the same dates
    for path in (root / "src").rglob("*"):
        os.utime(path, (stamp, stamp))


def _snapshot(root: Path) -> dict[str, str]:
    """Every file outside intentos' own folders, by content (an archive by its members' names and CRCs)."""
    snap = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in (".intentos", ".trash") or path.is_dir():
            continue
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                snap[rel] = json.dumps(sorted((i.filename, i.CRC) for i in zf.infolist()))
        else:
            snap[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return snap


def _trash_originals(root: Path) -> list[str]:
    trash = root / ".trash"
    if not trash.is_dir():
        return []
    return sorted(json.loads(p.read_text())["original"] for p in trash.glob("*/entry.json"))


def _the_run(home: Path) -> str | None:
    runs = home / "runs"
    found = [d.name for d in runs.iterdir()] if runs.is_dir() else []
    assert len(found) <= 1, found
    return found[0] if found else None


def _journal_readable(home: Path, run_id: str) -> dict:
    code, out, err = _finish(_intentos(home, "runs", "show", run_id, "--json"))
    assert code == 0, f"runs show failed after a kill: {err.strip()}"
    assert "Traceback" not in err
    return json.loads(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], list[str], float, Path]:
    base = tmp_path_factory.mktemp("crash")
    (base / "long.yaml").write_text(WORKFLOW)
    sandbox, home = base / "reference", base / "reference-home"
    _make_source(sandbox)
    started = time.monotonic()
    code, out, err = _finish(_intentos(home, "run", str(base / "long.yaml"), "--sandbox", str(sandbox),
                                       "--yes", "--json"))
    took = time.monotonic() - started
    assert code == 0, err
    return _snapshot(sandbox), _trash_originals(sandbox), took, base


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result(reference, tmp_path: Path) -> None:
    expected, expected_trash, took, base = reference
    rng = random.Random(12)
    inside_steps = 0
    for attempt in range(MAX_KILLS):
        if attempt >= KILLS and inside_steps >= 3:
            break
        sandbox, home = tmp_path / f"sb{attempt}", tmp_path / f"home{attempt}"
        _make_source(sandbox)
        proc = _intentos(home, "run", str(base / "long.yaml"), "--sandbox", str(sandbox), "--yes", "--json")
        # Most of a run's time is the interpreter starting; the kills are spread over the whole of it.
        time.sleep(rng.uniform(0.0, took))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tries = 0
        while True:
            run_id = _the_run(home)
            journal = home / "runs" / run_id / "journal.jsonl" if run_id else None
            if journal is None or not journal.read_text(errors="replace").startswith('{"seq":0'):
                # Killed before the run's first record: nothing ran, so it is simply started again.
                shutil.rmtree(home / "runs", ignore_errors=True)
                code, _, err = _finish(_intentos(home, "run", str(base / "long.yaml"), "--sandbox", str(sandbox),
                                                 "--yes", "--json"))
                assert code == 0, err
                break
            view = _journal_readable(home, run_id)
            if tries == 0 and view["steps"] and view["steps"][-1]["status"] == "running":
                inside_steps += 1
            if view["status"] == "done":
                break
            tries += 1
            assert tries < 10, f"run {run_id} never reached done"
            proc = _intentos(home, "runs", "resume", run_id, "--yes", "--json")
            if tries <= 2 and rng.random() < 0.5:  # kill some resumes too
                time.sleep(rng.uniform(0.0, took))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                continue
            code, _, err = _finish(proc)
            assert "Traceback" not in err, err
        assert _snapshot(sandbox) == expected, f"kill {attempt}: the sandbox differs from the uninterrupted run"
        assert _trash_originals(sandbox) == expected_trash, f"kill {attempt}: the trash differs"
        undo = sandbox / ".intentos" / "undo"
        assert not undo.exists() or not any(undo.iterdir()), "an undo log was left behind"
    assert inside_steps >= 3, f"only {inside_steps} of {MAX_KILLS} kills landed inside a step"
