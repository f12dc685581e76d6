"""The Function Table: plugins by entry point, prompt text, the workflow schema."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from intentos import App, AppError, Context, Effect, function
from intentos.cli import app
from intentos.executor import Executor
from intentos.table import MAX_LIST_ITEMS, FunctionTable
from intentos.workflow import Workflow

BUILT_IN = {"agent", "files", "notes", "tasks", "calendar", "contacts", "mail", "clock"}


def test_built_in_apps_register_through_entry_points() -> None:
    table = FunctionTable.discover()
    assert BUILT_IN <= set(table.apps), table.problems
    assert table.problems == []
    for fn in table:
        assert fn.description and fn.name.count(".") == 1


def test_a_third_party_plugin_is_found(probe_plugin: Path) -> None:
    table = FunctionTable.discover()
    assert "probe.wait_for" in table and table.get("probe.mark").effect.value == "write"


def test_the_plugin_api_is_importable_from_the_package() -> None:
    import intentos
    from intentos import app, errors
    from intentos.function import Effect as effect_enum
    from intentos.function import function as decorator

    assert (App, Context, AppError) == (app.App, app.Context, errors.AppError)
    assert (Effect, function) == (effect_enum, decorator)
    assert intentos.function is decorator  # the decorator, though the submodule of that name is imported
    assert set(intentos.__all__) == {"App", "AppError", "Context", "Effect", "function", "__version__"}


def test_a_plugin_on_the_public_api_is_listed_and_runs_in_a_sandbox(probe_plugin: Path, ctx: Context) -> None:
    source = (probe_plugin / "intentos_testplug.py").read_text(encoding="utf-8")
    imported = {node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("intentos")}
    assert imported == {"intentos"}  # only `from intentos import ...`
    result = CliRunner().invoke(app, ["functions", "--json"])
    assert result.exit_code == 0, result.output
    listed = {f["name"]: f for f in json.loads(result.stdout)}
    assert {"probe.wait_for", "probe.mark", "probe.append"} <= set(listed)
    assert listed["probe.append"]["app"] == "probe" and listed["probe.append"]["effect"] == "write"
    assert {"path", "text"} <= set(listed["probe.append"]["params"]["properties"])
    workflow = Workflow.model_validate({"states": [
        {"name": "first", "call": "probe.append", "args": {"path": "log.txt", "text": "hello"}},
        {"name": "second", "call": "probe.append", "args": {"path": "log.txt", "text": "again"}},
    ]})
    view = Executor(FunctionTable.discover(), ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view.steps
    assert [(s.call, s.status) for s in view.steps] == [("probe.append", "ok"), ("probe.append", "ok")]
    assert view.results["second"] == {"path": "log.txt", "lines": 2}
    assert ctx.sandbox.read_text("log.txt") == "hello\nagain\n"


def test_prompt_text_lists_every_function_compactly() -> None:
    table = FunctionTable.discover()
    text = table.prompt_text()
    for fn in table:
        assert fn.name + "(" in text
    assert len(text.splitlines()) == len(table) + len(table.apps)


def test_workflow_schema_is_a_valid_json_schema_with_one_member_per_function() -> None:
    table = FunctionTable.discover()
    schema = table.workflow_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    members = schema["properties"]["states"]["items"]["oneOf"]
    assert sorted(m["properties"]["call"]["const"] for m in members) == sorted(table.functions)


def test_a_list_argument_takes_a_bounded_number_of_items() -> None:
    schema = FunctionTable.discover().subset(["agent.sum"]).workflow_schema()
    validator = jsonschema.Draft202012Validator(schema)
    plan = {"states": [{"name": "total", "call": "agent.sum", "args": {"values": list(range(MAX_LIST_ITEMS))}}]}
    assert validator.is_valid(plan)
    plan["states"][0]["args"]["values"].append(MAX_LIST_ITEMS)
    assert not validator.is_valid(plan)  # a reply counting on and on is cut off by its grammar


def test_subset_keeps_only_named_functions() -> None:
    table = FunctionTable.discover()
    small = table.subset(["agent.say", "agent.sum"])
    assert list(small.functions) == ["agent.say", "agent.sum"]
    assert "files" not in small.prompt_text()
