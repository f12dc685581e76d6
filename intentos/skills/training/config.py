"""The job file: a YAML document validated into a JobConfig, with errors that name the field.

    name: lm-diloco-dct
    workload: {kind: lm, seq_len: 64, d_model: 64, n_layers: 2, n_heads: 4, batch_size: 16}
    strategy: {kind: diloco_dct, H: 16, tile: 64, k: 3}   # outer_lr 1.4 by default
    optimizer: {lr: 0.002, warmup: 20}
    steps: 256
    eval_every: 32
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from intentos.errors import IntentosError

MAX_CONFIG_BYTES = 1024 * 1024


class JobConfigError(IntentosError):
    """A training job file is missing, not YAML, or not a valid job; names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LMWorkload(_Strict):
    kind: Literal["lm"]
    seq_len: int = Field(64, ge=2, le=4096)
    d_model: int = Field(64, ge=8)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    batch_size: int = Field(16, ge=1)
    eval_windows: int = Field(256, ge=1, description="held-out windows scored at each evaluation")
    files: list[str] | None = Field(None, description="standard-library files (default: a fixed list)")

    @model_validator(mode="after")
    def _heads_divide(self) -> LMWorkload:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        return self


class DigitsWorkload(_Strict):
    kind: Literal["digits"]
    batch_size: int = Field(32, ge=1)
    channels: int = Field(16, ge=1)


WorkloadConfig = Annotated[LMWorkload | DigitsWorkload, Field(discriminator="kind")]


class DDPStrategy(_Strict):
    kind: Literal["ddp"]


class DiLoCoStrategy(_Strict):
    kind: Literal["diloco"]
    H: int = Field(16, ge=1, description="inner steps between synchronisations")
    outer_lr: float = Field(0.7, gt=0)
    outer_momentum: float = Field(0.9, ge=0, lt=1)


class DiLoCoDCTStrategy(_Strict):
    # Defaults from benchmarks/sweep_diloco.py (README, "The sweep"): of the settings sending ≥ 16x fewer
    # bytes than DiLoCo, H=16, k=3 of 64 with outer lr 1.4 came closest to DiLoCo's loss on both LMs.
    kind: Literal["diloco_dct"]
    H: int = Field(16, ge=1)
    outer_lr: float = Field(1.4, gt=0, description="outer SGD lr (DiLoCo's 0.7 does worse with top-k updates)")
    outer_momentum: float = Field(0.9, ge=0, lt=1)
    tile: int = Field(64, ge=1, le=65536, description="values per 1-D DCT tile")
    tiles: Literal["1d", "2d"] = Field("1d", description="2d: weight matrices in tile_side×tile_side 2-D DCT blocks")
    tile_side: int = Field(64, ge=1, le=256, description="side of a 2-D block (tiles=2d)")
    k: int = Field(3, ge=1, description="coefficients sent per tile (per block with tiles=2d)")
    feedback: Literal["add_back", "residual"] = "add_back"
    feedback_decay: float = Field(1.0, ge=0, le=1, description="decay of the unsent residual before each fold")
    residual_decay: float = Field(1.0, ge=0, le=1, description="older knob: decay of the residual (feedback=residual)")

    @model_validator(mode="after")
    def _k_fits(self) -> DiLoCoDCTStrategy:
        if self.tiles == "2d":
            if self.k > self.tile_side ** 2:
                raise ValueError(f"k ({self.k}) cannot exceed tile_side² ({self.tile_side ** 2}) with tiles=2d")
        elif self.k > self.tile:
            raise ValueError(f"k ({self.k}) cannot exceed tile ({self.tile})")
        return self


StrategyConfig = Annotated[DDPStrategy | DiLoCoStrategy | DiLoCoDCTStrategy, Field(discriminator="kind")]


class InnerOptimizer(_Strict):
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    warmup: int = Field(0, ge=0, description="steps of linear warm-up, then constant")
    grad_clip: float | None = Field(1.0, gt=0)


class JobConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    workload: WorkloadConfig
    strategy: StrategyConfig
    optimizer: InnerOptimizer = Field(default_factory=InnerOptimizer)
    steps: int = Field(ge=1)
    eval_every: int = Field(ge=1)
    checkpoint_every: int | None = Field(None, ge=1, description="steps between checkpoints (default: eval_every)")
    log_every: int = Field(1, ge=1)
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    threads: int = Field(1, ge=1, description="torch threads per process")

    @model_validator(mode="after")
    def _aligned_with_sync(self) -> JobConfig:
        # Evaluations and checkpoints fall on synchronisation points, where all replicas are equal.
        H = getattr(self.strategy, "H", 1)
        for field in ("eval_every", "checkpoint_every"):
            value = getattr(self, field)
            if value is not None and value % H:
                raise ValueError(f"{field} ({value}) must be a multiple of strategy.H ({H})")
        return self

    @property
    def checkpoint_period(self) -> int:
        return self.checkpoint_every or self.eval_every


def _describe(exc: ValidationError) -> str:
    lines = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in ("ddp", "diloco", "diloco_dct",
                                                                                         "lm", "digits")))
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where or 'job'}: {msg}")
    return " ".join("; ".join(lines).split())  # one line, even when a key in the file holds a newline


def parse_config(data: object, source: str = "<config>") -> JobConfig:
    if not isinstance(data, dict):
        raise JobConfigError(f"{source}: a job file must be a YAML mapping, got {type(data).__name__}")
    try:
        return JobConfig.model_validate(data)
    except ValidationError as exc:
        raise JobConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: str | Path) -> JobConfig:
    """Read and validate a job file; JobConfigError names the file and each bad field."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise JobConfigError(f"{path}: cannot read the job file ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise JobConfigError(f"{path}: more than {MAX_CONFIG_BYTES} bytes, too large for a job file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JobConfigError(f"{path}: not UTF-8 text (a binary file?)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise JobConfigError(f"{where}: not valid YAML ({problem})") from None
    return parse_config(data, str(path))


def dump_config(cfg: JobConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True), sort_keys=False)
