"""How well "shares no word with the request" separates wanted calls from unwanted ones, on BFCL's data.

    .venv/bin/python benchmarks/bench_unasked.py

For each simple_python case: does the function BFCL's answer calls share a content word with the
question (as `intentos.unasked` judges it, on the Function Table the planner is shown)? A case where
it does not is one where the check would wrongly tell the model its call was not asked for. For each
irrelevance case: does any of the given functions share a word? A case where none does is one where
every call the model could make is flagged. No model runs: this is the gate alone.
"""

from __future__ import annotations

import sys

from intentos.eval.bfcl.suite import load_bfcl_suite, single_turn_table
from intentos.ranking import content_stems
from intentos.tidy import TALK_APP
from intentos.unasked import function_words


def shares(case, wanted: set[str] | None) -> bool:  # type: ignore[no-untyped-def]
    table, names = single_turn_table(case)
    request = content_stems(case.intent)
    return any(function_words(fn.verb, fn.description) & request for fn in table
               if fn.app != TALK_APP and (wanted is None or names.to_bfcl.get(fn.name) in wanted))


def main() -> int:
    simple = load_bfcl_suite("simple_python").cases
    called = [shares(c, {name for call in c.answer or [] for name in call}) for c in simple]
    irrelevance = load_bfcl_suite("irrelevance").cases
    any_shares = [shares(c, None) for c in irrelevance]
    print(f"simple_python: {len(simple)} cases; the answer's function shares a word with the question in "
          f"{sum(called) / len(called):.1%} (flagged wrongly: {len(called) - sum(called)})")
    print(f"irrelevance:   {len(irrelevance)} cases; some given function shares a word in "
          f"{sum(any_shares) / len(any_shares):.1%} (every call flagged: {len(any_shares) - sum(any_shares)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
