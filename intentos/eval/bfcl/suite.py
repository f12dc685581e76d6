"""A BFCL category as an intentos eval suite: cases, trials (resolve → execute/score), reference answers.

Each case carries its BFCL entry and ground truth. A trial builds the case's Function
Table (the entry's functions, or its API classes, beside the agent's say/ask/refuse so
a model can decline), resolves the question with the Controller (no worked examples:
ours are about desktop apps and BFCL is zero-shot), and is judged by BFCL's rules.
The `reference` pseudo-model answers with BFCL's ground truth through the same path,
which checks the whole chain: a reference that fails points at our adapter, not a model.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from intentos.app import Context
from intentos.apps.agent import AgentApp
from intentos.backends.base import Backend
from intentos.controller import Controller, ControllerSettings, ResolutionFailed, Trace
from intentos.eval.bfcl import data
from intentos.eval.bfcl.ast_check import AstVerdict, check_calls, workflow_calls
from intentos.eval.bfcl.functions import NameMap, single_turn_apps
from intentos.eval.bfcl.multi_turn import SESSION_KEY, Session, api_app, check, class_of, parse_call
from intentos.eval.bfcl.published import published
from intentos.eval.judge import CheckResult, Verdict
from intentos.eval.record import Trial, TurnRecord, trial_head
from intentos.eval.suite import Case, Suite
from intentos.executor import Executor
from intentos.sandbox import Sandbox
from intentos.table import FunctionTable
from intentos.validation import WorkflowInvalid
from intentos.workflow import Workflow

AGENT_FUNCTIONS = ["agent.say", "agent.ask", "agent.refuse"]
HISTORY_TURNS = 3  # earlier turns quoted in a multi-turn intent
RESULT_CLIP = 160


class BfclCase(Case):
    category: str
    entry: dict[str, Any]
    answer: Any = None  # possible answers (single-turn) or ground-truth call strings per turn (multi-turn)


class BfclSuite(Suite):
    """A BFCL category: an external suite (see intentos.eval.runner.ExternalSuite) that runs its own trials."""

    category: str

    def ref(self) -> str:
        return f"bfcl:{self.category}"

    def digest(self) -> str:
        return data.digest(self.category)

    def run_trial(self, case: Case, rep: int, backend: Backend | None, settings: ControllerSettings,
                  model: str) -> Trial:
        assert isinstance(case, BfclCase)
        if self.category in data.MULTI_TURN:
            return _multi_turn_trial(self, case, rep, backend, settings, model)
        return _single_turn_trial(self, case, rep, backend, settings, model)


def load_bfcl_suite(category: str) -> BfclSuite:
    """The whole category, in BFCL's order; errors name the install command when bfcl-eval is missing."""
    data.check_category(category)
    answers = data.load_answers(category)
    cases = [_case(category, entry, answers.get(entry["id"])) for entry in data.load_entries(category)]
    return BfclSuite(name=f"bfcl-{category}", path=data.data_file(category), category=category, cases=cases,
                     description=f"BFCL v4 {category} (bfcl-eval {data.version()})", published=published(category))


def _case(category: str, entry: dict[str, Any], answer: Any) -> BfclCase:
    turns = [user_text(turn) for turn in entry["question"]]
    if category in data.MULTI_TURN:
        calls = sum(len(t) for t in answer or [])
        difficulty = "medium" if calls <= 4 else "hard"
        intent = turns[0] + (f" (+{len(turns) - 1} more turns)" if len(turns) > 1 else "")
        tags = [category, *entry.get("involved_classes", [])]
    else:
        calls = len(answer or [])
        difficulty = "easy" if calls <= 1 else "medium" if calls <= 3 else "hard"
        intent = turns[0]
        tags = [category]
    return BfclCase(id=entry["id"], intent=intent, difficulty=difficulty, tags=tags, checks=[],
                    source=f"BFCL v4 {category}", category=category, entry=entry, answer=answer)


def user_text(turn: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content", "")) for m in turn if m.get("role") == "user").strip()


# -- single turn ---------------------------------------------------------------------------------------


def single_turn_table(case: BfclCase) -> tuple[FunctionTable, NameMap]:
    docs = case.entry["function"]
    names = NameMap.build([d["name"] for d in docs])
    apps = single_turn_apps(docs, names)
    table = FunctionTable([AgentApp, *apps], only=[*AGENT_FUNCTIONS, *names.to_bfcl])
    return table, names


def reference_single(case: BfclCase, names: NameMap) -> dict[str, Any]:
    """BFCL's ground truth as a workflow: the first possible value of each parameter, optional ones left out.

    A parameter that may be omitted ("" among its possible values) is omitted: a few
    entries list possible values for parameters their function does not declare.
    """
    if case.category == "irrelevance" or not case.answer:
        return {"states": [{"name": "decline", "call": "agent.refuse",
                            "args": {"reason": "none of the functions fits"}}]}
    back = names.to_intentos
    required = {d["name"]: set(d.get("parameters", {}).get("required", [])) for d in case.entry["function"]}
    states = []
    for i, call in enumerate(case.answer):
        (name, params), = call.items()
        picked = ((k, _pick(v, k in required.get(name, ()))) for k, v in params.items())
        args = {k: v for k, v in picked if v is not _OMIT}
        states.append({"name": f"call{i + 1}", "call": back[name], "args": args})
    return {"states": states}


_OMIT = object()


def _pick(options: list[Any], required: bool = False) -> Any:
    if "" in options and not required:
        return _OMIT
    for value in options:
        if value == "":
            continue
        if isinstance(value, dict):  # a dict parameter: each key has its own list of possible values
            picked = {k: _pick(v) if isinstance(v, list) else v for k, v in value.items()}
            return {k: v for k, v in picked.items() if v is not _OMIT}
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return [_pick([v]) for v in value]  # a list of dicts, each of possible values
        return value
    return _OMIT


def _single_turn_trial(suite: BfclSuite, case: BfclCase, rep: int, backend: Backend | None,
                       settings: ControllerSettings, model: str) -> Trial:
    trial = Trial(**trial_head(suite, case, model, rep))
    table, names = single_turn_table(case)
    started = time.perf_counter()
    if backend is None:
        trial.workflow = reference_single(case, names)
    else:
        controller = Controller(backend, table, None, settings, examples=[])
        try:
            resolution = controller.resolve(case.intent)
        except ResolutionFailed as exc:
            trial.trace, trial.resolution_error = exc.trace, str(exc)
        else:
            trial.trace, trial.workflow = resolution.trace, resolution.workflow.to_data()
    if trial.workflow is None:
        # Nothing would run: for irrelevance that is the right outcome (BFCL: an answer that decodes to no
        # call passes), for every other category a miss.
        verdict = check_calls(case.category, case.entry["function"], [], case.answer)
        trial.verdict = _verdict(case, "no workflow", [], verdict, started)
        return trial
    workflow = Workflow.model_validate(trial.workflow)
    calls = workflow_calls(workflow, names.to_bfcl)
    verdict = check_calls(case.category, case.entry["function"], calls, case.answer)
    steps = [{"state": s, "call": workflow.states[s].call, "status": "scored"} for s in workflow.states]
    trial.verdict = _verdict(case, "done", steps, verdict, started)
    return trial


def _verdict(case: BfclCase, status: str, steps: list[dict[str, Any]], verdict: AstVerdict | Any,
             started: float) -> Verdict:
    label = f"BFCL {'state/response' if case.category in data.MULTI_TURN else 'AST'} checker ({case.category})"
    detail = None if verdict.valid else f"{verdict.error_type}: {verdict.error}"
    return Verdict(status=status, steps=steps, checks=[CheckResult(check=label, passed=verdict.valid,
                                                                   detail=detail)],
                   passed=verdict.valid, judge_s=time.perf_counter() - started)


# -- multi turn ----------------------------------------------------------------------------------------


def multi_turn_table(case: BfclCase) -> FunctionTable:
    excluded = frozenset(case.entry.get("excluded_function", []))
    apps = [api_app(c, excluded) for c in case.entry["involved_classes"]]
    names = [fn.name for app in apps for fn in app.functions()]
    return FunctionTable([AgentApp, *apps], only=[*AGENT_FUNCTIONS, *names])


def reference_turn(calls: list[str], case: BfclCase, table: FunctionTable) -> dict[str, Any]:
    """One turn of BFCL's ground truth as a workflow; a failing call goes on to the next, as BFCL runs them all."""
    classes = case.entry["involved_classes"]
    apps = {cls: next(a for a, c in table.apps.items() if getattr(c, "__name__", "") == f"Bfcl_{cls}")
            for cls in classes}
    states = []
    for i, text in enumerate(calls):
        method, kwargs = parse_call(text, classes)
        states.append({"name": f"call{i + 1}", "call": f"{apps[class_of(method, classes)]}.{method}",
                       "args": kwargs})
    for i, state in enumerate(states):
        state["on_failure"] = states[i + 1]["name"] if i + 1 < len(states) else "done"
    if not states:
        states = [{"name": "nothing", "call": "agent.say", "args": {"message": "Nothing to do."}}]
    return {"states": states}


def turn_intent(text: str, history: list[tuple[str, list[str]]]) -> str:
    """The user's turn, with the last few turns and what ran in them: BFCL's models see the whole conversation."""
    if not history:
        return text
    lines = ["Earlier in this conversation:"]
    for said, ran in history[-HISTORY_TURNS:]:
        lines.append(f"User: {said}")
        lines.append("Calls made: " + ("; ".join(ran) if ran else "none"))
    lines += ["", f"Now the user says: {text}"]
    return "\n".join(lines)


def _multi_turn_trial(suite: BfclSuite, case: BfclCase, rep: int, backend: Backend | None,
                      settings: ControllerSettings, model: str) -> Trial:
    trial = Trial(**trial_head(suite, case, model, rep))
    table = multi_turn_table(case)
    session = Session(case.entry)
    traces: list[Trace] = []
    history: list[tuple[str, list[str]]] = []
    steps: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"intentos-bfcl-{case.id}-") as scratch:
        ctx = Context(sandbox=Sandbox(Path(scratch) / "sandbox"), settings={SESSION_KEY: session})
        executor = Executor(table, ctx, confirm=lambda request: True, assume_yes=True, step_timeout=60.0,
                            runs_root=Path(scratch) / "runs")
        for index, turn in enumerate(case.entry["question"]):
            text = user_text(turn)
            session.begin_turn()
            record = TurnRecord(intent=turn_intent(text, history))
            workflow: Workflow | None = None
            if backend is None:
                truth = case.answer[index] if case.answer and index < len(case.answer) else []
                workflow = Workflow.model_validate(reference_turn(truth, case, table))
            else:
                controller = Controller(backend, table, None, settings, examples=[])
                try:
                    resolution = controller.resolve(record.intent)
                    workflow = resolution.workflow
                    traces.append(resolution.trace)
                except ResolutionFailed as exc:
                    traces.append(exc.trace)
                    record.resolution_error = str(exc)
                record.attempts = len(traces[-1].attempts)
            ran: list[str] = []
            if workflow is not None:
                record.workflow = workflow.to_data()
                try:
                    view = executor.run(workflow, intent=record.intent, source=f"bfcl:{case.id}:turn{index}")
                except WorkflowInvalid as exc:  # a ground-truth call our types refuse (BFCL data quirk)
                    record.status, record.resolution_error = "invalid", str(exc)
                else:
                    record.status = view.status
                    steps += [{"turn": index, "state": s.state, "call": s.call, "status": s.status,
                               **({"error": s.error} if s.error else {})} for s in view.steps]
                    results = {s.call.rpartition(".")[2]: s.result for s in view.steps if s.status == "ok"}
                    ran = [f"{c} -> {_clip(results.get(c.split('(')[0]))}" for c in session.turns[-1]]
            record.calls = list(session.turns[-1])
            trial.turns.append(record)
            history.append((text, ran))
    trial.trace = _merged(traces, case.intent) if traces else None
    verdict = check(case.entry, case.answer or [], session.turns)
    statuses = [t.status or "no workflow" for t in trial.turns]
    status = next((s for s in statuses if s != "done"), "done")
    trial.verdict = _verdict(case, status, steps, verdict, started)
    return trial


def _clip(result: Any) -> str:
    text = json.dumps(result, ensure_ascii=False, default=str) if result is not None else "(failed)"
    return text if len(text) <= RESULT_CLIP else text[:RESULT_CLIP] + "…"


def _merged(traces: list[Trace], intent: str) -> Trace:
    """One trace for the trial: every turn's attempts in order (what replay feeds back), times and tokens summed."""
    first = traces[0]
    return first.model_copy(update={
        "intent": intent,
        "shown": list(dict.fromkeys(name for t in traces for name in t.shown)),
        "ranking": [],
        "attempts": [a for t in traces for a in t.attempts],
        "weighed": [w for t in traces for w in t.weighed],
        "ok": all(t.ok for t in traces),
        "wall_s": sum(t.wall_s for t in traces),
        "schema_s": sum(t.schema_s for t in traces),
    })
