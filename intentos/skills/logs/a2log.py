"""A2Log (Wittkopp et al., arXiv:2109.09537): anomaly scoring + an anomaly decision without anomaly labels.

1. Anomaly scoring: the Logsy encoder (model.py) trained with the hyperspherical objective. Normal
   training messages are class 0; the anomaly class is auxiliary data, as in Logsy. A2Log's point is
   that the auxiliary anomalies can be produced by *augmenting* the normal data, so no foreign data
   and no labels are needed; messages from other systems can still be added (`auxiliary=`), Logsy-style.
2. Anomaly decision: the threshold is set from data augmentation of held-out normal training data:
   held-out normal messages (label 0) against freshly augmented copies of them (label 1), threshold at
   the best F1 between the two. The paper's strong baseline instead picks the best-F1 threshold on a
   labelled validation set; `fit(..., labelled=(messages, labels))` does that.

Choices left open (or not recoverable from the paper's public text) and made here:
- augmentation operations: token replacement with random vocabulary tokens, insertion of random
  tokens, deletion, and shuffling of a token span; one operation per augmented message; augmented
  messages identical to a normal message are dropped (they are not anomalies);
- 10% of the normal messages are held out for the decision so that the threshold sees how the model
  scores normal messages it was not trained on;
- normal training data larger than `max_train_messages` is reservoir-sampled while streaming, so
  fit() takes any iterable (e.g. a multi-GB log) with bounded memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from intentos.skills import kit
from intentos.skills.logs.model import (
    SPECIALS,
    EncoderSettings,
    LogEncoder,
    LogModelError,
    Vocab,
    balanced_logsy_loss,
    best_f1_threshold,
    checked,
    load_bundle,
    save_bundle,
)
from intentos.skills.logs.parsing import tokenize

AUGMENT_OPS = ("replace", "insert", "delete", "shuffle")


@dataclass
class A2LogSettings:
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    augment_per_message: float = 1.0  # augmented anomaly samples per normal training message
    replace_fraction: float = 0.3  # share of tokens replaced by the "replace" operation
    holdout: float = 0.1  # share of normal messages kept out of training for the decision boundary
    max_train_messages: int = 50000  # larger normal sets are subsampled (deterministically)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> A2LogSettings:
        enc = EncoderSettings.from_dict(data.get("encoder", {}))
        rest = {k: v for k, v in data.items() if k != "encoder" and k in cls.__dataclass_fields__}
        return cls(encoder=enc, **rest)


def augment(
    tokens: Sequence[str], vocab: Sequence[str], rng: random.Random, replace_fraction: float = 0.3
) -> list[str]:
    """One augmented (synthetic anomalous) variant of a tokenized normal message."""
    out = list(tokens)
    op = rng.choice(AUGMENT_OPS if len(out) > 2 else ("replace", "insert"))
    if op == "replace" and out:
        k = max(1, round(len(out) * replace_fraction))
        for i in rng.sample(range(len(out)), min(k, len(out))):
            out[i] = rng.choice(vocab)
    elif op == "delete":
        for _ in range(rng.randint(1, max(1, len(out) // 3))):
            out.pop(rng.randrange(len(out)))
    elif op == "shuffle":
        i = rng.randrange(len(out) - 1)
        j = rng.randint(i + 2, len(out))
        span = out[i:j]
        rng.shuffle(span)
        out[i:j] = span
    else:  # insert
        for _ in range(rng.randint(1, 3)):
            out.insert(rng.randint(0, len(out)), rng.choice(vocab))
    return out


def augment_all(
    token_lists: Sequence[Sequence[str]],
    vocab: Sequence[str],
    count: int,
    seed: int,
    forbidden: set[tuple[str, ...]],
    replace_fraction: float = 0.3,
) -> list[list[str]]:
    """`count` augmented messages that differ from every normal message in `forbidden`."""
    rng = random.Random(seed)
    words = [t for t in vocab if t not in SPECIALS] or ["<unk>"]
    out: list[list[str]] = []
    attempts = 0
    while len(out) < count and attempts < count * 5 and token_lists:
        attempts += 1
        candidate = augment(token_lists[rng.randrange(len(token_lists))], words, rng, replace_fraction)
        if candidate and tuple(candidate) not in forbidden:
            out.append(candidate)
    return out


ThresholdMode = Literal["unfitted", "augmentation", "labelled"]


class A2Log:
    """Train on normal messages only; decide with a threshold from augmented normal data.

    model = A2Log().fit(normal_messages)          # threshold from augmentation (no labels)
    model.predict(messages)                       # bool per message
    model.calibrate(messages, labels)             # optional: the paper's labelled strong baseline
    model.save("a2log.pt"); A2Log.load("a2log.pt")
    """

    def __init__(self, settings: A2LogSettings | None = None, auxiliary: Sequence[str] | None = None) -> None:
        self.settings = settings or A2LogSettings()
        _check_settings(self.settings)
        self.auxiliary = list(auxiliary or [])
        self.encoder: LogEncoder | None = None
        self.threshold: float = float("inf")
        self.augmentation_threshold: float = float("inf")
        self.threshold_mode: ThresholdMode = "unfitted"
        self.diagnostics: dict[str, Any] = {}

    def fit(
        self,
        normal_messages: Iterable[str],
        labelled: tuple[Sequence[str], Sequence[bool]] | None = None,
        cancelled: kit.Cancel = None,
    ) -> A2Log:
        """Train on normal messages (any iterable; consumed once, memory bounded by max_train_messages).

        With `labelled=(messages, labels)` the decision threshold is then set from those labels instead
        (see calibrate); the augmentation threshold is computed either way (augmentation_threshold).
        A set `cancelled` stops it within a training step (kit.Cancelled).
        """
        s = self.settings
        rng = random.Random(s.encoder.seed)
        messages = checked(normal_messages, cancelled)
        tokens, seen = _reservoir((tokenize(m) for m in messages), s.max_train_messages, rng)
        if len(tokens) < 2:
            raise LogModelError(f"A2Log needs at least two normal training messages, got {len(tokens)}")
        order = list(range(len(tokens)))
        rng.shuffle(order)
        n_hold = min(len(tokens) - 1, max(1, round(len(tokens) * s.holdout)))
        hold = [tokens[i] for i in order[:n_hold]]
        train = [tokens[i] for i in order[n_hold:]]

        vocab = Vocab.from_token_lists(train, s.encoder.min_count, s.encoder.max_vocab)
        self.encoder = LogEncoder(vocab, s.encoder)
        forbidden = {tuple(t) for t in tokens}
        n_aug = max(1, round(len(train) * s.augment_per_message))
        # Augmentation draws from the normal vocabulary (A2Log section 3.2 augments the normal data).
        aug = augment_all(train, vocab.tokens, n_aug, s.encoder.seed + 1, forbidden, s.replace_fraction)
        other = self.encoder.encode_tokens(aug) + self.encoder.encode(self.auxiliary)
        if not other:
            raise LogModelError(
                "augmentation produced no message that differs from the normal data (all training messages "
                "are identical and too short?); pass auxiliary= messages"
            )
        losses = self.encoder.train_pairs(self.encoder.encode_tokens(train), other, balanced_logsy_loss,
                                          cancelled=cancelled)

        normal_scores = self.encoder.score_ids(self.encoder.encode_tokens(hold), cancelled)
        # A fresh augmentation stream (other seed) so the boundary is not fitted to training samples.
        fresh = augment_all(hold, vocab.tokens, len(hold), s.encoder.seed + 2, forbidden, s.replace_fraction)
        aug_scores = self.encoder.score_ids(self.encoder.encode_tokens(fresh), cancelled)
        scores = np.concatenate([normal_scores, aug_scores])
        labels_aug = np.concatenate([np.zeros(len(normal_scores), bool), np.ones(len(aug_scores), bool)])
        self.augmentation_threshold, aug_f1 = best_f1_threshold(scores, labels_aug)
        self.threshold, self.threshold_mode = self.augmentation_threshold, "augmentation"
        self.diagnostics = {
            "seen_messages": seen,
            "train_messages": len(train),
            "holdout_messages": len(hold),
            "augmented": len(aug),
            "auxiliary": len(self.auxiliary),
            "vocab": len(vocab),
            "loss_per_epoch": losses,
            "augmentation_f1": aug_f1,
            "decision_f1": aug_f1,  # F1 of the threshold in use on the data that set it
            "holdout_normal_score_max": float(normal_scores.max(initial=0.0)),
        }
        if labelled is not None:
            self.calibrate(*labelled)
        return self

    def calibrate(self, messages: Sequence[str], labels: Sequence[bool] | np.ndarray) -> float:
        """Strong baseline of the paper: set the threshold at the best F1 on labelled validation data.

        Needs at least one anomalous and one normal message; returns the F1 reached on them."""
        y = np.asarray(labels, dtype=bool)
        if len(y) != len(messages):
            raise LogModelError(f"{len(messages)} messages but {len(y)} labels")
        if not y.any() or y.all():
            raise LogModelError("labelled calibration needs both anomalous and normal messages")
        self.threshold, f1 = best_f1_threshold(self.score(messages), y)
        self.threshold_mode = "labelled"
        self.diagnostics["labelled_f1"] = self.diagnostics["decision_f1"] = f1
        return f1

    def _require(self) -> LogEncoder:
        if self.encoder is None:
            raise LogModelError("A2Log is not fitted: call fit() or A2Log.load() first")
        return self.encoder

    def iter_scores(self, messages: Iterable[str]) -> Iterator[np.ndarray]:
        """Anomaly scores ||z||, one array per batch of `score_batch` messages; memory stays bounded."""
        return self._require().iter_scores(messages)

    def score(self, messages: Iterable[str]) -> np.ndarray:
        """Anomaly score ||z|| per message (streamed in batches)."""
        return self._require().score(messages)

    def iter_predict(self, messages: Iterable[str], threshold: float | None = None) -> Iterator[np.ndarray]:
        """Anomaly decisions batch by batch (for files too large to hold their scores)."""
        t = self.threshold if threshold is None else threshold
        for batch in self.iter_scores(messages):
            yield batch > t

    def predict(self, messages: Iterable[str], threshold: float | None = None) -> np.ndarray:
        """True where score > threshold (the fitted one unless given, e.g. augmentation_threshold)."""
        return self.score(messages) > (self.threshold if threshold is None else threshold)

    def save(self, path: str | Path) -> None:
        extra = {
            "detector": "a2log",
            "a2log_settings": _plain(asdict(self.settings)),
            "threshold_mode": self.threshold_mode,
            "augmentation_threshold": float(self.augmentation_threshold),
        }
        save_bundle(path, self._require(), self.threshold, extra)

    @classmethod
    def load(cls, path: str | Path) -> A2Log:
        encoder, threshold, extra = load_bundle(path, detector="a2log")
        model = cls(A2LogSettings.from_dict(extra.get("a2log_settings", {})))
        model.encoder, model.threshold = encoder, threshold
        model.augmentation_threshold = float(extra.get("augmentation_threshold", threshold))
        mode = extra.get("threshold_mode")
        model.threshold_mode = mode if mode in ("augmentation", "labelled") else "augmentation"
        return model


def _check_settings(s: A2LogSettings) -> None:
    if s.augment_per_message <= 0 or not 0 < s.replace_fraction <= 1 or not 0 < s.holdout < 1:
        raise LogModelError(
            "bad A2Log settings: need augment_per_message > 0, 0 < replace_fraction <= 1, 0 < holdout < 1"
        )
    if s.max_train_messages < 2:
        raise LogModelError("bad A2Log settings: max_train_messages must be at least 2")


def _reservoir(items: Iterable[list[str]], k: int, rng: random.Random) -> tuple[list[list[str]], int]:
    """Uniform sample of at most k items from a stream of unknown length (Algorithm R); (sample, seen)."""
    sample: list[list[str]] = []
    seen = 0
    for item in items:
        seen += 1
        if len(sample) < k:
            sample.append(item)
        else:
            j = rng.randrange(seen)
            if j < k:
                sample[j] = item
    return sample, seen


def _plain(value: Any) -> Any:
    """Settings as plain str/int/float/bool/None containers (safe for torch.load(weights_only=True))."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
