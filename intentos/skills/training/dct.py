"""Orthonormal DCT-II on fixed-size tiles, and top-k selection per tile.

A flat vector is cut into tiles of `size` values (the last tile zero-padded), each tile is
transformed with the orthonormal DCT-II matrix D (rows are the cosine basis vectors), so
`coeffs = tiles @ D.T` and `tiles = coeffs @ D` exactly: D is orthogonal, D @ D.T = I.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


@lru_cache(maxsize=16)
def _dct_matrix_f64(size: int) -> torch.Tensor:
    n = torch.arange(size, dtype=torch.float64)
    k = n.view(-1, 1)
    basis = torch.cos(math.pi * (2 * n + 1) * k / (2 * size))  # row k: frequency k over samples n
    scale = torch.full((size, 1), math.sqrt(2.0 / size), dtype=torch.float64)
    scale[0, 0] = math.sqrt(1.0 / size)  # the constant row has a different norm
    return scale * basis


def dct_matrix(size: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The orthonormal DCT-II matrix of order `size`; built in float64, so D @ D.T = I to the dtype's precision."""
    if size < 1:
        raise ValueError(f"DCT size must be at least 1, got {size}")
    return _dct_matrix_f64(size).to(device=device, dtype=dtype)


def n_tiles(numel: int, size: int) -> int:
    return -(-numel // size)


def to_tiles(flat: torch.Tensor, size: int) -> torch.Tensor:
    """A flat vector as (n_tiles, size) rows; the tail is padded with zeros."""
    rows = n_tiles(flat.numel(), size)
    padded = torch.zeros(rows * size, dtype=flat.dtype, device=flat.device)
    padded[: flat.numel()] = flat.reshape(-1)
    return padded.view(rows, size)


def from_tiles(tiles: torch.Tensor, numel: int) -> torch.Tensor:
    """The first `numel` values of the tiles, flat (drops the padding)."""
    return tiles.reshape(-1)[:numel]


def forward(tiles: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """DCT-II of every row."""
    return tiles @ basis.T


def inverse(coeffs: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Inverse of `forward` (the DCT-III): the transpose, since the basis is orthonormal."""
    return coeffs @ basis


def top_k(coeffs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the indices and signed values of the k largest-magnitude coefficients."""
    if not 1 <= k <= coeffs.shape[-1]:
        raise ValueError(f"top-k needs 1 <= k <= {coeffs.shape[-1]}, got {k}")
    idx = coeffs.abs().topk(k, dim=-1, sorted=False).indices
    return idx, coeffs.gather(-1, idx)


def scatter(idx: torch.Tensor, values: torch.Tensor, size: int) -> torch.Tensor:
    """Dense (n_tiles, size) coefficients with `values` at `idx` (summed where indices repeat)."""
    dense = torch.zeros(idx.shape[0], size, dtype=values.dtype, device=values.device)
    return dense.scatter_add_(-1, idx.long(), values)


def index_dtype(size: int) -> torch.dtype:
    """The narrowest integer type that holds an index into a tile and that both gloo and NCCL gather.

    uint8 covers tiles up to 256; NCCL has no int16, so larger tiles take int32.
    """
    return torch.uint8 if size <= 256 else torch.int32
