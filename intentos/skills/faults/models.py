"""Arvalus and D-Arvalus (Scheinert et al., arXiv:2103.05245): graph neural networks that classify every
component of a distributed application as normal or one kind of anomaly.

Both start alike: a temporal convolution over each node's metric window (dilated 1-D convolutions,
then mean and max pooling over time) gives one vector per node. Then:

- Arvalus treats the system as a plain undirected graph: graph convolutions (GCN) mix each node with
  its neighbours, with no notion of what connects them;
- D-Arvalus knows the dependencies: directed edges of typed relations (calls, called_by, colocated),
  each type an embedding that enters attention message passing (TransformerConv with edge_attr), so a
  node can weigh a slow callee differently from a busy neighbour on the same host.

The classifier sees each node's own encoding next to the message-passed one (a skip), so it can compare
"what I show" with "what my neighbours show": the cue that separates an origin from a victim.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch_geometric.nn import GCNConv, TransformerConv

ModelName = Literal["arvalus", "d-arvalus"]
MODELS: tuple[str, ...] = ("arvalus", "d-arvalus")


class TemporalEncoder(nn.Module):
    """[nodes, channels, time] -> [nodes, hidden]: a strided, then dilated convolutions, pooled over time."""

    def __init__(self, channels: int, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(channels, hidden, 5, stride=2, padding=2), nn.ReLU(),  # 2 Hz -> 1 Hz: halves the cost
            nn.Conv1d(hidden, hidden, 5, padding=4, dilation=2), nn.ReLU(),
            nn.Conv1d(hidden, hidden, 3, padding=4, dilation=4), nn.ReLU(),
        )
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, hidden), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)
        return self.out(torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=-1))


class _Head(nn.Module):
    def __init__(self, hidden: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, classes))

    def forward(self, own: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([own, mixed], dim=-1))


class Arvalus(nn.Module):
    """Temporal convolution per node, GCN layers over the undirected, untyped graph, node classes."""

    def __init__(self, channels: int, classes: int, hidden: int = 32, layers: int = 2, edge_types: int = 3,
                 heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = TemporalEncoder(channels, hidden, dropout)
        self.convs = nn.ModuleList(GCNConv(hidden, hidden) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.head = _Head(hidden, classes, dropout)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor) -> torch.Tensor:
        own = self.encoder(x)
        h = own
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = norm(h + torch.relu(conv(h, edge_index)))  # edge types ignored: all relations look alike
        return self.head(own, h)


class DArvalus(nn.Module):
    """Temporal convolution per node, attention message passing over typed, directed edges, node classes."""

    def __init__(self, channels: int, classes: int, hidden: int = 32, layers: int = 2, edge_types: int = 3,
                 heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        self.encoder = TemporalEncoder(channels, hidden, dropout)
        edge_dim = 16
        self.edge_embedding = nn.Embedding(edge_types, edge_dim)
        self.convs = nn.ModuleList(
            TransformerConv(hidden, hidden // heads, heads=heads, edge_dim=edge_dim, dropout=dropout, beta=True)
            for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.head = _Head(hidden, classes, dropout)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor) -> torch.Tensor:
        own = self.encoder(x)
        attr = self.edge_embedding(edge_type)
        h = own
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = norm(h + torch.relu(conv(h, edge_index, attr)))
        return self.head(own, h)


def build(name: str, channels: int, classes: int, hidden: int = 32, layers: int = 2, edge_types: int = 3,
          heads: int = 4, dropout: float = 0.1) -> nn.Module:
    """A fresh model by name (arvalus | d-arvalus)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} ({', '.join(MODELS)})")
    cls = Arvalus if name == "arvalus" else DArvalus
    return cls(channels, classes, hidden=hidden, layers=layers, edge_types=edge_types, heads=heads, dropout=dropout)
