"""A small MCP server for the tests, written with the MCP SDK: notes kept in a JSON file.

    python notes_server.py [--http PORT]

The notes file is `$NOTES_FILE` (else notes.json in the working folder); with `$NOTES_PIDS` set, the server
appends its process id to that file as it starts (so a test can check that no server outlives it). Its tools
cover every effect class an MCP tool can map to: `add` (write: not read-only, not destructive, closed world),
`search` (read: read-only), `purge` (destructive), `count` (no annotations: external; plain text, no output
schema) and `halt` (exits the process in the middle of the call, as a crashing server does).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

server = MCPServer("notes", instructions="Short notes kept in a JSON file.", log_level="WARNING")


class Note(BaseModel):
    id: int
    text: str
    tags: list[str] = Field(default_factory=list)


class Found(BaseModel):
    notes: list[Note]
    count: int


class Purged(BaseModel):
    removed: int


def _file() -> Path:
    return Path(os.environ.get("NOTES_FILE", "notes.json"))


def _load() -> list[Note]:
    file = _file()
    return [Note.model_validate(n) for n in json.loads(file.read_text())] if file.is_file() else []


def _save(notes: list[Note]) -> None:
    _file().write_text(json.dumps([n.model_dump() for n in notes]))


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False))
def add(text: str, tags: list[str] | None = None) -> Note:
    """Add a note with optional tags.

    The text is kept as given.
    """
    if not text.strip():
        raise ToolError("a note needs some text,\nnot only spaces")
    notes = _load()
    note = Note(id=max((n.id for n in notes), default=0) + 1, text=text, tags=tags or [])
    _save([*notes, note])
    return note


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def search(query: str, limit: int = Field(10, ge=1, le=100)) -> Found:
    """Find the notes whose text contains the query."""
    found = [n for n in _load() if query.lower() in n.text.lower()][:limit]
    return Found(notes=found, count=len(found))


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
def purge() -> Purged:
    """Delete every note."""
    removed = len(_load())
    _save([])
    return Purged(removed=removed)


@server.tool(structured_output=False)
def count() -> str:
    """Say how many notes there are."""
    return f"{len(_load())} notes"


@server.tool(structured_output=False)
def halt() -> str:
    """Stop the server in the middle of the call."""
    sys.stdout.flush()
    os._exit(3)


if __name__ == "__main__":
    if pids := os.environ.get("NOTES_PIDS"):
        with open(pids, "a") as fh:
            fh.write(f"{os.getpid()}\n")
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
