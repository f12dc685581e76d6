"""Weak supervision from failure windows: LogLAB (arXiv:2111.01657) and PULL (arXiv:2301.10681).

Setting shared by both papers: a monitoring system reports estimated (imprecise) failure time windows.
Lines outside every window are known normal (N); lines inside are unlabeled (U): mostly normal traffic
plus the few anomalous lines we want to find. Both use the Logsy encoder (model.py); r = ||z||.

LogLAB (section 3): one training run, N as class 0 and U as class 1 with a class-balanced objective.
Why it works: a normal message occurs in N and in U, so it cannot be pushed away; for a message type
seen a times per N line and b times per U line the balanced loss is minimal at r = ln(1 + b/a), so a
message type that never occurs outside windows (a = 0) is pushed to large r. Our decision follows from
that optimum: flag in-window lines with r > ln(1 + min_enrichment) (and above the known-normal lines'
score quantile). The enrichment cutoff is our choice; the paper does not fix one we could recover.

PULL (sections 3-4): the same model and data, learned iteratively with a PU objective that accounts for
class imbalance. Each iteration
  1. scores all lines; unlabeled lines the model calls normal (r <= ln(1 + min_enrichment), the LogLAB
     enrichment floor) move from U to N, so U gets purer with every round;
  2. estimates the anomaly prior pi of the remaining U by mixture-proportion estimation on the current
     scores: 1 - pi = min_t F_U(t) / F_N(t) over thresholds t from N's median to its `normal_quantile`
     (line-weighted CDFs, so repeated messages count by their multiplicity);
  3. continues training (learning rate x `refine_lr`) with the balanced non-negative PU risk (Kiryo et
     al. 2017, nnPU; class-balanced as in imbalanced-PU work): R = E_N[l0] + max(0, E_U[l1] - (1 - pi)
     E_N[l1]) / pi, where l0, l1 are the Logsy terms for "normal"/"anomalous". When the bracket goes
     negative (the model overfits U), the step follows -bracket instead, as nnPU prescribes. l1 is
     bounded (r clamped at `r_floor`) because the nnPU estimator needs a bounded loss;
  4. flags U lines with r > ln(1 + min_enrichment) that also score above the `normal_quantile` of the
     lines known normal from the start (outside every window).
It stops when no line changes side or after `max_iterations`. The first round is the LogLAB round (no
prior needed); `prior=` fixes pi instead of estimating it. The paper fixes the objective (balanced nnPU)
and the iterate-and-refine scheme; the refinement rule, prior estimator, thresholds and stopping test
are our choices. Why these (LogHub BGL, where windows are dominated by a few context message types that
are normal yet rarely occur outside windows, and anomalies are ~70% of U):
- the prior used to be "share of U flagged by the last round": a feedback loop that drifted to 1 or to
  ~0; a too small pi makes (1 - pi) E_N[l1] exceed E_U[l1] (U's normal lines are not distributed like
  N's, so the nnPU assumption fails), and the -bracket step then pulls every U line, anomalies
  included, towards the centre. The mixture-proportion estimate is an upper bound on pi: where U's
  normal part does not look like N it tends to 1 (plain N-vs-U training), where it does it is pi;
- moving U lines up to N's 0.999 quantile (about N's 2nd highest score, set by the 2-5 known-normal
  lines of window-dominated types) moved whole anomaly types to N once that quantile jumped (and a
  moved line never comes back); moving only lines below the enrichment floor is stable, and the
  quantile guard of step 4 is taken over the original N only (moved lines are uncertain);
- each round restarts AdamW; at the full rate the score scale jumped from round to round.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch

from intentos.skills import kit
from intentos.skills.logs.model import (
    EncoderSettings,
    LineView,
    LogEncoder,
    LogModelError,
    PairLoss,
    UniqueMessages,
    Vocab,
    anomaly_loss,
    balanced_logsy_loss,
    checked,
    normal_loss,
)

Method = Literal["pull", "loglab"]


@dataclass
class PullSettings:
    encoder: EncoderSettings = field(default_factory=lambda: EncoderSettings(epochs=20))
    max_iterations: int = 4  # PULL refinement rounds after the first (LogLAB) round
    refine_epochs: int = 2  # epochs per refinement round (training continues from the previous round)
    prior: float | None = None  # share of anomalous lines inside the windows; estimated when None
    normal_quantile: float = 0.999  # scores of known-normal lines above this quantile are outliers
    min_enrichment: float = 3.0  # decision r > ln(1 + this): message type >= 4x as frequent in windows
    r_floor: float = 0.05  # lower clamp of r inside the PU term (bounds l1 at about 3.0)
    refine_lr: float = 0.3  # refinement rounds train at this fraction of the encoder's learning rate

    def __post_init__(self) -> None:
        if self.max_iterations < 0 or self.refine_epochs < 1 or self.min_enrichment <= 0 or self.r_floor <= 0:
            raise LogModelError(
                "bad PULL settings: need max_iterations >= 0, refine_epochs >= 1, min_enrichment > 0, r_floor > 0"
            )
        if self.refine_lr <= 0:
            raise LogModelError("bad PULL settings: need refine_lr > 0")
        if not 0.0 < self.normal_quantile <= 1.0 or (self.prior is not None and not 0.0 < self.prior <= 1.0):
            raise LogModelError("bad PULL settings: need 0 < normal_quantile <= 1 and 0 < prior <= 1")


@dataclass
class LabelResult:
    labels: np.ndarray  # bool per line: anomalous
    scores: np.ndarray  # ||z|| per line
    in_window: np.ndarray  # bool per line: inside an estimated failure window
    method: str
    iterations: int
    prior: float  # estimated share of anomalous lines among the in-window lines
    threshold: float
    history: list[dict[str, Any]] = field(default_factory=list)
    first_round: np.ndarray | None = None  # labels after round 0, i.e. LogLAB's (PULL starts from them)

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "lines": int(len(self.labels)),
            "in_window": int(self.in_window.sum()),
            "anomalous": int(self.labels.sum()),
            "iterations": self.iterations,
            "prior": round(self.prior, 6),
            "threshold": round(self.threshold, 4),
        }


def window_mask(timestamps: Sequence[float] | np.ndarray, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """True for timestamps inside any closed window [start, end]; windows may overlap or be unsorted."""
    t = np.asarray(timestamps, dtype=np.float64)
    if not len(windows):
        return np.zeros(len(t), dtype=bool)
    spans = sorted((float(a), float(b)) for a, b in windows if b >= a)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    starts = np.array([m[0] for m in merged])
    ends = np.array([m[1] for m in merged])
    idx = np.searchsorted(starts, t, side="right") - 1
    return (idx >= 0) & (t <= ends[np.clip(idx, 0, None)])


def nnpu_balanced_loss(prior: float, r_floor: float = 0.05) -> PairLoss:
    """Class-balanced non-negative PU risk with Logsy losses; N = labelled normal, U = unlabeled."""
    pi = min(max(prior, 1e-4), 1.0)

    def loss(r_normal: torch.Tensor, r_unlabeled: torch.Tensor) -> torch.Tensor:
        negative = normal_loss(r_normal).mean()
        l1_u = anomaly_loss(r_unlabeled.clamp_min(r_floor)).mean()
        l1_n = anomaly_loss(r_normal.clamp_min(r_floor)).mean()
        positive = (l1_u - (1.0 - pi) * l1_n) / pi
        if positive.item() < 0:  # nnPU: the estimate went negative -> step back on it alone
            return -positive
        return negative + positive

    return loss


def label_from_failure_windows(
    timestamps: Sequence[float] | np.ndarray,
    messages: Iterable[str],
    windows: Sequence[tuple[float, float]],
    method: Method = "pull",
    settings: PullSettings | None = None,
    cancelled: kit.Cancel = None,
) -> LabelResult:
    """Label each line anomalous/normal from estimated failure windows (LogLAB or PULL).

    `messages` may be any iterable aligned with `timestamps` (e.g. streamed from a file): it is consumed
    once and deduplicated, so memory is O(distinct token sequences) + a few bytes per line. A set
    `cancelled` stops it within a training step (kit.Cancelled)."""
    s = settings or PullSettings()
    if method not in ("pull", "loglab"):
        raise LogModelError(f"unknown method {method!r}; one of pull, loglab")
    t = np.asarray(timestamps, dtype=np.float64)
    if t.ndim != 1:
        raise LogModelError("timestamps must be a flat sequence of epoch seconds")
    if np.isnan(t).any():
        raise LogModelError(f"{int(np.isnan(t).sum())} line(s) have no timestamp; failure windows cannot place them")
    bad = [(a, b) for a, b in windows if not (math.isfinite(a) and math.isfinite(b) and b >= a)]
    if bad:
        raise LogModelError(f"failure windows must be finite (start, end) with end >= start; bad: {bad[:3]}")
    unique = UniqueMessages(checked(messages, cancelled))
    n = len(unique)
    if n != len(t):
        raise LogModelError(f"{len(t)} timestamps but {n} messages")
    if n == 0:
        raise LogModelError("no log lines to label")
    in_window = window_mask(t, windows)
    if not in_window.any():
        none = np.zeros(n, bool)
        return LabelResult(none, np.zeros(n), in_window, method, 0, 0.0, math.inf, first_round=none.copy())
    if in_window.all():
        raise LogModelError("every line is inside a failure window: no known-normal lines to learn from")

    # Retrospective labelling: the vocabulary may come from all lines (no train/test split here).
    vocab = Vocab.from_counts(unique.token_counts, s.encoder.min_count, s.encoder.max_vocab)
    encoder = LogEncoder(vocab, s.encoder)
    encoded = encoder.encode_tokens(unique.sequences)
    known_normal = ~in_window
    unlabeled = in_window.copy()

    def fit_round(loss: PairLoss, epochs: int) -> list[float]:
        normal = LineView(encoded, unique.line_ids, np.flatnonzero(known_normal))
        other = LineView(encoded, unique.line_ids, np.flatnonzero(unlabeled))
        return encoder.train_pairs(normal, other, loss, epochs, cancelled)

    def score_lines() -> np.ndarray:
        return encoder.score_ids(encoded, cancelled)[unique.line_ids]

    losses = fit_round(balanced_logsy_loss, s.encoder.epochs)
    scores = score_lines()
    threshold = _decision_threshold(scores, known_normal, s, math.log1p(s.min_enrichment))
    labels = in_window & (scores > threshold)
    history = [_round_record(0, labels, unlabeled, in_window, threshold, losses, moved=0)]
    first_round = labels.copy()
    iterations = 1
    if method == "pull":
        floor = math.log1p(s.min_enrichment)
        original_normal = ~in_window
        encoder.settings = replace(s.encoder, lr=s.encoder.lr * s.refine_lr)
        for it in range(1, s.max_iterations + 1):
            # 1. Refine: unlabeled lines the model calls normal (below the enrichment floor) become labelled normal.
            move = unlabeled & (scores <= floor) & ~labels
            known_normal |= move
            unlabeled &= ~move
            if not unlabeled.any():
                labels = np.zeros(n, bool)
                history.append(_round_record(it, labels, unlabeled, in_window, threshold, [], int(move.sum())))
                iterations = it + 1
                break
            # 2. Prior of the remaining unlabeled set (or the user's fixed value).
            if s.prior is not None:
                pi = min(1.0, s.prior * in_window.sum() / unlabeled.sum())
            else:
                pi = estimate_prior(scores[known_normal], scores[unlabeled], s.normal_quantile)
            # 3. Continue training with the balanced nnPU risk.
            losses = fit_round(nnpu_balanced_loss(pi, s.r_floor), s.refine_epochs)
            scores = score_lines()
            # 4. Decide: enriched in the windows and above what the original known-normal lines score.
            threshold = _decision_threshold(scores, original_normal, s, floor)
            new_labels = unlabeled & (scores > threshold)
            changed = int((new_labels != labels).sum())
            labels = new_labels
            iterations = it + 1
            history.append(_round_record(it, labels, unlabeled, in_window, threshold, losses, int(move.sum()), pi))
            if changed == 0 and not move.any():
                break
    prior = float(labels.sum() / in_window.sum())
    return LabelResult(labels, scores, in_window, method, iterations, prior, threshold, history, first_round)


def estimate_prior(normal_scores: np.ndarray, unlabeled_scores: np.ndarray, upper_quantile: float = 0.999) -> float:
    """Share of anomalies among unlabeled lines, by mixture-proportion estimation on anomaly scores.

    U = (1 - pi) * normal + pi * anomalous; if U's normal lines score like the known-normal ones, then
    F_U(t) >= (1 - pi) F_N(t) for every t, so 1 - pi <= min_t F_U(t) / F_N(t) (Blanchard et al. 2010;
    Scott 2015). t runs over N's score quantiles from the median up to `upper_quantile`, where F_N is
    large enough for a stable ratio. The minimum is an upper bound on pi: the safe side for nnPU, whose
    correction term (1 - pi) E_N[l1] pushes U towards normal when pi is too small. Inputs are per line,
    so duplicated messages count with their multiplicity."""
    sn, su = np.sort(np.asarray(normal_scores, float)), np.sort(np.asarray(unlabeled_scores, float))
    if not len(sn) or not len(su):
        return 1.0
    cuts = np.quantile(sn, np.linspace(0.5, max(0.5, upper_quantile), 50))
    f_n = np.searchsorted(sn, cuts, side="right") / len(sn)
    f_u = np.searchsorted(su, cuts, side="right") / len(su)
    kappa = float(np.min(f_u / np.maximum(f_n, 1e-12)))
    return float(np.clip(1.0 - kappa, 1.0 / len(su), 1.0))


def naive_window_labels(timestamps: Sequence[float] | np.ndarray, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """The naive baseline: every line inside a failure window is anomalous."""
    return window_mask(timestamps, windows)


def _decision_threshold(scores: np.ndarray, known_normal: np.ndarray, s: PullSettings, floor: float) -> float:
    return max(floor, float(np.quantile(scores[known_normal], s.normal_quantile)))


def _round_record(
    it: int,
    labels: np.ndarray,
    unlabeled: np.ndarray,
    in_window: np.ndarray,
    threshold: float,
    losses: list[float],
    moved: int,
    prior: float | None = None,
) -> dict[str, Any]:
    return {
        "iteration": it,
        "unlabeled": int(unlabeled.sum()),
        "moved_to_normal": moved,
        "anomalous": int(labels.sum()),
        "prior_used": prior,
        "prior_estimate": float(labels.sum() / max(1, in_window.sum())),
        "threshold": round(threshold, 4),
        "loss": [round(x, 4) for x in losses],
    }
