"""The example bank: worked intent → workflow pairs, and picking the few that fit an intent.

Small models copy the shape of the nearest example more than they follow rules, so which
examples are shown matters as much as the rules. An example is shown only if the table
has all its functions; the closest ones win, closeness being the shared content words of
the two intents weighted by how rare each word is in the bank (a shared "invoice" says
more than a shared "send"), plus how well the functions that act in the example (its calls less the
lookups feeding them) match the intent's words in the Function Table's descriptions, so that an example
doing the same thing in other words is found. Of two examples that act alike only the closer is shown.
Examples that only ask or refuse are shown only when they are
clearly the closest: shown by default, they teach a model to ask instead of planning. For a request
whose action no function takes ("order a taxi": `intentos.unserved`), the refusals of such requests
are shown first.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from intentos.conditional import condition
from intentos.ranking import stemmed_words
from intentos.validation import REFUSE_CALL, TALK_CALLS

EXAMPLES_FILE = Path(__file__).with_name("examples.yaml")
# What grounding finds for each example's intent in the example world (tests/fixtures/example-home.yaml),
# shown with the example the way the planner shows it with a real request, so the examples teach using it.
# Written by tests/refresh_example_found.py; tests/test_example_bank.py checks it is current.
FOUND_FILE = Path(__file__).with_name("examples_found.json")
# Words that say nothing about which example fits (the stemmer's own stop list keeps most of them).
_FILLER = frozenset("""
    me my mine i it its you your we our us he him his she her they them their this that these those
    one off up out what how when where who which can could would should will shall please just also
    so some any all there here then than do does did done get got know let want need like have has had
""".split())


# How much a perfectly fitting acting function counts, in the units of a shared word's rarity (a word
# found in one example in a hundred weighs about 4.6).
FIT_WEIGHT = 4.0
# For a request whose action no function takes: a refusal is the closest example unless another shares
# several rare words.
REFUSAL_WEIGHT = 2 * FIT_WEIGHT
FILE_WEIGHT = 3.0  # an example using a file its request names, for a request that names one
BRANCH_WEIGHT = 3.0  # an example whose request states a condition, for a request that states one
FILE_ARGS = frozenset({"attachments", "path", "paths", "source"})
# A request that says to do something for many things ("every garden note", "each line"): only then is an
# example that loops its shape; shown for "tag my goals note", a loop was copied onto a single note.
_MANY = re.compile(r"\b(?:every|each|all|both)\b", re.IGNORECASE)
LOOKUP_VERBS = frozenset({"find", "get", "list", "search", "read", "info", "resolve", "now"})


def _words(text: str) -> set[str]:
    return stemmed_words(text) - _FILLER


class Example(BaseModel):
    intent: str
    workflow: dict[str, Any]
    found: list[str] = []  # grounding lines for the intent, in the example's own world

    @property
    def calls(self) -> set[str]:
        return {s["call"] for s in self.workflow.get("states", [])}

    @property
    def acting(self) -> set[str]:
        """The calls that do what the intent asks: those outside the agent's, less the lookups feeding them
        (the last state's call when every call is a lookup)."""
        states = [s["call"] for s in self.workflow.get("states", []) if not s["call"].startswith("agent.")]
        return set(states[-1:]) | {c for c in states if c.split(".", 1)[-1].split("_")[0] not in LOOKUP_VERBS}

    @property
    def uses_found_file(self) -> bool:
        """Whether a file was found for the intent and a step that acts takes a file (attaches, moves, packs
        one), by its path or by a reference to a lookup."""
        if not any(line.startswith("file ") for line in self.found):
            return False
        return any(set(s.get("args", {})) & FILE_ARGS for s in self.workflow.get("states", [])
                   if s["call"] in self.acting)

    @property
    def loops(self) -> bool:
        """Whether a step runs for each item of a list."""
        return any(s.get("for_each") is not None for s in self.workflow.get("states", []))

    @property
    def conditional(self) -> bool:
        """Whether its request states a condition (`intentos.conditional`)."""
        return condition(self.intent) is not None

    @property
    def refuses(self) -> bool:
        return REFUSE_CALL in self.calls

    @property
    def talk_only(self) -> bool:
        """Only asks, refuses or says something: no function of an app is used."""
        return self.calls <= TALK_CALLS


def load_examples(path: Path = EXAMPLES_FILE, found: Path | None = FOUND_FILE) -> list[Example]:
    lines = json.loads(found.read_text(encoding="utf-8")) if found is not None and found.is_file() else {}
    return [Example.model_validate({**e, "found": lines.get(e["intent"], [])})
            for e in yaml.safe_load(path.read_text(encoding="utf-8")) or []]


class ExamplePicker:
    """Picks the examples closest to an intent among those a table can run."""

    def __init__(self, examples: list[Example]) -> None:
        self.examples = examples
        self._words = [_words(e.intent) for e in examples]
        counts = Counter(w for words in self._words for w in words)
        n = max(1, len(examples))
        self._idf = {w: math.log(1 + n / c) for w, c in counts.items()}

    def pick(self, intent: str, usable: set[str], k: int, fits: dict[str, float] | None = None,
             names_file: bool = False, refusing: Callable[[Example], bool] | None = None,
             branching: bool = False) -> list[Example]:
        """Up to k examples, closest last (small models follow the nearest one, so it goes right before
        the intent). `usable`: the functions the table has. `fits`: how well each function matches the
        intent (0 to 1); an example whose acting functions fit is closer even when it shares no word
        ("cancel my squash game" and "call off the offsite" both cancel an event). `names_file`: the request
        names a file found for it; an example that uses a file its own request names is then closer (it
        shows where such a path goes: an attachment, a source). `refusing`: given when no function takes the
        request's action, it tells the refusals of requests of that kind, which are then closer
        (REFUSAL_WEIGHT); a refusal for harm or privacy would lend its reason to a request that has neither.
        `branching`: the request states a condition ("if you can't find it, tell me"); an example whose request
        states one, and so shows the check and its else branch, is closer (BRANCH_WEIGHT)."""
        if k <= 0:
            return []
        fits = fits or {}
        words = _words(intent)
        many = bool(_MANY.search(intent))
        scored = []
        for i, (example, theirs) in enumerate(zip(self.examples, self._words, strict=True)):
            if not example.calls <= usable:
                continue
            shared = words & theirs
            score = sum(self._idf.get(w, 0.0) for w in shared)
            score += FIT_WEIGHT * max((fits.get(c, 0.0) for c in example.acting), default=0.0)
            if names_file and example.uses_found_file:
                score += FILE_WEIGHT
            if branching and example.conditional:
                score += BRANCH_WEIGHT
            if refusing is not None and example.refuses and refusing(example):
                score += REFUSAL_WEIGHT
            elif example.talk_only and len(shared) < max(2, len(theirs) // 2):
                continue
            scored.append((score, -i, example))
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        picked: list[Example] = []
        for score, _, example in scored:
            if len(picked) == k or score <= 0:
                break
            # One example per way of acting: a second that does the same thing teaches nothing new. Of those
            # that act alike, the closest with the request's shape (a loop for "every ...", else none).
            if all(example.acting != e.acting for e in picked):
                alike = [e for s, _, e in scored if s > 0 and e.acting == example.acting and e.loops == many]
                picked.append(alike[0] if alike else example)
        return picked[::-1]
