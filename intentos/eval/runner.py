"""Running a suite: models × cases × repetitions, each trial resolved, executed and judged.

Each trial resolves the intent in a sandbox seeded from the case's fixture (so the model
sees the same app state a user would), then judges the workflow in a second, fresh copy.
Trials run in parallel threads for server backends; the in-process llama.cpp model takes
one at a time. A finished trial is on disk before the next is counted, so a rerun of
the same command resumes where an interrupted one stopped.

Replay feeds the recorded raw responses back through the same Controller and judge:
every figure is recomputed offline, and a replay whose prompts no longer match the
recording (the prompt code changed) is flagged rather than silently trusted.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from intentos.backends import make_backend, parse_spec
from intentos.backends.base import Backend, Generation
from intentos.backends.replay import ReplayBackend
from intentos.controller import Attempt, Controller, ControllerSettings, ResolutionFailed, Trace
from intentos.errors import IntentosError
from intentos.eval.judge import judge, seeded_context
from intentos.eval.record import (
    REFERENCE_SPEC,
    Manifest,
    Trial,
    load_trials,
    now_iso,
    read_manifest,
    trial_head,
    trial_path,
    write_manifest,
    write_trial,
)
from intentos.eval.suite import Case, Suite
from intentos.table import FunctionTable
from intentos.workflow import Workflow

Progress = Callable[[Trial, int, int], None]  # (trial, done so far, total)
BackendFactory = Callable[[str], Backend]
# The suite a recorded run names (its manifest's `suite_path`, or --suite), None when its file is not there:
# the command layer decides what a reference names (intentos.eval.suites.find_suite).
SuiteFinder = Callable[[str, FunctionTable], Suite | None]


@runtime_checkable
class ExternalSuite(Protocol):
    """A suite whose cases are not resolved and judged the standard way (an external benchmark, e.g. BFCL).

    Besides being a Suite (name, cases, `ref`, `digest`), it runs its own trials: with a
    backend it resolves and judges the case, with `backend=None` it answers with the
    benchmark's own ground truth (the `reference` pseudo-model). Replays pass a replay
    backend, so the same code recomputes every figure offline.
    """

    def run_trial(self, case: Case, rep: int, backend: Backend | None, settings: ControllerSettings,
                  model: str) -> Trial: ...


class EvalRunner:
    def __init__(self, suite: Suite, table: FunctionTable, out: Path, *, reps: int = 1, jobs: int = 4,
                 settings: ControllerSettings | None = None, progress: Progress | None = None,
                 backend_factory: BackendFactory = make_backend, sampling: Sampling | None = None) -> None:
        if reps < 1:
            raise IntentosError("--reps must be at least 1")
        self.suite = suite
        self.table = table
        self.out = out
        self.reps = reps
        self.jobs = max(1, jobs)
        self.settings = settings or ControllerSettings()
        self.progress = progress
        self.backend_factory = backend_factory
        self.sampling = sampling

    def run(self, specs: list[str]) -> list[Trial]:
        """Run every missing trial of every model; return all trials of this suite under `out`."""
        todo = {spec: [(case, rep) for rep in range(self.reps) for case in self.suite.cases
                       if not trial_path(self.out, spec, case.id, rep).is_file()] for spec in specs}
        # Every backend is made (and asked whether it can serve) before anything is written.
        backends = {spec: None if spec == REFERENCE_SPEC else self.backend_factory(spec)
                    for spec in specs if todo[spec]}
        self._update_manifest(specs)
        for spec, backend in backends.items():
            # llama.cpp in-process is one model in this process: trials take turns.
            jobs = 1 if backend is None or parse_spec(spec).kind == "llamacpp" else self.jobs
            total, done = len(todo[spec]), 0
            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="eval") as pool:
                futures = [pool.submit(self._trial, spec, backend, case, rep) for case, rep in todo[spec]]
                try:
                    for future in as_completed(futures):
                        trial = future.result()
                        write_trial(self.out, trial)
                        done += 1
                        if self.progress:
                            self.progress(trial, done, total)
                except BaseException as exc:
                    for f in futures:
                        f.cancel()
                    if isinstance(exc, IntentosError):
                        raise IntentosError(f"{spec}: {exc} ({done} finished trial(s) are saved in {self.out}; "
                                            "the same command resumes)") from exc
                    raise
        return [t for t in load_trials(self.out) if t.suite == self.suite.name]

    def _trial(self, spec: str, backend: Backend | None, case: Case, rep: int) -> Trial:
        if isinstance(self.suite, ExternalSuite):
            return self.suite.run_trial(case, rep, backend, rep_settings(self.settings, rep), spec)
        if backend is None:
            reference = case.reference.to_data() if case.reference else None
            return finish_trial(Trial(**trial_head(self.suite, case, spec, rep)), case, reference,
                                None if reference else "the case has no reference workflow", self.table)
        # Repetitions differ by seed; at temperature 0 they agree, which is itself a finding.
        return resolve_trial(self.suite, case, rep, backend, self.table, rep_settings(self.settings, rep), spec)

    def _update_manifest(self, specs: list[str]) -> None:
        digest = self.suite.digest()
        manifest = read_manifest(self.out)
        if manifest is not None and manifest.suite != self.suite.name:
            raise IntentosError(f"{self.out} holds a run of suite {manifest.suite!r}; use another --out for "
                                f"{self.suite.name!r}")
        if manifest is not None and manifest.suite_sha256 != digest:
            raise IntentosError(f"{self.out} was recorded with a different version of {self.suite.ref()}; "
                                "use another --out (records of different cases must not be mixed)")
        if manifest is not None and manifest.reps != self.reps and manifest.models:
            raise IntentosError(f"{self.out} was recorded with --reps {manifest.reps}; use the same or another --out")
        stamp = now_iso()
        manifest = manifest or Manifest(suite=self.suite.name, suite_path=self.suite.ref(),
                                        suite_sha256=digest, reps=self.reps, created=stamp, updated=stamp,
                                        settings=self.settings.model_dump())
        manifest.models = list(dict.fromkeys([*manifest.models, *specs]))
        manifest.updated = stamp
        sampling = self.sampling or Sampling()
        manifest.limit, manifest.seed = sampling.limit, sampling.seed
        manifest.cases, manifest.suite_cases = len(self.suite.cases), sampling.suite_cases or len(self.suite.cases)
        write_manifest(self.out, manifest)


class Sampling(BaseModel):
    """`--limit N --seed S`: N cases drawn from the suite with a seeded generator, recorded in the manifest."""

    limit: int | None = None
    seed: int | None = None
    suite_cases: int | None = None


def sample_cases(cases: list[Case], limit: int | None, seed: int | None) -> list[Case]:
    """`limit` cases drawn at random with `seed` (0 when not given), kept in suite order; all when no limit."""
    if limit is None or limit >= len(cases):
        return list(cases)
    if limit < 1:
        raise IntentosError("--limit must be at least 1")
    chosen = set(random.Random(0 if seed is None else seed).sample(range(len(cases)), limit))
    return [c for i, c in enumerate(cases) if i in chosen]


def rep_settings(settings: ControllerSettings, rep: int) -> ControllerSettings:
    seed = None if settings.seed is None else settings.seed + rep
    return settings.model_copy(update={"seed": seed})


def finish_trial(trial: Trial, case: Case, workflow: dict | None, error: str | None,
                 table: FunctionTable) -> Trial:
    """Judge the workflow (when there is one) and complete the trial."""
    trial.workflow = workflow
    trial.resolution_error = error
    if workflow is not None:
        trial.verdict = judge(case, Workflow.model_validate(workflow), table)
    return trial


def resolve_trial(suite: Suite, case: Case, rep: int, backend: Backend, table: FunctionTable,
                  settings: ControllerSettings, model: str) -> Trial:
    """Resolve the case's intent with `backend` in a seeded sandbox, then judge what came of it."""
    trial = Trial(**trial_head(suite, case, model, rep))
    with tempfile.TemporaryDirectory(prefix=f"intentos-resolve-{case.id}-") as scratch:
        ctx = seeded_context(case, table, Path(scratch))
        controller = Controller(backend, table, ctx, settings)
        try:
            resolution = controller.resolve(case.intent)
        except ResolutionFailed as exc:
            trial.trace = exc.trace
            return finish_trial(trial, case, None, str(exc), table)
    trial.trace = resolution.trace
    return finish_trial(trial, case, resolution.workflow.to_data(), None, table)


def replay(source: Path, out: Path, table: FunctionTable, suite_path: str | Path | None = None,
           progress: Progress | None = None, *, find_suite: SuiteFinder) -> tuple[Suite, list[Trial]]:
    """Recompute every trial under `source` from its recorded responses, writing the new records to `out`."""
    manifest = read_manifest(source)
    if manifest is None:
        raise IntentosError(f"{source}: no eval run here (run.json missing)")
    ref = str(suite_path or manifest.suite_path)
    suite = find_suite(ref, table)
    if suite is None:
        raise IntentosError(f"the suite of {source} is not at {ref}; pass --suite to say where it is")
    if suite.digest() != manifest.suite_sha256:
        raise IntentosError(f"{ref} changed since {source} was recorded: a replay would judge different cases")
    settings = ControllerSettings.model_validate(manifest.settings)
    recorded = load_trials(source)
    write_manifest(out, manifest.model_copy(update={"replay_of": str(source.resolve()), "updated": now_iso()}))
    trials = []
    for i, old in enumerate(recorded, 1):
        case = suite.case(old.case)
        if isinstance(suite, ExternalSuite):
            backend = None if old.trace is None else ReplayBackend(
                [_generation(a, old.model) for a in old.trace.attempts], spec=old.model, n_ctx=_window(old.trace),
                weighed=old.trace.weighed)
            trial = suite.run_trial(case, old.rep, backend, rep_settings(settings, old.rep), old.model)
            if old.trace is not None:
                trial.trace = _with_recorded_backend(trial.trace, old.trace)
                trial.replay_diverged = trial.trace is None or _prompts(trial.trace) != _prompts(old.trace)
        elif old.trace is None:  # the reference pseudo-model: nothing was generated
            trial = finish_trial(Trial(**trial_head(suite, case, old.model, old.rep)), case, old.workflow,
                                 old.resolution_error, table)
        else:
            backend = ReplayBackend([_generation(a, old.model) for a in old.trace.attempts], spec=old.model,
                                    n_ctx=_window(old.trace), weighed=old.trace.weighed)
            trial = resolve_trial(suite, case, old.rep, backend, table, rep_settings(settings, old.rep), old.model)
            trial.trace = _with_recorded_backend(trial.trace, old.trace)
            trial.replay_diverged = _prompts(trial.trace) != _prompts(old.trace)
        write_trial(out, trial)
        trials.append(trial)
        if progress:
            progress(trial, i, len(recorded))
    return suite, trials


def _generation(attempt: Attempt, model: str) -> Generation:
    return Generation(text=attempt.raw, model=model, prompt_tokens=attempt.prompt_tokens,
                      completion_tokens=attempt.completion_tokens, ttft_s=attempt.ttft_s, total_s=attempt.total_s,
                      structured=attempt.structured, finish_reason=attempt.finish_reason)


def _window(trace: Trace) -> int | None:
    """The context window the recorded model had, which the planner fitted its prompts to."""
    n_ctx = trace.backend.get("n_ctx")
    return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None


def _with_recorded_backend(trace: Trace | None, recorded: Trace) -> Trace | None:
    # The replay backend describes itself as a replay; the report should still say which model it was.
    if trace is None:
        return None
    return trace.model_copy(update={"backend": {**recorded.backend, "replayed": True}})


def _prompts(trace: Trace) -> list[list[dict[str, Any]]]:
    """The prompts of a trace as data: what was sent, whatever Message subclass carried it."""
    return [[m.model_dump() for m in a.messages] for a in trace.attempts]
