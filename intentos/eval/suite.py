"""Eval suites: intents with a starting sandbox and checks on the sandbox after execution.

    name: core
    description: …
    fixture: fixtures/office.yaml         # default starting sandbox (path relative to this file, or inline)
    published: {...}                      # optional: figures a paper reported, shown as a reference row
    cases:
      - id: mail-travel-notes
        intent: Send Anna my notes tagged travel
        difficulty: medium                 # easy | medium | hard
        tags: [mail, notes, multi-step]
        fixture: …                         # optional, replaces the suite's
        reference: {states: [...]}         # optional: a workflow known to achieve the goal
        checks:
          - outcome: done                  # the run ended in `done` (or failed, …)
          - ran: mail.send                 # a step calling this succeeded ({call, args, result} patterns too)
          - not_ran: files.trash           # no step calling this succeeded
          - unchanged: true                # no write/external/destructive step succeeded
          - said: {contains: Hetzner}      # an agent.say message matches
          - file: {path: Notes.md, contains: [Lisbon]}   # or glob, exists: false, equals, members (zip)
          - call: mail.list                # a read function, called on the sandbox after the run
            args: {folder: outbox}
            expect: {messages: {any: {to: {contains: anna.berg@example.com}}}}

Every error names the file and line. Check calls must be read functions, so judging a
case never changes what it judges.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from intentos import yamlfile
from intentos.eval.matcher import check_pattern
from intentos.fixture import Fixture
from intentos.function import Effect
from intentos.table import FunctionTable
from intentos.validation import validate
from intentos.workflow import Workflow, from_loaded

Difficulty = Literal["easy", "medium", "hard"]
CASE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutcomeCheck(_Strict):
    outcome: Literal["done", "failed", "declined", "cancelled"]


class RanSpec(_Strict):
    call: str
    args: Any = None  # a pattern on the step's arguments (after references were filled in)
    result: Any = None  # a pattern on its result


class RanCheck(_Strict):
    ran: RanSpec


class NotRanCheck(_Strict):
    not_ran: str


class UnchangedCheck(_Strict):
    unchanged: Literal[True]


class SaidCheck(_Strict):
    said: Any


class FileSpec(_Strict):
    path: str | None = None
    glob: str | None = None
    exists: bool = True
    contains: list[str] = Field(default_factory=list)
    equals: str | None = None
    members: list[str] = Field(default_factory=list, description="names a zip archive must hold (substrings)")
    count: int | None = Field(None, description="with glob: exactly this many matches")


class FileCheck(_Strict):
    file: FileSpec


class CallCheck(_Strict):
    call: str
    args: dict[str, Any] = Field(default_factory=dict)
    expect: Any


Check = OutcomeCheck | RanCheck | NotRanCheck | UnchangedCheck | SaidCheck | FileCheck | CallCheck
_KINDS: dict[str, type[BaseModel]] = {"outcome": OutcomeCheck, "ran": RanCheck, "not_ran": NotRanCheck,
                                      "unchanged": UnchangedCheck, "said": SaidCheck, "file": FileCheck,
                                      "call": CallCheck}


class Case(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    intent: str
    difficulty: Difficulty
    tags: list[str] = Field(default_factory=list)
    fixture: Fixture | None = None
    reference: Workflow | None = None
    checks: list[Check]
    source: str | None = None  # where the case comes from, e.g. "reconstructed from arXiv:2510.08576"
    note: str | None = None
    line: int | None = None  # where it starts in the suite file


class PublishedRow(_Strict):
    """A figure someone else published: a count (`passed` of `of`) or an accuracy in [0, 1]."""

    model: str
    passed: int | None = None
    of: int | None = None
    accuracy: float | None = Field(None, ge=0, le=1)
    note: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PublishedRow:
        if (self.passed is None or self.of is None) and self.accuracy is None:
            raise ValueError("a published row needs `passed` and `of`, or `accuracy`")
        return self

    @property
    def rate(self) -> float:
        if self.accuracy is not None:
            return self.accuracy
        return (self.passed or 0) / self.of if self.of else 0.0

    @property
    def label(self) -> str:
        """The figure as published: `77.8% (7/9)` or `93.5%`."""
        if self.passed is not None and self.of is not None:
            return f"{100 * self.rate:.1f}% ({self.passed}/{self.of})"
        return f"{100 * self.rate:.1f}%"


class Published(_Strict):
    source: str
    rows: list[PublishedRow]
    note: str | None = None


class Suite(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    path: Path
    description: str | None = None
    cases: list[Case]
    published: Published | None = None

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.id == case_id:
                return case
        raise KeyError(case_id)

    def ref(self) -> str:
        """What `--suite` takes to load this suite again (recorded in a run's manifest for replay)."""
        return str(self.path.resolve())

    def digest(self) -> str:
        """A hash of the suite's data: records of one version must not be judged against another."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @classmethod
    def load(cls, path: str | Path, table: FunctionTable | None = None) -> Suite:
        """Read and check a suite file; with a table, calls in checks and references are checked too."""
        return _load(Path(path), table)


def _load(path: Path, table: FunctionTable | None) -> Suite:
    doc = yamlfile.load(path)
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("a suite must be a mapping with `cases`")
    allowed = {"name", "description", "fixture", "published", "cases"}
    for key in data:
        if key not in allowed:
            raise doc.error(f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})", (key,))
    if not isinstance(data.get("cases"), list) or not data["cases"]:
        raise doc.error("`cases` must be a non-empty list", ("cases",))
    fixtures: dict[Path, Fixture] = {}
    default = _fixture(doc, path, data.get("fixture"), ("fixture",), fixtures)
    published = None
    if data.get("published") is not None:
        try:
            published = Published.model_validate(data["published"])
        except ValidationError as exc:
            raise doc.validation_error(exc, ("published",)) from None
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(data["cases"]):
        case = _case(doc, path, raw, ("cases", i), default, fixtures, table)
        if case.id in seen:
            raise doc.error(f"case id {case.id!r} is used twice (first at case {seen[case.id] + 1})",
                            ("cases", i, "id"))
        seen[case.id] = i
        cases.append(case)
    return Suite(name=str(data.get("name") or path.stem), path=path, description=data.get("description"),
                 cases=cases, published=published)


def _case(doc: yamlfile.LoadedYaml, path: Path, raw: Any, at: yamlfile.Location, default: Fixture | None,
          fixtures: dict[Path, Fixture], table: FunctionTable | None) -> Case:
    if not isinstance(raw, dict):
        raise doc.error("a case must be a mapping with id, intent, difficulty and checks", at)
    allowed = {"id", "intent", "difficulty", "tags", "fixture", "reference", "checks", "source", "note"}
    for key in raw:
        if key not in allowed:
            raise doc.error(f"unknown key {key!r} in a case (allowed: {', '.join(sorted(allowed))})", (*at, key))
    for key in ("id", "intent", "difficulty", "checks"):
        if key not in raw:
            raise doc.error(f"the case needs `{key}`", at)
    if not isinstance(raw["id"], str) or not CASE_ID.match(raw["id"]):
        raise doc.error("`id` must be lower-case letters, digits, '.', '_' or '-'", (*at, "id"))
    if not isinstance(raw["checks"], list) or not raw["checks"]:
        raise doc.error("`checks` must be a non-empty list: a case is judged by the sandbox after execution",
                        (*at, "checks"))
    checks = [_check(doc, c, (*at, "checks", j), table) for j, c in enumerate(raw["checks"])]
    reference = from_loaded(doc, (*at, "reference")) if raw.get("reference") is not None else None
    if reference is not None and table is not None and (problems := validate(reference, table)):
        raise doc.error(f"reference workflow: {problems[0]}", (*at, "reference"))
    fixture = default
    if "fixture" in raw:
        fixture = _fixture(doc, path, raw["fixture"], (*at, "fixture"), fixtures)
    fields = {k: raw[k] for k in ("id", "intent", "difficulty", "tags", "source", "note") if k in raw}
    try:
        return Case.model_validate({**fields, "fixture": fixture, "reference": reference, "checks": checks,
                                    "line": doc.line_of(at)})
    except ValidationError as exc:
        raise doc.validation_error(exc, at) from None


def _check(doc: yamlfile.LoadedYaml, raw: Any, at: yamlfile.Location, table: FunctionTable | None) -> Check:
    if isinstance(raw, dict) and isinstance(raw.get("ran"), str):
        raw = {**raw, "ran": {"call": raw["ran"]}}
    kinds = [k for k in _KINDS if isinstance(raw, dict) and k in raw]
    if len(kinds) != 1:
        raise doc.error(f"a check is a mapping with exactly one of: {', '.join(_KINDS)}", at)
    try:
        check = _KINDS[kinds[0]].model_validate(raw)
    except ValidationError as exc:
        raise doc.validation_error(exc, at) from None
    for pattern in _patterns(check):
        if problems := check_pattern(pattern):
            raise doc.error(f"bad pattern: {problems[0]}", at)
    if isinstance(check, FileCheck) and (check.file.path is None) == (check.file.glob is None):
        raise doc.error("a file check needs exactly one of `path` or `glob`", (*at, "file"))
    if table is not None:
        names = {CallCheck: lambda c: c.call, RanCheck: lambda c: c.ran.call, NotRanCheck: lambda c: c.not_ran}
        if type(check) in names:
            try:
                fn = table.get(names[type(check)](check))
            except Exception as exc:
                raise doc.error(str(exc), at) from None
            if isinstance(check, CallCheck) and fn.effect is not Effect.READ:
                raise doc.error(f"a check may only call read functions; {fn.name} is {fn.effect.value}", at)
    return check


def _patterns(check: Check) -> list[Any]:
    if isinstance(check, CallCheck):
        return [check.expect]
    if isinstance(check, SaidCheck):
        return [check.said]
    if isinstance(check, RanCheck):
        return [p for p in (check.ran.args, check.ran.result) if p is not None]
    return []


def _fixture(doc: yamlfile.LoadedYaml, path: Path, raw: Any, at: yamlfile.Location,
             cache: dict[Path, Fixture]) -> Fixture | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        return Fixture.from_loaded(doc, at)
    if not isinstance(raw, str):
        raise doc.error("`fixture` must be a file name or a mapping", at)
    target = (path.parent / raw).resolve()
    if not target.is_file():
        raise doc.error(f"fixture file {raw!r} not found (looked at {target})", at)
    if target not in cache:
        cache[target] = Fixture.load(target)
    return cache[target]
