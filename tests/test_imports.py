"""No import cycle anywhere in `intentos/`.

Every module is read with `ast` (nothing is imported), and every intentos-internal import
counts: at module level, inside functions, and under `if TYPE_CHECKING:`. A deferred
import only hides a cycle; it does not remove it. `from intentos.pkg import name` counts
as an import of `intentos.pkg.name` when that is a module, else of `intentos.pkg` (its
`__init__.py`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "intentos"

Edge = tuple[str, str, int]  # (imported module, file, line)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> list[Edge]:
    """The intentos modules `name` imports, each with where it does so."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Edge] = []

    def owner(target: str) -> str | None:
        """The module `target` names: itself, or the closest enclosing module (an attribute of it)."""
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "intentos" or alias.name.startswith("intentos."):
                    if (target := owner(alias.name)) is not None:
                        found.append((target, str(path), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            if base != "intentos" and not base.startswith("intentos."):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in known else owner(base)
                if target is not None:
                    found.append((target, str(path), node.lineno))
    return [edge for edge in found if edge[0] != name]


def import_graph() -> dict[str, list[Edge]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted({e[0] for e in graph[root]})))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted({e[0] for e in graph[child]}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return [_cycle_in(sorted(c), graph) for c in sorted(components, key=min)]


def _cycle_in(component: list[str], graph: dict[str, list[Edge]]) -> list[str]:
    """The shortest cycle through the component's first module (breadth-first within the component)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted({e[0] for e in graph[node]} & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def describe(cycle: list[str], graph: dict[str, list[Edge]]) -> str:
    lines = [" -> ".join(cycle)]
    for a, b in zip(cycle, cycle[1:], strict=False):
        where = next(f"{Path(f).relative_to(ROOT.parent)}:{line}" for t, f, line in graph[a] if t == b)
        lines.append(f"    {a} imports {b} at {where}")
    return "\n".join(lines)


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    targets = {name: {e[0] for e in edges} for name, edges in graph.items()}
    assert "intentos.yamlfile" in targets["intentos.eval.suite"]  # from intentos import yamlfile (a submodule)
    assert "intentos" in targets["intentos.eval.record"]  # from intentos import __version__ (the package)
    assert "intentos.eval.bfcl.data" in targets["intentos.eval.bfcl.suite"]  # from intentos.eval.bfcl import data
    assert len(graph) > 50


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph: dict[str, list[Edge]] = {"a": [("b", "a.py", 1)], "b": [("c", "b.py", 2)], "c": [("a", "c.py", 3)],
                                    "d": [("a", "d.py", 4)]}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_there_is_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    # One cycle of each tangle is shown; breaking it may show another of the same modules.
    assert not found, "import cycles in intentos/:\n" + "\n".join(describe(c, graph) for c in found)
