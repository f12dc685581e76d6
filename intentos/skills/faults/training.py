"""Training Arvalus / D-Arvalus: incidents as graphs, a focal loss for the rare anomalous nodes, the
loop, and saving a model in the skill kit's model-file format (kit.modelfile: a JSON header and a
torch state dict, read back with weights_only=True), serialized in memory (`to_bytes`) and loaded from
bytes (`from_bytes`), so a model file can never run code and the app reads and writes it only through
the sandbox. The training loop checks the cancel flag every batch.

One incident is one graph: node features from its metrics window (features.node_features), the
topology's typed edges, and per node the class of the anomaly it originates (normal elsewhere, also
on components that only suffer from a neighbour's anomaly).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from intentos.skills import kit
from intentos.skills.faults import models
from intentos.skills.faults.errors import FaultsInputError
from intentos.skills.faults.features import CHANNELS_PER_METRIC, node_features
from intentos.skills.faults.metrics import METRICS
from intentos.skills.faults.simulator import CLASSES, Incident
from intentos.skills.faults.topology import EDGE_TYPES, Topology
from intentos.skills.kit.modelfile import ModelFileError

FORMAT = "intentos-faults-model/1"


class TrainConfig(BaseModel):
    model: str = Field("d-arvalus", description="arvalus | d-arvalus")
    epochs: int = Field(30, ge=1, le=1000)
    lr: float = Field(5e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    hidden: int = Field(32, ge=8, le=512)
    layers: int = Field(2, ge=1, le=6)
    heads: int = Field(4, ge=1, le=16)
    dropout: float = Field(0.1, ge=0, lt=1)
    batch_size: int = Field(32, ge=1)
    gamma: float = Field(2.0, ge=0, description="focal loss focusing; 0 is class-weighted cross-entropy")
    validation_share: float = Field(0.15, ge=0, lt=0.9, description="incidents held out to pick the best epoch")
    seed: int = 0
    # One thread: a model this small gains nothing from more, and on busy shared cores extra threads spin.
    threads: int = Field(1, ge=1, le=64, description="torch CPU threads")


class ModelHeader(BaseModel):
    """What a saved model says about itself (the JSON next to the weights, in the same file)."""

    format: str = FORMAT
    config: TrainConfig
    classes: list[str]
    metrics: list[str]
    edge_types: list[str]
    window: int = Field(ge=1, le=100_000)
    channels: int
    trained_incidents: int
    epochs_run: int
    best_epoch: int
    train_loss: float
    validation_loss: float | None
    seconds: float


@dataclass
class Trained:
    model: nn.Module
    header: ModelHeader


def labels_for(topology: Topology, incident: Incident) -> np.ndarray:
    """Per node: the class index of the anomaly it originates, 0 (normal) otherwise."""
    y = np.zeros(len(topology.components), dtype=np.int64)
    names = topology.names
    for comp, kind in incident.origins.items():
        if comp not in names:
            raise ValueError(f"incident {incident.index}: origin {comp!r} is not a component of the topology")
        if kind not in CLASSES[1:]:
            raise ValueError(f"incident {incident.index}: unknown anomaly kind {kind!r} ({', '.join(CLASSES[1:])})")
        y[names.index(comp)] = CLASSES.index(kind)
    return y


def graph(topology: Topology, values: np.ndarray, labels: np.ndarray | None = None) -> Data:
    """One incident window [N, M, W] as a torch_geometric graph."""
    edge_index, edge_type = topology.edges()
    data = Data(x=torch.from_numpy(node_features(values)), edge_index=torch.from_numpy(edge_index),
                edge_type=torch.from_numpy(edge_type), num_nodes=len(topology.components))
    if labels is not None:
        data.y = torch.from_numpy(labels)
    return data


def class_weights(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Inverse square-root frequency, mean 1: anomalous nodes are rare (one in twenty here)."""
    counts = torch.bincount(labels, minlength=classes).float().clamp(min=1)
    w = (counts.sum() / counts).sqrt()
    return w / w.mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, gamma: float) -> torch.Tensor:
    """Class-weighted focal loss (Lin et al.): easy, confidently normal nodes count for little."""
    logp = torch.log_softmax(logits, dim=-1)
    logp_t = logp.gather(1, target[:, None]).squeeze(1)
    focus = (1 - logp_t.exp()).pow(gamma)
    return -(weight[target] * focus * logp_t).sum() / weight[target].sum()


def train(graphs: list[Data], config: TrainConfig, window: int,
          progress: Callable[[int, float], None] | None = None, cancelled: kit.Cancel = None) -> Trained:
    """Train on labelled graphs; with enough incidents a share is held out and the best epoch kept.

    `cancelled` is checked every batch: an epoch over thousands of incidents takes seconds."""
    if not graphs:
        raise ValueError("no incidents to train on")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(graphs))
    n_val = int(len(graphs) * config.validation_share) if len(graphs) >= 20 else 0
    val = [graphs[i] for i in order[:n_val]]
    fit = [graphs[i] for i in order[n_val:]]
    channels = graphs[0].x.shape[1]
    model = models.build(config.model, channels, len(CLASSES), hidden=config.hidden, layers=config.layers,
                         edge_types=len(EDGE_TYPES), heads=config.heads, dropout=config.dropout)
    weight = class_weights(torch.cat([g.y for g in fit]), len(CLASSES))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    gen = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(fit, batch_size=config.batch_size, shuffle=True, generator=gen)
    started = time.perf_counter()
    best: tuple[float, int, dict[str, Any]] | None = None
    train_loss = 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, batches = 0.0, 0
        for batch in loader:
            kit.check(cancelled)
            opt.zero_grad()
            loss = focal_loss(model(batch.x, batch.edge_index, batch.edge_type), batch.y, weight, config.gamma)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += loss.item()
            batches += 1
        sched.step()
        train_loss = total / max(batches, 1)
        score = _evaluate(model, val, weight, config.gamma) if val else train_loss
        if best is None or score < best[0]:
            best = (score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
        if progress is not None:
            progress(epoch, train_loss)
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    header = ModelHeader(config=config, classes=list(CLASSES), metrics=list(METRICS), edge_types=list(EDGE_TYPES),
                         window=window, channels=channels, trained_incidents=len(graphs), epochs_run=config.epochs,
                         best_epoch=best[1], train_loss=round(train_loss, 5),
                         validation_loss=round(best[0], 5) if val else None,
                         seconds=round(time.perf_counter() - started, 2))
    return Trained(model, header)


@torch.no_grad()
def _evaluate(model: nn.Module, graphs: list[Data], weight: torch.Tensor, gamma: float) -> float:
    model.eval()
    batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    return float(focal_loss(model(batch.x, batch.edge_index, batch.edge_type), batch.y, weight, gamma))


@torch.no_grad()
def predict(trained: Trained, graphs: list[Data]) -> list[np.ndarray]:
    """Class probabilities [N, classes] per graph."""
    trained.model.eval()
    out = []
    for g in graphs:
        out.append(torch.softmax(trained.model(g.x, g.edge_index, g.edge_type), dim=-1).numpy())
    return out


def decide(probs: np.ndarray) -> np.ndarray:
    """Class per node from [N, classes] probabilities: an origin when P(normal) < 0.5, i.e. the anomaly
    probability the ranking uses is over one half, then of its most likely kind. (A plain argmax would
    call a node normal at P(normal) = 0.3 when the rest is split over four kinds.)"""
    kinds = 1 + probs[:, 1:].argmax(1)
    return np.where(probs[:, 0] < 0.5, kinds, 0)


# -- save / load --------------------------------------------------------------------------------------------


def to_bytes(trained: Trained) -> bytes:
    """The file content: {"header": JSON text, "state_dict": tensors}, torch's zip format."""
    return kit.modelfile.to_bytes(trained.header, trained.model.state_dict(), state_key="state_dict")


def load(path: Path, name: str | None = None) -> Trained:
    """A saved model anywhere (the CLI, tests): `from_bytes` of the file."""
    name = name or str(path)
    try:
        data = kit.modelfile.read_local_model(path)
    except ModelFileError as exc:
        raise _input_error(exc, str(path), name) from None
    return from_bytes(data, name)


def from_bytes(data: bytes, name: str) -> Trained:
    """A saved model from the bytes of the file `name`; weights_only=True refuses anything but tensors and
    plain containers, and the header must describe the model this code builds (metrics, classes, sizes)."""
    try:
        header, state = kit.modelfile.read_blob(data, name, ModelHeader, "a faults", state_key="state_dict")
    except ModelFileError as exc:
        raise _input_error(exc, name, name) from None
    if header.format != FORMAT:
        raise FaultsInputError(name, f"model format {header.format!r}, this version reads {FORMAT!r}", field="format")
    expected = {"classes": list(CLASSES), "metrics": list(METRICS), "edge_types": list(EDGE_TYPES),
                "channels": CHANNELS_PER_METRIC * len(METRICS)}
    for field, value in expected.items():
        if getattr(header, field) != value:
            raise FaultsInputError(name, f"the model's {field} are not this version's ({value})", field=field)
    cfg = header.config
    try:
        model = models.build(cfg.model, header.channels, len(header.classes), hidden=cfg.hidden, layers=cfg.layers,
                             edge_types=len(header.edge_types), heads=cfg.heads, dropout=cfg.dropout)
        kit.modelfile.load_state(model, state, name)
    except ModelFileError as exc:
        raise _input_error(exc, name, name) from None
    except Exception as exc:  # building it: an unknown model, heads that do not divide hidden
        raise FaultsInputError(name, f"weights do not fit the header's model: {str(exc)[:200]}") from None
    model.eval()
    return Trained(model, header)


def _input_error(exc: ModelFileError, said: str, name: str) -> FaultsInputError:
    """The kit's ModelFileError, which names the file as `said`, as the skill's own error naming `name`."""
    return FaultsInputError(name, str(exc).removeprefix(f"{' '.join(said.split())}: "))
