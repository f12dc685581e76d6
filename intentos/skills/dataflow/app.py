"""The `dataflow` app: predict a Spark-style job's runtime per scale-out, pick the cheapest scale-out that
meets a runtime target, and re-plan the scale-out of a running job from its event log.

Two layers, as in the logs skill. The functions below the results work on parsed inputs and hand the
bytes of a trained model to a `save` callback; `DataflowApp` reads and writes every file only through
the sandbox (intentos.skills.paths: bounded reads, no link followed out, atomic writes whose old
version goes to the trash), naming sandbox-relative paths in results and errors, while the CLI
(cli.py) reads and writes any path.

Runtime prediction is Bellamy (pre-trained on every context of the history, fine-tuned on the runs of
the target context), always next to the Ernest baseline fit on the same runs. Rescaling is Enel,
trained on earlier complete event logs of the same application or loaded from a saved model.
torch and friends are imported inside the functions, so loading the Function Table stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from intentos.app import App
from intentos.errors import AppError, IntentosError, SandboxError
from intentos.function import Effect, function
from intentos.skills import paths
from intentos.skills.dataflow.history import History, Run, parse_history

Method = Literal["bellamy", "ernest"]
MAX_CANDIDATES = 200
MAX_LOGS = 1_000  # event logs read for one training
# Small, fast settings (tests, CLI --quick): fewer epochs, same architecture.
QUICK_BELLAMY: dict[str, Any] = {"pretrain_epochs": 40, "finetune_epochs": 200, "pretrain_patience": 15}
QUICK_ENEL: dict[str, Any] = {"epochs": 25, "hidden": 16}


# -- arguments and results ---------------------------------------------------------------------------------


class ContextSpec(BaseModel):
    """Which context (machine type, data size, job parameters) of the history to predict for.

    Fields left out match any value; together they must single out one context of the history, or
    name every field of a context the history has no runs of (then Bellamy predicts from the others).
    """

    machine_type: str | None = None
    data_size_mb: float | None = Field(None, ge=0)
    params: dict[str, str] = Field(default_factory=dict, description="job parameters, e.g. {'k': '3'}")


class PredictArgs(BaseModel):
    history: str = Field(description="execution history in the sandbox: C3O TSV or Bell CSV")
    context: ContextSpec = Field(default_factory=ContextSpec)
    scaleouts: list[int] | None = Field(None, description="scale-outs to predict; default: the history's range")
    model: str | None = Field(None, description="a pre-trained Bellamy model file in the sandbox (else trained now)")


class ScaleoutRow(BaseModel):
    scaleout: int
    bellamy_s: float
    ernest_s: float | None = Field(description="the Ernest baseline; None with fewer than 2 scale-outs of the context")
    observed_s: float | None = Field(description="mean runtime of the context's runs at this scale-out, if any")


class RuntimePrediction(BaseModel):
    history: str
    algorithm: str
    context: dict[str, str]
    context_runs: int = Field(description="runs of this context in the history (used for fine-tuning)")
    pretrained_runs: int
    rows: list[ScaleoutRow]
    summary: str


class RecommendArgs(PredictArgs):
    target_runtime_s: float = Field(gt=0, description="the job must finish within this many seconds")
    cost_per_node_hour: float = Field(1.0, ge=0, description="price of one machine for one hour")
    method: Method = Field("bellamy", description="predictor that decides: bellamy (default) or ernest")


class CandidateRow(BaseModel):
    scaleout: int
    runtime_s: float
    cost: float
    meets_target: bool


class Recommendation(BaseModel):
    history: str
    method: str
    target_runtime_s: float
    recommended: int | None = Field(description="the cheapest scale-out meeting the target; None if none does")
    runtime_s: float | None
    cost: float | None
    fastest: int = Field(description="the scale-out predicted fastest")
    candidates: list[CandidateRow]
    summary: str


class TrainArgs(BaseModel):
    history: str = Field(description="execution history (C3O TSV or Bell CSV) in the sandbox")
    output: str = Field(description="model file to write in the sandbox, e.g. models/grep.pt")
    overwrite: bool = Field(False, description="replace an existing model file")


class TrainedModel(BaseModel):
    model: str
    kind: str
    trained_on: str
    runs: int
    contexts: int
    summary: str


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


class RescaleCandidate(BaseModel):
    executors: int
    remaining_s: float
    total_s: float
    meets_target: bool


class RescalePlan(BaseModel):
    eventlog: str
    app_name: str
    running: bool = Field(description="False when the log already has ApplicationEnd")
    elapsed_s: float
    jobs_done: int
    jobs_total: int
    current_executors: int
    recommended_executors: int
    meets_target: bool
    target_runtime_s: float
    candidates: list[RescaleCandidate]
    summary: str


# -- the work, on parsed inputs (the app reads them through the sandbox, the CLI from any path) ---------------


def _bellamy_config(overrides: dict[str, Any] | None) -> Any:
    from intentos.skills.dataflow.bellamy import BellamyConfig

    return BellamyConfig(**(overrides or {}))


def select_context(history: History, spec: ContextSpec) -> tuple[Run, list[Run]]:
    """A template run of the chosen context and the history's runs of it (maybe none: a new context)."""
    unknown = sorted(set(spec.params) - set(history.param_names))
    if unknown:
        raise AppError(f"{history.source}: no job parameter {', '.join(unknown)}; "
                       f"its parameters: {', '.join(history.param_names) or 'none'}")
    contexts = history.contexts()

    def fits(run: Run) -> bool:
        return ((spec.machine_type is None or run.machine_type == spec.machine_type)
                and (spec.data_size_mb is None or run.data_size_mb == spec.data_size_mb)
                and all(run.params.get(k) == v for k, v in spec.params.items()))

    matching = [key for key, runs in contexts.items() if fits(runs[0])]
    if len(matching) == 1:
        runs = contexts[matching[0]]
        return runs[0], runs
    if len(matching) > 1:
        shown = "; ".join(_describe(contexts[k][0], history) for k in sorted(matching)[:5])
        raise AppError(f"{history.source}: {len(matching)} contexts match; say which (machine_type, data_size_mb, "
                       f"params), e.g. {shown}" + (" ..." if len(matching) > 5 else ""))
    missing = [n for n in ("machine_type", "data_size_mb") if getattr(spec, n) is None]
    missing += [p for p in history.param_names if p not in spec.params]
    if history.format == "c3o" and missing:
        raise AppError(f"{history.source}: no runs of that context; to predict a new one give every field "
                       f"(missing: {', '.join(missing)})")
    # A new context: per-machine slots/memory from a run on the same machine type, if any.
    same = next((r for r in history.runs if r.machine_type == spec.machine_type), None)
    template = Run(scaleout=1, machine_type=spec.machine_type or "", data_size_mb=spec.data_size_mb or 0.0,
                   slots=same.slots / same.scaleout if same else 0.0,
                   memory=same.memory / same.scaleout if same else 0.0,
                   params=dict(spec.params), runtime_s=1.0)
    return template, []


def _enough(history: History) -> list[Run]:
    if len(history.runs) < 2:
        raise AppError(f"{history.source}: one run; Bellamy pre-trains on at least two")
    return history.runs


def _describe(run: Run, history: History) -> str:
    parts = [f"machine_type={run.machine_type}", f"data_size_mb={run.data_size_mb:g}"]
    return ", ".join(parts + [f"{p}={run.params[p]}" for p in history.param_names])


def _context_dict(run: Run, history: History) -> dict[str, str]:
    if history.format == "bell":
        return {}
    return {"machine_type": run.machine_type, "data_size_mb": f"{run.data_size_mb:g}", **run.params}


def _scaleouts(history: History, given: Sequence[int] | None) -> list[int]:
    if given:
        if any(m < 1 for m in given):
            raise AppError("scale-outs must be at least 1")
        return sorted(set(given))
    lo, hi = min(history.scaleouts()), max(history.scaleouts())
    if hi - lo + 1 > MAX_CANDIDATES:
        raise AppError(f"{history.source}: scale-outs {lo}-{hi} are more than {MAX_CANDIDATES} to predict; "
                       "give the scale-outs to predict")
    return list(range(lo, hi + 1))


def predict_runtime(history: History, context: ContextSpec, scaleouts: Sequence[int] | None = None, *,
                    model: Any | None = None, bellamy_overrides: dict[str, Any] | None = None) -> RuntimePrediction:
    """Bellamy (and Ernest where the context has runs) at each scale-out of one context.

    `model`: a pre-trained Bellamy (else one is pre-trained on the history now).
    """
    import numpy as np

    from intentos.skills.dataflow.bellamy import Bellamy
    from intentos.skills.dataflow.ernest import Ernest

    template, runs = select_context(history, context)
    ms = _scaleouts(history, scaleouts)
    if len(ms) > MAX_CANDIDATES:
        raise AppError(f"at most {MAX_CANDIDATES} scale-outs at once")
    if model is not None:
        if model.header.param_names != history.param_names:
            raise AppError(f"the model was trained on parameters {model.header.param_names}, the history has "
                           f"{history.param_names}")
    else:
        model = Bellamy.pretrain(_enough(history), algorithm=history.algorithm, param_names=history.param_names,
                                 config=_bellamy_config(bellamy_overrides))
    tuned = model.finetune(runs) if runs else model
    bellamy = tuned.predict(template, ms)
    distinct = sorted({r.scaleout for r in runs})
    ernest = (Ernest.fit([r.scaleout for r in runs], [r.runtime_s for r in runs], size=template.data_size_mb or 1.0)
              .predict(ms) if len(distinct) >= 2 else None)
    observed = {m: float(np.mean([r.runtime_s for r in runs if r.scaleout == m])) for m in distinct}
    rows = [ScaleoutRow(scaleout=m, bellamy_s=round(float(b), 2),
                        ernest_s=None if ernest is None else round(float(ernest[i]), 2),
                        observed_s=None if m not in observed else round(observed[m], 2))
            for i, (m, b) in enumerate(zip(ms, bellamy, strict=True))]
    how = (f"fine-tuned on {len(runs)} runs of the context at {len(distinct)} scale-outs" if runs
           else "a context without runs: pre-trained model only, no Ernest baseline")
    best = min(rows, key=lambda r: r.bellamy_s)
    summary = (f"{history.algorithm}: Bellamy pre-trained on {model.header.pretrained_runs} runs, {how}; "
               f"fastest predicted {best.bellamy_s:.1f}s at scale-out {best.scaleout}")
    return RuntimePrediction(history=history.source, algorithm=history.algorithm,
                             context=_context_dict(template, history), context_runs=len(runs),
                             pretrained_runs=model.header.pretrained_runs, rows=rows,
                             summary=summary)


def recommend_scaleout(history: History, context: ContextSpec, target_s: float, cost_per_node_hour: float,
                       scaleouts: Sequence[int] | None = None, *, method: Method = "bellamy",
                       model: Any | None = None, bellamy_overrides: dict[str, Any] | None = None) -> Recommendation:
    """The cheapest scale-out whose predicted runtime meets the target (cost = runtime x machines x price)."""
    pred = predict_runtime(history, context, scaleouts, model=model, bellamy_overrides=bellamy_overrides)
    if method == "ernest" and pred.rows[0].ernest_s is None:
        raise AppError("Ernest needs runs of the context at two or more scale-outs; use method bellamy")
    rows = []
    for r in pred.rows:
        runtime = float(r.bellamy_s if method == "bellamy" else r.ernest_s)  # type: ignore[arg-type]
        rows.append(CandidateRow(scaleout=r.scaleout, runtime_s=round(runtime, 2),
                                 cost=round(runtime / 3600 * r.scaleout * cost_per_node_hour, 4),
                                 meets_target=runtime <= target_s))
    fitting = [c for c in rows if c.meets_target]
    best = min(fitting, key=lambda c: (c.cost, c.runtime_s)) if fitting else None
    fastest = min(rows, key=lambda c: c.runtime_s)
    if best:
        summary = (f"scale-out {best.scaleout}: {best.runtime_s:.1f}s predicted ({method}), cost {best.cost:.4g}, "
                   f"the cheapest of {len(fitting)} meeting {target_s:g}s")
    else:
        summary = (f"no scale-out meets {target_s:g}s ({method}); the fastest is {fastest.scaleout} at "
                   f"{fastest.runtime_s:.1f}s")
    return Recommendation(history=pred.history, method=method, target_runtime_s=target_s,
                          recommended=best.scaleout if best else None, runtime_s=best.runtime_s if best else None,
                          cost=best.cost if best else None, fastest=fastest.scaleout, candidates=rows, summary=summary)


Save = Callable[[bytes], str]  # writes a model file's bytes; returns its name as shown in results


def train_runtime_model(history: History, save: Save, *,
                        bellamy_overrides: dict[str, Any] | None = None) -> TrainedModel:
    """Pre-train Bellamy's general model on every context of a history and save it."""
    from intentos.skills.dataflow.bellamy import Bellamy

    model = Bellamy.pretrain(_enough(history), algorithm=history.algorithm, param_names=history.param_names,
                             config=_bellamy_config(bellamy_overrides))
    shown = save(model.to_bytes())
    n_ctx = len(history.contexts())
    return TrainedModel(model=shown, kind="bellamy", trained_on=history.source,
                        runs=len(history.runs), contexts=n_ctx,
                        summary=f"Bellamy model of {history.algorithm} pre-trained on {len(history.runs)} runs "
                                f"of {n_ctx} contexts")


def is_log_name(name: str) -> bool:
    """What a folder of event logs is searched for: *.json, *.jsonl and extension-less names (Spark names
    logs app-...), not hidden ones."""
    return not name.startswith(".") and PurePosixPath(name).suffix in (".json", ".jsonl", "")


def train_rescaler(logs: Sequence[Any], save: Save | None = None, *,
                   enel_overrides: dict[str, Any] | None = None) -> tuple[Any, TrainedModel]:
    """Train Enel on complete event logs (optionally saving it); returns the model and a description."""
    from intentos.skills.dataflow.enel import Enel, EnelConfig

    complete = [g for g in logs if g.complete]
    if not complete:
        raise AppError("none of the event logs is complete (no SparkListenerApplicationEnd); Enel learns from "
                       "finished runs")
    model = Enel.train(complete, EnelConfig(**(enel_overrides or {})))
    shown = save(model.to_bytes()) if save is not None else ""
    apps = sorted(model.header.templates)
    return model, TrainedModel(model=shown, kind="enel",
                               trained_on=f"{len(complete)} event logs", runs=len(complete), contexts=len(apps),
                               summary=f"Enel trained on {len(complete)} complete runs ({model.header.trained_graphs} "
                                       f"graphs) of {', '.join(apps)}; scale-outs "
                                       f"{model.header.executors_min}-{model.header.executors_max}")


def rescale_plan(log: Any, target_s: float, *, model: Any, candidates: Sequence[int] | None = None) -> RescalePlan:
    """Enel's recommendation for a running job: the smallest scale-out meeting the target from now on."""
    from intentos.skills.dataflow.enel import rescale_decision

    if candidates is not None and (not candidates or min(candidates) < 1 or len(candidates) > MAX_CANDIDATES):
        raise AppError(f"candidates must be 1 to {MAX_CANDIDATES} scale-outs of at least 1")
    lo, hi = model.header.executors_min, model.header.executors_max
    if candidates is None and hi - lo + 1 > MAX_CANDIDATES:
        raise AppError(f"the model's scale-outs {lo}-{hi} are more than {MAX_CANDIDATES} candidates; give candidates")
    decision = rescale_decision(model, log, target_s, candidates)
    tpl = model.template(log.app_name)
    done = sum(1 for j in log.jobs if j.completed_ms is not None)
    pick = next(c for c in decision.candidates if c.executors == decision.recommended_executors)
    verdict = (f"scale to {pick.executors} executors (now {decision.current_executors}): predicted to finish at "
               f"{pick.total_s:.0f}s" if decision.meets_target else
               f"no scale-out meets {target_s:g}s; {decision.recommended_executors} executors finish first "
               f"({min(c.total_s for c in decision.candidates):.0f}s predicted)")
    return RescalePlan(eventlog=log.path, app_name=log.app_name, running=not log.complete,
                       elapsed_s=decision.elapsed_s, jobs_done=done, jobs_total=tpl.jobs,
                       current_executors=decision.current_executors,
                       recommended_executors=decision.recommended_executors, meets_target=decision.meets_target,
                       target_runtime_s=target_s,
                       candidates=[RescaleCandidate(**c.model_dump()) for c in decision.candidates],
                       summary=f"{log.app_name}: {done}/{tpl.jobs} jobs done after {decision.elapsed_s:.0f}s; "
                               f"{verdict}")


# -- the app --------------------------------------------------------------------------------------------------


class DataflowApp(App):
    name = "dataflow"
    description = ("Spark-style dataflow jobs: runtime per scale-out (Bellamy vs Ernest), the cheapest scale-out "
                   "meeting a runtime target, re-planning a running job's scale-out (Enel).")

    @function(Effect.READ)
    def predict_runtime(self, args: PredictArgs) -> RuntimePrediction:
        """Predict a job's runtime at each scale-out from an execution history (Bellamy, with Ernest baseline)."""
        with self._errors():
            return predict_runtime(self._history(args.history), args.context, args.scaleouts,
                                   model=self._bellamy(args.model) if args.model else None,
                                   bellamy_overrides=self._settings("bellamy"))

    @function(Effect.READ)
    def recommend_scaleout(self, args: RecommendArgs) -> Recommendation:
        """Choose the cheapest scale-out whose predicted runtime meets a target; cost and runtime per candidate."""
        with self._errors():
            return recommend_scaleout(self._history(args.history), args.context, args.target_runtime_s,
                                      args.cost_per_node_hour, args.scaleouts, method=args.method,
                                      model=self._bellamy(args.model) if args.model else None,
                                      bellamy_overrides=self._settings("bellamy"))

    @function(Effect.WRITE)
    def train_runtime_model(self, args: TrainArgs) -> TrainedModel:
        """Pre-train a Bellamy runtime model on an execution history and save it as a model file."""
        with self._errors():
            save = self._saver(args.output, args.overwrite)
            return train_runtime_model(self._history(args.history), save, bellamy_overrides=self._settings("bellamy"))

    @function(Effect.WRITE)
    def train_rescaler(self, args: TrainRescalerArgs) -> TrainedModel:
        """Train an Enel rescaling model on complete Spark event logs of earlier runs and save it."""
        with self._errors():
            save = self._saver(args.output, args.overwrite)
            return train_rescaler(self._logs(args.logs), save, enel_overrides=self._settings("enel"))[1]

    @function(Effect.READ)
    def rescale_plan(self, args: RescaleArgs) -> RescalePlan:
        """Recommend the scale-out for a running Spark job now, from its event log and a runtime target (Enel)."""
        with self._errors():
            from intentos.skills.dataflow.enel import Enel
            from intentos.skills.dataflow.eventlog import parse_eventlog_bytes

            log = parse_eventlog_bytes(paths.read_file(self.sandbox, args.eventlog, "event log"), args.eventlog)
            if args.model:
                model = Enel.from_bytes(paths.read_file(self.sandbox, args.model, "model file"), args.model)
            elif args.history_logs:
                model = train_rescaler(self._logs(args.history_logs), enel_overrides=self._settings("enel"))[0]
            else:
                raise AppError("give a trained Enel model or history_logs (complete event logs of earlier runs)")
            return rescale_plan(log, args.target_runtime_s, model=model, candidates=args.candidates)

    # -- plumbing: every file is read and written through the sandbox -----------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Every error a user can act on becomes one AppError line naming sandbox-relative paths."""
        try:
            yield
        except SandboxError:
            raise
        except (IntentosError, ValueError) as exc:
            message = " ".join(str(exc).replace(f"{self.sandbox.root}{os.sep}", "").split())
            raise AppError(message) from exc

    def _history(self, raw: str) -> History:
        return parse_history(paths.read_file(self.sandbox, raw, "history file"), raw)

    def _bellamy(self, raw: str) -> Any:
        from intentos.skills.dataflow.bellamy import Bellamy

        return Bellamy.from_bytes(paths.read_file(self.sandbox, raw, "model file"), raw)

    def _logs(self, raws: Sequence[str]) -> list[Any]:
        """Event logs as given, and those in given folders (`is_log_name`; links in a folder are not followed)."""
        from intentos.skills.dataflow.eventlog import parse_eventlog_bytes

        files: list[str] = []
        links: list[str] = []
        for raw in raws:
            entries = paths.folder_entries(self.sandbox, raw)
            if entries is None:
                files.append(raw)
                continue
            files += [e.path for e in entries if e.is_file and is_log_name(e.name)]
            links += [e.path for e in entries if e.kind == "link" and is_log_name(e.name)]
        if not files:
            raise AppError("no event logs found in " + ", ".join(raws)
                           + (f" (links are not followed: {', '.join(links[:3])})" if links else ""))
        if len(files) > MAX_LOGS:
            raise AppError(f"{len(files)} event logs; at most {MAX_LOGS} are read at once")
        return [parse_eventlog_bytes(paths.read_file(self.sandbox, f, "event log"), f) for f in files]

    def _saver(self, raw: str, overwrite: bool) -> Save:
        """Check the output before the work (refused if something is there, unless overwrite); write after."""
        rel = paths.write_target(self.sandbox, raw, overwrite=overwrite)

        def save(data: bytes) -> str:
            paths.write_file(self.sandbox, rel, data, overwrite=overwrite, shown=raw)
            return raw

        return save

    def _settings(self, key: str) -> dict[str, Any]:
        """Model knobs from the context settings (`dataflow: {bellamy: {...}, enel: {...}}`), e.g. for tests."""
        return dict(self.ctx.settings.get("dataflow", {}).get(key, {}))
