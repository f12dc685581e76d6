"""Executor and Function Table overheads, printed as figures (no model involved).

    .venv/bin/python benchmarks/bench_executor.py [--steps 200] [--functions 200]

- per-step overhead of the journaled executor (fsync per transition included), on a
  workflow of `agent.check` steps whose own work is negligible;
- time to render the prompt text and the workflow JSON schema for a table of N functions
  (synthetic apps, so the size is controlled), and the size of that schema.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, create_model

from intentos.app import App, Context
from intentos.apps.agent import AgentApp
from intentos.executor import Executor
from intentos.function import Effect, function
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable
from intentos.workflow import Workflow


def bench_steps(steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(sandbox=Sandbox(Path(tmp) / "sandbox"))
        table = FunctionTable([AgentApp])
        states = [{"name": f"s{i}", "call": "agent.check", "args": {"value": i, "op": ">=", "other": 0}}
                  for i in range(steps)]
        workflow = Workflow.model_validate({"states": states})
        executor = Executor(table, ctx, runs_root=Path(tmp) / "runs")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            view = executor.run(workflow)
            times.append(time.perf_counter() - t)
            assert view.status == "done", view.error
        best = min(times)
        return {"steps": steps, "run_s": round(best, 4), "per_step_ms": round(1000 * best / steps, 3)}


def synthetic_apps(n_functions: int, per_app: int = 10) -> list[type[App]]:
    apps = []
    for a in range(0, n_functions, per_app):
        attrs: dict[str, object] = {"name": f"app{a // per_app}", "description": f"synthetic app {a // per_app}"}
        for v in range(a, min(a + per_app, n_functions)):
            params = create_model(f"P{v}", path=(str, ...), limit=(int, 10), tags=(list[str], []), flag=(bool, False))
            result = create_model(f"R{v}", paths=(list[str], ...), count=(int, ...))

            def impl(self: App, args: BaseModel) -> BaseModel:  # never called here
                raise NotImplementedError

            impl.__annotations__ = {"args": params, "return": result}
            impl.__doc__ = f"Synthetic function {v} over paths."
            impl.__name__ = f"verb{v}"
            attrs[f"verb{v}"] = function(Effect.READ)(impl)
        apps.append(type(f"App{a}", (App,), attrs))
    return apps


def bench_schema(n_functions: int) -> dict[str, float]:
    table = FunctionTable(synthetic_apps(n_functions))
    t = time.perf_counter()
    text = table.prompt_text()
    prompt_ms = 1000 * (time.perf_counter() - t)
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        schema = table.workflow_schema()
        runs.append(1000 * (time.perf_counter() - t))
    return {"functions": len(table), "prompt_text_ms": round(prompt_ms, 2), "prompt_chars": len(text),
            "schema_ms_median": round(statistics.median(runs), 2), "schema_bytes": len(json.dumps(schema))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--functions", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps({"executor": bench_steps(args.steps), "table": bench_schema(args.functions)}, indent=2))


if __name__ == "__main__":
    main()
