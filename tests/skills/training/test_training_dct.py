"""The DCT is orthonormal and exact; top-k keeps the largest magnitudes; tiling round-trips."""

from __future__ import annotations

import math

import pytest
import torch

from intentos.skills.training import dct


def _direct_dct(x: torch.Tensor) -> torch.Tensor:
    """DCT-II straight from the definition, in float64: X_k = s_k Σ_n x_n cos(π (2n+1) k / 2N)."""
    n = len(x)
    out = torch.zeros(n, dtype=torch.float64)
    for k in range(n):
        s = math.sqrt(1 / n) if k == 0 else math.sqrt(2 / n)
        out[k] = s * sum(float(x[i]) * math.cos(math.pi * (2 * i + 1) * k / (2 * n)) for i in range(n))
    return out


@pytest.mark.parametrize("size", [1, 2, 7, 16, 64])
def test_dct_matrix_is_orthonormal(size: int) -> None:
    d = dct.dct_matrix(size)
    assert torch.allclose(d @ d.T, torch.eye(size), atol=1e-6)


@pytest.mark.parametrize("size", [5, 16])
def test_dct_matches_the_definition(size: int) -> None:
    x = torch.randn(size, generator=torch.Generator().manual_seed(size))
    ours = dct.forward(x.view(1, -1), dct.dct_matrix(size))[0].double()
    assert torch.allclose(ours, _direct_dct(x), atol=1e-5)


def test_round_trip_is_exact_and_padding_is_dropped() -> None:
    x = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    basis = dct.dct_matrix(64)
    tiles = dct.to_tiles(x, 64)
    assert tiles.shape == (16, 64) and torch.count_nonzero(tiles.reshape(-1)[1000:]) == 0
    back = dct.from_tiles(dct.inverse(dct.forward(tiles, basis), basis), 1000)
    assert torch.allclose(back, x, atol=1e-5)
    # Energy is preserved (Parseval), as it must be for an orthonormal transform.
    assert torch.allclose(dct.forward(tiles, basis).pow(2).sum(), x.pow(2).sum(), rtol=1e-5)


def test_top_k_keeps_the_largest_magnitudes_per_row() -> None:
    coeffs = torch.randn(50, 32, generator=torch.Generator().manual_seed(2))
    idx, values = dct.top_k(coeffs, 5)
    assert idx.shape == values.shape == (50, 5)
    assert torch.equal(values, coeffs.gather(1, idx))  # signed values, not magnitudes
    for row, chosen in zip(coeffs, idx, strict=True):
        kept = set(chosen.tolist())
        smallest_kept = row.abs()[list(kept)].min()
        dropped = [i for i in range(32) if i not in kept]
        assert len(kept) == 5 and row.abs()[dropped].max() <= smallest_kept


def test_scatter_puts_values_back_where_they_came_from() -> None:
    coeffs = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    idx, values = dct.top_k(coeffs, 8)
    assert torch.allclose(dct.scatter(idx.to(dct.index_dtype(8)), values, 8), coeffs)


def test_top_k_rejects_k_out_of_range() -> None:
    with pytest.raises(ValueError, match="1 <= k <= 8"):
        dct.top_k(torch.zeros(2, 8), 9)


def test_index_dtype_holds_every_index() -> None:
    assert dct.index_dtype(256) == torch.uint8 and torch.iinfo(torch.uint8).max >= 255
    assert dct.index_dtype(257) == torch.int32
