"""The live session with each MCP server of `mcp_servers:`, and the servers this process runs.

The SDK is async: each server has its own event loop in a daemon thread holding the session open (`Connection`),
and a call from the executor's worker thread is handed to that loop and waited for. A server (`Server`) that
exits is found out at the next call, which restarts it; a server that dies during a call makes that call a
one-line AppError. `start_servers` starts (or connects to) each server once per process, reusing one already
running for the same entry; `close_all` (also run at exit) ends every session and so every server process.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from intentos.errors import AppError, IntentosError
from intentos.mcp.config import McpServer, entry_line
from intentos.yamlfile import one_line

MAX_TOOL_PAGES = 100  # of a tools/list reply: a server that pages forever is cut off
ERROR_CHARS = 500  # of a tool's error, as one line in a step's error
# Set for every stdio server: an intentos started that way (as an MCP server, say) starts no servers of its own,
# so a config that names intentos itself cannot start intentos after intentos without end.
CHILD_ENV = "INTENTOS_MCP_CHILD"
STOP_WAIT_S = 10.0  # for a session to close (the SDK waits at most ~6 s for a stdio server to exit)


# -- one session -------------------------------------------------------------------------------------------------


class McpStartError(IntentosError):
    """A server that could not be started, connected to or listed."""


class Connection:
    """One session with one server, held open by an event loop in a daemon thread of its own."""

    def __init__(self, name: str, entry: McpServer) -> None:
        self.name = name
        self.entry = entry
        self.tools: list[Any] = []
        self.instructions: str | None = None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scope: Any = None
        self._closing = False
        self._error: BaseException | None = None
        self._ready = threading.Event()
        # A stdio server's stderr: kept out of the terminal (and the TUI), its last line told when it fails.
        self._errlog = tempfile.TemporaryFile() if entry.command is not None else None
        self._thread = threading.Thread(target=self._serve, name=f"mcp-{name}", daemon=True)

    # -- from the caller's thread

    def begin(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Wait for the server to be up and listed; an McpStartError (and nothing left running) if it is not."""
        if not self._ready.wait(self.entry.startup_timeout):
            said = self._last_words()
            self.close()
            raise McpStartError(f"it did not start and list its tools within {self.entry.startup_timeout:g} s"
                                f"{said}")
        if self._client is None:
            error, said = self._error, self._last_words()
            self.close()
            raise McpStartError(f"{_reason(error) if error else 'it stopped while starting'}{said}")

    @property
    def alive(self) -> bool:
        client = self._client
        if client is None or not self._thread.is_alive():
            return False
        # The SDK closes the dispatcher when the server's stream ends (the process exited, the HTTP session
        # went away); it has no public flag for it, so an SDK without this attribute counts as alive and the
        # call itself reports the closed connection.
        dispatcher = getattr(getattr(client, "_session", None), "_dispatcher", None)
        return not getattr(dispatcher, "_closed", False)

    def call(self, tool: str, arguments: dict[str, Any], cancelled: threading.Event | None = None) -> Any:
        """The tool's CallToolResult; _Stopped when the server is gone, the SDK's error for a protocol error."""
        client, loop = self._client, self._loop
        if client is None or loop is None:
            raise _Stopped("it is not running")
        future = asyncio.run_coroutine_threadsafe(client.call_tool(tool, arguments), loop)
        while not concurrent.futures.wait([future], timeout=0.1).done:
            if cancelled is not None and cancelled.is_set():
                future.cancel()
                raise AppError(f"{self.name}.{tool}: cancelled")
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise _Stopped("its session was closed during the call") from None
        except Exception as exc:
            if _connection_closed(exc):
                raise _Stopped(f"it stopped during the call{self._last_words()}") from None
            raise

    def close(self) -> None:
        """End the session (and with it the server process); waits a bounded time."""
        self._closing = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._cancel)
            except RuntimeError:  # the loop has ended already
                pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(STOP_WAIT_S)
        if self._errlog is not None and not self._thread.is_alive():
            self._errlog.close()

    def _last_words(self) -> str:
        """The last line the server wrote to stderr, if any (a traceback's last line says what went wrong)."""
        if self._errlog is None or self._errlog.closed:
            return ""
        try:  # pread: the server shares the file's offset, which must stay where it writes
            fd = self._errlog.fileno()
            tail = os.pread(fd, 4000, max(0, os.fstat(fd).st_size - 4000)).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        return f" (it said: {one_line(lines[-1])[:200]})" if lines else ""

    # -- in the session's thread

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._client = None
            self._ready.set()

    def _cancel(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def _main(self) -> None:
        import anyio

        with anyio.CancelScope() as scope:
            self._scope = scope
            self._loop = asyncio.get_running_loop()
            if self._closing:
                scope.cancel()
            try:
                async with self._open() as client:
                    tools: list[Any] = []
                    cursor = None
                    for _ in range(MAX_TOOL_PAGES):
                        page = await client.list_tools(cursor=cursor)
                        tools.extend(page.tools)
                        cursor = page.next_cursor
                        if not cursor:
                            break
                    self.tools = tools
                    self.instructions = client.instructions
                    self._client = client
                    self._ready.set()
                    await anyio.sleep_forever()
            except Exception as exc:
                self._error = exc
            finally:
                self._client = None

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[Any]:
        from mcp import Client, Implementation

        from intentos import __version__

        info = Implementation(name="intentos", version=__version__)
        entry = self.entry
        if entry.url is not None:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            async with AsyncExitStack() as stack:
                http = None  # without headers, the SDK's own client (and its timeouts)
                if entry.headers:
                    http = await stack.enter_async_context(
                        httpx2.AsyncClient(headers=entry.headers, timeout=httpx2.Timeout(30.0, read=300.0)))
                yield await stack.enter_async_context(
                    Client(streamable_http_client(entry.url, http_client=http), client_info=info))
            return
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=os.path.expanduser(entry.command or ""), args=entry.args,
                                       env={**entry.env, CHILD_ENV: "1"},
                                       cwd=entry.cwd.expanduser() if entry.cwd is not None else None)
        async with Client(stdio_client(params, errlog=self._errlog), client_info=info) as client:
            yield client


class _Stopped(Exception):
    """The server is not there for a call (it exited, or the session closed)."""


def _connection_closed(exc: BaseException) -> bool:
    from mcp.shared.exceptions import MCPError
    from mcp_types import CONNECTION_CLOSED

    return isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED


def _reason(exc: BaseException) -> str:
    """One line for what stopped a server from starting."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such command {exc.filename!r}"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"{exc.filename!r} cannot be run (permission denied)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if _connection_closed(exc):
        return "it closed the connection before listing its tools"
    text = one_line(exc)
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


# -- the servers of this process -------------------------------------------------------------------------------------


class Server:
    """A configured server: its running connection, started again when the server has exited, until closed."""

    def __init__(self, name: str, entry: McpServer) -> None:
        self.name = name
        self.entry = entry
        self._lock = threading.Lock()
        self._connection = Connection(name, entry)
        self._closed = False  # by close_all or a changed config: never started again

    @property
    def tools(self) -> list[Any]:
        return self._connection.tools

    @property
    def instructions(self) -> str | None:
        return self._connection.instructions

    @property
    def alive(self) -> bool:
        return self._connection.alive

    def call(self, tool: str, arguments: dict[str, Any], cancelled: threading.Event | None = None) -> Any:
        connection = self._running()
        try:
            return connection.call(tool, arguments, cancelled)
        except _Stopped as exc:
            connection.close()
            raise AppError(f"the MCP server {self.name!r} is not there for {self.name}.{tool}: {exc}") from None
        except AppError:
            raise
        except Exception as exc:  # a protocol error, a result the SDK refused: the call's failure, one line
            raise AppError(f"{self.name}.{tool} failed: {one_line(exc)[:ERROR_CHARS] or type(exc).__name__}") \
                from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._connection.close()

    def _running(self) -> Connection:
        """The live connection; one that has stopped is started again (once per call)."""
        with self._lock:
            if self._closed:
                raise AppError(f"the MCP server {self.name!r} was closed (intentos is stopping, or its entry in "
                               "the config file changed)")
            if not self._connection.alive:
                self._connection.close()
                self._connection = Connection(self.name, self.entry)
                self._connection.begin()
                try:
                    self._connection.finish()
                except McpStartError as exc:
                    raise AppError(f"the MCP server {self.name!r} stopped and did not start again: {exc}") \
                        from None
            return self._connection


_SERVERS: dict[str, Server] = {}
_REGISTRY = threading.Lock()
_AT_EXIT = False


def start_servers(entries: dict[str, McpServer]) -> tuple[dict[str, Server], list[str]]:
    """The running server of each entry, in the order given, and a line per server that failed to start.
    Servers already running for the same entry are reused (any other is closed); the others start together,
    each given its `startup_timeout`."""
    global _AT_EXIT
    problems: list[str] = []
    with _REGISTRY:
        if not _AT_EXIT:
            atexit.register(close_all)
            _AT_EXIT = True
        for name, server in list(_SERVERS.items()):
            if entries.get(name) != server.entry or not server.alive:
                server.close()
                del _SERVERS[name]
        fresh = {name: Server(name, entry) for name, entry in entries.items() if name not in _SERVERS}
        for server in fresh.values():
            server._connection.begin()
        for name, server in fresh.items():
            try:
                server._connection.finish()
            except McpStartError as exc:
                problems.append(f"MCP server {name!r} ({entry_line(server.entry)}) failed to start: {exc}")
                continue
            _SERVERS[name] = server
        return {name: _SERVERS[name] for name in entries if name in _SERVERS}, problems


def close_all() -> None:
    """End every server's session (run at exit; tests call it to leave no process behind)."""
    with _REGISTRY:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        server.close()
