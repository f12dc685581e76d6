"""Each strategy on 2 real gloo processes: replicas stay identical, bytes match the tensors sent,
DiLoCo-DCT with k = tile reduces to DiLoCo, and the models learn."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn
from training_workers import run_distributed, strategies_and_bytes, strategy_runs

from intentos.skills.training import dct
from intentos.skills.training.comm import Communicator, nbytes
from intentos.skills.training.config import parse_config
from intentos.skills.training.strategies import BlockLayout, DiLoCoDCT

STEPS = 12
H = 4
TILE = 32
SPECS = [
    {"name": "ddp", "kind": "ddp"},
    {"name": "diloco", "kind": "diloco", "H": H},
    {"name": "dct", "kind": "diloco_dct", "H": H, "tile": TILE, "k": 4},
    {"name": "dct_residual", "kind": "diloco_dct", "H": H, "tile": TILE, "k": 4, "feedback": "residual"},
    {"name": "dct_full", "kind": "diloco_dct", "H": H, "tile": TILE, "k": TILE},
    # float64: AdamW amplifies float32 rounding over inner steps; the equivalence is checked where it is exact.
    {"name": "diloco64", "kind": "diloco", "H": H, "dtype": "float64"},
    {"name": "dct_full64", "kind": "diloco_dct", "H": H, "tile": TILE, "k": TILE, "dtype": "float64"},
    {"name": "dct_full_residual64", "kind": "diloco_dct", "H": H, "tile": TILE, "k": TILE, "feedback": "residual",
     "dtype": "float64"},
    # 2-D blocks ("options" go to DiLoCoDCT through _with_options). 12×12 blocks leave edge blocks on every
    # matrix of the test LM (its sides are 16, 48, 64, 256) and take uint8 indices; 20×20 = 400 takes int16
    # (sent as bytes).
    {"name": "dct2d", "kind": "diloco_dct", "H": H, "tile": TILE, "k": 8, "options": {"tiles": "2d", "tile_side": 12}},
    {"name": "dct2d_wide", "kind": "diloco_dct", "H": H, "tile": TILE, "k": 8,
     "options": {"tiles": "2d", "tile_side": 20, "feedback_decay": 0.9}},
    {"name": "dct2d_full64", "kind": "diloco_dct", "H": H, "tile": TILE, "k": 144, "dtype": "float64",
     "options": {"tiles": "2d", "tile_side": 12}},
    {"name": "dct2d_full_residual64", "kind": "diloco_dct", "H": H, "tile": TILE, "k": 144, "feedback": "residual",
     "dtype": "float64", "options": {"tiles": "2d", "tile_side": 12}},
]
SHAPES = [([3, 5], "float32"), ([7], "float64"), ([4, 4], "uint8"), ([10], "int32"), ([2, 3], "bfloat16")]


def _configured(plain: type[DiLoCoDCT], options: dict[str, Any], seen: dict[str, Any]) -> type[DiLoCoDCT]:
    class Configured(plain):  # type: ignore[misc, valid-type]
        def __init__(self, model: nn.Module, *args: Any, **kwargs: Any) -> None:
            super().__init__(model, *args, **kwargs, **options)
            seen.update(shapes=[tuple(p.shape) for p in model.parameters()], bytes_per_sync=self.bytes_per_sync())
    return Configured


def _with_options(specs: list[dict[str, Any]], steps: int, shapes: list[tuple[list[int], str]]) -> dict[str, Any]:
    """strategies_and_bytes, where a spec's "options" (tiles, tile_side, feedback_decay) also reach DiLoCoDCT.

    Runs in the spawned workers; training_workers builds DiLoCoDCT from H, tile, k and feedback only.
    """
    from intentos.skills.training import strategies

    plain = strategies.DiLoCoDCT
    out = strategies_and_bytes([s for s in specs if "options" not in s], steps, shapes)
    try:
        for spec in (s for s in specs if "options" in s):
            seen: dict[str, Any] = {}
            strategies.DiLoCoDCT = _configured(plain, spec["options"], seen)
            out["runs"] |= {name: run | seen for name, run in strategy_runs([spec], steps).items()}
    finally:
        strategies.DiLoCoDCT = plain
    return out


@pytest.fixture(scope="module")
def both() -> list[dict[str, Any]]:
    return run_distributed(_with_options, 2, SPECS, STEPS, SHAPES)


@pytest.fixture(scope="module")
def runs(both: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b["runs"] for b in both]


@pytest.mark.parametrize("name", [s["name"] for s in SPECS])
def test_replicas_are_identical_after_every_sync(runs: list[dict[str, Any]], name: str) -> None:
    zero, one = runs[0][name], runs[1][name]
    with_params = [s for s in zero["syncs"] if "params" in s]
    assert with_params, "no outer sync recorded"
    for a, b in zip(with_params, [s for s in one["syncs"] if "params" in s], strict=True):
        assert torch.equal(a["params"], b["params"]), f"{name}: replicas differ after the sync at step {a['step']}"
    assert torch.equal(zero["final"], one["final"])


def test_ddp_all_reduces_every_step_the_size_of_the_model(runs: list[dict[str, Any]]) -> None:
    ddp = runs[0]["ddp"]
    numel = sum(ddp["sizes"])
    assert [s["step"] for s in ddp["syncs"]] == list(range(1, STEPS + 1))
    for sync in ddp["syncs"]:
        assert sync["sent"] == numel * 4 == sum(call.sent for call in sync["log"])
        assert [call.op for call in sync["log"]] == ["all_reduce"]
    assert ddp["total"] == STEPS * numel * 4


def test_diloco_all_reduces_the_pseudo_gradient_every_h_steps(runs: list[dict[str, Any]]) -> None:
    diloco = runs[0]["diloco"]
    numel = sum(diloco["sizes"])
    assert [s["step"] for s in diloco["syncs"]] == list(range(H, STEPS + 1, H))
    assert all(s["sent"] == numel * 4 for s in diloco["syncs"])
    assert diloco["total"] == (STEPS // H) * numel * 4


@pytest.mark.parametrize("name, k", [("dct", 4), ("dct_full", TILE)])
def test_dct_gathers_k_indices_and_values_per_tile(runs: list[dict[str, Any]], name: str, k: int) -> None:
    run = runs[0][name]
    rows = sum(dct.n_tiles(n, TILE) for n in run["sizes"])
    per_sync = rows * k * 1 + rows * k * 4  # uint8 indices + float32 values
    for sync in run["syncs"]:
        ops = [(c.op, c.dtype, c.shape, c.sent, c.received) for c in sync["log"]]
        assert ops == [("all_gather", "torch.uint8", (rows, k), rows * k, 2 * rows * k),
                       ("all_gather", "torch.float32", (rows, k), rows * k * 4, 2 * rows * k * 4)]
        assert sync["sent"] == per_sync
    assert run["total"] == (STEPS // H) * per_sync
    assert runs[1][name]["total"] == run["total"]  # equal shapes on every rank


@pytest.mark.parametrize("name", ["dct_full64", "dct_full_residual64", "dct2d_full64", "dct2d_full_residual64"])
def test_dct_with_k_equal_to_tile_is_plain_diloco(runs: list[dict[str, Any]], name: str) -> None:
    diloco, full = runs[0]["diloco64"], runs[0][name]
    for a, b in zip(diloco["syncs"], full["syncs"], strict=True):
        assert torch.allclose(a["params"], b["params"], rtol=0, atol=1e-9), f"differs from DiLoCo at step {a['step']}"


@pytest.mark.parametrize("name", ["dct", "dct2d"])
def test_compressed_dct_is_not_plain_diloco(runs: list[dict[str, Any]], name: str) -> None:
    # Guards the test above: with k < tile the update must actually differ.
    assert not torch.allclose(runs[0]["diloco"]["final"], runs[0][name]["final"], atol=1e-4)


@pytest.mark.parametrize("name", ["ddp", "diloco", "dct", "dct_residual", "dct2d"])
def test_every_strategy_learns(runs: list[dict[str, Any]], name: str) -> None:
    assert runs[0][name]["after"] < runs[0][name]["before"] - 0.1


def test_byte_counter_equals_the_sum_of_tensor_sizes(both: list[dict[str, Any]]) -> None:
    shapes = SHAPES
    results = [b["bytes"] for b in both]
    sizes = {"float32": 4, "float64": 8, "uint8": 1, "int32": 4, "bfloat16": 2}
    numels = [torch.Size(s).numel() * sizes[d] for s, d in shapes]
    reduced = sum(n for n, (_, d) in zip(numels, shapes, strict=True) if d.startswith("float"))
    expected = sum(numels) + reduced  # every tensor is gathered; the float ones also all-reduced
    for result in results:
        assert result["per_sync"] == result["total"] == expected
        assert result["received"] == reduced + 2 * sum(numels)  # all_gather returns world copies
        assert result["calls"] == len(shapes) + sum(1 for _, d in shapes if d.startswith("float"))


# -- DiLoCo-DCT with 2-D blocks and feedback decay --------------------------------------------------


@pytest.mark.parametrize("name, side, index_bytes", [("dct2d", 12, 1), ("dct2d_wide", 20, 2)])
def test_dct2d_gathers_k_per_block_and_k_per_1d_tile(runs: list[dict[str, Any]], name: str, side: int,
                                                      index_bytes: int) -> None:
    run, k = runs[0][name], 8
    matrices = [s for s in run["shapes"] if len(s) == 2]
    blocks = sum(math.ceil(r / side) * math.ceil(c / side) for r, c in matrices)
    rows = sum(dct.n_tiles(math.prod(s), TILE) for s in run["shapes"] if len(s) != 2)
    assert blocks and rows  # the test LM has both kinds
    per_sync = blocks * k * (index_bytes + 4) + rows * k * (1 + 4)
    for sync in run["syncs"]:
        ops = [(c.op, c.dtype, c.shape, c.sent) for c in sync["log"]]
        # int16 indices travel as their bytes: uint8, two per index.
        assert ops == [("all_gather", "torch.uint8", (blocks, k * index_bytes), blocks * k * index_bytes),
                       ("all_gather", "torch.float32", (blocks, k), blocks * k * 4),
                       ("all_gather", "torch.uint8", (rows, k), rows * k),
                       ("all_gather", "torch.float32", (rows, k), rows * k * 4)]
        assert sync["sent"] == per_sync == run["bytes_per_sync"]
    assert run["total"] == runs[1][name]["total"] == (STEPS // H) * per_sync


class _Solo(Communicator):
    """A world of one, no process group: all_gather returns this rank's copy; bytes are counted as usual."""

    world = 1  # type: ignore[assignment]

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        self._count("all_gather", tensor, nbytes(tensor))
        return [tensor.clone()]


def _synced(model: nn.Module, strategy: DiLoCoDCT, seed: int) -> int:
    """Move the parameters as inner steps would, then sync; the bytes sent."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)), alpha=0.01)
    sent = strategy.after_step(model, strategy.H)
    assert sent is not None
    return sent


@pytest.mark.parametrize("tiles, side, expected", [
    # weight (130, 100): 3 × 2 blocks of 64×64, k 32 × (int16 + float32); bias (130,): 3 tiles × 32 × (uint8 + float32)
    ("2d", 64, 6 * 32 * (2 + 4) + 3 * 32 * (1 + 4)),
    ("2d", 16, 9 * 7 * 32 * (1 + 4) + 3 * 32 * (1 + 4)),  # 16×16 = 256 values: uint8 indices
    ("1d", 64, (204 + 3) * 32 * (1 + 4)),  # 13000 weights = 204 tiles of 64, the last padded
])
def test_dct_bytes_for_a_known_shape(tiles: str, side: int, expected: int) -> None:
    torch.manual_seed(0)
    model, comm = nn.Linear(100, 130), _Solo()
    strategy = DiLoCoDCT(model, comm, 4, 64, 32, tiles=tiles, tile_side=side)
    assert strategy.bytes_per_sync() == expected
    assert _synced(model, strategy, 1) == expected == sum(c.sent for c in comm.log)


def test_block_layout_pads_edge_blocks_and_keeps_other_parameters_out() -> None:
    model = nn.Linear(10, 70)  # weight (70, 10): two 64×64 blocks, mostly padding; bias (70,): not a matrix
    shapes = [p.shape for p in model.parameters()]
    layout = BlockLayout(shapes, 64, torch.device("cpu"), [True, False])
    flat = torch.arange(1, 771, dtype=torch.float32)  # weight 1..700, bias 701..770
    rows = layout.to_tiles(flat)
    assert rows.shape == (2, 64 * 64) and layout.rows == 2
    assert torch.equal(rows, dct.to_blocks(flat[:700].view(70, 10), 64).reshape(2, -1))
    assert int(torch.count_nonzero(rows)) == 700  # the rest is padding
    back = layout.from_tiles(rows)
    assert torch.equal(back[:700], flat[:700]) and not back[700:].any()  # the bias is no part of this layout


@pytest.mark.parametrize("feedback", ["add_back", "residual"])
def test_feedback_decay_shrinks_only_the_unsent_residual(feedback: str) -> None:
    torch.manual_seed(0)
    model = nn.Linear(24, 20)
    strategy = DiLoCoDCT(model, _Solo(), 4, 16, 2, feedback=feedback, residual_decay=0.5, tiles="2d", tile_side=8,
                         feedback_decay=0.8)
    _synced(model, strategy, 3)  # a real sync: k < 64 leaves a residual
    local, shared = strategy.local.clone(), strategy.shared.clone()
    residual = local - shared if feedback == "add_back" else local
    assert residual.abs().max() > 1e-4
    delta = torch.randn(local.shape, generator=torch.Generator().manual_seed(4))
    strategy._fold(delta)
    if feedback == "add_back":  # buffer = μ (β r + U_{t−1}) + Δ
        expected = 0.9 * (0.8 * residual + shared) + delta
    else:  # buffer = residual_decay · β · r + Δ
        expected = 0.5 * 0.8 * residual + delta
    assert torch.allclose(strategy.local, expected, atol=1e-6)


def test_feedback_decay_of_one_is_the_old_fold() -> None:
    torch.manual_seed(0)
    model = nn.Linear(24, 20)
    strategy = DiLoCoDCT(model, _Solo(), 4, 16, 2)
    _synced(model, strategy, 5)
    local = strategy.local.clone()
    delta = torch.randn(local.shape, generator=torch.Generator().manual_seed(6))
    strategy._fold(delta)
    assert torch.equal(strategy.local, local.mul(0.9).add(delta))


def test_from_config_carries_tiles_side_and_decay() -> None:
    cfg = parse_config({"name": "x", "workload": {"kind": "digits"}, "steps": 4, "eval_every": 4,
                        "strategy": {"kind": "diloco_dct", "H": 4, "tiles": "2d", "tile_side": 16, "k": 100,
                                     "feedback_decay": 0.95, "residual_decay": 0.5}})
    strategy = DiLoCoDCT.from_config(cfg.strategy, nn.Linear(20, 20), _Solo())
    assert (strategy.tiles, strategy.tile_side, strategy.k, strategy.feedback_decay, strategy.residual_decay) == (
        "2d", 16, 100, 0.95, 0.5)
    # (20, 20) in 16×16 blocks: 4 blocks × 100 × (uint8 + float32); bias: 1 tile of 64 × min(100, 64) × 5
    assert strategy.bytes_per_sync() == 4 * 100 * 5 + 1 * 64 * 5


@pytest.mark.parametrize("kwargs, message", [
    ({"tiles": "2d", "tile_side": 4, "k": 17}, "1 <= k <= tile_side²"),
    ({"tiles": "3d"}, "tiles must be '1d' or '2d'"),
    ({"feedback_decay": 1.5}, "feedback_decay must be in"),
])
def test_dct_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    args = {"tile": 16, "k": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        DiLoCoDCT(nn.Linear(4, 4), _Solo(), 4, args.pop("tile"), args.pop("k"), **args)
