"""The training loop: the torchrun entry point of a job.

    torchrun --standalone --nproc-per-node N -m intentos.skills.training.loop CONFIG --job-dir DIR [--resume]

Every rank trains its replica; the strategy decides when and how replicas synchronise. Rank 0 writes
metrics as JSONL (one record per logged step: step, loss, sync_bytes, bytes, wall; eval_loss and
eval_acc at evaluations). Every rank writes its own checkpoint file (model, inner AdamW, strategy
state: θ_global, outer momentum, DCT residual buffers, byte counters), because the DCT buffers
differ per rank. `--resume` restarts from the latest complete checkpoint; `steps` may be raised to
train longer. gloo on CPU, NCCL when the device is cuda.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from intentos.skills.training.checkpoint import check_fits, identity, read_checkpoint
from intentos.skills.training.comm import Communicator
from intentos.skills.training.config import (
    DDPStrategy,
    DiLoCoStrategy,
    JobConfig,
    JobConfigError,
    StrategyConfig,
    load_config,
)
from intentos.skills.training.layout import CHECKPOINTS, LATEST, METRICS, latest_checkpoint
from intentos.skills.training.strategies import DDP, DiLoCo, DiLoCoDCT, Strategy
from intentos.skills.training.workloads import count_params, make_workload, warmup_factor

KEEP_CHECKPOINTS = 2


def build_strategy(cfg: StrategyConfig, model: nn.Module, comm: Communicator) -> Strategy:
    if isinstance(cfg, DDPStrategy):
        return DDP(model, comm)
    if isinstance(cfg, DiLoCoStrategy):
        return DiLoCo(model, comm, cfg.H, cfg.outer_lr, cfg.outer_momentum)
    return DiLoCoDCT(model, comm, cfg.H, cfg.tile, cfg.k, cfg.outer_lr, cfg.outer_momentum,
                     cfg.feedback, cfg.residual_decay)


def pick_device(cfg: JobConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise JobConfigError("device: cuda was asked for but torch sees no GPU")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


# -- checkpoints ---------------------------------------------------------------------------------


def save_checkpoint(job_dir: Path, step: int, state: dict[str, Any]) -> None:
    rank = dist.get_rank()
    folder = job_dir / CHECKPOINTS / f"step_{step:07d}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".rank{rank}.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / f"rank{rank}.pt")
    dist.barrier()  # every rank's file is complete before `latest` points at the folder
    if rank == 0:
        pointer = job_dir / CHECKPOINTS / LATEST
        tmp_pointer = pointer.with_suffix(".tmp")
        tmp_pointer.write_text(folder.name)
        os.replace(tmp_pointer, pointer)
        older = sorted(p for p in (job_dir / CHECKPOINTS).glob("step_*") if p.name < folder.name)
        for old in older[:-(KEEP_CHECKPOINTS - 1) or None]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()  # and no rank goes on (to a resume, say) before `latest` names the new folder


def load_checkpoint(job_dir: Path, cfg: JobConfig, device: torch.device) -> dict[str, Any]:
    """This rank's part of the latest checkpoint: tensors and plain data only (weights_only), never code."""
    folder = latest_checkpoint(job_dir)
    if folder is None:
        raise JobConfigError(f"{job_dir}: no checkpoint to resume from")
    rank, world = dist.get_rank(), dist.get_world_size()
    path = folder / f"rank{rank}.pt"
    if not path.is_file():
        raise JobConfigError(f"{path} is missing: the checkpoint was written by fewer than {world} processes")
    state = read_checkpoint(path, map_location=device, job_dir=job_dir)
    check_fits(state, folder, cfg, world)
    return state


# -- metrics -------------------------------------------------------------------------------------


class MetricsWriter:
    """Append-only JSONL on rank 0; on resume, records past the checkpoint step are dropped first."""

    def __init__(self, path: Path, keep_up_to: int | None) -> None:
        self.path = path
        if keep_up_to is not None and path.is_file():
            kept = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                    if (step := _step(line)) is not None and step <= keep_up_to]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        self.fh = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.fh.write(json.dumps(record) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def _step(line: str) -> int | None:
    """The step of a metrics line; None for a line that is not a record (e.g. cut off by a stop)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    step = record.get("step", 0)
    return step if isinstance(step, int) and not isinstance(step, bool) else None


# -- the loop ------------------------------------------------------------------------------------


def train(cfg: JobConfig, job_dir: Path, resume: bool = False) -> None:
    """Run (or resume) a job in an initialised process group."""
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg)
    torch.manual_seed(cfg.seed)  # same seed on every rank: identical initial replicas
    workload = make_workload(cfg.workload, cfg.seed)
    model = workload.build_model().to(device)
    opt = cfg.optimizer
    inner = torch.optim.AdamW(model.parameters(), lr=opt.lr, betas=opt.betas, weight_decay=opt.weight_decay)
    comm = Communicator(keep_log=False)
    strategy = build_strategy(cfg.strategy, model, comm)
    start, wall_offset = 0, 0.0
    if resume:
        state = load_checkpoint(job_dir, cfg, device)
        try:
            model.load_state_dict(state["model"])
            inner.load_state_dict(state["inner"])
            strategy.load_state_dict(state["strategy"])
            comm.load_state_dict(state["comm"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            first = " ".join((str(exc).strip().splitlines() or [type(exc).__name__])[0].split())
            raise JobConfigError(f"{latest_checkpoint(job_dir)}: the checkpoint does not fit this job "
                                 f"({type(exc).__name__}: {first})") from None
        start, wall_offset = state["step"], float(state["wall"])
    metrics = MetricsWriter(job_dir / METRICS, keep_up_to=start if resume else 0) if rank == 0 else None
    began = time.monotonic()

    def wall() -> float:
        return round(wall_offset + time.monotonic() - began, 3)

    if metrics:
        metrics.write({"event": "start", "step": start, "world": world, "params": count_params(model),
                       "strategy": cfg.strategy.kind, "device": str(device), "resumed": resume})
    for step in range(start + 1, cfg.steps + 1):
        for group in inner.param_groups:
            group["lr"] = opt.lr * warmup_factor(step, opt.warmup)
        model.train()
        x, y = workload.batch(step, rank, device)
        loss = workload.loss(model, x, y)
        inner.zero_grad(set_to_none=True)
        loss.backward()
        sent = strategy.after_backward(model) or 0
        if opt.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
        inner.step()
        sent += strategy.after_step(model, step) or 0
        last = step == cfg.steps
        if last:
            sent += strategy.finish(model, step) or 0
        record: dict[str, Any] = {"step": step, "loss": round(loss.item(), 6), "sync_bytes": sent,
                                  "bytes": comm.total_sent, "wall": wall()}
        if rank == 0 and (step % cfg.eval_every == 0 or last):
            model.eval()
            record |= {k: round(v, 6) for k, v in workload.evaluate(model, device).items()}
        if metrics and (step % cfg.log_every == 0 or "eval_loss" in record):
            metrics.write(record)
        if step % cfg.checkpoint_period == 0 or last:
            save_checkpoint(job_dir, step, {
                "step": step, "wall": wall(), "world": world, "identity": identity(cfg),
                "model": model.state_dict(), "inner": inner.state_dict(),
                "strategy": strategy.state_dict(), "comm": comm.state_dict()})
    if metrics:
        metrics.write({"event": "done", "step": cfg.steps, "bytes": comm.total_sent, "syncs": comm.syncs,
                       "wall": wall()})
        metrics.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="intentos.skills.training.loop")
    parser.add_argument("config", type=Path)
    parser.add_argument("--job-dir", type=Path, default=None, help="where metrics and checkpoints go")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except JobConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    job_dir = args.job_dir or args.config.parent
    job_dir.mkdir(parents=True, exist_ok=True)
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        train(cfg, job_dir, args.resume)
    except JobConfigError as exc:
        # One line in the job's log, not a traceback: the job tools show its tail.
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
