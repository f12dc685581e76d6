"""The `mcp_servers:` section of the config file: one entry per MCP server, whose name is its app's name.

    mcp_servers:
      jot:                                   # the app's name: its functions are jot.TOOL
        command: python                      # stdio: the command that starts the server ...
        args: [-m, jot_server]               # ... its arguments,
        env: {JOT_FILE: ~/jot.json}          # extra environment variables,
        cwd: ~/servers                       # and the folder it starts in (all optional)
      web:
        url: http://127.0.0.1:8000/mcp       # streamable HTTP
        headers: {Authorization: Bearer ...} # optional

An entry that is not valid is a line naming the file and line (`server_entries`); its server is left out.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from intentos.configfile import ConfigFile

SECTION = "mcp_servers"
SERVER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an app name: what `${...}` and `app.verb` allow


class McpServer(BaseModel):
    """One entry of `mcp_servers:`: a command to start (stdio) or a URL to connect to (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(None, min_length=1, description="the program that starts a stdio server")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="added to a small inherited environment")
    cwd: Path | None = None
    url: str | None = Field(None, description="a streamable HTTP endpoint, http:// or https://")
    headers: dict[str, str] = Field(default_factory=dict)
    description: str | None = Field(None, description="what the app is for, shown to the planner")
    startup_timeout: float = Field(30.0, gt=0, description="seconds to start the server and list its tools")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]", value):
            raise _invalid("url must be an http:// or https:// address")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise _invalid("give either `command` (a stdio server) or `url` (a streamable HTTP server)")
        if self.url is not None and (self.args or self.env or self.cwd is not None):
            raise _invalid("args, env and cwd go with `command`, not `url`")
        if self.command is not None and self.headers:
            raise _invalid("headers go with `url`, not `command`")
        return self

    def where(self) -> str:
        """The server, in a few words: its command line or URL."""
        if self.url is not None:
            return self.url
        return " ".join([self.command or "", *self.args])


def _invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is `message` as it is (no "Value error, " before it)."""
    return PydanticCustomError("mcp", message)


def server_entries(config: ConfigFile) -> tuple[dict[str, McpServer], list[str]]:
    """The valid entries of `mcp_servers:`, and a line (naming the file and line) for each invalid one."""
    entries: dict[str, McpServer] = {}
    problems: list[str] = []
    for name, value in config.section(SECTION).items():
        where = (SECTION, name)
        if not isinstance(name, str) or not SERVER_NAME.fullmatch(name):
            problems.append(str(config.error(f"`{SECTION}.{name}`: a server's name is its app's name: letters, "
                                             "digits and _, not starting with a digit", where)))
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            problems.append(str(config.error(f"`{SECTION}.{name}` must be a mapping with `command` or `url`",
                                             where)))
            continue
        try:
            entries[name] = McpServer.model_validate(value)
        except ValidationError as exc:
            problems.append(str(config.validation_error(exc, where)))
    return entries, problems


def entry_line(entry: McpServer) -> str:
    """The server's command line or URL, cut to 80 characters."""
    where = entry.where()
    return where if len(where) <= 80 else where[:79] + "…"
