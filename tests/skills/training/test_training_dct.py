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
    assert dct.index_dtype(257) == torch.int16 and dct.index_dtype(32769) == torch.int32


def test_int16_indices_travel_as_bytes_and_come_back_unchanged() -> None:
    idx = torch.tensor([[0, 4095, 300], [17, 2048, 4000]], dtype=torch.int16)
    wire = dct.to_wire(idx)
    assert wire.dtype == torch.uint8 and wire.numel() * wire.element_size() == idx.numel() * 2
    assert torch.equal(dct.from_wire(wire, torch.int16), idx)
    small = torch.tensor([[3, 200]], dtype=torch.uint8)
    assert dct.to_wire(small) is small and dct.from_wire(small, torch.uint8) is small


# -- 2-D blocks ------------------------------------------------------------------------------------


def test_2d_dct_is_the_1d_dct_of_rows_then_columns() -> None:
    x = torch.randn(5, 5, generator=torch.Generator().manual_seed(4))
    rows = torch.stack([_direct_dct(r) for r in x])  # along every row
    both = torch.stack([_direct_dct(c) for c in rows.T]).T  # then along every column
    ours = dct.forward_2d(x.view(1, 5, 5), dct.dct_matrix(5))[0].double()
    assert torch.allclose(ours, both, atol=1e-5)


def test_2d_dct_round_trips_a_matrix_and_preserves_energy() -> None:
    x = torch.randn(130, 70, generator=torch.Generator().manual_seed(5))
    basis = dct.dct_matrix(64)
    blocks = dct.to_blocks(x, 64)
    assert blocks.shape == (6, 64, 64) and dct.n_blocks(x.shape, 64) == 6
    coeffs = dct.forward_2d(blocks, basis)
    assert torch.allclose(dct.from_blocks(dct.inverse_2d(coeffs, basis), x.shape), x, atol=1e-5)
    assert torch.allclose(coeffs.pow(2).sum(), x.pow(2).sum(), rtol=1e-5)  # Parseval, padding adds nothing


def test_edge_blocks_are_zero_padded_and_the_padding_is_dropped() -> None:
    x = torch.arange(1, 71, dtype=torch.float32).view(10, 7)  # no zeros of its own
    blocks = dct.to_blocks(x, 4)
    assert blocks.shape == (6, 4, 4)  # 3 block-rows × 2 block-columns, block-row-major
    assert torch.equal(blocks[0], x[:4, :4]) and torch.equal(blocks[1][:, :3], x[:4, 4:7])
    assert torch.equal(blocks[3][:, :3], x[4:8, 4:7]) and not blocks[3][:, 3].any()  # right edge: one zero column
    corner = blocks[5]  # x[8:10, 4:7] in the top-left, zeros elsewhere
    assert torch.equal(corner[:2, :3], x[8:10, 4:7]) and torch.count_nonzero(corner) == 6
    assert int((blocks == 0).sum()) == 6 * 16 - 70  # exactly the padding is zero
    assert torch.equal(dct.from_blocks(blocks, x.shape), x)


def test_top_k_per_block_finds_the_largest_2d_coefficients() -> None:
    side, n = 8, 3
    planted = torch.randn(n, side, side, generator=torch.Generator().manual_seed(6)) * 0.01
    big = [[1, 17, 63], [0, 42, 9], [30, 31, 32]]  # per block, the flat positions of its 3 big coefficients
    for b, positions in enumerate(big):
        planted.view(n, -1)[b, positions] = torch.tensor([5.0, -4.0, 3.0]) * (b + 1)
    basis = dct.dct_matrix(side)
    matrix = dct.from_blocks(dct.inverse_2d(planted, basis), (side, n * side))  # 1 × 3 blocks
    coeffs = dct.forward_2d(dct.to_blocks(matrix, side), basis).reshape(n, -1)
    idx, values = dct.top_k(coeffs, 3)
    assert [sorted(row.tolist()) for row in idx] == [sorted(p) for p in big]
    assert torch.allclose(values, coeffs.gather(1, idx))  # signed values
    restored = dct.scatter(idx.to(dct.index_dtype(side * side)), values, side * side)
    assert torch.allclose(restored.view(n, -1).gather(1, idx), values)


def test_index_dtype_of_2d_blocks() -> None:
    assert dct.index_dtype(16 * 16) == torch.uint8
    assert dct.index_dtype(64 * 64) == torch.int16 and torch.iinfo(torch.int16).max >= 64 * 64 - 1
