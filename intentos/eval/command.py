"""`intentos eval`: run a suite on models and write the report, or replay a recorded run offline."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from intentos import locations, render
from intentos.backends import make_backend, parse_spec
from intentos.backends.base import Backend
from intentos.backends.settings import default_model_spec, load_backend_settings
from intentos.clikit import fail
from intentos.controller import ControllerSettings
from intentos.errors import IntentosError
from intentos.eval.bfcl.data import CATEGORIES
from intentos.eval.record import REFERENCE_SPEC, Manifest, Trial, load_trials, read_manifest
from intentos.eval.report import pct, write_report
from intentos.eval.runner import EvalRunner, Sampling, replay, sample_cases
from intentos.eval.scores import ModelScore, score
from intentos.eval.suite import Suite
from intentos.eval.suites import find_suite, load_suite
from intentos.table import FunctionTable

out = Console()
err = render.stderr_console()


def eval_command(
    suite_path: str | None = typer.Option(None, "--suite", "-s", help="suite file (evals/*.yaml), or bfcl:CATEGORY "
                                          f"for a BFCL v4 category ({', '.join(CATEGORIES)}; needs bfcl-eval)"),
    models: list[str] = typer.Option(None, "--model", "-m", help="model spec; repeat for several. "
                                     "'reference' runs each case's reference workflow (checks the suite)"),
    reps: int = typer.Option(1, "--reps", "-n", help="repetitions per case (seed varies per repetition)"),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="run folder (default: INTENTOS_HOME/evals/SUITE); "
                                        "rerunning into it resumes and adds models"),
    replay_dir: Path | None = typer.Option(None, "--replay", help="recompute every figure of a recorded run "
                                           "from its recorded responses, with no model"),
    compare: list[Path] = typer.Option(None, "--compare", help="other recorded runs of the suite to report beside"),
    cases: list[str] = typer.Option(None, "--case", help="only these case ids (repeatable)"),
    tags: list[str] = typer.Option(None, "--tag", help="only cases with this tag (repeatable)"),
    limit: int | None = typer.Option(None, "--limit", help="run a random sample of N cases (after --case/--tag)"),
    seed: int | None = typer.Option(None, "--seed", help="seed of the --limit sample (default 0); recorded"),
    jobs: int = typer.Option(4, "--jobs", "-j", help="parallel trials for server backends (llama.cpp: 1)"),
    temperature: float | None = typer.Option(None, "--temperature", help="decoding temperature (default 0)"),
    max_attempts: int | None = typer.Option(None, "--max-attempts", help="model calls per intent, repairs included"),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="cap on tokens per model reply (default 768)"),
    n_gpu_layers: int | None = typer.Option(None, "--n-gpu-layers", help="llama.cpp layers on the GPU (-1: all)"),
    as_json: bool = typer.Option(False, "--json", help="print the scores as JSON on stdout"),
) -> None:
    """Run models × cases × repetitions, judge each workflow in a fresh sandbox, write report.md/.html."""
    try:
        result = _eval(suite_path, models or [], reps, out_dir, replay_dir, compare or [], cases or [], tags or [],
                       jobs, temperature, max_attempts, n_gpu_layers, as_json, limit, seed, max_tokens)
    except IntentosError as exc:
        fail(str(exc), as_json)
    except KeyboardInterrupt:
        err.print("interrupted: finished trials are saved; the same command resumes")
        raise typer.Exit(130) from None
    if as_json:
        print(json.dumps(result, indent=2))


def _eval(suite_path: str | None, models: list[str], reps: int, out_dir: Path | None, replay_dir: Path | None,
          compare: list[Path], only_cases: list[str], only_tags: list[str], jobs: int, temperature: float | None,
          max_attempts: int | None, n_gpu_layers: int | None, as_json: bool, limit: int | None = None,
          seed: int | None = None, max_tokens: int | None = None) -> dict:
    table = FunctionTable.discover()
    progress = None if as_json else _progress
    if replay_dir is not None:
        if models:
            raise IntentosError("--replay recomputes a recorded run; it takes no --model")
        if limit is not None or seed is not None:
            raise IntentosError("--replay recomputes the recorded sample; it takes no --limit/--seed")
        target = out_dir or replay_dir / "replay"
        suite, trials = replay(replay_dir, target, table, suite_path, progress, find_suite=find_suite)
    else:
        if suite_path is None:
            raise IntentosError("say which suite: --suite evals/core.yaml (or --replay DIR)")
        full = load_suite(suite_path, table)
        suite = _filtered(full, only_cases, only_tags)
        suite = suite.model_copy(update={"cases": sample_cases(suite.cases, limit, seed)})
        sampling = Sampling(limit=limit, seed=None if limit is None else (seed or 0), suite_cases=len(full.cases))
        overrides = {k: v for k, v in {"temperature": temperature, "max_attempts": max_attempts,
                                       "max_tokens": max_tokens}.items() if v is not None}
        settings = ControllerSettings(**overrides)
        if reps > 1 and settings.temperature == 0 and not as_json:
            err.print("[yellow]note:[/] at temperature 0 repetitions mostly agree (greedy decoding); "
                      "pass --temperature 0.7 for pass@k to measure sampling")
        specs = [m if m == REFERENCE_SPEC else str(parse_spec(m)) for m in models] or [default_model_spec()]
        target = out_dir or locations.home() / "evals" / suite.name
        runner = EvalRunner(suite, table, target, reps=reps, jobs=jobs, settings=settings, progress=progress,
                            backend_factory=lambda spec: _backend(spec, n_gpu_layers), sampling=sampling)
        trials = runner.run(specs)
        ids = {c.id for c in suite.cases}
        trials = [t for t in trials if t.case in ids]
    manifests, trials = _with_compared(target, trials, compare, suite.name)
    md, html_path = write_report(target, trials, manifests, suite.published)
    scores = score(trials)
    sample = manifests[0].sample_text() if manifests else None
    if not as_json:
        out.print(_scores_table(scores, suite, len({t.case for t in trials}), sample))
        out.print(f"report: {md}\n        {html_path}")
    return {"suite": suite.name, "out": str(target), "report": str(md),
            "sample": {"limit": manifests[0].limit, "seed": manifests[0].seed, "cases": manifests[0].cases,
                       "suite_cases": manifests[0].suite_cases} if manifests else None,
            "scores": [s.model_dump() for s in scores]}


def _backend(spec: str, n_gpu_layers: int | None) -> Backend:
    settings = load_backend_settings(spec, {"n_gpu_layers": n_gpu_layers})
    backend = make_backend(settings.spec, settings)
    ok, why = backend.reachable()
    if not ok:
        raise IntentosError(f"{spec} cannot serve: {why}")
    return backend


def _filtered(suite: Suite, only_cases: list[str], only_tags: list[str]) -> Suite:
    cases = suite.cases
    unknown = [c for c in only_cases if c not in {case.id for case in cases}]
    if unknown:
        raise IntentosError(f"no case {', '.join(map(repr, unknown))} in {suite.path}")
    if only_cases:
        cases = [c for c in cases if c.id in only_cases]
    if only_tags:
        cases = [c for c in cases if set(c.tags) & set(only_tags)]
    if not cases:
        raise IntentosError("no case left after --case/--tag")
    return suite.model_copy(update={"cases": cases})


def _with_compared(target: Path, trials: list[Trial], compare: list[Path],
                   suite: str) -> tuple[list[Manifest], list[Trial]]:
    manifests = [m for m in [read_manifest(target)] if m is not None]
    seen = {t.model for t in trials}
    for other in compare:
        manifest = read_manifest(other)
        if manifest is None:
            raise IntentosError(f"--compare {other}: no eval run here (run.json missing)")
        if manifest.suite != suite:
            raise IntentosError(f"--compare {other}: a run of suite {manifest.suite!r}, not {suite!r}")
        if manifests and manifest.suite_sha256 != manifests[0].suite_sha256:
            err.print(f"[yellow]note:[/] {other} was recorded with another version of the suite file")
        extra = [t for t in load_trials(other) if t.model not in seen]
        trials += extra
        seen |= {t.model for t in extra}
        manifests.append(manifest)
    return manifests, trials


def _progress(trial: Trial, done: int, total: int) -> None:
    mark = "[green]pass[/]" if trial.passed else "[yellow]ran[/]" if trial.executed else (
        "[red]invalid[/]" if not trial.valid else "[red]fail[/]")
    err.print(f"[{done}/{total}] {trial.model} {trial.case} r{trial.rep}: {mark} "
              f"({trial.latency_s:.1f} s, {trial.repairs} repair(s))", highlight=False)


def _scores_table(scores: list[ModelScore], suite: Suite, cases: int, sample: str | None = None) -> Table:
    table = Table(title=f"suite {suite.name}: {sample or f'{cases} cases'}")
    for column in ("model", "goal pass", "valid", "executes", "pass@k", "repairs", "p50 s", "p90 s", "tok in",
                   "tok out"):
        table.add_column(column)
    for s in scores:
        table.add_row(s.model, pct(s.passed), pct(s.valid), pct(s.executed), f"{pct(s.pass_at_k)} k={s.reps}",
                      f"{s.repairs:.2f}", f"{s.latency_median_s:.2f}", f"{s.latency_p90_s:.2f}", f"{s.tokens_in:.0f}",
                      f"{s.tokens_out:.0f}")
    for row in suite.published.rows if suite.published else []:
        table.add_row(f"{row.model} (published)", row.label, *["—"] * 8)
    return table
