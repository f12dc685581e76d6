"""The `training` app: start, watch, stop and compare distributed training jobs from the agent or TUI.

Job files and plots are sandbox paths; jobs live under `training/jobs/` in the sandbox. A job runs
torchrun in the background (see jobs.py), so `start` returns at once and `status` reports progress.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from intentos.app import App
from intentos.errors import AppError
from intentos.function import Effect, function
from intentos.skills.training import compare as cmp
from intentos.skills.training import jobs
from intentos.skills.training.config import JobConfigError

JOBS_DIR = "training/jobs"
T = TypeVar("T")


class StartArgs(BaseModel):
    config: str = Field(description="job YAML file in the sandbox")
    nproc: int = Field(2, ge=1, le=256, description="processes (replicas) on this machine")
    resume: bool = Field(False, description="continue the job from its latest checkpoint")
    job_id: str | None = Field(None, description="job name (default: the config's name)")


class JobRef(BaseModel):
    job_id: str


class StatusArgs(BaseModel):
    job_id: str | None = Field(None, description="one job (default: all jobs)")


class StatusResult(BaseModel):
    jobs: list[jobs.JobStatus]


class CompareArgs(BaseModel):
    job_ids: list[str] | None = Field(None, description="jobs to compare (default: all)")
    plot: str = Field("training/compare.png", description="where to write the PNG plot in the sandbox")


class CompareResult(BaseModel):
    rows: list[cmp.CompareRow]
    table: str
    plot: str


class TrainingApp(App):
    name = "training"
    description = "Distributed training jobs (DDP, DiLoCo, DiLoCo-DCT): start, status, stop, compare."

    @property
    def root(self) -> Path:
        return self.sandbox.resolve(JOBS_DIR)

    def _guard(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except (jobs.JobError, JobConfigError) as exc:
            raise AppError(str(exc)) from None

    @function(Effect.EXTERNAL)
    def start(self, args: StartArgs) -> jobs.JobStatus:
        """Start a training job from a YAML job file, in the background (torchrun with nproc processes)."""
        config = self.sandbox.resolve(args.config)
        if not config.is_file():
            raise AppError(f"no job file {args.config!r} in the sandbox")
        status = self._guard(lambda: jobs.start(config, self.root, args.nproc, args.resume, args.job_id))
        return status.model_copy(update={"dir": self.sandbox.relative(self.root / status.job_id)})

    @function(Effect.READ)
    def status(self, args: StatusArgs) -> StatusResult:
        """Progress of training jobs: state, step, latest loss and eval loss, bytes communicated."""
        found = [self._guard(lambda: jobs.status(self.root, args.job_id))] if args.job_id else jobs.list_jobs(self.root)
        return StatusResult(jobs=[s.model_copy(update={"dir": self.sandbox.relative(self.root / s.job_id)})
                                  for s in found])

    @function(Effect.EXTERNAL)
    def stop(self, args: JobRef) -> jobs.JobStatus:
        """Stop a running training job (it can be resumed from its latest checkpoint)."""
        status = self._guard(lambda: jobs.stop(self.root, args.job_id))
        return status.model_copy(update={"dir": self.sandbox.relative(self.root / status.job_id)})

    @function(Effect.WRITE)
    def compare(self, args: CompareArgs) -> CompareResult:
        """Compare jobs: a table of eval loss and bytes, and a plot of eval loss against bytes communicated."""
        if args.job_ids:
            found = [self._guard(lambda j=j: jobs.status(self.root, j)) for j in args.job_ids]
        else:
            found = jobs.list_jobs(self.root)
        if not found:
            raise AppError("no training jobs to compare (start one with training.start)")
        target = self.sandbox.write_bytes(args.plot, cmp.plot_png(found))
        rows = cmp.rows(found)
        return CompareResult(rows=rows, table=cmp.table(rows), plot=self.sandbox.relative(target))

    def summary(self) -> str:
        running = [s.job_id for s in jobs.list_jobs(self.root) if s.state == "running"] if self.root.is_dir() else []
        return f"training jobs running: {', '.join(running)}" if running else ""
