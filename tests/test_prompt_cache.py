"""The disk prompt cache: llama.cpp's state after the prompt's static prefix, saved by one process, loaded by the next.

Inference tests (`-m model`) run the embedded SmolLM2-135M for real, on a small Function Table
(agent + clock: a static prefix of about 700 tokens) so a cold prefix takes seconds, not minutes.
Processes are real too: a "fresh process" is a `python -c` subprocess that resolves one intent
and prints what the backend did with the prefix (`LlamaCppBackend.last_prompt_cache`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from intentos.app import Context, UserProfile
from intentos.apps.agent import AgentApp
from intentos.apps.clock import ClockApp
from intentos.apps.tasks import TasksApp
from intentos.backends import BackendSettings, load_backend_settings, make_backend
from intentos.backends import prompt_cache as pc
from intentos.backends.base import Message
from intentos.backends.llamacpp import LlamaCppBackend, physical_cores
from intentos.backends.prompt_cache import (
    CacheFileError,
    PromptCache,
    StaticPrefixMessage,
    cache_dir,
    model_sha256,
    read_state_file,
    static_prefix_chars,
    write_state_file,
)
from intentos.backends.settings import ENV_VARS
from intentos.controller import Controller, ControllerSettings, ResolutionFailed
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable

FIXED_NOW = "2026-03-10T09:00"
INTENT = "Remind me to call mum on Friday"
APPS = {"agent": AgentApp, "clock": ClockApp, "tasks": TasksApp}

# One intent resolved in a fresh process; prints the raw reply and what happened to the prompt's prefix.
WORKER = """
import json, sys
from datetime import datetime
from intentos.app import Context, UserProfile
from intentos.apps.agent import AgentApp
from intentos.apps.clock import ClockApp
from intentos.apps.tasks import TasksApp
from intentos.backends import load_backend_settings, make_backend
from intentos.controller import Controller, ControllerSettings, ResolutionFailed
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable

args = json.loads(sys.argv[1])
apps = {"agent": AgentApp, "clock": ClockApp, "tasks": TasksApp}
ctx = Context(sandbox=Sandbox(args["sandbox"]), timezone="Europe/Berlin",
              user=UserProfile(name="Alex Doe", email="alex@example.org"),
              fixed_now=datetime.fromisoformat(args["now"]))
backend = make_backend("llamacpp:smollm2", load_backend_settings("llamacpp:smollm2", args["settings"]))
ctl = Controller(backend, FunctionTable([apps[a] for a in args["apps"]]), ctx,
                 ControllerSettings(max_attempts=1, max_tokens=args["max_tokens"], top_k=100,
                                    harm_judge=False), examples=[])  # only the planner's own prompt here
try:
    trace = ctl.resolve(args["intent"]).trace
except ResolutionFailed as failed:
    trace = failed.trace
print(json.dumps({"raw": trace.attempts[0].raw, "cache": backend.last_prompt_cache,
                  "counts": backend.prompt_cache_counts, "ttft_s": trace.attempts[0].ttft_s}))
"""


def resolve_in_fresh_process(tmp_path: Path, *, apps: tuple[str, ...] = ("agent", "clock"), intent: str = INTENT,
                             settings: dict[str, Any] | None = None, now: str = FIXED_NOW,
                             max_tokens: int = 24) -> dict[str, Any]:
    args = {"sandbox": str(tmp_path / "sandbox"), "apps": list(apps), "intent": intent, "now": now,
            "settings": {"n_ctx": 2048, **(settings or {})}, "max_tokens": max_tokens}
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def state_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or cache_dir()).glob("*.kvstate"))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's model settings must not leak into the tests (INTENTOS_HOME is a temporary folder: conftest)."""
    for var in [*ENV_VARS, "INTENTOS_MODEL", "INTENTOS_CONFIG", "XDG_CACHE_HOME"]:
        monkeypatch.delenv(var, raising=False)


# -- the prompt's layout ---------------------------------------------------------------------------------------------


def make_ctx(tmp_path: Path, now: str = FIXED_NOW) -> Context:
    from datetime import datetime

    return Context(sandbox=Sandbox(tmp_path / "sandbox"), timezone="Europe/Berlin",
                   user=UserProfile(name="Alex Doe", email="alex@example.org"), fixed_now=datetime.fromisoformat(now))


def test_the_static_part_comes_first_and_is_the_same_for_every_intent_and_time(tmp_path: Path) -> None:
    table = FunctionTable([AgentApp, ClockApp, TasksApp])
    monday = Controller(make_backend("llamacpp:smollm2"), table, make_ctx(tmp_path, "2026-03-09T08:00"))
    friday = Controller(make_backend("llamacpp:smollm2"), table, make_ctx(tmp_path, "2026-03-13T17:30"))
    one = monday.messages(INTENT, table, monday.pick_examples(INTENT))
    two = friday.messages("What is the date next Monday?", table, friday.pick_examples("next Monday"))
    (i, n), (j, m) = static_prefix_chars(one), static_prefix_chars(two)
    assert (i, j) == (0, 0) and n == m > 1000
    static = one[0].content[:n]
    assert two[0].content[:m] == static and static.endswith(table.prompt_text())
    assert "Context:" not in static and "2026" not in static  # the time and the app state come after it
    assert "Monday 2026-03-09 08:00" in one[0].content[n:] and "Friday 2026-03-13 17:30" in two[0].content[m:]
    # The mark is for backends only: a trace keeps role and content, as before.
    assert one[0].model_dump() == {"role": "system", "content": one[0].content}


def test_unmarked_messages_take_the_first_system_message_as_the_prefix() -> None:
    assert static_prefix_chars([Message(role="system", content="abc"), Message(role="user", content="x")]) == (0, 3)
    assert static_prefix_chars([Message(role="user", content="x")]) is None
    assert static_prefix_chars([StaticPrefixMessage(role="system", content="abcdef", static_chars=4)]) == (0, 4)
    assert static_prefix_chars([]) is None


@pytest.mark.model
def test_the_prefix_tokens_are_a_prefix_of_every_prompt(tmp_path: Path) -> None:
    """Laid out by the chat template and tokenized, the static part is the same leading tokens for any intent."""
    backend = make_backend("llamacpp:smollm2", BackendSettings(n_ctx=2048))
    assert isinstance(backend, LlamaCppBackend)
    loaded = backend.load()
    table = FunctionTable([AgentApp, ClockApp])
    prompts, chats = [], []
    for now, intent in [("2026-03-09T08:00", INTENT), ("2026-12-31T23:59", "What time is it in Tokyo?")]:
        ctl = Controller(backend, table, make_ctx(tmp_path, now))
        messages = ctl.messages(intent, table, ctl.pick_examples(intent))
        chats.append([m.model_dump() for m in messages])
        prompts.append(backend._prompt(loaded, messages, chats[-1]))
    one, two = prompts
    assert one.prefix_len == two.prefix_len > 600
    assert one.tokens[: one.prefix_len] == two.tokens[: two.prefix_len]
    assert one.tokens[one.prefix_len:] != two.tokens[two.prefix_len:]
    assert len(one.tokens) == backend.count_prompt_tokens(chats[0])


# -- state files, without a model --------------------------------------------------------------------------------------

SIGNATURE = {"model_sha256": "ab" * 32, "llama_cpp": "0.0.0", "n_ctx": 2048, "type_k": 1, "type_v": 1,
             "flash_attn": -1, "swa_full": False, "n_gpu_layers": 0}


def test_a_state_file_round_trips_and_checks_what_it_was_written_for(tmp_path: Path) -> None:
    path = tmp_path / "x.kvstate"
    state = bytes(range(256)) * 100
    size = write_state_file(path, dict(SIGNATURE), [1, 2, 3], state)
    assert path.stat().st_size == size and not list(tmp_path.glob("*.tmp"))
    assert bytes(read_state_file(path, SIGNATURE, [1, 2, 3])) == state
    with pytest.raises(CacheFileError, match="other prefix tokens"):
        read_state_file(path, SIGNATURE, [1, 2, 4])
    with pytest.raises(CacheFileError, match="n_ctx"):
        read_state_file(path, {**SIGNATURE, "n_ctx": 4096}, [1, 2, 3])
    raw = bytearray(path.read_bytes())
    raw[-1000] ^= 0x01  # one flipped bit in the state
    path.write_bytes(bytes(raw))
    with pytest.raises(CacheFileError, match="damaged"):
        read_state_file(path, SIGNATURE, [1, 2, 3])
    path.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(CacheFileError, match="truncated"):
        read_state_file(path, SIGNATURE, [1, 2, 3])
    path.write_bytes(b"\x80\x04\x95 a pickle, say")
    with pytest.raises(CacheFileError, match="magic"):
        read_state_file(path, SIGNATURE, [1, 2, 3])


def test_a_bad_file_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    tokens = list(range(100))
    saved = cache.save(SIGNATURE, tokens, b"\x00" * 4096)
    assert saved.ok and saved.path.is_file()
    state, found = cache.load(SIGNATURE, tokens)
    assert found.ok and bytes(state) == b"\x00" * 4096
    saved.path.write_bytes(saved.path.read_bytes()[:-1])
    state, found = cache.load(SIGNATURE, tokens)
    assert state is None and "ignored and removed" in found.why and not saved.path.exists()
    state, found = cache.load(SIGNATURE, tokens)
    assert state is None and found.why == "no file"


def test_the_key_changes_with_the_prefix_and_with_what_the_state_depends_on() -> None:
    key = PromptCache.key(SIGNATURE, [1, 2, 3])
    assert key == PromptCache.key(dict(reversed(SIGNATURE.items())), [1, 2, 3])
    others = {PromptCache.key(SIGNATURE, [1, 2, 4]), PromptCache.key({**SIGNATURE, "n_ctx": 4096}, [1, 2, 3]),
              PromptCache.key({**SIGNATURE, "model_sha256": "cd" * 32}, [1, 2, 3]),
              PromptCache.key({**SIGNATURE, "llama_cpp": "0.0.1"}, [1, 2, 3])}
    assert key not in others and len(others) == 4


def test_the_cache_keeps_the_newest_files_within_its_bounds(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, max_files=3, max_bytes=10**9)
    paths = []
    for i in range(5):
        paths.append(cache.save(SIGNATURE, [i], b"\x00" * 1000).path)
        os.utime(paths[-1], ns=(i * 10**9, i * 10**9 + 10**18))
    assert state_files(tmp_path) == sorted(paths[2:])
    cache.load(SIGNATURE, [2])  # a read makes a file the newest
    small = PromptCache(tmp_path, max_files=10, max_bytes=2 * paths[2].stat().st_size + 10)
    small.prune()
    assert paths[2] in state_files(tmp_path) and len(state_files(tmp_path)) == 2
    stale = tmp_path / ".x.kvstate.123.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    small.prune()
    assert not stale.exists()


def test_the_model_file_is_hashed_once_per_size_and_mtime(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\x00" * 10_000)
    import hashlib

    real = hashlib.sha256(model.read_bytes()).hexdigest()
    pc._HASHED.clear()
    assert model_sha256(model, tmp_path) == real
    sidecar = json.loads((tmp_path / pc.HASHES_FILE).read_text())
    assert sidecar[str(model.resolve())]["sha256"] == real
    # A new process trusts the sidecar while size and mtime match (so a 1 GB file is not read at every start) ...
    sidecar[str(model.resolve())]["sha256"] = "0" * 64
    (tmp_path / pc.HASHES_FILE).write_text(json.dumps(sidecar))
    pc._HASHED.clear()
    assert model_sha256(model, tmp_path) == "0" * 64
    # ... and hashes again when the file changed.
    os.utime(model, ns=(1, 1))
    pc._HASHED.clear()
    assert model_sha256(model, tmp_path) == real


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INTENTOS_HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / "cache" / "prompts"
    monkeypatch.delenv("INTENTOS_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "intentos" / "prompts"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path("~/.cache/intentos/prompts").expanduser()


def test_settings_turn_the_cache_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_backend_settings("llamacpp:smollm2").prompt_cache is True
    monkeypatch.setenv("INTENTOS_PROMPT_CACHE", "0")
    assert load_backend_settings("llamacpp:smollm2").prompt_cache is False
    backend = make_backend("llamacpp:smollm2", load_backend_settings("llamacpp:smollm2"))
    assert backend.prompt_cache() is None


def test_threads_default_to_the_physical_cores() -> None:
    cores = physical_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))
    assert make_backend("llamacpp:smollm2").describe()["n_threads"] == cores
    assert make_backend("llamacpp:smollm2", BackendSettings(n_threads=1)).describe()["n_threads"] == 1


# -- real inference, real processes -----------------------------------------------------------------------------------


@pytest.mark.model
def test_a_fresh_process_loads_the_prefix_from_disk_and_answers_the_same(tmp_path: Path) -> None:
    off = resolve_in_fresh_process(tmp_path, settings={"prompt_cache": False})
    assert off["cache"]["source"] == "off" and state_files() == []

    first = resolve_in_fresh_process(tmp_path)
    assert first["cache"]["source"] == "saved" and first["cache"]["prefix_tokens"] > 600
    assert state_files() == [Path(first["cache"]["file"])]
    assert first["raw"] == off["raw"] and off["raw"].startswith("{")

    second = resolve_in_fresh_process(tmp_path)
    assert second["cache"]["source"] == "disk" and second["counts"] == {"disk": 1}
    assert second["cache"]["cached_prefix_tokens"] == first["cache"]["prefix_tokens"]
    assert second["cache"]["file"] == first["cache"]["file"]
    assert second["raw"] == off["raw"]  # temperature 0: the loaded state gives the same answer

    # Another time and another intent share the prefix: still a hit.
    other = resolve_in_fresh_process(tmp_path, intent="What is the date next Monday?", now="2026-04-01T18:00")
    assert other["cache"]["source"] == "disk" and len(state_files()) == 1

    # A changed Function Table is another prefix: a miss, and a second file.
    # (A window that holds the larger table whole: in 2048 tokens it would give way to the retrieved one.)
    changed = resolve_in_fresh_process(tmp_path, apps=("agent", "clock", "tasks"), settings={"n_ctx": 4096})
    assert changed["cache"]["source"] == "saved" and changed["cache"]["prefix_tokens"] > first["cache"]["prefix_tokens"]
    assert len(state_files()) == 2


@pytest.mark.model
def test_a_damaged_cache_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    first = resolve_in_fresh_process(tmp_path)
    path = Path(first["cache"]["file"])
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    damaged = resolve_in_fresh_process(tmp_path)
    assert damaged["cache"]["source"] == "saved" and "damaged" in damaged["cache"]["why"]
    assert damaged["raw"] == first["raw"]
    assert path.is_file()  # written again (and whole: the next process loads it)
    again = resolve_in_fresh_process(tmp_path)
    assert again["cache"]["source"] == "disk" and again["raw"] == first["raw"]

    path.write_bytes(b"not a state at all")  # garbage under the right name
    garbage = resolve_in_fresh_process(tmp_path)
    assert garbage["cache"]["source"] == "saved" and "magic" in garbage["cache"]["why"]
    assert garbage["raw"] == first["raw"]


@pytest.mark.model
def test_in_process_the_prefix_stays_in_memory_and_off_means_no_files(tmp_path: Path) -> None:
    table = FunctionTable([AgentApp, ClockApp])
    backend = make_backend("llamacpp:smollm2", BackendSettings(n_ctx=2048))
    # The harm judge's own prompt would take the memory between two plans (its prefix is kept on disk too).
    ctl = Controller(backend, table, make_ctx(tmp_path), ControllerSettings(max_attempts=1, max_tokens=24,
                                                                            harm_judge=False), examples=[])
    backend.reset()
    for intent in (INTENT, "What is the date next Monday?"):
        try:
            ctl.resolve(intent)
        except ResolutionFailed:
            pass
        assert backend.last_prompt_cache["source"] in ("saved", "disk", "memory")
    assert backend.last_prompt_cache["source"] == "memory"  # the second intent reused the first one's prefix
    assert backend.last_prompt_cache["cached_prefix_tokens"] == backend.last_prompt_cache["prefix_tokens"]

    off_dir = tmp_path / "off"
    off = make_backend("llamacpp:smollm2", BackendSettings(n_ctx=2048, prompt_cache=False,
                                                          prompt_cache_dir=str(off_dir)))
    off.reset()
    try:
        Controller(off, table, make_ctx(tmp_path), ControllerSettings(max_attempts=1, max_tokens=8,
                                                                      harm_judge=False), examples=[]).resolve(INTENT)
    except ResolutionFailed:
        pass
    assert off.last_prompt_cache["source"] == "off" and not off_dir.exists()
