"""The `training` app: start, watch, stop and compare distributed training jobs from the agent or TUI.

Job files and plots are sandbox paths; jobs live under `training/jobs/` in the sandbox. A job runs
torchrun in the background (see jobs.py), so `start` returns at once and `status` reports progress.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, field_validator

from intentos.app import App
from intentos.errors import AppError
from intentos.function import Effect, function
from intentos.skills import kit
from intentos.skills.training import compare as cmp
from intentos.skills.training import jobs
from intentos.skills.training.config import JobConfigError

JOBS_DIR = "training/jobs"


def _plain_job_id(value: str) -> str:
    try:
        return jobs.check_job_id(value)
    except jobs.JobError as exc:
        raise ValueError(str(exc)) from None


# A job id names a folder under training/jobs: a plain name, never a path ("../x", "/x", "..").
JobId = Annotated[str, AfterValidator(_plain_job_id),
                  Field(json_schema_extra={"pattern": jobs.JOB_ID_PATTERN, "maxLength": 64},
                        description="job name: letters, digits, '.', '_', '-'")]


class StartArgs(BaseModel):
    config: str = Field(description="job YAML file in the sandbox")
    nproc: int = Field(2, ge=1, le=256, description="processes (replicas) on this machine")
    resume: bool = Field(False, description="continue the job from its latest checkpoint")
    job_id: JobId | None = Field(None, description="job name (default: the config's name)")


class JobRef(BaseModel):
    job_id: JobId


class StatusArgs(BaseModel):
    job_id: JobId | None = Field(None, description="one job (default: all jobs)")


class StatusResult(BaseModel):
    jobs: list[jobs.JobStatus]


class CompareArgs(BaseModel):
    job_ids: list[JobId] | None = Field(None, max_length=100, description="jobs to compare (default: all)")
    plot: str = Field("training/compare.png", description="where to write the PNG plot in the sandbox (.png)")
    overwrite: bool = Field(False, description="replace an existing plot (the old one goes to the trash)")
    reference: JobId | None = Field(None, description="job the bytes ratio at matched loss is against (default: "
                                                      "the DiLoCo job among those compared)")
    tolerance: float = Field(cmp.DEFAULT_TOLERANCE, ge=0, le=1,
                             description="a job matches once its eval loss is within this fraction of the "
                                         "reference's final eval loss (0.02 = 2%)")

    @field_validator("plot")
    @classmethod
    def _png(cls, value: str) -> str:
        if not value.lower().endswith(".png"):
            raise ValueError(f"plot {value!r} must be a .png file")
        return value


class CompareResult(BaseModel):
    rows: list[cmp.CompareRow]
    table: str
    plot: str
    reference: str | None = Field(None, description="the job the matched-loss figures are against")
    tolerance: float = cmp.DEFAULT_TOLERANCE
    rule: str = Field("", description="how the bytes ratio at matched loss is worked out")


class TrainingApp(App):
    name = "training"
    description = "Distributed training jobs (DDP, DiLoCo, DiLoCo-DCT): start, status, stop, compare."

    @property
    def root(self) -> Path:
        return self.sandbox.resolve(JOBS_DIR)

    @function(Effect.EXTERNAL)
    def start(self, args: StartArgs) -> jobs.JobStatus:
        """Start a training job from a YAML job file, in the background (torchrun with nproc processes)."""
        config = self.sandbox.resolve(args.config)
        if not config.is_file():
            raise AppError(f"no job file {args.config!r} in the sandbox")
        with kit.skill_errors(self.sandbox):
            status = jobs.start(config, self.root, args.nproc, args.resume, args.job_id)
        return status.model_copy(update={"dir": self.sandbox.relative(self.root / status.job_id)})

    @function(Effect.READ)
    def status(self, args: StatusArgs) -> StatusResult:
        """Progress of training jobs: state, step, latest loss and eval loss, bytes communicated."""
        with kit.skill_errors(self.sandbox):
            found = [jobs.status(self.root, args.job_id)] if args.job_id else jobs.list_jobs(self.root)
        return StatusResult(jobs=[s.model_copy(update={"dir": self.sandbox.relative(self.root / s.job_id)})
                                  for s in found])

    @function(Effect.EXTERNAL)
    def stop(self, args: JobRef) -> jobs.JobStatus:
        """Stop a running training job (it can be resumed from its latest checkpoint)."""
        with kit.skill_errors(self.sandbox):
            status = jobs.stop(self.root, args.job_id)
        return status.model_copy(update={"dir": self.sandbox.relative(self.root / status.job_id)})

    @function(Effect.WRITE)
    def compare(self, args: CompareArgs) -> CompareResult:
        """Compare jobs: a table of eval loss and bytes (with the bytes ratio at matched loss against a reference
        job, by default the DiLoCo one), and a plot of eval loss against bytes communicated."""
        # The plot is a new .png outside intentos' own folders (.trash, .intentos); an existing file is
        # replaced only with overwrite, and then the old one goes to the trash first.
        target = kit.target(self.sandbox, args.plot)
        if target.suffix.lower() != ".png":  # e.g. plot.png, a symlink to docs/important.txt
            raise AppError(f"plot {args.plot} leads to {self.sandbox.relative(target)}, which is not a .png file")
        if target.exists() and not args.overwrite:
            raise AppError(f"{args.plot} already exists; pass overwrite: true to replace it (the old one goes "
                           "to the trash)")
        with kit.skill_errors(self.sandbox):
            found = [jobs.status(self.root, j) for j in args.job_ids] if args.job_ids else jobs.list_jobs(self.root)
            if not found:
                raise AppError("no training jobs to compare (start one with training.start)")
            rows = cmp.rows(found, args.reference, args.tolerance)
            png = cmp.plot_png(found)
        kit.make_room(self.sandbox, target, args.overwrite, args.plot)
        self.sandbox.write_bytes(target, png)
        return CompareResult(rows=rows, table=cmp.table(rows, args.tolerance), plot=self.sandbox.relative(target),
                             reference=rows[0].reference, tolerance=args.tolerance,
                             rule=cmp.rule(rows, args.tolerance))

    def summary(self) -> str:
        try:
            found = jobs.list_jobs(self.root) if self.root.is_dir() else []
        except (jobs.JobError, JobConfigError):
            return ""  # a damaged job folder is reported by status and compare, not here
        running = [s.job_id for s in found if s.state == "running"]
        return f"training jobs running: {', '.join(running)}" if running else ""
