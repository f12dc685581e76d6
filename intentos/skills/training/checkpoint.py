"""Reading a job's checkpoint files safely: tensors and plain data only, never code.

A checkpoint is what `torch.save` wrote for one rank: a dict of numbers, strings, plain containers
and tensors (model and optimizer state dicts, strategy buffers, byte counters). It is read with
`torch.load(weights_only=True)`, torch's restricted unpickler, so a planted file whose pickle names
a function (os.system, ...) is refused instead of run. Every error is one line naming the file.
"""

from __future__ import annotations

import pickle  # only for the exception torch raises on a refused file; nothing here unpickles
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from intentos.skills.training.config import JobConfig, JobConfigError
from intentos.skills.training.layout import inside

# key -> the types its value may have
FIELDS: dict[str, tuple[type, ...]] = {
    "step": (int,), "wall": (int, float), "world": (int,), "identity": (dict,), "model": (dict,),
    "inner": (dict,), "strategy": (dict,), "comm": (dict,),
}


def identity(cfg: JobConfig) -> dict[str, Any]:
    """What must not change across a resume: the model, the data and the method."""
    return {"workload": cfg.workload.model_dump(), "strategy": cfg.strategy.model_dump(), "seed": cfg.seed}


def _refusal(exc: BaseException) -> str:
    """What torch's restricted unpickler refused, in a few words (its message is a page of advice)."""
    text = str(exc)
    named = re.search(r"GLOBAL ([\w.]+)", text)
    if named:
        return f"it names {named.group(1)}"
    operand = re.search(r"Unsupported operand \d+", text)
    return f"its pickle has an {operand.group(0).lower()}" if operand else "its pickle was refused"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    if not lines:
        return "the file is empty or cut off" if isinstance(exc, EOFError) else type(exc).__name__
    return " ".join(lines[0].split())


def read_checkpoint(path: Path, *, map_location: str | torch.device = "cpu", mmap: bool = False,
                    job_dir: Path | None = None) -> dict[str, Any]:
    """One rank's checkpoint file, checked to hold what the training loop wrote."""
    if job_dir is not None and not inside(path, job_dir):
        raise JobConfigError(f"{path}: leads outside the job folder (a symbolic link?)")
    if not path.is_file():
        raise JobConfigError(f"{path}: no such checkpoint file")
    try:
        with warnings.catch_warnings():  # e.g. "protocol 4 detected" on a foreign pickle: the error says enough
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        # torch's own message suggests weights_only=False, which would run whatever the file holds: never.
        raise JobConfigError(f"{path}: not a checkpoint intentos can load: {_refusal(exc)}, not only tensors "
                             "and plain data (refused without running anything)") from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise JobConfigError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(state, dict):
        raise JobConfigError(f"{path}: not an intentos training checkpoint (a {type(state).__name__}, not a dict)")
    for key, types in FIELDS.items():
        if key not in state:
            raise JobConfigError(f"{path}: not an intentos training checkpoint (no {key!r})")
        value = state[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise JobConfigError(f"{path}: {key!r} is a {type(value).__name__}, not a "
                                 f"{' or '.join(t.__name__ for t in types)}")
    if state["step"] < 0 or state["world"] < 1:
        raise JobConfigError(f"{path}: step {state['step']} / world {state['world']} are out of range")
    return state


def check_resumable(folder: Path, cfg: JobConfig, world: int, job_dir: Path, ranks: range | None = None) -> None:
    """Before a resume starts any process: the file of every rank of this machine (`ranks`, default all
    `world`) loads safely and fits the job. On several machines each one's job folder holds its own ranks."""
    for rank in ranks if ranks is not None else range(world):
        path = folder / f"rank{rank}.pt"
        if not path.is_file():
            raise JobConfigError(f"{path} is missing: rank {rank} did not write this checkpoint here "
                                 "(fewer processes, or another machine's job folder?)")
        state = read_checkpoint(path, job_dir=job_dir)
        check_fits(state, folder, cfg, world)


def check_fits(state: dict[str, Any], folder: Path, cfg: JobConfig, world: int) -> None:
    if state["world"] != world:
        raise JobConfigError(f"{folder}: written by {state['world']} processes in all, resumed with {world}; "
                             "resume with the --nproc (and --nnodes) it ran with")
    if state["identity"] != identity(cfg):
        raise JobConfigError(f"{folder}: the workload, strategy or seed changed since the checkpoint; "
                             "only steps, evaluation, checkpoint and optimizer settings may change on resume")
