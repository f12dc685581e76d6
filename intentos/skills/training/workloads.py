"""Workloads that need no download: a byte-level decoder-only transformer on Python standard-library
source, and a small CNN on scikit-learn's bundled 8x8 digits.

Every batch is a pure function of (seed, rank, step), so a resumed job sees exactly the batches an
uninterrupted one would, with no RNG state to checkpoint. Each rank draws its own stream (i.i.d.
sampling over the whole training split). Evaluation uses a fixed held-out split.
"""

from __future__ import annotations

import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from intentos.skills.training.config import DigitsWorkload, LMWorkload, WorkloadConfig

# Fixed, sorted list: the corpus is the same on every machine with the same Python version.
STDLIB_FILES = ("argparse.py", "ast.py", "dataclasses.py", "difflib.py", "enum.py", "functools.py",
                "inspect.py", "subprocess.py", "textwrap.py", "typing.py")
EVAL_FRACTION = 0.1


def _generator(seed: int, rank: int, step: int) -> torch.Generator:
    # A distinct, reproducible stream per (seed, rank, step).
    return torch.Generator().manual_seed(seed * 1_000_003 + rank * 7_919 + step)


class Workload(Protocol):
    def build_model(self) -> nn.Module: ...
    def batch(self, step: int, rank: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]: ...
    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...
    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]: ...


# -- language model ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def stdlib_corpus(files: tuple[str, ...] = STDLIB_FILES) -> torch.Tensor:
    """The bytes of the chosen standard-library files, in order, as a uint8 tensor."""
    root = Path(sysconfig.get_paths()["stdlib"])
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"standard-library files not found under {root}: {', '.join(missing)}")
    data = b"\n".join((root / f).read_bytes() for f in files)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


class TinyLM(nn.Module):
    """A pre-norm decoder-only transformer over bytes (vocabulary 256)."""

    def __init__(self, cfg: LMWorkload) -> None:
        super().__init__()
        self.tok = nn.Embedding(256, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, 4 * cfg.d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, 256, bias=False)
        mask = torch.triu(torch.full((cfg.seq_len, cfg.seq_len), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.tok(x) + self.pos(torch.arange(t, device=x.device))
        h = self.blocks(h, mask=self.mask[:t, :t], is_causal=True)
        return self.head(self.norm(h))


class LanguageModeling:
    def __init__(self, cfg: LMWorkload, seed: int) -> None:
        self.cfg, self.seed = cfg, seed
        data = stdlib_corpus(tuple(cfg.files) if cfg.files else STDLIB_FILES).long()
        cut = int(len(data) * (1 - EVAL_FRACTION))
        self.train, self.held_out = data[:cut], data[cut:]

    def build_model(self) -> nn.Module:
        return TinyLM(self.cfg)

    def _windows(self, data: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = torch.arange(self.cfg.seq_len + 1)
        chunk = data[starts.view(-1, 1) + offsets]
        return chunk[:, :-1], chunk[:, 1:]

    def batch(self, step: int, rank: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        high = len(self.train) - self.cfg.seq_len - 1
        starts = torch.randint(0, high, (self.cfg.batch_size,), generator=_generator(self.seed, rank, step))
        x, y = self._windows(self.train, starts)
        return x.to(device), y.to(device)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        n = self.cfg.eval_windows
        starts = torch.linspace(0, len(self.held_out) - self.cfg.seq_len - 2, n).long()  # fixed, evenly spread
        total, correct, count = 0.0, 0, 0
        for chunk in starts.split(self.cfg.batch_size):
            x, y = (t.to(device) for t in self._windows(self.held_out, chunk))
            logits = model(x)
            total += F.cross_entropy(logits.reshape(-1, 256), y.reshape(-1), reduction="sum").item()
            correct += int((logits.argmax(-1) == y).sum())
            count += y.numel()
        return {"eval_loss": total / count, "eval_acc": correct / count}


# -- digits CNN ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled digits (no download), 80/20 split by a fixed permutation."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    cut = int(len(y) * 0.8)
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]


class DigitsCNN(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * channels * 16, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DigitsClassification:
    def __init__(self, cfg: DigitsWorkload, seed: int) -> None:
        self.cfg, self.seed = cfg, seed
        self.x_train, self.y_train, self.x_test, self.y_test = digits_split()

    def build_model(self) -> nn.Module:
        return DigitsCNN(self.cfg.channels)

    def batch(self, step: int, rank: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.y_train), (self.cfg.batch_size,), generator=_generator(self.seed, rank, step))
        return self.x_train[idx].to(device), self.y_train[idx].to(device)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        logits = model(self.x_test.to(device))
        y = self.y_test.to(device)
        accuracy = (logits.argmax(-1) == y).float().mean().item()
        return {"eval_loss": F.cross_entropy(logits, y).item(), "eval_acc": accuracy}


def make_workload(cfg: WorkloadConfig, seed: int) -> Workload:
    if isinstance(cfg, LMWorkload):
        return LanguageModeling(cfg, seed)
    return DigitsClassification(cfg, seed)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def warmup_factor(step: int, warmup: int) -> float:
    """Linear warm-up then constant: a constant tail keeps a job extendable on resume."""
    return 1.0 if warmup <= 0 else min(1.0, step / warmup)


