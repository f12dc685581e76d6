"""Reading YAML so that every error can name its file and line.

PyYAML reports syntax errors with a position; structural errors found later (by
pydantic) only know a path like `states.zip.args`. `load` keeps the line of every
mapping key and sequence item so such a path can be turned back into a line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from intentos.errors import WorkflowFileError

Location = tuple[str | int, ...]


class LoadedYaml:
    def __init__(self, path: str, data: Any, lines: dict[Location, int]) -> None:
        self.path = path
        self.data = data
        self._lines = lines

    def line_of(self, location: Location) -> int | None:
        """The 1-based line of the deepest known prefix of `location`."""
        for end in range(len(location), -1, -1):
            if (line := self._lines.get(tuple(location[:end]))) is not None:
                return line
        return None

    def error(self, message: str, location: Location = ()) -> WorkflowFileError:
        return WorkflowFileError(self.path, message, self.line_of(location))

    def validation_error(self, exc: ValidationError, prefix: Location = ()) -> WorkflowFileError:
        """Turn a pydantic error into one WorkflowFileError at the first problem's line."""
        problems = []
        for err in exc.errors():
            loc = prefix + tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "top level"
            problems.append(f"{where}: {err['msg']}")
        first = prefix + tuple(exc.errors()[0]["loc"]) if exc.errors() else prefix
        return WorkflowFileError(self.path, "; ".join(problems), self.line_of(first))


def load(path: str | Path) -> LoadedYaml:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowFileError(str(path), "no such file") from None
    except UnicodeDecodeError as exc:
        raise WorkflowFileError(str(path), f"not UTF-8 text ({exc.reason})") from None
    return loads(text, str(path))


def loads(text: str, name: str = "<string>") -> LoadedYaml:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise WorkflowFileError(name, f"malformed YAML: {exc.problem or exc.context}", line) from None
    except yaml.YAMLError as exc:
        raise WorkflowFileError(name, f"malformed YAML: {exc}") from None
    if node is None:
        raise WorkflowFileError(name, "the file is empty")
    lines: dict[Location, int] = {}
    _index(node, (), lines)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # constructor errors (bad tags, bad timestamps)
        raise WorkflowFileError(name, f"malformed YAML: {exc}") from None
    return LoadedYaml(name, data, lines)


def _index(node: yaml.Node, here: Location, lines: dict[Location, int]) -> None:
    lines.setdefault(here, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            loc = here + (key.value,)
            lines[loc] = key.start_mark.line + 1
            _index(value, loc, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, here + (i,), lines)
