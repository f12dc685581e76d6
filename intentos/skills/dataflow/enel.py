"""Enel (Scheinert et al., arXiv:2108.12211): dynamic rescaling of a running dataflow job.

A job is a graph of its stages (edges: Spark's "Parent IDs" inside a job, and the last stages of one
job to the first stages of the next, since a Spark application runs its jobs one after another).
Every stage is a node with its description (operation name hashed, tasks), the scale-out it runs
at, whether a rescaling happened just before it, and, once it has completed, its observed duration.
Message passing (torch-geometric SAGEConv) plus a summary of the completed stages (how fast this run
is going) lets the network predict, for each stage not yet done, its runtime and the rescaling
overhead it pays. Remaining runtime = sum over the remaining jobs of their critical path.

The rescaling rule: at the next job boundary, choose the smallest scale-out whose predicted
remaining time still meets the runtime target; if none does, the one predicted to finish first.

Enel's jobs are recurring: the graph of the jobs still to come is known from earlier runs, so the
model file keeps a template of each application it was trained on (by Spark's "App Name").
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from intentos.skills import kit
from intentos.skills.dataflow.bellamy import _threads
from intentos.skills.dataflow.encoding import BITS, hash_text
from intentos.skills.dataflow.eventlog import MAX_JOBS, MAX_STAGES, EventLog
from intentos.skills.kit import modelfile
from intentos.skills.kit.modelfile import ModelFileError

FORMAT_VERSION = 1
NODE_FEATURES = BITS + 12
MAX_TRAINING_NODES = 2_000_000  # stage nodes over all training graphs (each log is seen at every job boundary)


class EnelConfig(BaseModel):
    hidden: int = Field(32, ge=4, le=1024)
    layers: int = Field(2, ge=1, le=6)
    lr: float = Field(5e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    epochs: int = Field(150, ge=1)
    batch_size: int = Field(32, ge=1)
    seed: int = 0
    threads: int = Field(1, ge=1, le=64)


class StageTemplate(BaseModel):
    name: str
    num_tasks: int = Field(ge=0)
    parents: list[int] = Field(description="node indices (into the template's stage list) of the parents")
    job: int = Field(ge=0, description="job index (0 = first job of the application)")


class AppTemplate(BaseModel):
    app_name: str
    stages: list[StageTemplate] = Field(min_length=1, max_length=MAX_STAGES)
    jobs: int = Field(ge=0, le=MAX_JOBS)

    @model_validator(mode="after")
    def _a_graph(self) -> AppTemplate:
        """What a model file says must be a graph the code can walk: parents before their children."""
        for i, s in enumerate(self.stages):
            if s.job >= max(self.jobs, 1) or any(not 0 <= p < i for p in s.parents):
                raise ValueError(f"stage {i} of {self.app_name!r} has a job or parents outside the template")
        return self


class EnelHeader(BaseModel):
    kind: str = "enel"
    version: int = FORMAT_VERSION
    config: EnelConfig
    templates: dict[str, AppTemplate]
    executors_min: int = Field(ge=1)
    executors_max: int = Field(ge=1, le=100_000)
    cores: int = Field(ge=1)
    y_mean: float = Field(allow_inf_nan=False)
    y_std: float = Field(gt=0, allow_inf_nan=False)
    trained_logs: int
    trained_graphs: int

    @model_validator(mode="after")
    def _a_range(self) -> EnelHeader:
        if self.executors_max < self.executors_min:
            raise ValueError("executors_max is below executors_min")
        return self


# -- from a log to the nodes of its graph -------------------------------------------------------------


def template_of(log: EventLog) -> AppTemplate:
    """The stage graph of an application, from one of its logs (jobs in order, stages in job order)."""
    index: dict[int, int] = {}
    stages: list[StageTemplate] = []
    jobs = sorted(log.jobs, key=lambda j: j.job_id)
    for j, job in enumerate(jobs):
        for sid in job.stage_ids:
            rec = log.stage(sid)
            if rec is None or sid in index:
                continue
            index[sid] = len(stages)
            stages.append(StageTemplate(name=rec.name, num_tasks=rec.num_tasks, job=j,
                                        parents=[index[p] for p in rec.parents if p in index and p != sid]))
    return AppTemplate(app_name=log.app_name, stages=stages, jobs=len(jobs))


class Observation(BaseModel):
    """What is known of a run at one moment: per template node, done or not, duration, scale-out."""

    executors: list[int]
    durations: list[float | None] = Field(description="seconds of completed stages, None for the others")
    running_for: list[float] = Field(description="seconds a started, unfinished stage has run so far")
    true_durations: list[float | None] = Field(default_factory=list, description="training targets")


def _job_executors(log: EventLog, tpl: AppTemplate) -> list[int]:
    """The scale-out each job of the log ran at (executors alive when its last stage ended or now)."""
    counts = []
    jobs = sorted(log.jobs, key=lambda j: j.job_id)
    for job in jobs:
        ends = [s.completed_ms for s in (log.stage(i) for i in job.stage_ids) if s and s.completed_ms]
        counts.append(log.executors_at(max(ends)) if ends else log.executors_now())
    return counts[: tpl.jobs]


def observe(log: EventLog, tpl: AppTemplate, done_jobs: int | None = None) -> Observation:
    """Node states of `log` (a training log cut after `done_jobs` jobs, or a running log as it is)."""
    index: dict[int, int] = {}
    jobs = sorted(log.jobs, key=lambda j: j.job_id)
    pos = 0
    for job in jobs:
        for sid in job.stage_ids:
            if sid not in index and pos < len(tpl.stages):
                index[sid] = pos
                pos += 1
    job_n = _job_executors(log, tpl)
    now = log.executors_now()
    n = len(tpl.stages)
    executors = [job_n[s.job] if s.job < len(job_n) else now for s in tpl.stages]
    durations: list[float | None] = [None] * n
    running = [0.0] * n
    truth: list[float | None] = [None] * n
    for sid, i in index.items():
        rec = log.stage(sid)
        if rec is None:
            continue
        truth[i] = rec.duration_s
        known = done_jobs is None or tpl.stages[i].job < done_jobs
        if known and rec.duration_s is not None:
            durations[i] = rec.duration_s
        elif done_jobs is None and rec.submitted_ms is not None:
            running[i] = max((log.last_ms - rec.submitted_ms) / 1000, 0.0)
    return Observation(executors=executors, durations=durations, running_for=running, true_durations=truth)


def _node_features(tpl: AppTemplate, obs: Observation, n_max: int, cores: int, y_mean: float,
                   y_std: float) -> np.ndarray:
    rows = []
    job_n: dict[int, int] = {}
    for s, n in zip(tpl.stages, obs.executors, strict=True):
        job_n.setdefault(s.job, n)
    for i, s in enumerate(tpl.stages):
        n = max(obs.executors[i], 1)
        before = job_n.get(s.job - 1, job_n[s.job])
        # A job's source stages pay for a rescaling done at its start (new executors, lost caches).
        rescaled = float(before != job_n[s.job] and not s.parents)
        dur = obs.durations[i]
        op = s.name.split(" at ")[0]
        rows.append(np.concatenate([hash_text(op), [
            math.log1p(s.num_tasks) / 5, s.job / max(tpl.jobs, 1), float(not s.parents),
            n / n_max, 1 / n, math.log(n) / math.log(n_max + 1), math.log1p(s.num_tasks / (n * cores)),
            rescaled, rescaled * (job_n[s.job] - before) / n_max, rescaled * abs(job_n[s.job] - before) / n_max,
            float(dur is not None), 0.0 if dur is None else (math.log(max(dur, 1e-3)) - y_mean) / y_std]]))
    return np.asarray(rows, dtype=np.float32)


def _edges(tpl: AppTemplate) -> np.ndarray:
    src, dst = [], []
    for i, s in enumerate(tpl.stages):
        for p in s.parents:
            src.append(p)
            dst.append(i)
    for j in range(1, tpl.jobs):  # job chain: sinks of job j-1 -> sources of job j
        prev = [i for i, s in enumerate(tpl.stages) if s.job == j - 1]
        has_child = {p for s in tpl.stages for p in s.parents}
        sinks = [i for i in prev if i not in has_child] or prev
        sources = [i for i, s in enumerate(tpl.stages) if s.job == j and not s.parents]
        for a in sinks:
            for b in sources:
                src.append(a)
                dst.append(b)
    e = np.asarray([src, dst], dtype=np.int64).reshape(2, -1)
    return np.concatenate([e, e[::-1]], axis=1)  # both directions: what comes after also informs


def _graph(tpl: AppTemplate, obs: Observation, header: EnelHeader) -> Any:
    import torch
    from torch_geometric.data import Data

    x = _node_features(tpl, obs, header.executors_max, header.cores, header.y_mean, header.y_std)
    y = [math.nan if d is None else d for d in (obs.true_durations or [None] * len(tpl.stages))]
    return Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(_edges(tpl).copy()),
                y=torch.tensor(y, dtype=torch.float32),
                done=torch.tensor([d is not None for d in obs.durations]),
                rescaled=torch.from_numpy(x[:, BITS + 7].copy()))


# -- the network ------------------------------------------------------------------------------------------


def _net(cfg: EnelConfig) -> Any:
    import torch
    from torch import nn
    from torch_geometric.nn import SAGEConv
    from torch_geometric.utils import scatter

    h = cfg.hidden

    class EnelNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Sequential(nn.Linear(NODE_FEATURES, h), nn.ReLU())
            self.convs = nn.ModuleList(SAGEConv(h, h) for _ in range(cfg.layers))
            self.runtime = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Linear(h, 1))
            self.overhead = nn.Sequential(nn.Linear(2 * h + 3, h), nn.ReLU(), nn.Linear(h, 1))

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor, done: torch.Tensor,
                    batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = self.embed(x)
            for conv in self.convs:
                z = z + torch.relu(conv(z, edge_index))
            # The run's pace: mean embedding of its completed stages (zeros before any completed).
            size = int(batch.max()) + 1 if batch.numel() else 1
            pace = scatter(z * done.unsqueeze(1), batch, dim=0, dim_size=size, reduce="sum")
            count = scatter(done.float(), batch, dim=0, dim_size=size, reduce="sum").clamp(min=1).unsqueeze(1)
            zz = torch.cat([z, (pace / count)[batch]], dim=1)
            log_runtime = self.runtime(zz).squeeze(1)
            overhead = nn.functional.softplus(self.overhead(torch.cat([zz, x[:, BITS + 7:BITS + 10]], 1))).squeeze(1)
            return log_runtime, overhead

    return EnelNet()


class Prediction(BaseModel):
    """Predicted seconds per template node (0 for completed ones) and remaining runtime."""

    stage_seconds: list[float]
    overhead_seconds: list[float]
    remaining_s: float


class Enel:
    def __init__(self, header: EnelHeader, net: Any) -> None:
        self.header = header
        self.net = net

    def _seconds(self, log_runtime: Any, overhead: Any, rescaled: Any) -> Any:
        import torch

        base = torch.exp(log_runtime * self.header.y_std + self.header.y_mean)
        return base, overhead * rescaled * math.exp(self.header.y_mean)

    @classmethod
    def train(cls, logs: Sequence[EventLog], config: EnelConfig | None = None, cancelled: kit.Cancel = None) -> Enel:
        """Train on completed logs, each seen at every job boundary (what was known then -> the rest).

        `cancelled` is checked per log while the graphs are built and every batch while training: up to
        MAX_TRAINING_NODES nodes make an epoch take seconds."""
        import torch
        from torch_geometric.loader import DataLoader

        cfg = config or EnelConfig()
        complete = [log for log in logs if log.complete and log.jobs]
        if not complete:
            raise ValueError("Enel needs at least one complete event log (with SparkListenerApplicationEnd)")
        templates: dict[str, AppTemplate] = {}
        for log in complete:
            tpl = template_of(log)
            if tpl.stages and (log.app_name not in templates or len(tpl.stages) > len(templates[log.app_name].stages)):
                templates[log.app_name] = tpl
        complete = [log for log in complete if log.app_name in templates]
        if not complete:
            raise ValueError("none of the complete event logs has a job with stages")
        nodes = sum(len(templates[log.app_name].stages) * templates[log.app_name].jobs for log in complete)
        if nodes > MAX_TRAINING_NODES:
            raise ValueError(f"the event logs make {nodes:,} training nodes (stages x job boundaries); at most "
                             f"{MAX_TRAINING_NODES:,} are trained on at once: give fewer or smaller logs")
        durations = [s.duration_s for log in complete for s in log.stages if s.duration_s]
        if not durations:
            raise ValueError("no stage of the complete event logs has both a submission and a completion time")
        counts = [c for log in complete for c in (log.max_executors(), *_job_executors(log, templates[log.app_name]))]
        cores = max((c.cores for log in complete for c in log.executor_changes if c.cores), default=1)
        logs_d = np.log(np.maximum(durations, 1e-3))
        header = EnelHeader(config=cfg, templates=templates, executors_min=max(min(counts), 1),
                            executors_max=max(max(counts), 1), cores=cores, y_mean=float(logs_d.mean()),
                            y_std=float(max(logs_d.std(), 1e-3)), trained_logs=len(complete), trained_graphs=0)
        torch.manual_seed(cfg.seed)
        model = cls(header, _net(cfg))
        graphs = []
        for log in complete:
            kit.check(cancelled)
            tpl = templates[log.app_name]
            if template_of(log).stages != tpl.stages:
                continue  # another shape of the same app name: its nodes would not line up
            for done_jobs in range(tpl.jobs):
                graphs.append(_graph(tpl, observe(log, tpl, done_jobs), header))
        header.trained_graphs = len(graphs)
        with _threads(cfg.threads):
            optim = torch.optim.Adam(model.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=cfg.epochs, eta_min=cfg.lr / 10)
            gen = torch.Generator().manual_seed(cfg.seed)
            best, best_state = math.inf, copy.deepcopy(model.net.state_dict())
            for _ in range(cfg.epochs):
                model.net.train()
                total, n = 0.0, 0
                for b in DataLoader(graphs, batch_size=cfg.batch_size, shuffle=True, generator=gen):
                    kit.check(cancelled)
                    log_rt, ovh = model.net(b.x, b.edge_index, b.done, b.batch)
                    base, extra = model._seconds(log_rt, ovh, b.rescaled)
                    target = ~b.done & ~torch.isnan(b.y)  # predict what is not yet known
                    if not target.any():
                        continue
                    err = torch.log(base[target] + extra[target]) - torch.log(b.y[target].clamp(min=1e-3))
                    loss = (err**2).mean()
                    optim.zero_grad()
                    loss.backward()
                    optim.step()
                    total, n = total + float(loss.detach()) * int(target.sum()), n + int(target.sum())
                sched.step()
                if n and total / n < best:
                    best, best_state = total / n, copy.deepcopy(model.net.state_dict())
            model.net.load_state_dict(best_state)
            model.net.eval()
        return model

    def template(self, app_name: str) -> AppTemplate:
        tpl = self.header.templates.get(app_name)
        if tpl is None:
            known = ", ".join(sorted(self.header.templates)) or "none"
            raise ModelFileError(f"the model knows no application {app_name!r} (known: {known}); "
                                 "train it on earlier runs of this application")
        return tpl

    def predict_remaining(self, log: EventLog, executors: int | None = None) -> Prediction:
        """Remaining seconds of a running job if the jobs not yet started run at `executors`."""
        import torch

        tpl = self.template(log.app_name)
        obs = observe(log, tpl)
        obs.true_durations = []
        started = {s.job for s, d, r in zip(tpl.stages, obs.durations, obs.running_for, strict=True)
                   if d is not None or r > 0}
        current_job = max(started, default=-1)
        job_done = all(d is not None for s, d in zip(tpl.stages, obs.durations, strict=True) if s.job == current_job)
        first_future = current_job + 1 if job_done else current_job + 1
        now_n = log.executors_now() or obs.executors[0]
        if executors is not None:
            obs.executors = [executors if s.job >= first_future else (n if s.job < current_job else now_n)
                             for s, n in zip(tpl.stages, obs.executors, strict=True)]
        with _threads(self.header.config.threads), torch.no_grad():
            g = _graph(tpl, obs, self.header)
            log_rt, ovh = self.net(g.x, g.edge_index, g.done, torch.zeros(len(tpl.stages), dtype=torch.long))
            base, extra = self._seconds(log_rt, ovh, g.rescaled)
        seconds = (base + extra).double().numpy()
        rem = np.where([d is not None for d in obs.durations], 0.0,
                       np.maximum(seconds - np.asarray(obs.running_for), 0.0))
        # A job ends with its critical path; jobs run one after another.
        finish = np.zeros(len(tpl.stages))
        for i, s in enumerate(tpl.stages):
            finish[i] = max((finish[p] for p in s.parents), default=0.0) + rem[i]
        remaining = sum(float(finish[[i for i, s in enumerate(tpl.stages) if s.job == j]].max())
                        for j in range(tpl.jobs) if any(s.job == j for s in tpl.stages))
        return Prediction(stage_seconds=rem.tolist(), overhead_seconds=extra.double().numpy().tolist(),
                          remaining_s=remaining)

    # -- persistence ----------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        return modelfile.save(path, self.header, self.net.state_dict())

    def to_bytes(self) -> bytes:
        return modelfile.to_bytes(self.header, self.net.state_dict())

    @classmethod
    def load(cls, path: str | Path) -> Enel:
        """A model file anywhere (CLI, tests)."""
        return cls._build(*modelfile.load(path, EnelHeader, "enel", FORMAT_VERSION, "an Enel"), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> Enel:
        """A model from the bytes of the file `name` (the app reads them through the sandbox)."""
        return cls._build(*modelfile.from_bytes(data, name, EnelHeader, "enel", FORMAT_VERSION, "an Enel"), name)

    @classmethod
    def _build(cls, header: EnelHeader, state: dict[str, Any], name: str) -> Enel:
        net = _net(header.config)
        modelfile.load_state(net, state, name)
        net.eval()
        return cls(header, net)


class Candidate(BaseModel):
    executors: int
    remaining_s: float
    total_s: float
    meets_target: bool


class RescaleDecision(BaseModel):
    app_name: str
    elapsed_s: float
    current_executors: int
    recommended_executors: int
    meets_target: bool
    target_s: float
    candidates: list[Candidate]


def rescale_decision(model: Enel, log: EventLog, target_s: float,
                     candidates: Sequence[int] | None = None) -> RescaleDecision:
    """Enel's rule: the smallest scale-out whose predicted remaining time fits the runtime target."""
    if target_s <= 0:
        raise ValueError("the runtime target must be positive")
    elapsed = max((log.last_ms - log.start_ms) / 1000, 0.0)
    options = sorted(set(candidates or range(model.header.executors_min, model.header.executors_max + 1)))
    rows = []
    for n in options:
        rem = model.predict_remaining(log, n).remaining_s
        rows.append(Candidate(executors=n, remaining_s=round(rem, 2), total_s=round(elapsed + rem, 2),
                              meets_target=elapsed + rem <= target_s))
    fitting = [c for c in rows if c.meets_target]
    pick = fitting[0] if fitting else min(rows, key=lambda c: c.total_s)
    return RescaleDecision(app_name=log.app_name, elapsed_s=round(elapsed, 2), current_executors=log.executors_now(),
                           recommended_executors=pick.executors, meets_target=bool(fitting), target_s=target_s,
                           candidates=rows)
