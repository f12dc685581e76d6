"""Collectives that count the bytes each rank hands to them.

Every call records `tensor.numel() * tensor.element_size()` of the tensor this rank passes in
(what it sends), so the figures are exact, not estimated. `sent` is that input size; `received`
is what comes back to the rank (for all_gather, world x the input). A sync is a group of calls
between `begin_sync()` and `end_sync()`; its bytes are returned by `end_sync()`.

Bookkeeping collectives (barriers, metric gathering) go through torch.distributed directly and
are deliberately not counted: they are the same for every strategy and no part of the method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist


def nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


@dataclass
class CallRecord:
    op: str
    sent: int
    received: int
    dtype: str
    shape: tuple[int, ...]


@dataclass
class Communicator:
    """Wraps all_reduce and all_gather of the default process group; counts bytes per call, per sync, total."""

    total_sent: int = 0
    total_received: int = 0
    calls: int = 0
    syncs: int = 0
    last_sync_sent: int = 0
    _open: int | None = None
    log: list[CallRecord] = field(default_factory=list)  # calls of the current (or last) sync
    keep_log: bool = True

    @property
    def world(self) -> int:
        return dist.get_world_size()

    def _count(self, op: str, tensor: torch.Tensor, received: int) -> None:
        sent = nbytes(tensor)
        self.total_sent += sent
        self.total_received += received
        self.calls += 1
        if self._open is not None:
            self._open += sent
        if self.keep_log:
            self.log.append(CallRecord(op, sent, received, str(tensor.dtype), tuple(tensor.shape)))

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place mean over ranks (sum, then divide: gloo has no AVG)."""
        self._count("all_reduce", tensor, nbytes(tensor))
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor.div_(self.world)
        return tensor

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's copy of `tensor`; shapes must be equal on all ranks."""
        out = [torch.empty_like(tensor) for _ in range(self.world)]
        self._count("all_gather", tensor, nbytes(tensor) * self.world)
        dist.all_gather(out, tensor.contiguous())
        return out

    def begin_sync(self) -> None:
        self._open = 0
        self.log = []

    def end_sync(self) -> int:
        """Bytes this rank sent since `begin_sync()`."""
        if self._open is None:
            raise RuntimeError("end_sync() without begin_sync()")
        sent, self._open = self._open, None
        self.syncs += 1
        self.last_sync_sent = sent
        return sent

    def state_dict(self) -> dict[str, int]:
        return {"total_sent": self.total_sent, "total_received": self.total_received,
                "calls": self.calls, "syncs": self.syncs}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.total_sent = state["total_sent"]
        self.total_received = state["total_received"]
        self.calls = state["calls"]
        self.syncs = state["syncs"]
