"""Figures from trials: per model, per difficulty, per case.

The headline is the goal-check pass rate: the share of trials whose workflow, executed
in a fresh sandbox, left it the way the intent asked. pass@k uses the unbiased
estimator of Chen et al. (2021): with n repetitions of a case of which c passed,
pass@k = 1 − C(n−c, k) / C(n, k), averaged over cases.
"""

from __future__ import annotations

from collections import defaultdict
from math import comb

import numpy as np
from pydantic import BaseModel

from intentos.eval.record import Trial

DIFFICULTIES = ("easy", "medium", "hard")


class ModelScore(BaseModel):
    model: str
    trials: int
    cases: int
    reps: int
    valid: float  # a workflow that passed validation, within the repair attempts
    executed: float  # the run reached `done`
    passed: float  # every goal check held: the headline
    pass_at_1: float
    pass_at_k: float  # k = reps
    repairs: float  # mean repair turns per trial
    latency_median_s: float
    latency_p90_s: float
    tokens_in: float  # mean per trial
    tokens_out: float
    by_difficulty: dict[str, float]  # pass rate per difficulty
    replay_diverged: int = 0


class CaseRow(BaseModel):
    case: str
    difficulty: str
    tags: list[str]
    intent: str
    passed: dict[str, tuple[int, int]]  # model → (passed, trials)


def pass_at_k(n: int, c: int, k: int) -> float:
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def score_model(model: str, trials: list[Trial]) -> ModelScore:
    by_case: dict[str, list[Trial]] = defaultdict(list)
    for t in trials:
        by_case[t.case].append(t)
    reps = min(len(ts) for ts in by_case.values())
    latencies = np.array([t.latency_s for t in trials])
    by_difficulty = {}
    for level in DIFFICULTIES:
        level_trials = [t for t in trials if t.difficulty == level]
        if level_trials:
            by_difficulty[level] = _rate(t.passed for t in level_trials)
    return ModelScore(
        model=model, trials=len(trials), cases=len(by_case), reps=reps,
        valid=_rate(t.valid for t in trials),
        executed=_rate(t.executed for t in trials),
        passed=_rate(t.passed for t in trials),
        pass_at_1=float(np.mean([pass_at_k(len(ts), sum(t.passed for t in ts), 1) for ts in by_case.values()])),
        pass_at_k=float(np.mean([pass_at_k(len(ts), sum(t.passed for t in ts), reps) for ts in by_case.values()])),
        repairs=float(np.mean([t.repairs for t in trials])),
        latency_median_s=float(np.median(latencies)),
        latency_p90_s=float(np.percentile(latencies, 90)),
        tokens_in=float(np.mean([t.tokens_in for t in trials])),
        tokens_out=float(np.mean([t.tokens_out for t in trials])),
        by_difficulty=by_difficulty,
        replay_diverged=sum(t.replay_diverged for t in trials),
    )


def score(trials: list[Trial]) -> list[ModelScore]:
    """One score per model, in the order models first appear."""
    grouped: dict[str, list[Trial]] = defaultdict(list)
    for t in trials:
        grouped[t.model].append(t)
    return [score_model(model, ts) for model, ts in grouped.items()]


def case_rows(trials: list[Trial]) -> list[CaseRow]:
    rows: dict[str, CaseRow] = {}
    for t in trials:
        row = rows.setdefault(t.case, CaseRow(case=t.case, difficulty=t.difficulty, tags=t.tags, intent=t.intent,
                                              passed={}))
        won, n = row.passed.get(t.model, (0, 0))
        row.passed[t.model] = (won + t.passed, n + 1)
    return list(rows.values())


def _rate(flags) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 0.0
