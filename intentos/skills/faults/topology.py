"""The topology of a distributed application: components, the hosts they run on, their dependencies.

YAML, with every error naming the file and line::

    name: webshop
    hosts: [host-1, host-2]           # optional; otherwise the hosts the components name
    components:
      - {name: lb, host: host-1, kind: load_balancer}
      - {name: api, host: host-2}
    dependencies:
      - {from: lb, to: api}            # lb calls api

As a graph (what Arvalus/D-Arvalus see) every component is a node and edges are typed, because an
anomaly travels differently along each relation: `calls` (caller -> callee), `called_by` (callee ->
caller, the way latency and errors travel back) and `colocated` (both ways between components sharing
a host, which compete for its CPU, memory, disk and network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intentos import yamlfile
from intentos.errors import WorkflowFileError
from intentos.skills.faults.errors import FaultsInputError, read_input
from intentos.skills.kit.files import TextProblem, decode_text

EDGE_TYPES = ("calls", "called_by", "colocated")
MAX_TOPOLOGY_BYTES = 5 * 1024 * 1024
# Components sharing a host are joined pairwise (colocated edges): the graph grows with the square.
MAX_COMPONENTS = 2_000
MAX_DEPENDENCIES = 50_000


class Component(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    host: str = Field(min_length=1)
    kind: str = Field("service", description="role, e.g. load_balancer, frontend, service, cache, database, queue")


class Dependency(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    caller: str = Field(alias="from")
    callee: str = Field(alias="to")


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "app"
    hosts: list[str] = Field(default_factory=list, max_length=MAX_COMPONENTS)
    components: list[Component] = Field(min_length=1, max_length=MAX_COMPONENTS)
    dependencies: list[Dependency] = Field(default_factory=list, max_length=MAX_DEPENDENCIES)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.components]

    def host_of(self, name: str) -> str:
        return next(c.host for c in self.components if c.name == name)

    def all_hosts(self) -> list[str]:
        return self.hosts or sorted({c.host for c in self.components})

    def callers(self, name: str) -> list[str]:
        return [d.caller for d in self.dependencies if d.callee == name]

    def callees(self, name: str) -> list[str]:
        return [d.callee for d in self.dependencies if d.caller == name]

    def colocated(self, name: str) -> list[str]:
        host = self.host_of(name)
        return [c.name for c in self.components if c.host == host and c.name != name]

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """edge_index [2, E] (source row, target column: messages flow source -> target) and edge_type [E]."""
        index = {n: i for i, n in enumerate(self.names)}
        src: list[int] = []
        dst: list[int] = []
        kind: list[int] = []
        for d in self.dependencies:
            a, b = index[d.caller], index[d.callee]
            src += [a, b]
            dst += [b, a]
            kind += [EDGE_TYPES.index("calls"), EDGE_TYPES.index("called_by")]
        for i, c in enumerate(self.components):
            for j, other in enumerate(self.components):
                if i != j and c.host == other.host:
                    src.append(i)
                    dst.append(j)
                    kind.append(EDGE_TYPES.index("colocated"))
        return np.array([src, dst], dtype=np.int64).reshape(2, -1), np.array(kind, dtype=np.int64)

    def to_yaml(self) -> str:
        data = {
            "name": self.name,
            "hosts": self.all_hosts(),
            "components": [c.model_dump() for c in self.components],
            "dependencies": [{"from": d.caller, "to": d.callee} for d in self.dependencies],
        }
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


def parse_topology(data: Any, name: str, line_of: Any = None) -> Topology:
    """Validate loaded YAML data; `line_of(location)` maps a field path to its line for error messages."""
    line = line_of or (lambda loc: None)
    if not isinstance(data, dict):
        raise FaultsInputError(name, "a topology is a mapping with `components` (and `dependencies`)", line(()))
    try:
        topo = Topology.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        raise FaultsInputError(name, err["msg"], line(loc), ".".join(str(p) for p in loc) or None) from None
    seen: dict[str, int] = {}
    for i, c in enumerate(topo.components):
        if c.name in seen:
            raise FaultsInputError(name, f"component {c.name!r} is listed twice (first as components.{seen[c.name]})",
                                   line(("components", i, "name")), f"components.{i}.name")
        seen[c.name] = i
        if topo.hosts and c.host not in topo.hosts:
            raise FaultsInputError(name, f"host {c.host!r} is not in `hosts` ({', '.join(topo.hosts)})",
                                   line(("components", i, "host")), f"components.{i}.host")
    pairs: set[tuple[str, str]] = set()
    for i, d in enumerate(topo.dependencies):
        for key, value in (("from", d.caller), ("to", d.callee)):
            if value not in seen:
                raise FaultsInputError(name, f"unknown component {value!r}", line(("dependencies", i, key)),
                                       f"dependencies.{i}.{key}")
        if d.caller == d.callee:
            raise FaultsInputError(name, f"{d.caller!r} depends on itself", line(("dependencies", i)),
                                   f"dependencies.{i}")
        if (d.caller, d.callee) in pairs:
            raise FaultsInputError(name, f"dependency {d.caller} -> {d.callee} is listed twice",
                                   line(("dependencies", i)), f"dependencies.{i}")
        pairs.add((d.caller, d.callee))
    return topo


def load_topology(path: Path, name: str | None = None) -> Topology:
    """Read a topology YAML anywhere (the CLI); a FaultsInputError names the file, line and field of the
    first problem."""
    name = name or str(path)
    return parse_topology_bytes(read_input(path, "topology file", name, MAX_TOPOLOGY_BYTES), name)


def parse_topology_bytes(data: bytes, name: str) -> Topology:
    """A topology from the bytes of the YAML file `name` (the app reads them through the sandbox)."""
    try:
        text = decode_text(data, "topology file")
    except TextProblem as exc:
        raise FaultsInputError(name, exc.message, exc.line) from None
    try:
        loaded = yamlfile.loads(text, name)
    except WorkflowFileError as exc:
        message = str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc)
        raise FaultsInputError(name, message, exc.line) from None
    except RecursionError:  # a backstop: yamlfile bounds the nesting itself
        raise FaultsInputError(name, "nested too deeply") from None
    except yaml.YAMLError as exc:  # a backstop: PyYAML's reader refuses control characters before yamlfile's checks
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or str(exc)
        raise FaultsInputError(name, f"malformed YAML: {reason}", line) from None
    return parse_topology(loaded.data, name, loaded.line_of)
