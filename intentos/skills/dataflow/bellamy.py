"""Bellamy (Scheinert et al., arXiv:2107.13921): runtime prediction that reuses runs of other contexts.

The model has three small parts:

- a scale-out layer: an MLP over Ernest-like scale-out features (m, 1/m, log m, min-max scaled);
- a shared auto-encoder: every descriptive property (machine type, data size, job parameters; see
  encoding.py) is compressed to a small code by the same encoder, and must be reconstructable;
- a combining layer: scale-out embedding + codes of the essential properties + the mean code of
  the optional ones -> the runtime.

A general model is pre-trained on the runs of other contexts of an algorithm (prediction +
reconstruction loss), then fine-tuned on the few runs of the target context with the auto-encoder
frozen (its context code is computed once) and only the combining layer and, by default
(`finetune_scaleout_layer`), the scale-out layer adapted, stopping early when the training loss stops
improving (the paper's setup: a handful of points leaves nothing to validate on). The fine-tuning
learning rate is small (1e-4): three scale-outs should shift the pre-trained prior, not replace it; on
benchmarks/bench_dataflow.py every algorithm's error fell as it went from 1e-2 down to 1e-4. `finetune_anchor`
optionally adds an L2 pull of the adapted weights towards the pre-trained ones (L2-SP).

We predict the standardized log runtime: contexts differ by orders of magnitude, and on a log scale a
context's offset is additive and the squared error is close to the relative error we care about.

A model is saved as one torch file holding a JSON header and the state dict only (no pickled
objects), read back with torch.load(weights_only=True).

Training checks an optional cancel event every batch of pre-training and every fine-tuning epoch, so
a cancelled step stops within a second.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from intentos.skills import kit
from intentos.skills.dataflow.encoding import DIM, encode_value
from intentos.skills.dataflow.history import Run
from intentos.skills.kit import modelfile
from intentos.skills.kit.modelfile import ModelFileError  # noqa: F401 - re-exported for callers

FORMAT_VERSION = 1


class BellamyConfig(BaseModel):
    hidden: int = Field(16, ge=2, le=1024, description="hidden width; codes have hidden/2 values")
    dropout: float = Field(0.05, ge=0, lt=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    pretrain_epochs: int = Field(300, ge=1)
    batch_size: int = Field(128, ge=1)
    val_share: float = Field(0.15, ge=0, lt=1, description="share of contexts held out to stop pre-training")
    pretrain_patience: int = Field(60, ge=1)
    finetune_epochs: int = Field(600, ge=0)
    finetune_lr: float = Field(1e-4, gt=0, description="small: 3 scale-outs should move the prior, not replace it")
    finetune_patience: int = Field(80, ge=1)
    finetune_scaleout_layer: bool = Field(True, description="also adapt the scale-out layer when fine-tuning")
    finetune_anchor: float = Field(0.0, ge=0, description="L2 pull of fine-tuned weights to the pre-trained ones")
    seed: int = 0
    threads: int = Field(1, ge=1, le=64)


class BellamyHeader(BaseModel):
    """What a saved model needs besides its weights; JSON in the model file."""

    kind: str = "bellamy"
    version: int = FORMAT_VERSION
    algorithm: str
    param_names: list[str] = Field(max_length=32)
    config: BellamyConfig
    scaleout_min: float
    scaleout_max: float
    feat_min: list[float] = Field(min_length=3, max_length=3)
    feat_max: list[float] = Field(min_length=3, max_length=3)
    y_mean: float = Field(allow_inf_nan=False)
    y_std: float = Field(gt=0, allow_inf_nan=False)
    pretrained_runs: int
    pretrained_contexts: int
    finetuned_on: list[str] | None = Field(None, description="the context the model was fine-tuned on")
    finetuned_runs: int = 0


# -- features -----------------------------------------------------------------------------------------


def essential_values(run: Run, param_names: Sequence[str]) -> list[str | float]:
    return [run.machine_type, run.data_size_mb, *(run.params.get(p, "") for p in param_names)]


def optional_values(run: Run, algorithm: str) -> list[str | float]:
    # C3O's slots and memory are cluster totals (they grow with the scale-out); per machine they describe
    # the context, which is what a property must do.
    return [algorithm, round(run.slots / run.scaleout), round(run.memory / run.scaleout)]


@lru_cache(maxsize=4096)
def _encoded(value: str | float) -> tuple[float, ...]:
    return tuple(encode_value(value).tolist())


def _props(rows: Sequence[list[str | float]]) -> np.ndarray:
    return np.asarray([[_encoded(v) for v in row] for row in rows], dtype=np.float32)


def _scaleout_raw(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.column_stack([m, 1.0 / m, np.log(m)])


# -- the network ----------------------------------------------------------------------------------------


def _net(n_essential: int, cfg: BellamyConfig) -> Any:
    import torch
    from torch import nn

    h, code = cfg.hidden, max(cfg.hidden // 2, 1)

    def init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):  # LeCun-normal for SELU, zero biases (as the paper's code)
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="linear")
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    class BellamyNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale_out_layer = nn.Sequential(nn.Linear(3, 2 * h), nn.SELU(), nn.Linear(2 * h, h), nn.SELU())
            self.encoder = nn.Sequential(nn.Linear(DIM, h, bias=False), nn.SELU(), nn.AlphaDropout(cfg.dropout),
                                         nn.Linear(h, code, bias=False), nn.SELU())
            self.decoder = nn.Sequential(nn.Linear(code, h, bias=False), nn.SELU(), nn.AlphaDropout(cfg.dropout),
                                         nn.Linear(h, DIM, bias=False), nn.Tanh())
            self.c_layer = nn.Sequential(nn.Linear(h + (n_essential + 1) * code, h), nn.SELU(), nn.Linear(h, 1))
            self.apply(init)

        def forward(self, so: torch.Tensor, ess: torch.Tensor, opt: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            e_code, o_code = self.encoder(ess), self.encoder(opt)  # (N, P, code): one encoder for all
            recon = torch.cat([self.decoder(e_code), self.decoder(o_code)], dim=1)
            return self.head(so, self.context_code(e_code, o_code)), recon, torch.cat([ess, opt], dim=1)

        @staticmethod
        def context_code(e_code: torch.Tensor, o_code: torch.Tensor) -> torch.Tensor:
            return torch.cat([e_code.flatten(1), o_code.mean(1)], dim=-1)

        def head(self, so: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
            """Scale-out layer + combining layer, given the (frozen) context code."""
            return self.c_layer(torch.cat([self.scale_out_layer(so), ctx], dim=-1)).squeeze(-1)

    return BellamyNet()


# -- the model --------------------------------------------------------------------------------------------


class Bellamy:
    """A pre-trained (and possibly fine-tuned) Bellamy model of one algorithm."""

    def __init__(self, header: BellamyHeader, net: Any) -> None:
        self.header = header
        self.net = net

    # features of runs, scaled the way the model was trained
    def _tensors(self, runs: Sequence[Run], scaleouts: np.ndarray | None = None) -> tuple[Any, Any, Any]:
        import torch

        hd = self.header
        m = np.asarray([r.scaleout for r in runs] if scaleouts is None else scaleouts, dtype=np.float64)
        raw = _scaleout_raw(m)
        lo, hi = np.asarray(hd.feat_min), np.asarray(hd.feat_max)
        so = (raw - lo) / np.where(hi > lo, hi - lo, 1.0)
        ess = _props([essential_values(r, hd.param_names) for r in runs])
        opt = _props([optional_values(r, hd.algorithm) for r in runs])
        return (torch.tensor(so, dtype=torch.float32), torch.from_numpy(ess), torch.from_numpy(opt))

    def _targets(self, runs: Sequence[Run]) -> Any:
        import torch

        y = (np.log([r.runtime_s for r in runs]) - self.header.y_mean) / self.header.y_std
        return torch.tensor(y, dtype=torch.float32)

    @classmethod
    def pretrain(cls, runs: Sequence[Run], *, algorithm: str, param_names: Sequence[str],
                 config: BellamyConfig | None = None, cancelled: kit.Cancel = None) -> Bellamy:
        """Train the general model on runs of many contexts of one algorithm."""
        import torch

        cfg = config or BellamyConfig()
        if len(runs) < 2:
            raise ValueError("pre-training needs at least two runs")
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        m = np.asarray([r.scaleout for r in runs], dtype=np.float64)
        raw = _scaleout_raw(m)
        logs = np.log([r.runtime_s for r in runs])
        header = BellamyHeader(
            algorithm=algorithm, param_names=list(param_names), config=cfg,
            scaleout_min=float(m.min()), scaleout_max=float(m.max()),
            feat_min=raw.min(0).tolist(), feat_max=raw.max(0).tolist(),
            y_mean=float(logs.mean()), y_std=float(max(logs.std(), 1e-3)),
            pretrained_runs=len(runs), pretrained_contexts=len({r.context_key() for r in runs}))
        model = cls(header, _net(2 + len(param_names), cfg))
        with _threads(cfg.threads):
            so, ess, opt = model._tensors(runs)
            y = model._targets(runs)
            # Hold out whole contexts: stopping must reward generalizing to contexts never seen.
            keys = sorted({r.context_key() for r in runs})
            n_val = int(len(keys) * cfg.val_share) if len(keys) >= 5 else 0
            val_keys = {keys[i] for i in rng.permutation(len(keys))[:n_val]}
            is_val = torch.tensor([r.context_key() in val_keys for r in runs])
            train_idx, val_idx = (~is_val).nonzero().squeeze(1), is_val.nonzero().squeeze(1)
            model._pretrain_loop(so, ess, opt, y, train_idx, val_idx, cancelled)
        return model

    def _pretrain_loop(self, so: Any, ess: Any, opt: Any, y: Any, train_idx: Any, val_idx: Any,
                       cancelled: kit.Cancel) -> None:
        import torch
        from torch import nn

        cfg, net = self.header.config, self.net
        optim = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=cfg.pretrain_epochs, eta_min=cfg.lr / 10)
        pred_loss, rec_loss = nn.SmoothL1Loss(beta=0.1), nn.MSELoss()
        gen = torch.Generator().manual_seed(cfg.seed)
        best, best_state, waited = math.inf, copy.deepcopy(net.state_dict()), 0
        for _ in range(cfg.pretrain_epochs):
            net.train()
            perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
            for start in range(0, len(perm), cfg.batch_size):
                kit.check(cancelled)  # every batch: on a large history one epoch is long
                b = perm[start:start + cfg.batch_size]
                out, recon, target = net(so[b], ess[b], opt[b])
                loss = pred_loss(out, y[b]) + rec_loss(recon, target)
                optim.zero_grad()
                loss.backward()
                optim.step()
            sched.step()
            net.eval()
            with torch.no_grad():
                idx = val_idx if len(val_idx) else train_idx
                score = float(torch.abs(net(so[idx], ess[idx], opt[idx])[0] - y[idx]).mean())
            if score < best - 1e-5:
                best, best_state, waited = score, copy.deepcopy(net.state_dict()), 0
            else:
                waited += 1
                if waited >= cfg.pretrain_patience:
                    break
        net.load_state_dict(best_state)
        net.eval()

    def finetune(self, runs: Sequence[Run], cancelled: kit.Cancel = None) -> Bellamy:
        """A copy adapted to the target context from its few runs (the original stays as it is)."""
        import torch

        if not runs:
            raise ValueError("fine-tuning needs at least one run of the target context")
        cfg = self.header.config
        tuned = Bellamy(self.header.model_copy(deep=True), copy.deepcopy(self.net))
        net = tuned.net
        torch.manual_seed(cfg.seed)
        with _threads(cfg.threads):
            for p in net.parameters():
                p.requires_grad_(False)
            trainable = list(net.c_layer.parameters())
            if cfg.finetune_scaleout_layer:
                trainable += list(net.scale_out_layer.parameters())
            for p in trainable:
                p.requires_grad_(True)
            anchor = [p.detach().clone() for p in trainable]
            net.eval()  # no dropout: a handful of points
            so, ess, opt = tuned._tensors(runs)
            y = tuned._targets(runs)
            with torch.no_grad():  # the auto-encoder is frozen: the context code is a constant
                ctx = net.context_code(net.encoder(ess), net.encoder(opt))
            optim = torch.optim.Adam(trainable, lr=cfg.finetune_lr)
            best, best_state, waited = math.inf, [p.detach().clone() for p in trainable], 0
            for _ in range(cfg.finetune_epochs):
                kit.check(cancelled)
                err = net.head(so, ctx) - y
                loss = torch.nn.functional.smooth_l1_loss(err, torch.zeros_like(err), beta=0.1)
                if cfg.finetune_anchor > 0:  # L2-SP: stay near the pre-trained weights
                    pull = sum(((p - a) ** 2).sum() for p, a in zip(trainable, anchor, strict=True))
                    loss = loss + cfg.finetune_anchor * pull
                optim.zero_grad()
                loss.backward()
                optim.step()
                value = float(loss.detach())
                # Early stopping on the training loss, as the paper: few points leave nothing to validate on.
                if value < best - 1e-5:
                    best, waited = value, 0
                    best_state = [p.detach().clone() for p in trainable]
                else:
                    waited += 1
                    if waited >= cfg.finetune_patience:
                        break
            with torch.no_grad():
                for p, v in zip(trainable, best_state, strict=True):
                    p.copy_(v)
            for p in net.parameters():
                p.requires_grad_(True)
        tuned.header.finetuned_on = list(runs[0].context_key())
        tuned.header.finetuned_runs = len(runs)
        return tuned

    def predict(self, context: Run, scaleouts: Sequence[int] | np.ndarray) -> np.ndarray:
        """Runtimes (s) of the context of `context` at each scale-out."""
        import torch

        ms = np.asarray(scaleouts, dtype=np.float64)
        if ms.size == 0:
            return np.zeros(0)
        if (ms < 1).any():
            raise ValueError("scale-outs must be at least 1")
        with _threads(self.header.config.threads), torch.no_grad():
            so, ess, opt = self._tensors([context] * len(ms), ms)
            self.net.eval()
            out = self.net(so, ess, opt)[0].double().numpy()
        return np.exp(out * self.header.y_std + self.header.y_mean)

    # -- persistence --------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        return modelfile.save(path, self.header, self.net.state_dict())

    def to_bytes(self) -> bytes:
        return modelfile.to_bytes(self.header, self.net.state_dict())

    @classmethod
    def load(cls, path: str | Path) -> Bellamy:
        """A model file anywhere (CLI, tests)."""
        return cls._build(*modelfile.load(path, BellamyHeader, "bellamy", FORMAT_VERSION, "a Bellamy"), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> Bellamy:
        """A model from the bytes of the file `name` (the app reads them through the sandbox)."""
        return cls._build(*modelfile.from_bytes(data, name, BellamyHeader, "bellamy", FORMAT_VERSION, "a Bellamy"),
                          name)

    @classmethod
    def _build(cls, header: BellamyHeader, state: dict[str, Any], name: str) -> Bellamy:
        net = _net(2 + len(header.param_names), header.config)
        modelfile.load_state(net, state, name)
        net.eval()
        return cls(header, net)


class _threads:
    """Cap torch's threads for a block: small models gain nothing, and cores are shared."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.before = 0

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)
