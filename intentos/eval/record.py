"""What an eval run leaves on disk: one JSON record per trial and a manifest.

    DIR/run.json                              the suite (path, hash), models, repetitions, settings
    DIR/records/<model>/<case>.r<rep>.json    one trial: every prompt and raw response, the workflow,
                                              the verdict of executing it

A trial is written atomically once it is complete, so an interrupted run resumes by
skipping the trials already on disk, and a record is never half-written.
"""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from intentos import __version__
from intentos.controller import Trace
from intentos.errors import IntentosError
from intentos.eval.judge import Verdict
from intentos.eval.suite import Case, Suite

REFERENCE_SPEC = "reference"  # the pseudo-model that answers with each case's reference workflow


class TurnRecord(BaseModel):
    """One user turn of a multi-turn case: what was asked, the workflow it became, the calls that reached the APIs."""

    intent: str
    workflow: dict[str, Any] | None = None
    resolution_error: str | None = None
    status: str | None = None  # how its run ended (done, failed, …); None when there was no workflow
    calls: list[str] = []
    attempts: int = 0  # model calls this turn made; their records are in the trial's trace, in order


class Trial(BaseModel):
    """One model × case × repetition."""

    suite: str
    case: str
    model: str
    rep: int
    intent: str
    difficulty: str
    tags: list[str] = []
    trace: Trace | None = None  # None for the reference pseudo-model
    workflow: dict[str, Any] | None = None
    resolution_error: str | None = None
    verdict: Verdict | None = None
    replay_diverged: bool = False  # a replay whose prompts differ from the recorded ones
    recorded: str = ""
    # Multi-turn cases: one record per user turn; `trace` then holds every turn's attempts in order.
    turns: list[TurnRecord] = []

    @property
    def valid(self) -> bool:
        if self.turns:
            return all(t.workflow is not None for t in self.turns)
        return self.workflow is not None

    @property
    def executed(self) -> bool:
        return self.verdict is not None and self.verdict.executed

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed

    @property
    def latency_s(self) -> float:
        """Model time: the recorded generation times of every attempt (so replays report the same figure)."""
        return sum(a.total_s for a in self.trace.attempts) if self.trace else 0.0

    @property
    def tokens_in(self) -> int:
        return self.trace.prompt_tokens if self.trace else 0

    @property
    def tokens_out(self) -> int:
        return self.trace.completion_tokens if self.trace else 0

    @property
    def repairs(self) -> int:
        return self.trace.repairs if self.trace else 0


class Manifest(BaseModel):
    suite: str
    suite_path: str
    suite_sha256: str
    models: list[str] = []
    reps: int = 1
    settings: dict[str, Any] = {}
    created: str
    updated: str
    intentos: str = __version__
    host: str = Field(default_factory=lambda: f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu")
    replay_of: str | None = None
    # Sampling (--limit N --seed S): which cases of how many were run, so figures are comparable.
    limit: int | None = None
    seed: int | None = None
    cases: int | None = None  # cases run (after --case/--tag/--limit)
    suite_cases: int | None = None  # cases in the whole suite

    def sample_text(self) -> str | None:
        """`20 of 400 cases (--limit 20 --seed 0)`, or None when the whole suite ran."""
        if self.limit is None or self.cases is None:
            return None
        return f"{self.cases} of {self.suite_cases} cases (--limit {self.limit} --seed {self.seed})"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def trial_head(suite: Suite, case: Case, spec: str, rep: int) -> dict[str, Any]:
    """The fields a trial of `case` by model `spec` starts with, before anything is resolved or judged."""
    return {"suite": suite.name, "case": case.id, "model": spec, "rep": rep, "intent": case.intent,
            "difficulty": case.difficulty, "tags": case.tags, "recorded": now_iso()}


def trial_path(out: Path, model: str, case: str, rep: int) -> Path:
    return out / "records" / slug(model) / f"{case}.r{rep}.json"


def write_trial(out: Path, trial: Trial) -> Path:
    path = trial_path(out, trial.model, trial.case, trial.rep)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(trial.model_dump_json(indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_trial(path: Path) -> Trial:
    try:
        return Trial.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise IntentosError(f"{path}: not a trial record ({str(exc).splitlines()[0]})") from None


def load_trials(out: Path) -> list[Trial]:
    """Every trial recorded under `out`, in a stable order."""
    records = out / "records"
    if not records.is_dir():
        raise IntentosError(f"{out}: no recorded eval run here (no records/ folder)")
    return sorted((read_trial(p) for p in records.glob("*/*.json")), key=lambda t: (t.model, t.case, t.rep))


def read_manifest(out: Path) -> Manifest | None:
    path = out / "run.json"
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise IntentosError(f"{path}: not an eval manifest ({str(exc).splitlines()[0]})") from None


def write_manifest(out: Path, manifest: Manifest) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "run.json.tmp"
    tmp.write_text(json.dumps(manifest.model_dump(), indent=2), encoding="utf-8")
    os.replace(tmp, out / "run.json")
