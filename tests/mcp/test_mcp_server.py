"""`intentos mcp serve` as a real process, driven by the MCP SDK's own clients: stdio on the handshake protocol
(ClientSession), stdio on the 2026-07-28 protocol (Client, whose elicitation rides `input_required`), and
streamable HTTP on a loopback port. Every run it makes is read back from the journal."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from intentos.journal import RunView, scan_runs
from intentos.table import FunctionTable

C3O_GREP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "c3o" / "grep.tsv"
Elicit = Callable[[Any, types.ElicitRequestParams], Awaitable[types.ElicitResult]]


def serve_command(sandbox: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "intentos", "mcp", "serve", "--sandbox", str(sandbox), *extra]


def server_params(sandbox: Path, env: dict[str, str] | None = None) -> StdioServerParameters:
    # The whole environment: INTENTOS_HOME (the test's own, from conftest) decides where the journal goes.
    command = serve_command(sandbox)
    return StdioServerParameters(command=command[0], args=command[1:], env={**os.environ, **(env or {})})


@asynccontextmanager
async def handshake_session(sandbox: Path, elicit: Elicit | None = None,
                            env: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """A session on the handshake protocol (initialize): the server elicits with requests of its own."""
    async with stdio_client(server_params(sandbox, env)) as (read, write):
        async with ClientSession(read, write, elicitation_callback=elicit) as session:
            await session.initialize()
            yield session


class Answers:
    """An elicitation callback that answers from a list (True: accept with confirm, else the action) and keeps
    every message it was shown."""

    def __init__(self, *answers: bool | str) -> None:
        self.answers = list(answers)
        self.messages: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.messages.append(params.message)
        answer = self.answers.pop(0)
        if answer is True:
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action=answer or "decline")


def text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def runs() -> list[RunView]:
    views, damaged = scan_runs()
    assert not damaged
    return sorted(views, key=lambda v: v.started)


def one_line_error(result: types.CallToolResult) -> str:
    assert result.is_error and len(result.content) == 1
    message = text(result)
    assert "\n" not in message and "Traceback" not in message
    return message


# -- the tools ------------------------------------------------------------------------------------------------


def test_every_function_is_a_tool_with_its_schema_and_annotations(tmp_path: Path) -> None:
    table = FunctionTable.discover()

    async def main() -> list[types.Tool]:
        async with handshake_session(tmp_path / "sandbox") as session:
            return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in anyio.run(main)}
    assert set(tools) == {fn.name for fn in table} | {"resolve", "run"}
    for name, tool in tools.items():
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object"
        if tool.output_schema is not None:
            Draft202012Validator.check_schema(tool.output_schema)
        if name in table:
            fn = table.get(name)
            assert tool.description and tool.description.startswith(fn.description)
            schema = dict(tool.input_schema)
            confirm = schema.get("properties", {}).get("confirm")
            # write/external tools take `confirm`; read and destructive ones do not (destructive always asks)
            assert (confirm is not None) == (fn.effect.value in ("write", "external")), name
            if confirm is not None:
                schema["properties"] = {k: v for k, v in schema["properties"].items() if k != "confirm"}
            assert schema == {**fn.params.model_json_schema(), "type": "object"}, name

    listing = tools["files.list"].annotations
    assert listing is not None and listing.read_only_hint is True and listing.open_world_hint is False
    trash = tools["files.trash"].annotations
    assert trash is not None and trash.read_only_hint is False and trash.destructive_hint is True
    assert trash.open_world_hint is False and trash.idempotent_hint is None
    write = tools["files.write"].annotations
    assert write is not None and write.read_only_hint is False and write.destructive_hint is False
    send = tools["mail.send"].annotations
    assert send is not None and send.open_world_hint is True and send.destructive_hint is False
    assert tools["files.list"].output_schema["properties"].keys() == {"folder", "entries", "paths", "count"}
    assert tools["run"].annotations.destructive_hint is True and "confirm" in tools["run"].input_schema["properties"]
    assert tools["resolve"].input_schema["required"] == ["intent"]


def write_history(path: Path) -> None:
    """A C3O history of one context (grep on c4.2xlarge, 30 runs at six scale-outs) from the shared data."""
    with C3O_GREP.open() as source:
        reader = csv.DictReader(source, delimiter="\t")
        rows = [r for r in reader if r["machine_type"] == "c4.2xlarge" and r["data_size_MB"] == "15150"]
        assert reader.fieldnames and len({r["instance_count"] for r in rows}) > 2
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=reader.fieldnames, delimiter="\t")
            writer.writeheader()
            writer.writerows(rows)


def write_log(path: Path) -> None:
    lines = []
    for i in range(30):
        lines.append(f"2024-05-01 10:00:{i:02d} INFO worker-{i % 3} Received block blk_{1000 + i} of size "
                     f"{2048 * i} from 10.0.0.{i % 7}")
        if i % 10 == 0:
            lines.append(f"2024-05-01 10:00:{i:02d} ERROR worker-{i % 3} Connection reset by peer 10.0.0.{i % 7}")
    path.write_text("\n".join(lines) + "\n")


def test_calls_without_elicitation_read_run_write_needs_confirm_destructive_is_refused(tmp_path: Path) -> None:
    """A client with no elicitation support: read runs; write runs only with `confirm: true`; destructive is
    refused even with it. Every call is a journaled run, the refused ones `declined`."""
    box = tmp_path / "sandbox"
    box.mkdir()
    (box / "hello.txt").write_text("hello")
    write_log(box / "app.log")
    write_history(box / "grep.tsv")

    async def main() -> dict[str, types.CallToolResult]:
        out = {}
        async with handshake_session(box) as session:
            out["list"] = await session.call_tool("files.list", {})
            out["predict"] = await session.call_tool("dataflow.predict_runtime",
                                                     {"history": "grep.tsv", "scaleouts": [4, 8, 16]})
            out["write_unconfirmed"] = await session.call_tool("files.write", {"path": "new.txt", "text": "x"})
            out["write"] = await session.call_tool("files.write", {"path": "new.txt", "text": "x", "confirm": True})
            out["parse"] = await session.call_tool("logs.parse", {"path": "app.log", "confirm": True})
            out["trash"] = await session.call_tool("files.trash", {"path": "hello.txt", "confirm": True})
            out["bad"] = await session.call_tool("files.list", {"recursive": "very"})
            out["unknown"] = await session.call_tool("files.shred", {"path": "hello.txt"})
        return out

    out = anyio.run(main)
    listing = out["list"]
    assert not listing.is_error and listing.structured_content["paths"] == ["app.log", "grep.tsv", "hello.txt"]
    assert json.loads(listing.content[1].text) == listing.structured_content
    predict = out["predict"].structured_content
    assert not out["predict"].is_error and predict["algorithm"] == "grep" and predict["context_runs"] == 30
    assert [row["scaleout"] for row in predict["rows"]] == [4, 8, 16]
    assert all(row["bellamy_s"] > 0 for row in predict["rows"])
    assert "Bellamy" in out["predict"].content[0].text  # the result's own summary leads the text

    error = one_line_error(out["write_unconfirmed"])
    assert error.startswith("not run: files.write (write) needs confirmation") and '"confirm": true' in error
    assert not out["write"].is_error and (box / "new.txt").read_text() == "x"
    parse = out["parse"]
    assert not parse.is_error and parse.structured_content["templates"] == 2
    assert parse.structured_content["records"] == 33

    error = one_line_error(out["trash"])
    assert "files.trash is destructive" in error and "elicitation" in error and "declined" in error
    assert (box / "hello.txt").read_text() == "hello"
    assert one_line_error(out["bad"]).startswith("files.list: invalid arguments: recursive: Input should be a valid "
                                                 "boolean")
    assert one_line_error(out["unknown"]).startswith("unknown function 'files.shred'; did you mean files.")

    journal = runs()
    assert [(v.steps[0].call, v.status, v.steps[0].status) for v in journal] == [
        ("files.list", "done", "ok"),
        ("dataflow.predict_runtime", "done", "ok"),
        ("files.write", "declined", "declined"),
        ("files.write", "done", "ok"),
        ("logs.parse", "done", "ok"),
        ("files.trash", "declined", "declined"),
    ]  # the call with bad arguments was refused before a run began
    assert {v.source for v in journal} == {"mcp"} and {v.sandbox for v in journal} == {str(box)}
    assert journal[5].steps[0].error == "files.trash (destructive) was not confirmed"
    assert out["trash"].meta == {"intentos/run_id": journal[5].run_id, "intentos/status": "declined"}


def test_elicitation_confirms_or_declines_each_call(tmp_path: Path) -> None:
    """A client that can be asked: destructive and unconfirmed write calls are asked about, with the app's
    preview, and run on a yes; a no (or a cancel) leaves everything as it was."""
    box = tmp_path / "sandbox"
    box.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (box / name).write_text(name)
    answers = Answers(True, "decline", True, "cancel")

    async def main() -> list[types.CallToolResult]:
        async with handshake_session(box, answers) as session:
            return [await session.call_tool("files.trash", {"path": "a.txt"}),
                    await session.call_tool("files.trash", {"path": "b.txt", "confirm": True}),
                    await session.call_tool("files.write", {"path": "new.txt", "text": "y"}),
                    await session.call_tool("files.write", {"path": "other.txt", "text": "z"}),
                    await session.call_tool("files.write", {"path": "third.txt", "text": "w", "confirm": True})]

    trashed, declined, written, cancelled, confirmed = anyio.run(main)
    assert not trashed.is_error and trashed.structured_content["path"] == "a.txt" and not (box / "a.txt").exists()
    assert answers.messages[0] == ('destructive: files.trash {"path": "a.txt"}\n'
                                   "  • file a.txt (5 bytes) goes to the trash\nRun it?")
    error = one_line_error(declined)
    assert error.startswith("not run: files.trash (destructive) was declined by the client (decline)")
    assert (box / "b.txt").exists()
    assert not written.is_error and (box / "new.txt").read_text() == "y"
    assert answers.messages[2].startswith('write: files.write {"path": "new.txt", "text": "y"')
    assert "declined by the client (cancel)" in one_line_error(cancelled) and not (box / "other.txt").exists()
    assert not confirmed.is_error and len(answers.messages) == 4  # confirm: true covers a write: nothing asked
    assert [(v.steps[0].call, v.status) for v in runs()] == [
        ("files.trash", "done"), ("files.trash", "declined"), ("files.write", "done"), ("files.write", "declined"),
        ("files.write", "done")]


def test_the_2026_protocol_asks_through_input_required(tmp_path: Path) -> None:
    """The SDK's Client on a 2026-07-28 connection: the server may send no request of its own, so a call that
    needs a yes answers `input_required` and the client's elicitation callback answers it."""
    box = tmp_path / "sandbox"
    box.mkdir()
    (box / "a.txt").write_text("a")
    (box / "b.txt").write_text("b")
    answers = Answers(True, "decline")

    async def main() -> tuple[str | None, list[types.CallToolResult]]:
        async with Client(server_params(box), elicitation_callback=answers) as client:
            results = [await client.call_tool("files.trash", {"path": "a.txt"}),
                       await client.call_tool("files.trash", {"path": "b.txt"})]
            version = client.session.protocol_version
        async with Client(server_params(box)) as client:  # no callback: nobody to ask
            results.append(await client.call_tool("files.trash", {"path": "b.txt"}))
            results.append(await client.call_tool("files.write", {"path": "w.txt", "text": "w", "confirm": True}))
        return version, results

    version, (trashed, declined, refused, written) = anyio.run(main)
    assert version == "2026-07-28"
    assert not trashed.is_error and not (box / "a.txt").exists()
    assert answers.messages == ['destructive: files.trash {"path": "a.txt"}\n  • file a.txt (1 byte) goes to the '
                                'trash\nRun it?', 'destructive: files.trash {"path": "b.txt"}\n  • file b.txt (1 '
                                'byte) goes to the trash\nRun it?']
    assert "declined by the client" in one_line_error(declined) and (box / "b.txt").exists()
    assert "cannot be asked" in one_line_error(refused) and (box / "b.txt").exists()
    assert not written.is_error and (box / "w.txt").read_text() == "w"
    assert [(v.steps[0].call, v.status) for v in runs()] == [
        ("files.trash", "done"), ("files.trash", "declined"), ("files.trash", "declined"), ("files.write", "done")]


# -- workflows ------------------------------------------------------------------------------------------------


class FakeOpenAI(ThreadingHTTPServer):
    """An OpenAI-compatible chat server on a loopback port that streams `reply` to every request: the planner's
    real path (the openai backend, the Controller, its dry run and checks) without a model to load."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _FakeOpenAIHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _FakeOpenAIHandler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.server.requests.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
        for chunk in ({"choices": [{"index": 0, "delta": {"role": "assistant", "content": self.server.reply},
                                    "finish_reason": None}]},
                      {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                      {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}):
            self.wfile.write(f"data: {json.dumps({**base, **chunk})}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


def test_resolve_plans_without_running_and_run_runs_the_plan(tmp_path: Path) -> None:
    box = tmp_path / "sandbox"
    box.mkdir()
    (box / "old.txt").write_text("old")
    planned = {"states": [{"name": "listing", "call": "files.list", "args": {"folder": "."}}]}
    fake = FakeOpenAI(json.dumps(planned))
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    written = {"states": [
        {"name": "write", "call": "files.write", "args": {"path": "made.txt", "text": "made"}},
        {"name": "listing", "call": "files.list", "args": {}},
        {"name": "tidy", "call": "files.trash", "args": {"path": "old.txt"}},
    ]}
    answers = Answers(True)

    async def main() -> list[types.CallToolResult]:
        env = {"INTENTOS_MODEL": f"openai:fake@{fake.url}"}
        async with handshake_session(box, env=env) as session:
            resolved = await session.call_tool("resolve", {"intent": "List the files in the sandbox"})
            out = [resolved, await session.call_tool("run", {"workflow": resolved.structured_content["workflow"]}),
                   await session.call_tool("run", {"workflow": written}),
                   await session.call_tool("run", {"workflow": written, "confirm": True}),
                   await session.call_tool("run", {"workflow": {"states": [{"name": "x", "call": "files.nope"}]}})]
        async with handshake_session(box, answers) as session:
            written["states"][0]["args"]["overwrite"] = True
            out.append(await session.call_tool("run", {"workflow": written, "confirm": True, "intent": "tidy up"}))
        return out

    try:
        resolved, planned_run, unconfirmed, partly, invalid, confirmed = anyio.run(main)
    finally:
        fake.shutdown()
    assert not resolved.is_error and len(fake.requests) >= 1 and fake.requests[0]["model"] == "fake"
    data = resolved.structured_content
    assert data["workflow"]["states"]["listing"]["call"] == "files.list"
    assert data["workflow"]["intent"] == "List the files in the sandbox" and data["resolution"]["ok"] is True
    assert "files.list" in resolved.content[0].text and "listing" in data["plan"]
    assert not planned_run.is_error and planned_run.structured_content["status"] == "done"
    assert planned_run.structured_content["steps"][0]["result"]["paths"] == ["old.txt"]

    error = one_line_error(unconfirmed)
    assert error.startswith("not run: files.write (write) needs confirmation")  # the journal: nothing ran
    error = one_line_error(partly)  # confirm: true ran the write and the read; the destructive step asks
    assert "files.trash is destructive" in error and (box / "made.txt").read_text() == "made"
    assert one_line_error(invalid).startswith("the workflow is not valid: ")
    assert not confirmed.is_error and confirmed.structured_content["status"] == "done"
    assert [s["call"] for s in confirmed.structured_content["steps"]] == ["files.write", "files.list", "files.trash"]
    assert answers.messages == ["destructive step 'tidy': files.trash {\"path\": \"old.txt\"}\n"
                                "  • file old.txt (3 bytes) goes to the trash\nRun this step?"]
    assert not (box / "old.txt").exists()

    journal = runs()
    assert [(v.source, v.status, [s.status for s in v.steps]) for v in journal] == [
        ("mcp:run", "done", ["ok"]),
        ("mcp:run", "declined", ["declined"]),
        ("mcp:run", "declined", ["ok", "ok", "declined"]),
        ("mcp:run", "done", ["ok", "ok", "ok"]),
    ]
    assert journal[-1].intent == "tidy up"


# -- transports -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamable_http_on_a_loopback_port(tmp_path: Path) -> None:
    box = tmp_path / "sandbox"
    box.mkdir()
    (box / "a.txt").write_text("a")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(serve_command(box, "--http", "--port", str(port)), stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"no server on port {port} within 60 s: {log.read_text()}"
                time.sleep(0.1)
        answers = Answers(True)

        async def main() -> tuple[list[str], types.CallToolResult, types.CallToolResult]:
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write):
                async with ClientSession(read, write, elicitation_callback=answers) as session:
                    await session.initialize()
                    names = [t.name for t in (await session.list_tools()).tools]
                    return (names, await session.call_tool("files.list", {}),
                            await session.call_tool("files.trash", {"path": "a.txt"}))

        names, listing, trashed = anyio.run(main)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "files.list" in names and "run" in names
    assert not listing.is_error and listing.structured_content["paths"] == ["a.txt"]
    assert not trashed.is_error and len(answers.messages) == 1 and not (box / "a.txt").exists()
    assert f"http://127.0.0.1:{port}/mcp" in log.read_text()
    assert [(v.steps[0].call, v.status) for v in runs()] == [("files.list", "done"), ("files.trash", "done")]


@pytest.mark.parametrize("host", ["0.0.0.0", "example.org"])
def test_a_host_that_is_not_loopback_is_refused(tmp_path: Path, host: str) -> None:
    result = subprocess.run(serve_command(tmp_path / "sandbox", "--http", "--host", host), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: --host {host!r}: the MCP server binds to a loopback address only (127.0.0.1, ::1 or localhost); "
        "it has no authentication"]
    assert not (tmp_path / "sandbox").exists()
