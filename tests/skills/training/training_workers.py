"""Helpers for the training tests: run a function on N real gloo processes (loopback, FileStore).

Worker functions live here (a plain module) so that spawned processes can import them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _entry(rank: int, world: int, store: str, out: str, fn: Callable[..., Any], args: tuple) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        result = fn(*args)
        torch.save(result, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_distributed(fn: Callable[..., Any], world: int = 2, *args: Any) -> list[Any]:
    """Run `fn(*args)` on `world` processes joined in one gloo group; the per-rank results, in rank order."""
    with tempfile.TemporaryDirectory(prefix="intentos-dist-") as tmp:
        mp.spawn(_entry, args=(world, str(Path(tmp) / "store"), tmp, fn, args), nprocs=world, join=True)
        return [torch.load(Path(tmp) / f"rank{r}.pt", weights_only=False) for r in range(world)]


# -- workers ---------------------------------------------------------------------------------------


def strategy_runs(specs: list[dict[str, Any]], steps: int) -> dict[str, Any]:
    """Train a tiny LM with each strategy spec; record what each sync sent and the params after it."""
    from intentos.skills.training.comm import Communicator
    from intentos.skills.training.config import LMWorkload
    from intentos.skills.training.strategies import DDP, DiLoCo, DiLoCoDCT, flat_params
    from intentos.skills.training.workloads import LanguageModeling

    rank = dist.get_rank()
    workload = LanguageModeling(LMWorkload(kind="lm", seq_len=16, d_model=16, n_layers=1, n_heads=2,
                                           batch_size=4, eval_windows=32), seed=3)
    results = {}
    for spec in specs:
        torch.manual_seed(0)
        model = workload.build_model().to(getattr(torch, spec.get("dtype", "float32")))
        inner = torch.optim.AdamW(model.parameters(), lr=3e-3)
        comm = Communicator()
        kind = spec["kind"]
        if kind == "ddp":
            strategy = DDP(model, comm)
        elif kind == "diloco":
            strategy = DiLoCo(model, comm, spec["H"])
        else:
            strategy = DiLoCoDCT(model, comm, spec["H"], spec["tile"], spec["k"], feedback=spec.get("feedback",
                                                                                                   "add_back"))
        before = workload.evaluate(model, torch.device("cpu"))["eval_loss"]
        syncs = []
        for step in range(1, steps + 1):
            x, y = workload.batch(step, rank, torch.device("cpu"))
            inner.zero_grad()
            workload.loss(model, x, y).backward()
            sent = strategy.after_backward(model)
            inner.step()
            sent = strategy.after_step(model, step) or sent
            if sent is None and step == steps:
                sent = strategy.finish(model, step)
            if sent is not None:
                syncs.append({"step": step, "sent": sent, "log": list(comm.log), "params": flat_params(model)})
        after = workload.evaluate(model, torch.device("cpu"))["eval_loss"]
        results[spec["name"]] = {"syncs": syncs, "total": comm.total_sent, "before": before, "after": after,
                                 "final": flat_params(model), "sizes": [p.numel() for p in model.parameters()]}
    return results


def train_jobs(runs: list[tuple[dict[str, Any], str, bool]]) -> None:
    """Run the real training loop (`loop.train`) for each (config, job_dir, resume) in turn."""
    from intentos.skills.training.config import parse_config
    from intentos.skills.training.loop import train

    for data, job_dir, resume in runs:
        Path(job_dir).mkdir(parents=True, exist_ok=True)
        train(parse_config(data), Path(job_dir), resume)


def strategies_and_bytes(specs: list[dict[str, Any]], steps: int,
                         shapes: list[tuple[list[int], str]]) -> dict[str, Any]:
    """Both workers in one process group: spawning processes is the slow part of these tests."""
    return {"runs": strategy_runs(specs, steps), "bytes": count_bytes(shapes)}


def count_bytes(shapes: list[tuple[list[int], str]]) -> dict[str, Any]:
    """Pass tensors of the given shapes and dtypes through the Communicator; report its counters."""
    from intentos.skills.training.comm import Communicator

    comm = Communicator()
    comm.begin_sync()
    for shape, dtype in shapes:
        tensor = torch.ones(shape, dtype=getattr(torch, dtype))
        if dtype.startswith("float"):
            comm.all_reduce_mean(tensor)
        comm.all_gather(tensor)
    per_sync = comm.end_sync()
    return {"per_sync": per_sync, "total": comm.total_sent, "received": comm.total_received, "calls": comm.calls}
