"""Where `intentos.misfit`'s threshold sits: the model's yes/no log-odds on calls it should and should not make.

    .venv/bin/python benchmarks/bench_misfit.py [--model qwen2.5-coder-1.5b] [--per-category 120]

Calibrated only on BFCL cases the evals do not measure: those outside the seeded samples that
`intentos eval --suite bfcl:... --limit N` (seed 0) takes for N = 50 and 100. For simple_python cases
the function asked about is the one BFCL's answer calls (a judge below the threshold would drop a right
call); for irrelevance cases it is each given function that is not unasked by words alone (no function
gives what is asked, so every call is wrong). Prints the log-odds' spread and, for a few thresholds, the
share of right calls kept and of wrong ones caught.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from intentos.backends.llamacpp import LlamaCppBackend
from intentos.eval.bfcl.suite import BfclCase, load_bfcl_suite, single_turn_table
from intentos.eval.runner import sample_cases
from intentos.misfit import THRESHOLD, fit_odds
from intentos.ranking import content_stems
from intentos.tidy import TALK_APP
from intentos.unasked import function_words

MEASURED_LIMITS = (50, 100)  # the eval samples this calibration must not see


def held_out(category: str, most: int) -> list[BfclCase]:
    cases = list(load_bfcl_suite(category).cases)
    seen = {c.id for n in MEASURED_LIMITS for c in sample_cases(cases, n, 0)}
    rest = [c for c in cases if c.id not in seen]
    return random.Random(1).sample(rest, min(most, len(rest)))


def odds_for(backend: LlamaCppBackend, case: BfclCase, wanted: bool) -> list[float]:
    table, names = single_turn_table(case)
    answer = {name for call in case.answer or [] for name in call} if wanted else None
    request = content_stems(case.intent)
    found = []
    for fn in table:
        if fn.app == TALK_APP:
            continue
        if wanted and names.to_bfcl.get(fn.name) not in answer:
            continue
        if not wanted and not function_words(fn.verb, fn.description) & request:
            continue  # unasked already tells this one
        odds = fit_odds(backend, case.intent, fn)
        if odds is not None:
            found.append(odds)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--per-category", type=int, default=120)
    args = parser.parse_args()
    backend = LlamaCppBackend(f"llamacpp:{args.model}")
    started = time.perf_counter()
    right = [o for c in held_out("simple_python", args.per_category) for o in odds_for(backend, c, True)]
    wrong = [o for c in held_out("irrelevance", args.per_category) for o in odds_for(backend, c, False)]
    took = time.perf_counter() - started
    print(f"model {args.model}; held-out calls judged: {len(right)} right (simple_python), {len(wrong)} wrong "
          f"(irrelevance, word-sharing functions only); {took / max(1, len(right) + len(wrong)):.2f} s a call")
    for label, values in (("right", right), ("wrong", wrong)):
        if values:
            q = statistics.quantiles(values, n=10)
            print(f"  {label}: min {min(values):.2f}  p10 {q[0]:.2f}  median {statistics.median(values):.2f}  "
                  f"p90 {q[-1]:.2f}  max {max(values):.2f}")
    print("  threshold  right kept  wrong caught")
    for threshold in sorted({-1.2, -1.0, -0.9, -0.8, -0.7, -0.6, -0.5, -0.4, THRESHOLD}):
        kept = sum(o >= threshold for o in right) / max(1, len(right))
        caught = sum(o < threshold for o in wrong) / max(1, len(wrong))
        mark = "  <- intentos.misfit.THRESHOLD" if threshold == THRESHOLD else ""
        print(f"  {threshold:9.2f}  {kept:10.1%}  {caught:12.1%}{mark}")


if __name__ == "__main__":
    main()
