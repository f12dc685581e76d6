"""Time to a validated workflow, and what BM25 ranking of the Function Table does to it.

    .venv/bin/python benchmarks/bench_controller.py [--model SPEC] [--top-k 12] [--n-ctx 12288]

Ten everyday intents on the office fixture (workflows/fixtures/office.yaml), each resolved
twice: once with the whole Function Table in the prompt and the schema (the default: its text
is the same for every intent, so it stays in the prompt cache), once with the retrieved apps
(`whole_table=False`; plus the agent's own functions and the examples' functions). For each setting
it prints how many intents got a valid workflow, how many of those ran to `done` in a
fresh sandbox, the repairs, the prompt tokens, and the median/max time to a validated
workflow (grammar compilation included). Also printed: how often the functions a
reference plan needs are all among those shown (recall of the ranking).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from intentos.backends import make_backend
from intentos.backends.settings import load_backend_settings
from intentos.config import load_settings, make_context
from intentos.controller import Controller, ControllerSettings, ResolutionFailed
from intentos.executor import Executor
from intentos.fixture import Fixture
from intentos.table import FunctionTable

OFFICE = Path(__file__).resolve().parents[1] / "workflows" / "fixtures" / "office.yaml"

# (intent, functions a correct plan needs)
INTENTS = [
    ("Remind me to call mum on Friday", {"tasks.add"}),
    ("What is the date next Monday?", {"clock.resolve"}),
    ("Create a note called Shopping with milk, eggs and bread", {"notes.create"}),
    ("Delete all my files", {"agent.refuse"}),
    ("Which meetings do I have tomorrow?", {"calendar.list_events"}),
    ("Mail Anna the notes tagged travel", {"notes.search", "mail.send"}),
    ("Zip the website project folder", {"files.zip"}),
    ("Mark the task about the tax return as done", {"tasks.complete"}),
    ("Find Ben's phone number", {"contacts.get"}),
    ("How many unread mails are in my inbox?", {"mail.list"}),
]


def run_setting(backend_spec: str | None, n_ctx: int, top_k: int) -> dict[str, object]:
    settings = load_backend_settings(backend_spec, {"n_ctx": n_ctx})
    backend = make_backend(settings.spec, settings)
    fixture = Fixture.load(OFFICE)
    rows = []
    for intent, needed in INTENTS:
        with tempfile.TemporaryDirectory() as tmp:
            ctx = make_context(load_settings(), sandbox=Path(tmp) / "sandbox", fixed_now=fixture.now,
                               timezone=fixture.timezone, user=fixture.user)
            table = FunctionTable.discover()
            fixture.apply(ctx, table)
            controller = Controller(backend, table, ctx, ControllerSettings(top_k=top_k, whole_table=top_k >= 1000))
            start = time.perf_counter()
            try:
                resolution = controller.resolve(intent)
                trace, ok = resolution.trace, True
            except ResolutionFailed as exc:
                trace, ok = exc.trace, False
            wall = time.perf_counter() - start
            status = None
            if ok:
                view = Executor(table, ctx, assume_yes=True, runs_root=Path(tmp) / "runs").run(resolution.workflow)
                status = view.status
            rows.append({"intent": intent, "valid": ok, "status": status, "attempts": len(trace.attempts),
                         "shown": len(trace.shown), "needed_shown": needed <= set(trace.shown),
                         "prompt_tokens": trace.prompt_tokens, "wall_s": round(wall, 2)})
    walls = [r["wall_s"] for r in rows if r["valid"]]
    return {
        "top_k": top_k if top_k < 1000 else "all",
        "functions_shown_median": statistics.median(r["shown"] for r in rows),
        "needed_functions_shown": sum(r["needed_shown"] for r in rows),
        "valid_workflows": sum(r["valid"] for r in rows),
        "ran_to_done": sum(r["status"] == "done" for r in rows),
        "repairs": sum(r["attempts"] - 1 for r in rows),
        "prompt_tokens_median": statistics.median(r["prompt_tokens"] / r["attempts"] for r in rows),
        "time_to_valid_s_median": round(statistics.median(walls), 2) if walls else None,
        "time_to_valid_s_max": max(walls) if walls else None,
        "intents": len(rows),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model spec (default: the configured one)")
    parser.add_argument("--top-k", type=int, default=12)
    parser.add_argument("--n-ctx", type=int, default=12288, help="room for the whole table in the prompt")
    parser.add_argument("--rows", action="store_true", help="print every intent's row too")
    args = parser.parse_args()
    for top_k in (1000, args.top_k):
        result = run_setting(args.model, args.n_ctx, top_k)
        rows = result.pop("rows")
        print(json.dumps(result))
        if args.rows:
            for row in rows:
                print("  ", json.dumps(row))


if __name__ == "__main__":
    main()
