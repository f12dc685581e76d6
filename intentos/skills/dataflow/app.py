"""The `dataflow` app: predict a Spark-style job's runtime per scale-out, pick the cheapest scale-out that
meets a runtime target, and re-plan the scale-out of a running job from its event log.

The argument models and `DataflowApp`, which reads and writes every file only through the sandbox
(the kit's bounded reads, no link followed out, atomic writes whose old version goes to the trash),
names sandbox-relative paths in results and errors, passes the context's cancel event into every
training, and hands the parsed inputs to the work in ops.py. Model knobs come from the context
settings, `dataflow: {bellamy: {...}, enel: {...}}` (see BellamyConfig and EnelConfig), e.g. for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from intentos.app import App
from intentos.errors import AppError
from intentos.function import Effect, function
from intentos.skills import kit
from intentos.skills.dataflow import ops
from intentos.skills.dataflow.eventlog import is_rolling_folder
from intentos.skills.dataflow.history import History, parse_history
from intentos.skills.dataflow.ops import (
    ContextSpec,
    Method,
    Recommendation,
    Rescaled,
    RescalePlan,
    RuntimePrediction,
    TrainedModel,
)


class PredictArgs(BaseModel):
    history: str = Field(description="execution history in the sandbox: C3O TSV or Bell CSV")
    context: ContextSpec = Field(default_factory=ContextSpec)
    scaleouts: list[int] | None = Field(None, description="scale-outs to predict; default: the history's range")
    model: str | None = Field(None, description="a pre-trained Bellamy model file in the sandbox (else trained now)")


class RecommendArgs(PredictArgs):
    target_runtime_s: float = Field(gt=0, description="the job must finish within this many seconds")
    cost_per_node_hour: float = Field(1.0, ge=0, description="price of one machine for one hour")
    method: Method = Field("bellamy", description="predictor that decides: bellamy (default) or ernest")


class TrainArgs(BaseModel):
    history: str = Field(description="execution history (C3O TSV or Bell CSV) in the sandbox")
    output: str = Field(description="model file to write in the sandbox, e.g. models/grep.pt")
    overwrite: bool = Field(False, description="replace an existing model file")


class TrainRescalerArgs(BaseModel):
    logs: list[str] = Field(min_length=1, description="complete Spark event logs of earlier runs, or folders of them")
    output: str = Field(description="model file to write in the sandbox, e.g. models/enel.pt")
    overwrite: bool = False


class RescaleArgs(BaseModel):
    eventlog: str = Field(description="the running job's Spark event log in the sandbox")
    target_runtime_s: float = Field(gt=0, description="the whole job must finish within this many seconds")
    model: str | None = Field(None, description="a trained Enel model file in the sandbox")
    history_logs: list[str] | None = Field(None, description="without a model: complete event logs (or folders) "
                                                             "of earlier runs of this job to learn from")
    candidates: list[int] | None = Field(None, description="scale-outs to consider; default: the trained range")


class ApplyRescaleArgs(RescaleArgs):
    control_url: str = Field(description="the running job's executor control endpoint on this machine, e.g. "
                                         "http://127.0.0.1:40123 (a job launched rescalable serves it from its "
                                         "driver)")


class DataflowApp(App):
    name = "dataflow"
    description = ("Spark-style dataflow jobs: runtime per scale-out (Bellamy vs Ernest), the cheapest scale-out "
                   "meeting a runtime target, re-planning a running job's scale-out (Enel).")

    @function(Effect.READ)
    def predict_runtime(self, args: PredictArgs) -> RuntimePrediction:
        """Predict a job's runtime at each scale-out from an execution history (Bellamy, with Ernest baseline)."""
        with kit.skill_errors(self.sandbox):
            return ops.predict_runtime(self._history(args.history), args.context, args.scaleouts,
                                       model=self._bellamy(args.model) if args.model else None,
                                       bellamy_overrides=kit.section(self.ctx, "dataflow", "bellamy"),
                                       cancelled=self.ctx.cancelled)

    @function(Effect.READ)
    def recommend_scaleout(self, args: RecommendArgs) -> Recommendation:
        """Choose the cheapest scale-out whose predicted runtime meets a target; cost and runtime per candidate."""
        with kit.skill_errors(self.sandbox):
            return ops.recommend_scaleout(self._history(args.history), args.context, args.target_runtime_s,
                                          args.cost_per_node_hour, args.scaleouts, method=args.method,
                                          model=self._bellamy(args.model) if args.model else None,
                                          bellamy_overrides=kit.section(self.ctx, "dataflow", "bellamy"),
                                          cancelled=self.ctx.cancelled)

    @function(Effect.WRITE)
    def train_runtime_model(self, args: TrainArgs) -> TrainedModel:
        """Pre-train a Bellamy runtime model on an execution history and save it as a model file."""
        with kit.skill_errors(self.sandbox):
            save = self._saver(args.output, args.overwrite)
            return ops.train_runtime_model(self._history(args.history), save,
                                           bellamy_overrides=kit.section(self.ctx, "dataflow", "bellamy"),
                                           cancelled=self.ctx.cancelled)

    @function(Effect.WRITE)
    def train_rescaler(self, args: TrainRescalerArgs) -> TrainedModel:
        """Train an Enel rescaling model on complete Spark event logs of earlier runs and save it."""
        with kit.skill_errors(self.sandbox):
            save = self._saver(args.output, args.overwrite)
            return ops.train_rescaler(self._logs(args.logs), save,
                                      enel_overrides=kit.section(self.ctx, "dataflow", "enel"),
                                      cancelled=self.ctx.cancelled)[1]

    @function(Effect.READ)
    def rescale_plan(self, args: RescaleArgs) -> RescalePlan:
        """Recommend the scale-out for a running Spark job now, from its event log and a runtime target (Enel)."""
        with kit.skill_errors(self.sandbox):
            from intentos.skills.dataflow.enel import Enel

            log = self._log(args.eventlog)
            if args.model:
                model = Enel.from_bytes(kit.read_file(self.sandbox, args.model, "model file"), args.model)
            elif args.history_logs:
                model = ops.train_rescaler(self._logs(args.history_logs),
                                           enel_overrides=kit.section(self.ctx, "dataflow", "enel"),
                                           cancelled=self.ctx.cancelled)[0]
            else:
                raise AppError("give a trained Enel model or history_logs (complete event logs of earlier runs)")
            return ops.rescale_plan(log, args.target_runtime_s, model=model, candidates=args.candidates)

    @function(Effect.EXTERNAL)
    def rescale(self, args: ApplyRescaleArgs) -> Rescaled:
        """Re-plan a running Spark job's scale-out (Enel) and apply it: request or kill executors through the
        job's control endpoint."""
        plan = self.rescale_plan(args)
        with kit.skill_errors(self.sandbox):
            return ops.apply_rescale(plan, args.control_url)

    # -- plumbing: every file is read and written through the sandbox -----------------------------------------

    def _history(self, raw: str) -> History:
        return parse_history(kit.read_file(self.sandbox, raw, "history file"), raw)

    def _bellamy(self, raw: str) -> Any:
        from intentos.skills.dataflow.bellamy import Bellamy

        return Bellamy.from_bytes(kit.read_file(self.sandbox, raw, "model file"), raw)

    def _logs(self, raws: Sequence[str]) -> list[Any]:
        """Event logs as given, and those in given folders (`is_log_name` files and Spark's rolling-log folders;
        links in a folder are not followed)."""
        logs: list[str] = []
        links: list[str] = []
        for raw in raws:
            entries = None if is_rolling_folder(PurePosixPath(raw).name) else kit.folder_entries(self.sandbox, raw)
            if entries is None:
                logs.append(raw)
                continue
            logs += [e.path for e in entries if (e.is_file and ops.is_log_name(e.name))
                     or (e.is_dir and is_rolling_folder(e.name))]
            links += [e.path for e in entries if e.kind == "link" and ops.is_log_name(e.name)]
        if not logs:
            raise AppError("no event logs found in " + ", ".join(raws)
                           + (f" (links are not followed: {', '.join(links[:3])})" if links else ""))
        if len(logs) > ops.MAX_LOGS:
            raise AppError(f"{len(logs)} event logs; at most {ops.MAX_LOGS} are read at once")
        return [self._log(raw) for raw in logs]

    def _log(self, raw: str) -> Any:
        """One event log: a file, or a rolling log's eventlog_v2_ folder (its event files in order)."""
        from intentos.skills.dataflow.eventlog import parse_eventlog_bytes, parse_eventlog_parts, rolling_parts

        entries = kit.folder_entries(self.sandbox, raw)
        if entries is None:
            return parse_eventlog_bytes(kit.read_file(self.sandbox, raw, "event log"), raw)
        names = rolling_parts([e.name for e in entries if e.is_file])
        if not names:
            raise AppError(f"{raw} is a folder without events_<n>_ files, not a Spark rolling event log")
        return parse_eventlog_parts([(n, kit.read_file(self.sandbox, f"{raw}/{n}", "event log")) for n in names], raw)

    def _saver(self, raw: str, overwrite: bool) -> ops.Save:
        """Check the output before the work (refused if something is there, unless overwrite); write after."""
        rel = kit.write_target(self.sandbox, raw, overwrite=overwrite)

        def save(data: bytes) -> str:
            kit.write_file(self.sandbox, rel, data, overwrite=overwrite, shown=raw)
            return raw

        return save
