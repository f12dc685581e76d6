"""Reading YAML so that every error can name its file and line, within bounds.

PyYAML reports syntax errors with a position; structural errors found later (by
pydantic) only know a path like `states.zip.args`. `load` keeps the line of every
mapping key and sequence item so such a path can be turned back into a line.

A document is bounded before any Python object is built from it: at most
MAX_FILE_BYTES of text, at most MAX_NODES nodes once aliases are expanded (an alias
counts as everything it stands for, so a few hundred bytes of "billion laughs" are
refused instead of filling memory), and at most MAX_DEPTH levels of nesting (PyYAML
composes, and pydantic validates, nested collections recursively). JSON read with
`json.loads` elsewhere is held to the same depth with `nesting_depth`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from intentos.errors import WorkflowFileError

Location = tuple[str | int, ...]

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64


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
            problems.append(f"{where}: {one_line(err['msg'])}")
        first = prefix + tuple(exc.errors()[0]["loc"]) if exc.errors() else prefix
        return WorkflowFileError(self.path, "; ".join(problems), self.line_of(first))


def load(path: str | Path) -> LoadedYaml:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)  # never more: the path may be /dev/zero or a huge file
    except FileNotFoundError:
        raise WorkflowFileError(str(path), "no such file") from None
    except OSError as exc:
        raise WorkflowFileError(str(path), f"cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise WorkflowFileError(str(path), f"the file is larger than {_size(MAX_FILE_BYTES)}, the most that is read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise WorkflowFileError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})", line) from None
    return loads(text, str(path))


def loads(text: str, name: str = "<string>") -> LoadedYaml:
    if len(text) > MAX_FILE_BYTES:
        raise WorkflowFileError(name, f"the text is larger than {_size(MAX_FILE_BYTES)}, the most that is read")
    try:
        loader = _BoundedLoader(text, name)  # the reader checks the characters here, before any parsing
    except yaml.YAMLError as exc:
        raise WorkflowFileError(name, f"malformed YAML: {' '.join(str(exc).split())}") from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            raise WorkflowFileError(name, f"malformed YAML: {one_line(exc.problem or exc.context)}", line) from None
        except yaml.YAMLError as exc:
            raise WorkflowFileError(name, f"malformed YAML: {one_line(exc)}") from None
        except RecursionError:  # a backstop: the depth bound is checked before PyYAML recurses that far
            raise WorkflowFileError(name, f"nesting deeper than {MAX_DEPTH} levels") from None
        if node is None:
            raise WorkflowFileError(name, "the file is empty")
        lines = _index(node)
        try:
            data = loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:  # constructor errors (bad tags, unhashable keys)
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            raise WorkflowFileError(name, f"malformed YAML: {one_line(exc.problem or exc)}", line) from None
        except yaml.YAMLError as exc:
            raise WorkflowFileError(name, f"malformed YAML: {one_line(exc)}") from None
        except (ValueError, TypeError, OverflowError) as exc:  # bad timestamps, too many digits in an int
            raise WorkflowFileError(name, f"malformed YAML: {one_line(exc)}") from None
        except RecursionError:
            raise WorkflowFileError(name, f"nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    return LoadedYaml(name, data, lines)


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts every event the composer takes and stops at the bounds.

    The composer takes events one at a time, so the check runs before each node exists:
    a collection deeper than MAX_DEPTH is refused before PyYAML recurses into it, and an
    alias is charged the size and height of what it stands for before it is used.
    """

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self._name = name
        self._count = 0
        self._frames: list[list[Any]] = []  # open collections: [anchor, count before it, height of its children]
        self._open: dict[str, int] = {}  # anchors of open collections (an alias to one is a cycle)
        self._anchors: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, height)

    def get_event(self) -> Any:
        event = super().get_event()
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            self._grow(1, event)
            if len(self._frames) >= MAX_DEPTH:
                self._refuse(f"nesting deeper than {MAX_DEPTH} levels", event)
            self._frames.append([event.anchor, self._count - 1, 0])
            if event.anchor:
                self._open[event.anchor] = self._open.get(event.anchor, 0) + 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before, height = self._frames.pop()
            self._used(height + 1)
            if anchor:
                self._anchors[anchor] = (self._count - before, height + 1)
                self._open[anchor] -= 1
        elif isinstance(event, yaml.ScalarEvent):
            self._grow(1, event)
            self._used(0)
            if event.anchor:
                self._anchors[event.anchor] = (1, 0)
        elif isinstance(event, yaml.AliasEvent):
            if self._open.get(event.anchor):
                self._refuse(f"alias *{event.anchor} refers to a collection that contains it", event)
            size, height = self._anchors.get(event.anchor, (1, 0))  # an undefined one: the composer says so
            self._grow(size, event)
            if len(self._frames) + height > MAX_DEPTH:
                self._refuse(f"nesting deeper than {MAX_DEPTH} levels (through alias *{event.anchor})", event)
            self._used(height)
        return event

    def _grow(self, size: int, event: Any) -> None:
        self._count += size
        if self._count > MAX_NODES:
            self._refuse(f"more than {MAX_NODES:,} values once aliases are expanded (each use of an alias "
                         "counts everything it stands for)", event)

    def _used(self, height: int) -> None:
        if self._frames and self._frames[-1][2] < height:
            self._frames[-1][2] = height

    def _refuse(self, message: str, event: Any) -> None:
        mark = getattr(event, "start_mark", None)
        raise WorkflowFileError(self._name, message, mark.line + 1 if mark else None)


def _index(root: yaml.Node) -> dict[Location, int]:
    """The line of every location; iterative, so its depth costs no Python stack."""
    lines: dict[Location, int] = {}
    todo: list[tuple[yaml.Node, Location]] = [(root, ())]
    while todo:
        node, here = todo.pop()
        lines.setdefault(here, node.start_mark.line + 1)
        children: list[tuple[yaml.Node, Location]] = []
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                loc = here + (_key(key),)
                lines[loc] = key.start_mark.line + 1
                children.append((value, loc))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, here + (i,)) for i, item in enumerate(node.value)]
        todo.extend(reversed(children))  # in document order, as a recursive walk would
    return lines


def _key(node: yaml.Node) -> str | int:
    return node.value if isinstance(node, yaml.ScalarNode) else f"<{node.tag.rsplit(':', 1)[-1]}>"


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and dicts nest in `value` (a scalar: 0), counted up to limit + 1; no recursion."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (list, tuple, dict)):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
            todo.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def one_line(message: object) -> str:
    """A message on one line (errors are printed as one line)."""
    return " ".join(str(message).split())


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n % (1024 * 1024) == 0 else f"{n:,} bytes"
