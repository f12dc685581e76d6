"""The work of the `dataflow` skill on parsed inputs, and its results.

`predict_runtime` and `recommend_scaleout` run Bellamy (pre-trained on every context of a history,
fine-tuned on the runs of the target context) next to the Ernest baseline fit on the same runs;
`train_runtime_model` pre-trains and saves a Bellamy model; `train_rescaler` trains Enel on complete
event logs of earlier runs and `rescale_plan` re-plans a running job's scale-out with it. A trained
model's bytes go to a `save` callback, and the training loops check an optional cancel event every
batch or epoch. The CLI (`intentos skills dataflow ...`) reads and writes any path and calls these
directly; `app.py` reads and writes every file through the sandbox for the agent.

torch and friends are imported inside the functions, so loading the Function Table stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from intentos.errors import AppError
from intentos.skills import kit
from intentos.skills.dataflow.history import History, Run

Method = Literal["bellamy", "ernest"]
MAX_CANDIDATES = 200
MAX_LOGS = 1_000  # event logs read for one training
# Small, fast settings (tests, CLI --quick): fewer epochs, same architecture.
QUICK_BELLAMY: dict[str, Any] = {"pretrain_epochs": 40, "finetune_epochs": 200, "pretrain_patience": 15}
QUICK_ENEL: dict[str, Any] = {"epochs": 25, "hidden": 16}
Save = Callable[[bytes], str]  # writes a model file's bytes; returns its name as shown in results


# -- what the work is given and what it returns -----------------------------------------------------------


class ContextSpec(BaseModel):
    """Which context (machine type, data size, job parameters) of the history to predict for.

    Fields left out match any value; together they must single out one context of the history, or
    name every field of a context the history has no runs of (then Bellamy predicts from the others).
    """

    machine_type: str | None = None
    data_size_mb: float | None = Field(None, ge=0)
    params: dict[str, str] = Field(default_factory=dict, description="job parameters, e.g. {'k': '3'}")


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


class TrainedModel(BaseModel):
    model: str
    kind: str
    trained_on: str
    runs: int
    contexts: int
    summary: str


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
                    model: Any | None = None, bellamy_overrides: dict[str, Any] | None = None,
                    cancelled: kit.Cancel = None) -> RuntimePrediction:
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
                                 config=_bellamy_config(bellamy_overrides), cancelled=cancelled)
    tuned = model.finetune(runs, cancelled=cancelled) if runs else model
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
                       model: Any | None = None, bellamy_overrides: dict[str, Any] | None = None,
                       cancelled: kit.Cancel = None) -> Recommendation:
    """The cheapest scale-out whose predicted runtime meets the target (cost = runtime x machines x price)."""
    pred = predict_runtime(history, context, scaleouts, model=model, bellamy_overrides=bellamy_overrides,
                           cancelled=cancelled)
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


def train_runtime_model(history: History, save: Save, *, bellamy_overrides: dict[str, Any] | None = None,
                        cancelled: kit.Cancel = None) -> TrainedModel:
    """Pre-train Bellamy's general model on every context of a history and save it."""
    from intentos.skills.dataflow.bellamy import Bellamy

    model = Bellamy.pretrain(_enough(history), algorithm=history.algorithm, param_names=history.param_names,
                             config=_bellamy_config(bellamy_overrides), cancelled=cancelled)
    shown = save(model.to_bytes())
    n_ctx = len(history.contexts())
    return TrainedModel(model=shown, kind="bellamy", trained_on=history.source,
                        runs=len(history.runs), contexts=n_ctx,
                        summary=f"Bellamy model of {history.algorithm} pre-trained on {len(history.runs)} runs "
                                f"of {n_ctx} contexts")


def is_log_name(name: str) -> bool:
    """What a folder of event log files is searched for: *.json, *.jsonl and Spark's single-file names
    (app-<id>, with a .zstd codec suffix, .inprogress while running), not hidden ones."""
    name = name.removesuffix(".inprogress")
    return not name.startswith(".") and PurePosixPath(name).suffix in (".json", ".jsonl", ".zstd", "")


def train_rescaler(logs: Sequence[Any], save: Save | None = None, *, enel_overrides: dict[str, Any] | None = None,
                   cancelled: kit.Cancel = None) -> tuple[Any, TrainedModel]:
    """Train Enel on complete event logs (optionally saving it); returns the model and a description."""
    from intentos.skills.dataflow.enel import Enel, EnelConfig

    complete = [g for g in logs if g.complete]
    if not complete:
        raise AppError("none of the event logs is complete (no SparkListenerApplicationEnd); Enel learns from "
                       "finished runs")
    model = Enel.train(complete, EnelConfig(**(enel_overrides or {})), cancelled=cancelled)
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


class Rescaled(BaseModel):
    """A rescale plan applied to a running job: the executors before and after."""

    plan: RescalePlan
    executors_before: int
    executors_after: int
    changed: bool
    summary: str


def apply_rescale(plan: RescalePlan, control_url: str) -> Rescaled:
    """Apply `plan` through the job's executor control endpoint (sparkcontrol); a finished job is left alone."""
    from intentos.skills.dataflow.sparkcontrol import get_executors, set_executors

    before = get_executors(control_url)
    after = before
    if plan.running and plan.recommended_executors != before:
        after = int(set_executors(control_url, plan.recommended_executors)["executors"])
    what = (f"scaled from {before} to {after} executors" if after != before else
            f"kept {before} executors" + ("" if plan.running else " (the job has finished)"))
    return Rescaled(plan=plan, executors_before=before, executors_after=after, changed=after != before,
                    summary=f"{what}; {plan.summary}")
