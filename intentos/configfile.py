"""The YAML config file (`intentos.locations.config_file()`), read and checked in one place.

    model: ollama:qwen2.5:7b          # the default model                 (intentos.backends.settings)
    models: {defaults: {...}, ...}    # how to run each model             (intentos.backends.settings)
    agent: {timezone: ..., ...}       # the user, time zone, sandbox, SMTP (intentos.config)
    mcp_servers: {NAME: {...}, ...}   # MCP servers whose tools are apps  (intentos.mcp.config)

`read_config` reads the file once and checks its shape: a mapping whose `model:` is a
string and whose `models:`, `agent:` and `mcp_servers:` are mappings (a section with
nothing under it is an empty one). Each section's owner then validates the fields it
knows, through `error` / `validation_error` so that every mistake names the file and its
line: raised, except for an `mcp_servers:` entry, which leaves its server out with a
warning in the Function Table's problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from intentos import locations, yamlfile
from intentos.errors import WorkflowFileError

SECTIONS = ("models", "agent", "mcp_servers")  # the sections that are mappings of settings


@dataclass(frozen=True)
class ConfigFile:
    """The config file as read: its sections, and where each key is (for errors)."""

    doc: yamlfile.LoadedYaml

    @property
    def data(self) -> dict[str, Any]:
        return self.doc.data

    @property
    def model(self) -> str | None:
        """The top-level `model:` (the default model spec, not parsed here), or None."""
        return self.data.get("model")

    def section(self, name: str) -> dict[str, Any]:
        """The mapping under `name` (`models`, `agent`, `mcp_servers`); empty when the file has none."""
        value = self.data.get(name)
        return {} if value is None else value

    def error(self, message: str, location: yamlfile.Location = ()) -> WorkflowFileError:
        return self.doc.error(message, location)

    def validation_error(self, exc: ValidationError, prefix: yamlfile.Location = ()) -> WorkflowFileError:
        return self.doc.validation_error(exc, prefix)


def read_config() -> ConfigFile | None:
    """The config file, its shape checked; None when there is none."""
    file = locations.config_file()
    if not file.is_file():
        return None
    doc = yamlfile.load(file)
    if not isinstance(doc.data, dict):
        raise doc.error("the config file must be a mapping")
    model = doc.data.get("model")
    if model is not None and not isinstance(model, str):
        raise doc.error("`model:` must be a model spec string", ("model",))
    for name in SECTIONS:
        if (section := doc.data.get(name)) is not None and not isinstance(section, dict):
            raise doc.error(f"the `{name}:` section must be a mapping", (name,))
    return ConfigFile(doc)
