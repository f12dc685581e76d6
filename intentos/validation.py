"""Validation of a workflow against the Function Table.

`validate` returns every problem at once, each naming its state and field, so a person
can fix a file in one pass and a model can be asked to repair all of it in one turn:
unknown functions, unknown/missing/ill-typed arguments, transitions to undefined states,
references to states that may not have succeeded by then or to fields their result
lacks, unreachable states and loops without a bound. A `for_each` state is checked too:
its list (at most MAX_FOR_EACH_ITEMS literal items, each of which must make valid
arguments; or a reference to a list), `${item...}` only where there is an item, and
references to its result `{items: [...], count}`.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from intentos.errors import UnknownFunctionError
from intentos.function import Effect
from intentos.looping import result_lists
from intentos.references import (
    ItemReference,
    Reference,
    UnresolvedReference,
    find_item_references,
    find_references,
    malformed_references,
    substitute,
    whole_item_reference,
    whole_reference,
)
from intentos.table import FunctionTable
from intentos.workflow import MAX_FOR_EACH_ITEMS, TERMINALS, State, Workflow

ASK_CALL = "agent.ask"  # its result is the question it showed, never an answer
CHECK_CALL = "agent.check"
OBSERVE_CALL = "agent.observe"  # ends a stage of reading: the planner sees the results and plans on
SAY_CALL = "agent.say"
REFERENCE_ASK = "reference_ask"  # a talk call's result used as the user's answer
REFUSE_CALL = "agent.refuse"
TALK_CALLS = frozenset({ASK_CALL, SAY_CALL, REFUSE_CALL})  # a plan of only these does nothing in any app


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
    succeeded = _Succeeded(workflow, reachable)
    schemas = _Schemas(table)
    for name in workflow.states:
        problems += _check_call(workflow, schemas, name, succeeded, name in reachable)
    return problems


def check(workflow: Workflow, table: FunctionTable) -> Workflow:
    """The workflow itself if valid, else WorkflowInvalid listing every problem."""
    if problems := validate(workflow, table):
        raise WorkflowInvalid(problems)
    return workflow


# -- graph analyses ----------------------------------------------------------------------------


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
    """Every cycle must pass through a state with max_visits: the graph without them is acyclic.

    A depth-first search with an explicit stack (a recursive one would overflow on a long chain of states);
    each edge back onto the current path is one unbounded loop.
    """
    free = {n for n in reachable if workflow.states[n].max_visits is None}
    graph = {n: [t for t in workflow.successors(n) if t in free] for n in free}
    problems, color = [], dict.fromkeys(free, 0)  # 0 new, 1 on the path, 2 finished
    for root in sorted(free):
        if color[root] != 0:
            continue
        color[root] = 1
        path, at = [root], {root: 0}  # the current path and each node's place on it
        stack = [(root, iter(graph[root]))]
        while stack:
            node, successors = stack[-1]
            for nxt in successors:
                if color[nxt] == 1:
                    cycle = path[at[nxt]:] + [nxt]
                    problems.append(
                        Problem(code="unbounded_loop", state=nxt, field="max_visits",
                                message=f"loop {_arrows(cycle)} has no bound: set max_visits on one of its states")
                    )
                elif color[nxt] == 0:
                    color[nxt] = 1
                    at[nxt] = len(path)
                    path.append(nxt)
                    stack.append((nxt, iter(graph[nxt])))
                    break
            else:
                color[node] = 2
                stack.pop()
                path.pop()
                del at[node]
    return problems


def _arrows(cycle: list[str], keep: int = 5) -> str:
    if len(cycle) <= 2 * keep + 1:
        return " -> ".join(cycle)
    hidden = len(cycle) - 2 * keep
    return " -> ".join(cycle[:keep]) + f" -> … {hidden} more … -> " + " -> ".join(cycle[-keep:])


class _Succeeded:
    """Which states succeeded on every path from the start to a state.

    A state A has succeeded on every path to N exactly when every path to N takes A's success edge. Put a
    node on each success edge (A -> A' -> A.next); then A succeeded before N iff A' dominates N. The
    dominator tree is computed once (Cooper, Harvey & Kennedy's iterative algorithm, no recursion) and a
    question is then an ancestor test: linear in the workflow, where a set per state would be quadratic.
    Entering the start again knows nothing, as at the beginning: the start's only dominator is itself.
    """

    def __init__(self, workflow: Workflow, reachable: set[str]) -> None:
        names = [n for n in workflow.states if n in reachable]
        self._index = index = {name: i for i, name in enumerate(names)}
        size = len(names)  # real nodes 0..size-1, the success node of i is size + i
        succ: list[list[int]] = [[] for _ in range(2 * size)]
        for name in names:
            i, state = index[name], workflow.states[name]
            if state.next in index:
                succ[i].append(size + i)
                succ[size + i].append(index[state.next])
            if state.on_failure in index:
                succ[i].append(index[state.on_failure])
        self._tin: list[int] = [-1] * (2 * size)
        self._tout: list[int] = [-1] * (2 * size)
        self._size = size
        if workflow.start not in index:
            return
        root = index[workflow.start]
        order = _postorder(root, succ)  # every node reachable from the start
        number = {node: k for k, node in enumerate(order)}
        preds: dict[int, list[int]] = {node: [] for node in order}
        for node in order:
            for nxt in succ[node]:
                preds[nxt].append(node)
        idom: dict[int, int] = {root: root}
        changed = True
        while changed:
            changed = False
            for node in reversed(order):
                if node == root:
                    continue
                new = -1
                for p in preds[node]:
                    if p not in idom:
                        continue
                    if new == -1:
                        new = p
                        continue
                    a, b = p, new
                    while a != b:
                        while number[a] < number[b]:
                            a = idom[a]
                        while number[b] < number[a]:
                            b = idom[b]
                    new = a
                if idom.get(node) != new:
                    idom[node] = new
                    changed = True
        children: dict[int, list[int]] = {}
        for node, parent in idom.items():
            if node != root:
                children.setdefault(parent, []).append(node)
        clock, todo = 0, [(root, False)]
        while todo:  # entry and exit times on the dominator tree, for ancestor tests
            node, done = todo.pop()
            if done:
                self._tout[node] = clock
                clock += 1
                continue
            self._tin[node] = clock
            clock += 1
            todo.append((node, True))
            todo.extend((child, False) for child in children.get(node, ()))

    def before(self, name: str, earlier: str) -> bool:
        """Whether `earlier` succeeded on every path from the start to `name` (both reachable)."""
        if name not in self._index or earlier not in self._index:
            return False
        node, success = self._index[name], self._size + self._index[earlier]
        if self._tin[node] < 0 or self._tin[success] < 0:
            return False
        return self._tin[success] <= self._tin[node] and self._tout[node] <= self._tout[success]


def _postorder(root: int, succ: list[list[int]]) -> list[int]:
    order, seen, stack = [], {root}, [(root, iter(succ[root]))]
    while stack:
        node, successors = stack[-1]
        for nxt in successors:
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, iter(succ[nxt])))
                break
        else:
            order.append(node)
            stack.pop()
    return order


# -- calls and arguments -------------------------------------------------------------------------


_Node = tuple[dict[str, Any], dict[str, Any]]  # a schema node and the root its $refs resolve in


def _check_call(workflow: Workflow, schemas: _Schemas, name: str, succeeded: _Succeeded,
                reachable: bool) -> list[Problem]:
    state = workflow.states[name]
    try:
        fn = schemas.table.get(state.call)
    except UnknownFunctionError as exc:
        return [Problem(code="unknown_function", state=name, field="call", message=str(exc))]
    problems: list[Problem] = []
    items: list[Any] | None = None  # a literal for_each list
    item_node: _Node | None = None  # the schema of one item of a referenced for_each list, where known
    if state.for_each is not None:
        found, items, item_node = _check_for_each(workflow, schemas, name, state, succeeded, reachable)
        problems += found
    fields = fn.params.model_fields
    accepted = {f.alias or key: key for key, f in fields.items()} | {key: key for key in fields}
    literal: dict[str, Any] = {}
    referenced: set[str] = set()
    per_item: dict[str, Any] = {}  # arguments that depend on the item alone: checked once per literal item
    params_schema = schemas.params(fn.name)
    for arg, value in state.args.items():
        where = f"args.{arg}"
        if arg not in accepted:
            known = ", ".join(fields) or "none"
            problems.append(Problem(code="unknown_argument", state=name, field=where,
                                    message=f"{fn.name} has no argument {arg!r} (it takes: {known})"))
            continue
        for bad in malformed_references(value):
            problems.append(Problem(code="reference_syntax", state=name, field=where,
                                    message=_not_a_reference(bad)))
        refs, item_refs = find_references(value), find_item_references(value)
        if not refs and not item_refs:
            literal[arg] = value
            continue
        referenced.update((arg, accepted[arg]))
        if item_refs and state.for_each is None:
            problems.append(Problem(code="item_outside_for_each", state=name, field=where,
                                    message=f"{item_refs[0]} is the current item of a for_each state, but this "
                                            "state has no for_each (add for_each: a list or ${STATE.result.PATH})"))
        elif item_refs and not refs and items is not None:
            per_item[arg] = value
        for ref in refs:
            problems += _check_reference(workflow, schemas, name, where, ref, succeeded, reachable)
        if item_node is not None:
            for item_ref in item_refs:
                problems += _check_item_reference(name, where, item_ref, item_node)
        whole, whole_item = whole_reference(value), whole_item_reference(value)
        target = params_schema.get("properties", {}).get(accepted[arg], {})
        if whole is not None and reachable and whole.state in workflow.states:
            problems += _check_reference_type(workflow, schemas, name, where, whole, target, params_schema)
        elif whole_item is not None:
            if item_node is not None:
                node, missing = descend(item_node[0], whole_item.path, item_node[1], "the item")
                if node is not None and not missing:
                    problems += _type_problem(name, where, str(whole_item), (node, item_node[1]), target,
                                              params_schema)
        elif whole is None and isinstance(value, str) and not _accepts(target, params_schema, "string"):
            problems.append(Problem(code="wrong_type", state=name, field=where,
                                    message="text with a reference in it is a string, but this argument is not"))
    problems += _pydantic_problems(fn, name, literal, referenced)
    if items and per_item:
        problems += _check_items(fn, name, items, literal, per_item, referenced)
    return problems


def _pydantic_problems(fn: Any, name: str, args: dict[str, Any], referenced: set[str],
                       only: set[str] | None = None) -> list[Problem]:
    """What the function's parameter model says of the literal arguments (a missing one that a reference
    will fill is fine); with `only`, just the errors about those arguments."""
    try:
        fn.params.model_validate(args)
    except ValidationError as exc:
        problems: list[Problem] = []
        unions: dict[str, list[str]] = {}  # a union argument's errors, one per member: told as one problem
        for err in exc.errors():
            loc = err["loc"]
            if err["type"] == "missing" and loc and loc[0] in referenced:
                continue
            if only is not None and not (loc and loc[0] in only):
                continue
            if len(loc) == 2 and _is_union(fn.params, loc[0]):
                unions.setdefault(str(loc[0]), []).append(f"{loc[1]}: {err['msg']}")
                continue
            field = "args" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in loc)
            code = "missing_argument" if err["type"] == "missing" else "wrong_type"
            problems.append(Problem(code=code, state=name, field=field, message=f"{err['msg']} ({fn.name})"))
        problems += [Problem(code="wrong_type", state=name, field=f"args.{arg}",
                             message=f"not any of: {'; '.join(msgs)} ({fn.name})") for arg, msgs in unions.items()]
        return problems
    return []


def _is_union(params: type[BaseModel], arg: object) -> bool:
    field = params.model_fields.get(arg) if isinstance(arg, str) else None
    return field is not None and typing.get_origin(field.annotation) in (typing.Union, types.UnionType)


def _check_items(fn: Any, name: str, items: list[Any], literal: dict[str, Any], per_item: dict[str, Any],
                 referenced: set[str]) -> list[Problem]:
    """Each literal item put into the arguments that depend on it must make valid arguments. The same problem
    for several items is one problem naming them."""
    groups: dict[tuple[str, str], list[int]] = {}
    codes: dict[tuple[str, str], str] = {}
    for number, item in enumerate(items, start=1):
        args = dict(literal)
        pending = set(referenced)
        for arg, value in per_item.items():
            where = f"args.{arg}"
            try:
                filled = substitute(value, None, item)
            except UnresolvedReference as exc:
                key = (where, str(exc))
                codes[key] = "item_field"
                groups.setdefault(key, []).append(number)
                continue
            if find_references(filled) or find_item_references(filled):
                continue  # the item itself holds a reference: known at run time only
            args[arg] = filled
            pending.discard(arg)
        only = set(per_item) - pending
        only |= {key for key, f in fn.params.model_fields.items() if f.alias in only}
        for problem in _pydantic_problems(fn, name, args, referenced, only):
            key = (problem.field or "", problem.message)
            codes[key] = problem.code
            groups.setdefault(key, []).append(number)
    return [Problem(code=codes[key], state=name, field=key[0], message=f"{_numbers(numbers, len(items))}: {key[1]}")
            for key, numbers in groups.items()]


def _numbers(numbers: list[int], total: int, keep: int = 8) -> str:
    shown = ", ".join(str(n) for n in numbers[:keep]) + (f" and {len(numbers) - keep} more" if len(numbers) > keep
                                                         else "")
    return f"{'item' if len(numbers) == 1 else 'items'} {shown} of {total}"


def _check_for_each(workflow: Workflow, schemas: _Schemas, name: str, state: State, succeeded: _Succeeded,
                    reachable: bool) -> tuple[list[Problem], list[Any] | None, _Node | None]:
    """Problems of the list itself; the literal items, or the schema of one item of a referenced list."""
    value = state.for_each
    where = "for_each"
    problems: list[Problem] = []
    if isinstance(value, list):
        if len(value) > MAX_FOR_EACH_ITEMS:
            problems.append(Problem(code="for_each_bound", state=name, field=where,
                                    message=f"the list has {len(value)} items; a for_each state takes at most "
                                            f"{MAX_FOR_EACH_ITEMS}"))
        for bad in malformed_references(value):
            problems.append(Problem(code="reference_syntax", state=name, field=where,
                                    message=_not_a_reference(bad)))
        if item_refs := find_item_references(value):
            problems.append(Problem(code="item_outside_for_each", state=name, field=where,
                                    message=f"{item_refs[0]} stands for the current item in args; the list itself "
                                            "has no current item"))
        for ref in find_references(value):
            problems += _check_reference(workflow, schemas, name, where, ref, succeeded, reachable)
        return problems, value[:MAX_FOR_EACH_ITEMS], None
    ref = whole_reference(value)
    if ref is None:  # the model refuses this; a State built without validation gets a problem, not a crash
        return [Problem(code="for_each_type", state=name, field=where,
                        message="for_each must be a list or exactly one reference ${STATE.result.PATH}")], None, None
    problems += _check_reference(workflow, schemas, name, where, ref, succeeded, reachable)
    if problems or ref.state not in workflow.states or workflow.states[ref.state].call not in schemas.table:
        return problems, None, None
    source = workflow.states[ref.state]
    root = schemas.result(source.call, each=source.for_each is not None)
    node, missing = descend(root, ref.path)
    if node is None or missing:
        return problems, None, None
    options = [_resolve(o, root) for o in node.get("anyOf", [node])]
    lists = [o for o in options if o.get("type") == "array"]
    given = _types(node, root) - {"null"}
    if given and not lists:
        problems.append(Problem(code="for_each_type", state=name, field=where,
                                message=f"{ref} is {'/'.join(sorted(given))}, not a list"))
        return problems, None, None
    if lists and "items" in lists[0]:
        return problems, None, (_resolve(lists[0]["items"], root), root)
    return problems, None, None


def _check_item_reference(name: str, where: str, ref: ItemReference, item_node: _Node) -> list[Problem]:
    _, missing = descend(item_node[0], ref.path, item_node[1], "the item")
    if missing:
        return [Problem(code="item_field", state=name, field=where, message=f"{ref}: {missing}")]
    return []


def _check_reference(workflow: Workflow, schemas: _Schemas, name: str, where: str, ref: Reference,
                     succeeded: _Succeeded, reachable: bool) -> list[Problem]:
    if ref.state not in workflow.states:
        return [Problem(code="reference_state", state=name, field=where,
                        message=f"{ref} refers to no state {ref.state!r}")]
    if ref.state == name and workflow.states[name].call in schemas.table:
        return [Problem(code="reference_self", state=name, field=where, message=(
            f"{ref}: a state cannot use its own result; get the value in an earlier state"
            + _lookups_hint(schemas.table, workflow.states[name].call, where)))]
    if reachable and not succeeded.before(name, ref.state):
        return [Problem(code="reference_may_not_have_run", state=name, field=where,
                        message=f"{ref}: state {ref.state!r} may not have run successfully before {name!r}")]
    source = workflow.states[ref.state]
    if source.call not in schemas.table:
        return []  # reported at that state already
    if source.call == ASK_CALL:
        # Small models plan "ask for X, then use the answer": a plan runs on without one.
        return [Problem(code=REFERENCE_ASK, state=name, field=where, message=(
            f"{ref}: agent.ask does not return the user's answer (its result is only the question); write the "
            "value the request gives, or, if the request lacks it, make the whole plan one agent.ask state"))]
    if source.call == SAY_CALL and workflow.states[name].call not in TALK_CALLS:
        # The same plan with agent.say as the question, where agent.ask is not shown (plain function calling).
        return [Problem(code=REFERENCE_ASK, state=name, field=where, message=(
            f"{ref}: agent.say only shows a message (its result is that message, never the user's reply); write "
            "the value the request gives"))]
    each = source.for_each is not None
    result_schema = schemas.result(source.call, each=each)
    _, missing = descend(result_schema, ref.path)
    if missing:
        hint = (f" ({ref.state!r} is a for_each state: its result is {{items: [one {source.call} result per item], "
                "count}, e.g. ${" + ref.state + ".result.items[0].FIELD})") if each else _own_item_hint(
                    schemas.table, source.call, workflow.states[name].call, where)
        return [Problem(code="reference_field", state=name, field=where, message=f"{ref}: {missing}{hint}")]
    return []


def names_own_item(app: str, arg: str) -> bool:
    """Whether an argument names its own app's item: "task" of the tasks app, "note" of notes."""
    return app in (arg + "s", arg + "es")


def _own_item_hint(table: FunctionTable, source: str, call: str, where: str) -> str:
    """For an argument naming its own app's item ("task" of tasks.update) taken from another app's result
    (a clock.resolve result for a request to change a task): where such items come from."""
    app, field = call.split(".", 1)[0], where.rsplit(".", 1)[-1]
    if source.split(".", 1)[0] == app or not names_own_item(app, field):
        return ""
    lookups = [fn.name for fn in table if fn.app == app and fn.effect == Effect.READ and result_lists(fn)]
    if not lookups:
        return ""
    return (f"; {source} finds no {field}: a {field} comes from {' or '.join(lookups[:2])}, or write the {field} "
            "itself (its id or title, as found for this request)")


def _lookups_hint(table: FunctionTable, call: str, where: str) -> str:
    """", e.g. mail.search or mail.list and ${STATE.result.messages[0].id}": the read functions of `call`'s app
    whose results list items with the field the argument at `where` is named for ("args.id": id)."""
    field = where.rsplit(".", 1)[-1]
    found = []
    for fn in table:
        if fn.app != call.split(".", 1)[0] or fn.effect != Effect.READ or fn.name == call:
            continue
        for list_name, item in result_lists(fn).items():
            if field in item.get("properties", {}):
                found.append((fn.name, f"${{STATE.result.{list_name}[0].{field}}}"))
                break
    if not found:
        return ""
    return f", e.g. with {' or '.join(n for n, _ in found[:2])} and then {found[0][1]}"


def _check_reference_type(workflow: Workflow, schemas: _Schemas, name: str, where: str, ref: Reference,
                          target: dict[str, Any], params_schema: dict[str, Any]) -> list[Problem]:
    source = workflow.states[ref.state]
    if source.call not in schemas.table or source.call in (ASK_CALL, SAY_CALL):
        return []  # a talk call's result as a value is reported by _check_reference
    result_schema = schemas.result(source.call, each=source.for_each is not None)
    node, missing = descend(result_schema, ref.path)
    if missing or node is None:
        return []
    return _type_problem(name, where, str(ref), (node, result_schema), target, params_schema)


def _type_problem(name: str, where: str, ref: str, given_node: _Node, target: dict[str, Any],
                  params_schema: dict[str, Any]) -> list[Problem]:
    given = _types(*given_node) - {"null"}
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


class _Schemas:
    """Each function's parameter and result schema, built once per validation (not once per state)."""

    def __init__(self, table: FunctionTable) -> None:
        self.table = table
        self._params: dict[str, dict[str, Any]] = {}
        self._results: dict[str, dict[str, Any]] = {}

    def params(self, call: str) -> dict[str, Any]:
        if call not in self._params:
            self._params[call] = self.table.get(call).params.model_json_schema()
        return self._params[call]

    def result(self, call: str, each: bool = False) -> dict[str, Any]:
        """The result schema of a call; with `each`, of a for_each state making that call: {items, count}."""
        key = f"{call}\0{'each' if each else ''}"
        if key not in self._results:
            schema = self.table.get(call).result.model_json_schema()
            if each:
                defs = schema.pop("$defs", None)
                schema = {"type": "object", "required": ["items", "count"],
                          "properties": {"items": {"type": "array", "items": schema}, "count": {"type": "integer"}}}
                if defs:
                    schema["$defs"] = defs
            self._results[key] = schema
        return self._results[key]


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1], {})
    return node


def descend(schema: dict[str, Any], path: tuple[str | int, ...], root: dict[str, Any] | None = None,
             what: str = "the result") -> tuple[dict[str, Any] | None, str | None]:
    """Follow a reference path through a result schema (or a node of one, with its root): (node, None) or
    (None, what is missing)."""
    start, schema = schema, schema if root is None else root
    node = _resolve(start, schema)
    for step in path:
        options = [_resolve(o, schema) for o in node.get("anyOf", [node])]
        options = [o for o in options if o.get("type") != "null"] or options
        node = options[0]
        if isinstance(step, int):
            if node.get("type") not in ("array", None):
                return None, _not_a_list(step, node, schema)
            node = _resolve(node.get("items", {}), schema)
        else:
            props = node.get("properties")
            if props is None:
                if node.get("type") in ("object", None):
                    return {}, None
                return None, f"{step!r} is not a field of a {node.get('type')}"
            if step not in props:
                return None, f"{what} has no field {step!r} (it has: {', '.join(props)})"
            node = _resolve(props[step], schema)
    return node, None


def _not_a_list(step: int, node: dict[str, Any], root: dict[str, Any]) -> str:
    """Why `[step]` does not apply here; for an object holding lists, how one is indexed ("the notes a search
    found are its `notes`"): a 1.5B model wrote `${find.result[0].created}` three replies running."""
    if node.get("type") != "object":
        return f"[{step}] indexes a {node.get('type')}, not a list"
    props = node.get("properties", {})
    lists = [name for name, sub in props.items() if "array" in _types(sub, root)]
    if lists:
        which = f"its list is {lists[0]!r}" if len(lists) == 1 else f"its lists are {', '.join(map(repr, lists))}"
        return f"[{step}] indexes an object, not a list: {which}, indexed as .{lists[0]}[{step}]"
    return f"[{step}] indexes an object, not a list (it has: {', '.join(props)})"


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


def _not_a_reference(bad: str) -> str:
    if "(" in bad:  # a call written inside a reference: the commonest slip of small models
        return (f"{bad} is not a reference: a reference cannot call a function; call it in an earlier state, "
                "then write ${THAT_STATE.result.FIELD}")
    dotted = _DOTTED_STATE.match(bad)
    if dotted:  # a person or thing written as if it were a state: "${Anna.berg.result.email}"
        return (f"{bad} is not a reference: {dotted.group(1)!r} is not a state of this plan (a state name has no "
                "dots); write the value itself as text, or look it up in an earlier state and write "
                "${THAT_STATE.result.FIELD}")
    return f"{bad} is not a reference; write ${{STATE.result.FIELD}}"


_DOTTED_STATE = re.compile(r"\$\{\s*([^\s{}.]+(?:\.[^\s{}.]+)+?)\.result\b")
