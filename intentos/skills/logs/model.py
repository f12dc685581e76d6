"""Shared message encoder for the log detectors (A2Log, LogLAB, PULL).

Logsy (Nedelkoski et al., arXiv:2008.09340) is the common base of all three: each log message is
tokenized, prefixed with a <cls> token, run through a small transformer encoder, and the output at
the first position z is the message's representation. Normal messages are pulled towards the
origin, anomalies pushed away, so the anomaly score is the distance to the centre, ||z||.

Loss (Logsy section III, "hyperspherical classifier"): with r = ||z|| and p(anomaly | x) = 1 - exp(-r),
binary cross-entropy gives  l(x, y) = (1 - y) * r - y * log(1 - exp(-r)).
The paper's printed equation uses the squared norm; the authors' released training code (and the
later A2Log/LogLAB/PULL work built on it) use the plain norm, which we follow: it keeps the gradient
for normal samples constant instead of vanishing near the centre.

Everything here is CPU-sized: embedding dim 64, 2 layers, 4 heads, 48 tokens. Scoring streams: an
iterable of messages is consumed in batches and never materialised as a whole.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from intentos.errors import AppError
from intentos.skills import kit
from intentos.skills.logs.parsing import tokenize

T = TypeVar("T")
PAD, UNK, CLS = "<pad>", "<unk>", "<cls>"
SPECIALS = (PAD, UNK, CLS)

# A loss over the distances of the two classes of one balanced mini-batch: (r_normal, r_other) -> scalar.
PairLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
BUNDLE_FORMAT = "intentos-log-detector"


class LogModelError(AppError, ValueError):  # ValueError too: callers that catch bad input that way keep working
    """Bad input to a log detector (no training data, mismatched lengths, bad settings) or a bad model file."""


@dataclass
class EncoderSettings:
    """Size and training knobs of the encoder; defaults fit 2 shared CPU cores."""

    dim: int = 64
    heads: int = 4
    layers: int = 2
    ff_dim: int = 128
    max_len: int = 48
    dropout: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    steps_per_epoch: int = 150  # cap: an epoch is min(this, data/batch) balanced mini-batches
    lr: float = 3e-3
    weight_decay: float = 1e-5
    min_count: int = 1
    max_vocab: int = 20000
    score_batch: int = 256
    cache_size: int = 50000  # scores of identical token sequences are reused while streaming
    seed: int = 0
    threads: int | None = None  # torch.set_num_threads when set

    def __post_init__(self) -> None:
        problems = []
        if self.dim < 2 or self.dim % 2 or self.heads < 1 or self.dim % self.heads:
            problems.append(f"dim ({self.dim}) must be even and a multiple of heads ({self.heads})")
        if self.max_len < 2:
            problems.append(f"max_len ({self.max_len}) must be at least 2 (<cls> + one token)")
        for name in ("layers", "ff_dim", "epochs", "batch_size", "steps_per_epoch", "score_batch", "min_count"):
            if getattr(self, name) < 1:
                problems.append(f"{name} ({getattr(self, name)}) must be at least 1")
        if self.lr <= 0 or not 0.0 <= self.dropout < 1.0:
            problems.append("need lr > 0 and 0 <= dropout < 1")
        if problems:
            raise LogModelError("bad encoder settings: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Vocab:
    """Token <-> id map built from training messages; ids 0, 1, 2 are <pad>, <unk>, <cls>."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, messages: Iterable[str], min_count: int = 1, max_size: int = 20000) -> Vocab:
        return cls.from_token_lists((tokenize(m) for m in messages), min_count, max_size)

    @classmethod
    def from_token_lists(cls, token_lists: Iterable[Sequence[str]], min_count: int = 1, max_size: int = 20000) -> Vocab:
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        return cls.from_counts(counts, min_count, max_size)

    @classmethod
    def from_counts(cls, counts: Counter[str], min_count: int = 1, max_size: int = 20000) -> Vocab:
        """From token occurrence counts (lets callers count deduplicated messages with their multiplicity)."""
        # Sorted by count then text so the vocabulary (and thus the model) is deterministic.
        kept = sorted(
            (t for t, c in counts.items() if c >= min_count and t not in SPECIALS), key=lambda t: (-counts[t], t)
        )
        return cls([*SPECIALS, *kept[: max(0, max_size - len(SPECIALS))]])

    def __len__(self) -> int:
        return len(self.tokens)

    def ids(self, tokens: Sequence[str], max_len: int) -> list[int]:
        unk = self.index[UNK]
        return [self.index[CLS], *(self.index.get(t, unk) for t in tokens[: max_len - 1])]


class UniqueMessages:
    """Tokenized messages deduplicated in one streaming pass: logs repeat a few hundred token sequences
    (numbers and ids become placeholders), so memory is O(unique sequences) + 4 bytes per line."""

    def __init__(self, messages: Iterable[str]) -> None:
        index: dict[tuple[str, ...], int] = {}
        line_ids: list[int] = []
        self.token_counts: Counter[str] = Counter()
        for message in messages:
            key = tuple(tokenize(message))
            k = index.setdefault(key, len(index))
            line_ids.append(k)
        self.sequences: list[tuple[str, ...]] = list(index)
        self.line_ids = np.asarray(line_ids, dtype=np.int64)
        multiplicity = np.bincount(self.line_ids, minlength=len(self.sequences))
        for seq, mult in zip(self.sequences, multiplicity, strict=True):
            for token in seq:
                self.token_counts[token] += int(mult)

    def __len__(self) -> int:
        return len(self.line_ids)


class LineView(Sequence[list[int]]):
    """Encoded sequences of selected lines, without a per-line copy: view[i] = encoded[line_ids[lines[i]]]."""

    def __init__(self, encoded: Sequence[list[int]], line_ids: np.ndarray, lines: np.ndarray) -> None:
        self.encoded, self.keys = encoded, line_ids[lines]

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i):  # noqa: ANN001, ANN204 - Sequence protocol (int or slice)
        if isinstance(i, slice):
            return [self.encoded[k] for k in self.keys[i]]
        return self.encoded[self.keys[i]]


def checked(items: Iterable[T], cancelled: kit.Cancel, every: int = 4096) -> Iterator[T]:
    """`items` passed through, raising kit.Cancelled once `cancelled` is set (looked at every `every` items)."""
    for i, item in enumerate(items):
        if i % every == 0:
            kit.check(cancelled)
        yield item


def pad_batch(sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    width = max(len(s) for s in sequences)
    out = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out


class _Encoder(nn.Module):
    """Token embedding + fixed sinusoidal positions + transformer encoder; returns z at position 0."""

    def __init__(self, vocab_size: int, s: EncoderSettings) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, s.dim, padding_idx=0)
        position = torch.arange(s.max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, s.dim, 2) * (-math.log(10000.0) / s.dim))
        pe = torch.zeros(s.max_len, s.dim)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div[: s.dim // 2])
        self.register_buffer("pe", pe, persistent=False)
        layer = nn.TransformerEncoderLayer(s.dim, s.heads, s.ff_dim, s.dropout, batch_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, s.layers, enable_nested_tensor=False)
        # Post-norm layers end in a LayerNorm (norm ~ sqrt(dim)); a linear head lets the distance to the
        # centre take any scale. Its init keeps ||z|| of order 1 and input-dependent: a much smaller init made
        # weakly supervised training (LogLAB/PULL: anomalies ~1% of U) sit for hundreds of steps on the
        # constant solution r = ln 2 for every message.
        self.head = nn.Linear(s.dim, s.dim)
        nn.init.normal_(self.head.weight, std=1.0 / math.sqrt(s.dim))
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.pe[: ids.shape[1]]
        out = self.encoder(x, src_key_padding_mask=ids.eq(0))
        return self.head(out[:, 0, :])


def distance(z: torch.Tensor) -> torch.Tensor:
    """||z||, kept away from 0 so the gradient of the norm stays finite."""
    return torch.sqrt(z.pow(2).sum(dim=1) + 1e-8)


def normal_loss(r: torch.Tensor) -> torch.Tensor:
    """Logsy loss term of a normal sample (y = 0): the distance itself."""
    return r


def anomaly_loss(r: torch.Tensor) -> torch.Tensor:
    """Logsy loss term of an anomalous sample (y = 1): -log(1 - exp(-r)), computed stably."""
    return -torch.log(-torch.expm1(-r.clamp_min(1e-6)))


def logsy_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean((1 - y) * ||z|| - y * log(1 - exp(-||z||))) over a batch (Logsy objective)."""
    r = distance(z)
    y = y.to(r.dtype)
    return ((1 - y) * normal_loss(r) + y * anomaly_loss(r)).mean()


def balanced_logsy_loss(r_normal: torch.Tensor, r_other: torch.Tensor) -> torch.Tensor:
    """Class-balanced Logsy loss: each class contributes its own mean, whatever the class sizes.

    LogLAB (arXiv:2111.01657, section 3) weights its objective for imbalanced classes; averaging per
    class is the simplest such weighting and the one we use for A2Log's normal-vs-augmented training.
    """
    return normal_loss(r_normal).mean() + anomaly_loss(r_other).mean()


class LogEncoder:
    """Vocabulary + encoder network + settings, with balanced training and streamed scoring."""

    def __init__(self, vocab: Vocab, settings: EncoderSettings) -> None:
        self.settings = settings
        self.vocab = vocab
        _seed_all(settings.seed, settings.threads)
        self.net = _Encoder(len(vocab), settings)
        self._cache: OrderedDict[tuple[int, ...], float] = OrderedDict()

    @classmethod
    def from_messages(cls, messages: Iterable[str], settings: EncoderSettings) -> LogEncoder:
        return cls(Vocab.build(messages, settings.min_count, settings.max_vocab), settings)

    # -- encoding ---------------------------------------------------------------------------------
    def encode(self, messages: Iterable[str]) -> list[list[int]]:
        return [self.vocab.ids(tokenize(m), self.settings.max_len) for m in messages]

    def encode_tokens(self, token_lists: Iterable[Sequence[str]]) -> list[list[int]]:
        return [self.vocab.ids(t, self.settings.max_len) for t in token_lists]

    # -- training ---------------------------------------------------------------------------------
    def train_pairs(
        self,
        normal: Sequence[Sequence[int]],
        other: Sequence[Sequence[int]],
        loss_fn: PairLoss = balanced_logsy_loss,
        epochs: int | None = None,
        cancelled: kit.Cancel = None,
    ) -> list[float]:
        """Train on balanced mini-batches: half drawn from `normal`, half from `other` (anomaly/unlabeled).

        Balanced sampling is what keeps a rare second class (anomalies << 1%) visible in every step;
        the loss then sees both classes' distances. Returns the mean loss per epoch. A set `cancelled`
        stops it between steps (kit.Cancelled).
        """
        if not normal or not other:
            raise LogModelError(
                f"training needs samples of both classes (got {len(normal)} normal, {len(other)} other)"
            )
        s = self.settings
        _seed_all(s.seed, s.threads)
        gen = torch.Generator().manual_seed(s.seed)
        half = max(1, s.batch_size // 2)
        steps = max(1, min(s.steps_per_epoch, math.ceil((len(normal) + len(other)) / s.batch_size)))
        opt = torch.optim.AdamW(self.net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        history: list[float] = []
        self.net.train()
        for _ in range(epochs if epochs is not None else s.epochs):
            total = 0.0
            for _ in range(steps):
                kit.check(cancelled)
                a = torch.randint(len(normal), (half,), generator=gen).tolist()
                b = torch.randint(len(other), (half,), generator=gen).tolist()
                batch = pad_batch([normal[i] for i in a] + [other[i] for i in b])
                r = distance(self.net(batch))
                loss = loss_fn(r[:half], r[half:])
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                opt.step()
                total += float(loss.detach())
            history.append(total / steps)
        self.net.eval()
        self._cache.clear()
        return history

    # -- scoring ----------------------------------------------------------------------------------
    def iter_scores(self, messages: Iterable[str]) -> Iterator[np.ndarray]:
        """Yield anomaly scores (||z||) batch by batch; the input iterable is consumed lazily."""
        it = iter(messages)
        while batch := list(islice(it, self.settings.score_batch)):
            yield self._score_ids(self.encode(batch))

    def score(self, messages: Iterable[str]) -> np.ndarray:
        parts = list(self.iter_scores(messages))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)

    def score_ids(self, sequences: Sequence[Sequence[int]], cancelled: kit.Cancel = None) -> np.ndarray:
        """Scores of already-encoded sequences, in batches of `score_batch` (a set `cancelled` stops between them)."""
        step = self.settings.score_batch
        parts = []
        for i in range(0, len(sequences), step):
            kit.check(cancelled)
            parts.append(self._score_ids(sequences[i : i + step]))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)

    @torch.no_grad()
    def _score_ids(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        keys = [tuple(s) for s in sequences]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            _seed_all(None, self.settings.threads)
            self.net.eval()
            r = distance(self.net(pad_batch(todo))).double().numpy()
            for key, value in zip(todo, r, strict=True):
                self._cache[key] = float(value)
        out = np.array([self._cache[k] for k in keys], dtype=np.float64)
        for key in todo:
            self._cache.move_to_end(key)
        while len(self._cache) > self.settings.cache_size:
            self._cache.popitem(last=False)
        return out

    # -- persistence ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"state_dict": self.net.state_dict(), "vocab": self.vocab.tokens, "settings": asdict(self.settings)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LogEncoder:
        encoder = cls(Vocab(state["vocab"]), EncoderSettings.from_dict(state["settings"]))
        encoder.net.load_state_dict(state["state_dict"])
        encoder.net.eval()
        return encoder


def save_bundle(path: str | Path, encoder: LogEncoder, threshold: float, extra: dict[str, Any] | None = None) -> None:
    """One file: state dict + vocab + settings + threshold (+ detector-specific plain values).

    A flat dict marked with "format", not the kit's header + state layout, so files saved before still load.
    """
    bundle = {"format": BUNDLE_FORMAT, **encoder.state(), "threshold": float(threshold), "extra": extra or {}}
    kit.write_local(path, kit.modelfile.blob_bytes(bundle))  # atomic: never a half-written model


def load_bundle(path: str | Path, detector: str | None = None) -> tuple[LogEncoder, float, dict[str, Any]]:
    """Read a bundle written by save_bundle; `detector` checks the bundle's extra["detector"]."""
    path = Path(path)
    try:
        # The kit's reader: bounded, weights_only (data, never code), refuses zip bombs.
        data = kit.modelfile.torch_load(kit.modelfile.read_local_model(path), str(path),
                                        refusal="not a readable model file")
    except kit.modelfile.ModelFileError as exc:
        raise LogModelError(str(exc)) from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise LogModelError(f"{path}: not an intentos log detector model")
    extra = dict(data.get("extra", {}))
    if detector is not None and extra.get("detector") != detector:
        raise LogModelError(f"{path}: holds a {extra.get('detector')!r} model, not {detector!r}")
    try:
        encoder = LogEncoder.from_state(data)
    except (KeyError, RuntimeError, TypeError) as exc:
        raise LogModelError(f"{path}: model file is incomplete or does not match its settings ({exc})") from exc
    return encoder, float(data["threshold"]), extra


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Threshold maximising F1 of `scores > t` against boolean labels; returns (threshold, f1).

    The threshold is placed midway between the last included anomaly score and the next lower score,
    so that it generalises instead of sitting exactly on a training sample.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if labels.sum() == 0:
        return float(scores.max(initial=0.0)) + 1e-6, 0.0
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    k = np.arange(1, len(s) + 1)
    # Only cut between distinct scores: position i means "flag the top i+1".
    distinct = np.append(s[1:] < s[:-1], True)
    f1 = np.where(distinct, 2 * tp / (k + labels.sum()), -1.0)
    i = int(np.argmax(f1))
    lower = s[i + 1] if i + 1 < len(s) else s[i] - 1.0
    return float((s[i] + lower) / 2), float(f1[i])


def _seed_all(seed: int | None, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(int(threads))
    if seed is not None:
        torch.manual_seed(seed)
