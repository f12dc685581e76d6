"""How well `intentos.unasked` separates wanted calls from unwanted ones, on BFCL's data.

    .venv/bin/python benchmarks/bench_unasked.py [RUN_DIR]

For each simple_python case, BFCL's own answer (its first accepted value of each argument) is judged as
the planner would judge a model's call of it, on the Function Table the planner is shown: a flagged answer
is one the check would wrongly tell the model to drop, by either of its criteria (the function shares no
word with the request; none of the required arguments' values comes from the request). For each
irrelevance case: does any given function share a word? Where none does, every call the model could make
is flagged. With RUN_DIR (an `intentos eval --suite bfcl:irrelevance` run folder), the calls its model
made on the cases it failed are judged too. No model runs: this is the gate alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from intentos.eval.bfcl.suite import BfclCase, load_bfcl_suite, single_turn_table
from intentos.ranking import content_stems
from intentos.tidy import TALK_APP
from intentos.unasked import function_words, unasked
from intentos.workflow import Workflow


def shares(case: BfclCase, wanted: set[str] | None) -> bool:
    table, names = single_turn_table(case)
    request = content_stems(case.intent)
    return any(function_words(fn.verb, fn.description) & request for fn in table
               if fn.app != TALK_APP and (wanted is None or names.to_bfcl.get(fn.name) in wanted))


def answer_flagged(case: BfclCase) -> list[str]:
    """The problems the check finds in BFCL's answer to a case."""
    table, names = single_turn_table(case)
    states = []
    for i, call in enumerate(case.answer or []):
        for bfcl_name, params in call.items():
            args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
            states.append({"name": f"s{i}", "call": names.to_intentos[bfcl_name], "args": args})
    workflow = Workflow.model_validate({"intent": case.intent, "states": states})
    return [str(p) for p in unasked(workflow, case.intent, table)]


def run_flagged(run: Path) -> tuple[int, int]:
    """Of the irrelevance cases a recorded run failed, how many end in a call the check flags."""
    cases = {c.id: c for c in load_bfcl_suite("irrelevance").cases}
    failed = flagged = 0
    for path in sorted(run.glob("records/*/*.json")):
        record = json.loads(path.read_text())
        if (record.get("verdict") or {}).get("passed") or not record.get("workflow"):
            continue
        case = cases[record["case"]]
        failed += 1
        flagged += bool(unasked(Workflow.model_validate(record["workflow"]), case.intent,
                                single_turn_table(case)[0]))
    return failed, flagged


def main() -> int:
    simple = load_bfcl_suite("simple_python").cases
    called = [shares(c, {name for call in c.answer or [] for name in call}) for c in simple]
    wrongly = [(c, found) for c in simple if (found := answer_flagged(c))]
    irrelevance = load_bfcl_suite("irrelevance").cases
    any_shares = [shares(c, None) for c in irrelevance]
    print(f"simple_python: {len(simple)} cases; the answer's function shares a word with the question in "
          f"{sum(called) / len(called):.1%} (flagged wrongly: {len(called) - sum(called)})")
    print(f"simple_python: the answer is flagged by either criterion in {len(wrongly)} "
          f"({len(wrongly) / len(simple):.1%}):")
    for case, found in wrongly:
        print(f"  {case.id}: {found[0][:150]}")
    print(f"irrelevance:   {len(irrelevance)} cases; some given function shares a word in "
          f"{sum(any_shares) / len(any_shares):.1%} (every call flagged: {len(any_shares) - sum(any_shares)})")
    if len(sys.argv) > 1:
        failed, flagged = run_flagged(Path(sys.argv[1]))
        print(f"irrelevance run {sys.argv[1]}: {flagged} of the {failed} failed cases end in a flagged call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
