"""Does the planner see the functions a plan needs? Recall and cost of the shown Function Table.

    .venv/bin/python benchmarks/bench_retrieval.py [--suites evals/core.yaml ...] [--no-grounding] [--sweep]

For every eval case with a `reference` workflow (evals/*.yaml), the functions the reference
calls are the ones a plan needs; a policy shows part of the table; recall = needed functions
shown / needed functions. The same is measured on the worked examples (intentos/examples.yaml)
as a held-out check: the policy was not built against them. Per policy: mean recall, the share
of cases with every needed function shown, the mean number of functions shown, the mean
characters of the shown table's prompt text (`table.subset(names).prompt_text()`; a 1.5B model
on two CPU cores reads ~100 prompt tokens/s, ~4 characters a token) and how many distinct
tables the cases produce (a backend's prompt cache keeps the static prefix, role and table,
per table: the fewer, the more often it is reused).

Policies:
- top-k (k = 12, 20, 30): the BM25 top-k plus the agent's always-kept functions
  (`FunctionRanker.top`); top-12 is what the Controller shows today, less the examples' calls;
- top-12 + 2 examples: today's Controller exactly, with the calls of the two worked examples
  `Controller.pick_examples` chooses (for an example itself, chosen from the others);
- select: `FunctionRanker.select(intent)`; "+ grounding" passes `extra_apps` = the apps of the
  entities the apps' `ground` hook offers for the intent in the case's fixture, as many as
  `intentos.grounding.best` keeps (the examples use the core suite's office fixture, which
  mostly does not hold the people and things they name, so there grounding adds little);
  ablations switch off the cues or the companion lookups;
- whole table.

--sweep also prints `select` (and `select + grounding`) for several `app_ratio` values.

Last, example picking: for each case whose plan acts (a call outside the agent's that is not a lookup),
the share where an example `Controller.pick_examples` shows acts the same way (uses one of those calls),
where such an example also has the plan's shape (both do a step for each item of a list, or neither
does: a small model copies a loop it is shown), and where the examples shown use all of them; an example
itself is picked from the others.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from intentos.config import load_settings, make_context
from intentos.controller import Controller, Example, load_examples
from intentos.eval.suites import load_suite
from intentos.fixture import Fixture
from intentos.function import Effect
from intentos.ranking import APP_RATIO, FunctionRanker
from intentos.table import FunctionTable

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    id: str
    intent: str
    needed: set[str]
    fixture: Fixture | None = None
    grounded: list[str] = field(default_factory=list)  # apps where grounding found the intent's entities
    example: Example | None = None  # for the held-out examples: the example itself (left out of picking)
    loops: bool = False  # the plan does a step for each item of a list


Policy = Callable[[Case], Iterable[str]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suites", nargs="*", type=Path, default=sorted((ROOT / "evals").glob("*.yaml")))
    parser.add_argument("--no-grounding", action="store_true", help="skip the select + grounding rows")
    parser.add_argument("--sweep", action="store_true", help="also print select for several app_ratio values")
    return parser.parse_args()


def eval_cases(paths: list[Path], table: FunctionTable) -> list[Case]:
    cases = []
    for path in paths:
        suite = load_suite(path, table)
        for case in suite.cases:
            if case.reference is not None:
                needed = {state.call for state in case.reference.states.values()}
                loops = any(state.for_each is not None for state in case.reference.states.values())
                cases.append(Case(f"{suite.name}/{case.id}", case.intent, needed, case.fixture, loops=loops))
    return cases


def example_cases(examples: list[Example], fixture: Fixture | None) -> list[Case]:
    return [Case(f"example {i + 1}", e.intent, set(e.calls), fixture, example=e, loops=e.loops)
            for i, e in enumerate(examples)]


def ground(cases: list[Case], table: FunctionTable) -> bool:
    """Fill `grounded` from each case's fixture through the apps' `ground` hook; False when there is none."""
    try:
        from intentos.grounding import GroundingQuery, best
    except ImportError:
        return False
    if not all(hasattr(app, "ground") for app in table.apps.values()):
        return False
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        contexts = {}  # one seeded sandbox per fixture: grounding only reads
        for case in cases:
            if case.fixture is None:
                continue
            key = id(case.fixture)
            if key not in contexts:
                fx = case.fixture
                ctx = make_context(settings, sandbox=Path(tmp) / f"sandbox{len(contexts)}", fixed_now=fx.now,
                                   timezone=fx.timezone, user=fx.user)
                fx.apply(ctx, table)
                contexts[key] = (ctx, [cls(ctx) for cls in table.apps.values()])
            ctx, apps = contexts[key]
            query = GroundingQuery.of(case.intent, ctx.now(), ctx.tz)
            kept = best(offer for app in apps for offer in app.ground(query))
            case.grounded = list(dict.fromkeys(g.app for g in kept))
    return True


@dataclass
class Row:
    policy: str
    recall: float
    full: float
    shown: float
    chars: float
    tables: int
    misses: list[tuple[str, list[str]]]


def measure(name: str, policy: Policy, cases: list[Case], table: FunctionTable) -> Row:
    recalls, shown, chars, tables, misses = [], [], [], set(), []
    texts: dict[tuple[str, ...], int] = {}
    for case in cases:
        names = tuple(n for n in table.functions if n in set(policy(case)))
        if names not in texts:
            texts[names] = len(table.subset(names).prompt_text())
        missing = sorted(case.needed - set(names))
        recalls.append(1 - len(missing) / len(case.needed))
        shown.append(len(names))
        chars.append(texts[names])
        tables.add(names)
        if missing:
            misses.append((case.id, missing))
    return Row(name, statistics.mean(recalls), sum(r == 1.0 for r in recalls) / len(recalls),
               statistics.mean(shown), statistics.mean(chars), len(tables), misses)


def print_rows(title: str, rows: list[Row], n: int) -> None:
    print(f"\n{title} ({n} cases)")
    print(f"  {'policy':<40} {'recall':>7} {'all shown':>9} {'functions':>9} {'chars':>7} {'tables':>6}")
    for r in rows:
        print(f"  {r.policy:<40} {r.recall:>7.3f} {r.full:>8.0%} {r.shown:>9.1f} {r.chars:>7.0f} {r.tables:>6}")


def print_misses(row: Row) -> None:
    print(f"  misses of {row.policy}: {len(row.misses) or 'none'}")
    for case_id, missing in row.misses:
        print(f"    {case_id}: {', '.join(missing)}")


def main() -> int:
    args = parse_args()
    table = FunctionTable.discover()
    ranker = FunctionRanker(table)
    examples = load_examples()
    cases = eval_cases(args.suites, table)
    core = next((c.fixture for c in cases if c.id.startswith("core/") and c.fixture is not None), None)
    held_out = example_cases(examples, core)
    grounded = not args.no_grounding and ground(cases + held_out, table)

    def top(k: int) -> Policy:
        return lambda case: ranker.top(case.intent, k)[0]

    def with_examples(case: Case) -> list[str]:
        """Today's Controller.shown_table: top-12, the always-kept, and the calls of the examples it picks
        (for an example itself, picked from the others)."""
        others = [e for e in examples if e is not case.example]
        picked = Controller(None, table, examples=others).pick_examples(case.intent)  # type: ignore[arg-type]
        return [*ranker.top(case.intent, 12)[0], *(c for e in picked for c in e.calls)]

    try:
        with_examples(cases[0])
        picking = True
    except Exception as exc:  # the Controller is being rewritten: measure the rest without this row
        print(f"(no examples row: Controller.pick_examples failed: {exc})")
        picking = False

    def select(ratio: float = APP_RATIO, *, cues: bool = True, companions: bool = True,
               grounding: bool = False) -> Policy:
        chooser = FunctionRanker(table, app_ratio=ratio, cues=cues, companions=companions)
        return lambda case: chooser.select(case.intent, extra_apps=case.grounded if grounding else ()).names

    policies: list[tuple[str, Policy]] = [
        ("top-12 + always (today, no examples)", top(12)),
        *([("top-12 + 2 examples' calls (today)", with_examples)] if picking else []),
        ("top-20 + always", top(20)),
        ("top-30 + always", top(30)),
        ("select (new)", select()),
    ]
    if grounded:
        policies.append(("select + grounding (new)", select(grounding=True)))
    policies += [
        ("  select without cues", select(cues=False)),
        ("  select without companion lookups", select(companions=False)),
    ]
    if args.sweep:
        for ratio in (0.3, 0.5, 0.7, 0.9, 1.0):
            if ratio != APP_RATIO:
                policies.append((f"  select, app_ratio {ratio}", select(ratio)))
                if grounded:
                    policies.append((f"  select + grounding, app_ratio {ratio}", select(ratio, grounding=True)))
    policies.append(("whole table", lambda case: table.functions))

    print(f"Function Table: {len(table)} functions in {len(table.apps)} apps, "
          f"{len(table.prompt_text())} characters of prompt text")
    if not grounded:
        print("(no grounding rows: " + ("--no-grounding" if args.no_grounding else
                                       "intentos.grounding or App.ground is not there") + ")")
    for title, group in (("Eval references", cases), ("Worked examples (held out)", held_out)):
        rows = [measure(name, policy, group, table) for name, policy in policies]
        print_rows(title, rows, len(group))
        for row in rows:
            if row.policy.endswith("(new)"):
                print_misses(row)
    print_picking(table, examples, [("Eval references", cases), ("Worked examples (held out)", held_out)])
    return 0


def print_picking(table: FunctionTable, examples: list[Example], groups: list[tuple[str, list[Case]]]) -> None:
    """How often the examples shown for a case act the way its plan does (see the module's docstring)."""
    print("\nExample picking: cases whose plan acts, and the examples shown for them")
    print(f"  {'cases':<40} {'n':>4} {'one acts alike':>15} {'alike, same shape':>18} {'all covered':>12}")
    for title, group in groups:
        alike = shaped = covered = n = 0
        for case in group:
            acting = {c for c in case.needed if not c.startswith("agent.")
                      and table.get(c).effect != Effect.READ}
            if not acting:
                continue
            others = [e for e in examples if e is not case.example]
            picked = Controller(None, table, examples=others).pick_examples(case.intent)  # type: ignore[arg-type]
            shown = {c for e in picked for c in e.calls}
            n += 1
            alike += bool(acting & shown)
            shaped += any(acting & e.calls and e.loops == case.loops for e in picked)
            covered += acting <= shown
        if n:
            print(f"  {title:<40} {n:>4} {alike / n:>15.0%} {shaped / n:>18.0%} {covered / n:>12.0%}")

if __name__ == "__main__":
    sys.exit(main())
