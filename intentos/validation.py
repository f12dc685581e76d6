"""Validation of a workflow against the Function Table.

`validate` returns every problem at once, each naming its state and field, so a person
can fix a file in one pass and a model can be asked to repair all of it in one turn:
unknown functions, unknown/missing/ill-typed arguments, transitions to undefined states,
references to states that may not have succeeded by then or to fields their result
lacks, unreachable states and loops without a bound.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from intentos.errors import UnknownFunctionError
from intentos.references import Reference, find_references, malformed_references, whole_reference
from intentos.table import FunctionTable
from intentos.workflow import TERMINALS, Workflow


class Problem(BaseModel):
    code: str
    message: str
    state: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.state:
            where.append(f"state {self.state!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class WorkflowInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("the workflow is not valid:\n" + "\n".join(f"- {p}" for p in problems))


def validate(workflow: Workflow, table: FunctionTable) -> list[Problem]:
    problems: list[Problem] = []
    if workflow.start not in workflow.states:
        problems.append(Problem(code="start", field="start", message=f"start state {workflow.start!r} is not defined"))
    for name, state in workflow.states.items():
        for field in ("next", "on_failure"):
            target = getattr(state, field)
            if target not in workflow.states and target not in TERMINALS:
                problems.append(
                    Problem(code="unknown_state", state=name, field=field,
                            message=f"goes to {target!r}, which is neither a state nor done/failed")
                )
    reachable = _reachable(workflow)
    for name in workflow.states:
        if name not in reachable and workflow.start in workflow.states:
            problems.append(Problem(code="unreachable", state=name, message="no path from the start leads here"))
    problems += _loops(workflow, reachable)
    succeeded = _must_have_succeeded(workflow, reachable)
    for name in workflow.states:
        problems += _check_call(workflow, table, name, succeeded.get(name, set()), name in reachable)
    return problems


def check(workflow: Workflow, table: FunctionTable) -> Workflow:
    """The workflow itself if valid, else WorkflowInvalid listing every problem."""
    if problems := validate(workflow, table):
        raise WorkflowInvalid(problems)
    return workflow


# -- graph analyses ----------------------------------------------------------------------------


def _edges(workflow: Workflow) -> list[tuple[str, str, bool]]:
    """(from, to, on_success) for every transition between defined states."""
    out = []
    for name, state in workflow.states.items():
        for target, ok in ((state.next, True), (state.on_failure, False)):
            if target in workflow.states:
                out.append((name, target, ok))
    return out


def _reachable(workflow: Workflow) -> set[str]:
    if workflow.start not in workflow.states:
        return set()
    seen, todo = {workflow.start}, [workflow.start]
    while todo:
        for nxt in workflow.successors(todo.pop()):
            if nxt in workflow.states and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _loops(workflow: Workflow, reachable: set[str]) -> list[Problem]:
    """Every cycle must pass through a state with max_visits: the graph without them is acyclic."""
    free = {n for n in reachable if workflow.states[n].max_visits is None}
    graph = {n: [t for t in workflow.successors(n) if t in free] for n in free}
    problems, color = [], dict.fromkeys(free, 0)  # 0 new, 1 on the stack, 2 finished

    def visit(node: str, path: list[str]) -> None:
        color[node] = 1
        for nxt in graph[node]:
            if color[nxt] == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                problems.append(
                    Problem(code="unbounded_loop", state=nxt, field="max_visits",
                            message=f"loop {' -> '.join(cycle)} has no bound: set max_visits on one of its states")
                )
            elif color[nxt] == 0:
                visit(nxt, path + [nxt])
        color[node] = 2

    for node in sorted(free):
        if color[node] == 0:
            visit(node, [node])
    return problems


def _must_have_succeeded(workflow: Workflow, reachable: set[str]) -> dict[str, set[str]]:
    """For each state, the states that succeeded on every path from the start to it.

    A forward must-analysis: entering by a success edge adds the predecessor, entering by
    a failure edge does not; paths meet by intersection. Iterated to a fixpoint so loops work.
    """
    universe = set(reachable)
    into: dict[str, set[str]] = {n: set(universe) for n in reachable}
    if workflow.start in into:
        into[workflow.start] = set()
    edges = [(a, b, ok) for a, b, ok in _edges(workflow) if a in reachable]
    changed = True
    while changed:
        changed = False
        for node in reachable:
            if node == workflow.start:
                continue  # nothing is known to have run when the start is (re-)entered
            incoming = [into[a] | {a} if ok else into[a] for a, b, ok in edges if b == node]
            new = set.intersection(*incoming) if incoming else set()
            if new != into[node]:
                into[node] = new
                changed = True
    return into


# -- calls and arguments -------------------------------------------------------------------------


def _check_call(workflow: Workflow, table: FunctionTable, name: str, succeeded: set[str],
                reachable: bool) -> list[Problem]:
    state = workflow.states[name]
    try:
        fn = table.get(state.call)
    except UnknownFunctionError as exc:
        return [Problem(code="unknown_function", state=name, field="call", message=str(exc))]
    problems: list[Problem] = []
    fields = fn.params.model_fields
    accepted = {f.alias or key: key for key, f in fields.items()} | {key: key for key in fields}
    literal: dict[str, Any] = {}
    referenced: set[str] = set()
    params_schema = fn.params.model_json_schema()
    for arg, value in state.args.items():
        where = f"args.{arg}"
        if arg not in accepted:
            known = ", ".join(fields) or "none"
            problems.append(Problem(code="unknown_argument", state=name, field=where,
                                    message=f"{fn.name} has no argument {arg!r} (it takes: {known})"))
            continue
        for bad in malformed_references(value):
            problems.append(Problem(code="reference_syntax", state=name, field=where,
                                    message=f"{bad} is not a reference; write ${{STATE.result.FIELD}}"))
        refs = find_references(value)
        if not refs:
            literal[arg] = value
            continue
        referenced.add(accepted[arg])
        for ref in refs:
            problems += _check_reference(workflow, table, name, where, ref, succeeded, reachable)
        whole = whole_reference(value)
        target = params_schema.get("properties", {}).get(accepted[arg], {})
        if whole is not None and reachable and whole.state in workflow.states:
            problems += _check_reference_type(workflow, table, name, where, whole, target, params_schema)
        elif whole is None and isinstance(value, str) and not _accepts(target, params_schema, "string"):
            problems.append(Problem(code="wrong_type", state=name, field=where,
                                    message="text with a reference in it is a string, but this argument is not"))
    try:
        fn.params.model_validate(literal)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"]
            if err["type"] == "missing" and loc and loc[0] in referenced:
                continue
            field = "args" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in loc)
            code = "missing_argument" if err["type"] == "missing" else "wrong_type"
            problems.append(Problem(code=code, state=name, field=field, message=f"{err['msg']} ({fn.name})"))
    return problems


def _check_reference(workflow: Workflow, table: FunctionTable, name: str, where: str, ref: Reference,
                     succeeded: set[str], reachable: bool) -> list[Problem]:
    if ref.state not in workflow.states:
        return [Problem(code="reference_state", state=name, field=where,
                        message=f"{ref} refers to no state {ref.state!r}")]
    if reachable and ref.state not in succeeded:
        return [Problem(code="reference_may_not_have_run", state=name, field=where,
                        message=f"{ref}: state {ref.state!r} may not have run successfully before {name!r}")]
    source = workflow.states[ref.state]
    if source.call not in table:
        return []  # reported at that state already
    result_schema = table.get(source.call).result.model_json_schema()
    _, missing = _descend(result_schema, ref.path)
    if missing:
        return [Problem(code="reference_field", state=name, field=where, message=f"{ref}: {missing}")]
    return []


def _check_reference_type(workflow: Workflow, table: FunctionTable, name: str, where: str, ref: Reference,
                          target: dict[str, Any], params_schema: dict[str, Any]) -> list[Problem]:
    source = workflow.states[ref.state]
    if source.call not in table:
        return []
    result_schema = table.get(source.call).result.model_json_schema()
    node, missing = _descend(result_schema, ref.path)
    if missing or node is None:
        return []
    given = _types(node, result_schema) - {"null"}
    wanted = _types(target, params_schema)
    if not given or not wanted:
        return []
    bad = [t for t in given if not (t in wanted or (t == "integer" and "number" in wanted))]
    if bad:
        return [Problem(code="wrong_type", state=name, field=where,
                        message=f"{ref} is {'/'.join(sorted(given))}, but the argument wants {'/'.join(sorted(wanted))}"
                        + (f" (to use it as text, embed it: \"... {ref} ...\")" if wanted == {"string"} else ""))]
    return []


# -- JSON-schema helpers -----------------------------------------------------------------------


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1], {})
    return node


def _descend(schema: dict[str, Any], path: tuple[str | int, ...]) -> tuple[dict[str, Any] | None, str | None]:
    """Follow a reference path through a result schema: (node, None) or (None, what is missing)."""
    node = _resolve(schema, schema)
    for step in path:
        options = [_resolve(o, schema) for o in node.get("anyOf", [node])]
        options = [o for o in options if o.get("type") != "null"] or options
        node = options[0]
        if isinstance(step, int):
            if node.get("type") not in ("array", None):
                return None, f"[{step}] indexes a {node.get('type')}, not a list"
            node = _resolve(node.get("items", {}), schema)
        else:
            props = node.get("properties")
            if props is None:
                if node.get("type") in ("object", None):
                    return {}, None
                return None, f"{step!r} is not a field of a {node.get('type')}"
            if step not in props:
                return None, f"the result has no field {step!r} (it has: {', '.join(props)})"
            node = _resolve(props[step], schema)
    return node, None


def _types(node: dict[str, Any], root: dict[str, Any]) -> set[str]:
    node = _resolve(node, root)
    if "anyOf" in node or "oneOf" in node:
        return set().union(*(_types(o, root) for o in node.get("anyOf", node.get("oneOf", []))))
    if "type" in node:
        return set(node["type"]) if isinstance(node["type"], list) else {node["type"]}
    if "enum" in node or "const" in node:
        values = node.get("enum", [node.get("const")])
        return {"string" if isinstance(v, str) else "number" for v in values}
    return set()  # unconstrained


def _accepts(target: dict[str, Any], root: dict[str, Any], kind: str) -> bool:
    types = _types(target, root)
    return not types or kind in types
