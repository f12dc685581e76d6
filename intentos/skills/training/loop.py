"""The training loop: the torchrun entry point of a job.

    torchrun --standalone --nproc-per-node N -m intentos.skills.training.loop CONFIG --job-dir DIR [--resume]
    torchrun --nnodes M --node-rank R --master-addr HOST --master-port PORT --nproc-per-node N -m ...  (M machines)

Every rank trains its replica; the strategy decides when and how replicas synchronise. Ranks are
global (RANK, WORLD_SIZE: the data each rank reads, its checkpoint file); each machine has its own
job folder, written by that machine's processes. Its first process (LOCAL_RANK 0; rank 0 on one
machine) writes the folder's metrics as JSONL (one record per logged step: step, loss (its own
rank's), sync_bytes, bytes, wall; eval_loss and eval_acc at evaluations; params_sha, a fingerprint of
the parameters, wherever the replicas are equal: after each outer sync, and at evaluations) and the
`latest` checkpoint pointer. Every rank writes its own checkpoint file (model, inner AdamW, strategy
state: θ_global, outer momentum, DCT residual buffers, byte counters), because the DCT buffers
differ per rank. `--resume` restarts from the latest checkpoint complete on every machine; `steps`
may be raised to train longer. gloo on CPU, NCCL when the device is cuda.
"""

from __future__ import annotations

import argparse
import hashlib
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
from intentos.skills.training.strategies import DDP, DiLoCo, DiLoCoDCT, Strategy, flat_params
from intentos.skills.training.workloads import count_params, make_workload, warmup_factor

KEEP_CHECKPOINTS = 2


def build_strategy(cfg: StrategyConfig, model: nn.Module, comm: Communicator) -> Strategy:
    if isinstance(cfg, DDPStrategy):
        return DDP(model, comm)
    if isinstance(cfg, DiLoCoStrategy):
        return DiLoCo(model, comm, cfg.H, cfg.outer_lr, cfg.outer_momentum)
    return DiLoCoDCT.from_config(cfg, model, comm)


def pick_device(cfg: JobConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise JobConfigError("device: cuda was asked for but torch sees no GPU")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def node_leader() -> bool:
    """Whether this process is the first on its machine (LOCAL_RANK 0, set by torchrun; else rank 0):
    it writes what the machine's job folder holds once (metrics, the `latest` checkpoint pointer)."""
    return int(os.environ.get("LOCAL_RANK", dist.get_rank())) == 0


def fingerprint(model: nn.Module) -> str:
    """The first 16 hex digits of the sha256 of the parameters as one flat float32 vector: equal
    replicas have equal fingerprints, so two machines' metrics show whether they stayed in step."""
    flat = flat_params(model).to("cpu", torch.float32).contiguous()
    return hashlib.sha256(flat.numpy().tobytes()).hexdigest()[:16]


# -- checkpoints ---------------------------------------------------------------------------------


def save_checkpoint(job_dir: Path, step: int, state: dict[str, Any]) -> None:
    rank = dist.get_rank()
    folder = job_dir / CHECKPOINTS / f"step_{step:07d}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".rank{rank}.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / f"rank{rank}.pt")
    dist.barrier()  # every rank's file (on every machine) is complete before `latest` points at the folder
    if node_leader():  # one per machine: each machine's job folder holds its own ranks' files
        pointer = job_dir / CHECKPOINTS / LATEST
        tmp_pointer = pointer.with_name(f".{LATEST}.rank{rank}.tmp")  # machines sharing one folder never clash
        tmp_pointer.write_text(folder.name)
        os.replace(tmp_pointer, pointer)
        older = sorted(p for p in (job_dir / CHECKPOINTS).glob("step_*") if p.name < folder.name)
        for old in older[:-(KEEP_CHECKPOINTS - 1) or None]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()  # and no rank goes on (to a resume, say) before `latest` names the new folder


def load_checkpoint(job_dir: Path, cfg: JobConfig, device: torch.device) -> dict[str, Any]:
    """This rank's part of the latest checkpoint: tensors and plain data only (weights_only), never code.

    On several machines each folder's `latest` is its own; a job stopped between two machines'
    pointer updates has them one checkpoint apart, so every rank resumes from the oldest (the
    previous checkpoint is kept, KEEP_CHECKPOINTS)."""
    folder = latest_checkpoint(job_dir)
    rank, world = dist.get_rank(), dist.get_world_size()
    mine = int(folder.name.removeprefix("step_")) if folder is not None else -1
    newest = torch.tensor([mine, -mine], dtype=torch.long, device=device)
    dist.all_reduce(newest, op=dist.ReduceOp.MAX)  # bookkeeping: not counted in the strategy's bytes
    oldest = -int(newest[1])
    if oldest < 0:
        whose = "" if folder is None else "another machine's folder has "
        raise JobConfigError(f"{job_dir}: {whose}no checkpoint to resume from")
    if folder is None or oldest != mine:
        folder = job_dir / CHECKPOINTS / f"step_{oldest:07d}"
    path = folder / f"rank{rank}.pt"
    if not path.is_file():
        raise JobConfigError(f"{path} is missing: rank {rank} did not write this checkpoint here "
                             f"(fewer than {world} processes, or another machine's job folder?)")
    state = read_checkpoint(path, map_location=device, job_dir=job_dir)
    check_fits(state, folder, cfg, world)
    return state


# -- metrics -------------------------------------------------------------------------------------


class MetricsWriter:
    """Append-only JSONL, by each machine's first process; on resume, records past the checkpoint step go first."""

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
    leader = node_leader()
    metrics = MetricsWriter(job_dir / METRICS, keep_up_to=start if resume else 0) if leader else None
    began = time.monotonic()

    def wall() -> float:
        return round(wall_offset + time.monotonic() - began, 3)

    if metrics:
        metrics.write({"event": "start", "step": start, "world": world, "rank": rank,
                       "params": count_params(model), "strategy": cfg.strategy.kind, "device": str(device),
                       "resumed": resume})
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
        last = step == cfg.steps
        outer = strategy.after_step(model, step)
        flushed = strategy.finish(model, step) if last else None
        sent += (outer or 0) + (flushed or 0)
        record: dict[str, Any] = {"step": step, "loss": round(loss.item(), 6), "sync_bytes": sent,
                                  "bytes": comm.total_sent, "wall": wall()}
        evaluating = leader and (step % cfg.eval_every == 0 or last)  # evaluations fall where replicas are equal
        if evaluating:
            model.eval()
            record |= {k: round(v, 6) for k, v in workload.evaluate(model, device).items()}
        if leader and (evaluating or outer is not None or flushed is not None):
            record["params_sha"] = fingerprint(model)
        if metrics and (step % cfg.log_every == 0 or "params_sha" in record):
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
