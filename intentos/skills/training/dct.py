"""Orthonormal DCT-II on fixed-size tiles, and top-k selection per tile.

1-D: a flat vector is cut into tiles of `size` values (the last tile zero-padded), each tile is
transformed with the orthonormal DCT-II matrix D (rows are the cosine basis vectors), so
`coeffs = tiles @ D.T` and `tiles = coeffs @ D` exactly: D is orthogonal, D @ D.T = I.

2-D: a matrix is cut into s×s blocks (the edge blocks zero-padded), each block X is transformed
separably, DCT along every row and then every column: `coeffs = D X D.T`, `X = D.T coeffs D`.
A block's s*s coefficients are then handled as one row of s*s values (row-major) by top_k/scatter.
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


def n_blocks(shape: tuple[int, ...] | torch.Size, side: int) -> int:
    """How many side×side blocks cover a (rows, cols) matrix."""
    rows, cols = shape
    return n_tiles(rows, side) * n_tiles(cols, side)


def to_blocks(matrix: torch.Tensor, side: int, fill: float | int = 0) -> torch.Tensor:
    """A (rows, cols) matrix as (n_blocks, side, side) blocks, block-row-major; edge blocks padded with `fill`."""
    rows, cols = matrix.shape
    br, bc = n_tiles(rows, side), n_tiles(cols, side)
    padded = torch.full((br * side, bc * side), fill, dtype=matrix.dtype, device=matrix.device)
    padded[:rows, :cols] = matrix
    return padded.view(br, side, bc, side).permute(0, 2, 1, 3).reshape(br * bc, side, side)


def from_blocks(blocks: torch.Tensor, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Inverse of `to_blocks`: the (rows, cols) matrix, padding dropped."""
    rows, cols = shape
    side = blocks.shape[-1]
    br, bc = n_tiles(rows, side), n_tiles(cols, side)
    full = blocks.reshape(br, bc, side, side).permute(0, 2, 1, 3).reshape(br * side, bc * side)
    return full[:rows, :cols]


def forward_2d(blocks: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """2-D DCT-II of every (side, side) block: D X D.T (rows, then columns)."""
    return basis @ blocks @ basis.T


def inverse_2d(coeffs: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Inverse of `forward_2d`: D.T Y D."""
    return basis.T @ coeffs @ basis


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
    """The narrowest integer type that holds an index into a tile: uint8 up to 256 entries, int16 up to
    32768 (a 64×64 block), else int32. NCCL has no int16, so int16 indices travel as their bytes
    (`to_wire` / `from_wire`)."""
    if size <= 256:
        return torch.uint8
    return torch.int16 if size <= 32768 else torch.int32


def to_wire(idx: torch.Tensor) -> torch.Tensor:
    """Indices as a tensor every backend gathers: int16 as pairs of bytes (uint8), others as they are."""
    return idx.contiguous().view(torch.uint8) if idx.dtype == torch.int16 else idx


def from_wire(wire: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return wire.view(dtype) if dtype == torch.int16 else wire
