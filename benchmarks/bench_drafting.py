"""What drafting by prompt lookup does to decoding a plan: the same plans, in how many seconds.

    .venv/bin/python benchmarks/bench_drafting.py                       # qwen2.5-coder-1.5b, drafts 0 and 10
    .venv/bin/python benchmarks/bench_drafting.py --model qwen2.5-coder-0.5b --drafts 0,6,10

Each intent is planned on the office fixture through the real Controller (the whole Function Table, the
examples it picks, grounding; one attempt, temperature 0) once per draft setting, in one process: the
first setting reads the prompt, the others find it in memory, so the decode times are what differs. For
each setting: decode seconds (the reply's time after its first token), decode tok/s, draft tokens proposed
and accepted, and whether the plan is the one plain decoding wrote. A batch of drafts is evaluated with
other matrix shapes than one token, so at a near tie the model's choice can differ: such plans are
counted, not hidden.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_backend import find_model, office  # noqa: E402

from intentos.backends import load_backend_settings, make_backend  # noqa: E402

# Everyday requests of the kind the planner meets; none is an eval case or a bank example.
INTENTS = [
    "Move the invoices from Downloads into Documents/Invoices",
    "Email Ben the packing list",
    "Add a task to renew my passport next month",
    "What's on my calendar on Thursday?",
    "Create a note called Gift ideas with a scarf for mum",
    "Reply to the latest mail from Anna saying I'll call her tonight",
    "Tag the note about the car as urgent",
    "Find my lease agreement and send it to Petra",
]


def main() -> None:
    from intentos.controller import Controller, ControllerSettings, ResolutionFailed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--drafts", default="0,10", help="draft settings to compare; the first is the reference")
    args = parser.parse_args()
    spec, why = find_model(args.model)
    if spec is None:
        print(why)
        return
    drafts = [int(d) for d in args.drafts.split(",")]
    ctx, table, tmp = office()
    rows: dict[int, list[tuple[float, int, float, float, str]]] = {d: [] for d in drafts}
    for intent in INTENTS:
        for d in drafts:
            backend = make_backend(spec, load_backend_settings(spec, {"draft_tokens": d}))
            generations = []
            plain_generate = backend.generate

            def generate(*a, _plain=plain_generate, _seen=generations, **k):  # type: ignore[no-untyped-def]
                _seen.append(_plain(*a, **k))  # the Generation carries the draft counts; the trace does not
                return _seen[-1]

            backend.generate = generate  # type: ignore[method-assign]
            controller = Controller(backend, table, ctx, ControllerSettings(max_attempts=1, top_k=len(table) + 1))
            try:
                trace = controller.resolve(intent).trace
            except ResolutionFailed as failed:
                trace = failed.trace
            attempt = trace.attempts[0]
            timings = generations[0].server_timings
            decode = (attempt.total_s or 0.0) - (attempt.ttft_s or 0.0)
            rows[d].append((decode, attempt.completion_tokens, timings.get("drafts_proposed", 0.0),
                            timings.get("drafts_accepted", 0.0), attempt.raw))
            print(f"{intent[:48]:48}  drafts {d:2}: {decode:5.1f} s, {attempt.completion_tokens:3} tokens", flush=True)
    tmp.cleanup()
    reference = [r[4] for r in rows[drafts[0]]]
    print(f"\n{spec}: {len(INTENTS)} plans, one attempt each, temperature 0")
    print("| drafts | decode s (sum) | decode tok/s | drafts proposed | accepted | same plan as drafts="
          f"{drafts[0]} |\n|---|---|---|---|---|---|")
    for d in drafts:
        seconds = sum(r[0] for r in rows[d])
        tokens = sum(r[1] for r in rows[d])
        same = sum(r[4] == ref for r, ref in zip(rows[d], reference, strict=True))
        print(f"| {d} | {seconds:.1f} | {tokens / seconds:.1f} | {sum(r[2] for r in rows[d]):.0f} | "
              f"{sum(r[3] for r in rows[d]):.0f} | {same}/{len(INTENTS)} |")


if __name__ == "__main__":
    main()
