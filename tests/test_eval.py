"""The eval harness: suites, judging by execution, records, replay, resume, report.

The end-to-end tests run a three-case suite on the embedded model (in-process llama.cpp,
and through a real llama.cpp server for the parallel path) and check that a replay of
the recorded responses reproduces every figure with no model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.cli import app
from intentos.errors import WorkflowFileError
from intentos.eval.judge import judge
from intentos.eval.matcher import matches, mismatches
from intentos.eval.record import load_trials
from intentos.eval.runner import ExternalSuite
from intentos.eval.scores import pass_at_k
from intentos.eval.suite import Suite
from intentos.eval.suites import load_suite
from intentos.table import FunctionTable
from intentos.workflow import Workflow

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "evals" / "small.yaml"
SUITES = [ROOT / "evals" / "core.yaml", ROOT / "evals" / "paper.yaml"]
SAY_ONLY = Workflow.model_validate({"states": [{"name": "say", "call": "agent.say", "args": {"message": "Done."}}]})


@pytest.fixture(scope="module")
def table() -> FunctionTable:
    return FunctionTable.discover()


def eval_cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["eval", *args, "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    data = json.loads(result.stdout)
    assert result.exit_code == 0, data
    return data


def scores_by_model(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["model"]: s for s in data["scores"]}


# -- patterns --------------------------------------------------------------------------------------


def test_patterns_match_results_the_way_a_suite_author_expects() -> None:
    result = {"count": 2, "messages": [{"to": ["Anna.Berg@example.com"], "subject": "Travel notes"},
                                       {"to": ["ben@example.com"], "subject": "Zip"}]}
    assert matches({"count": 2}, result)
    assert matches({"messages": {"any": {"to": {"contains": "anna.berg"}}}}, result)
    assert matches({"messages": {"len": {"min": 1, "max": 2}}}, result)
    assert not matches({"messages": {"all": {"subject": {"contains": "travel"}}}}, result)
    assert matches({"messages": {"none": {"to": {"contains": "chris"}}}}, result)
    assert matches({"count": {"one_of": [1, 2]}}, result)
    assert matches({"count": {"not": 3}}, result)
    either = {"messages": {"any": {"any_of": [{"subject": "Nope"}, {"to": {"contains": "ben@"}}]}}}
    assert matches(either, result)
    assert matches({"messages": {"any": {"subject": {"matches": "^Z.p$"}}}}, result)
    assert matches({"start": {"startswith": "2026-03-12T14:00"}}, {"start": "2026-03-12T14:00:00+01:00"})
    problems = mismatches({"count": 3, "missing": 1}, result)
    assert problems == ["result.count: expected 3, got 2", "result.missing: missing"]


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    assert pass_at_k(5, 0, 1) == 0.0
    assert pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)  # 1 − C(3,2)/C(4,2)
    assert pass_at_k(3, 1, 3) == 1.0


# -- the suites we ship ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_every_reference_workflow_passes_and_a_do_nothing_workflow_fails(path: Path, table: FunctionTable) -> None:
    """The checks are satisfiable (the reference passes) and discriminate (saying "done" is not doing it)."""
    suite = Suite.load(path, table)
    for case in suite.cases:
        assert case.reference is not None, case.id
        verdict = judge(case, case.reference, table)
        assert verdict.passed, (case.id, verdict.status, verdict.error, [c for c in verdict.checks if not c.passed])
        assert not judge(case, SAY_ONLY, table).passed, f"{case.id}: a workflow that only talks passes"


def test_the_suites_are_as_broad_as_promised(table: FunctionTable) -> None:
    core = Suite.load(SUITES[0], table)
    paper = Suite.load(SUITES[1], table)
    assert [c.id for c in load_suite(str(SUITES[0]), table).cases] == [c.id for c in core.cases]
    assert not isinstance(core, ExternalSuite)  # a suite file's cases are judged the usual way
    assert len(core.cases) >= 40 and len(paper.cases) == 9
    tags = {t for c in core.cases for t in c.tags}
    assert {"files", "notes", "tasks", "calendar", "contacts", "mail", "clock"} <= tags
    assert {"single", "multi-step", "branch", "time", "refuse", "ask"} <= tags
    assert {c.difficulty for c in core.cases} == {"easy", "medium", "hard"}
    assert all(c.source and "reconstruct" in c.source for c in paper.cases)
    assert paper.published is not None and {r.passed for r in paper.published.rows} == {7}


# -- broken suite files ----------------------------------------------------------------------------


BROKEN = {
    "unknown check kind": ("""\
name: broken
cases:
  - id: one
    intent: Say hi
    difficulty: easy
    checks:
      - outcome: done
      - smell: roses
""", 8, "exactly one of"),
    "malformed YAML": ("name: broken\ncases:\n  - id: one\n    intent: Say: hi: there\n    difficulty: easy\n", 4,
                       "malformed YAML"),
    "duplicate ids": ("""\
name: broken
cases:
  - {id: one, intent: a, difficulty: easy, checks: [{outcome: done}]}
  - {id: one, intent: b, difficulty: easy, checks: [{outcome: done}]}
""", 4, "used twice"),
    "check that writes": ("""\
name: broken
cases:
  - id: one
    intent: a
    difficulty: easy
    checks:
      - call: files.write
        args: {path: x, text: y}
        expect: {size: 1}
""", 7, "only call read functions"),
    "bad difficulty": ("""\
name: broken
cases:
  - id: one
    intent: a
    difficulty: brutal
    checks: [{outcome: done}]
""", 5, "difficulty"),
    "invalid reference": ("""\
name: broken
cases:
  - id: one
    intent: a
    difficulty: easy
    reference:
      states: [{name: s, call: files.explode}]
    checks: [{outcome: done}]
""", 6, "files.explode"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_case_file_is_reported_with_its_path_and_line(name: str, tmp_path: Path,
                                                              table: FunctionTable) -> None:
    text, line, words = BROKEN[name]
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(WorkflowFileError) as info:
        Suite.load(path, table)
    assert info.value.line == line, str(info.value)
    assert str(path) in str(info.value) and words in str(info.value)


def test_the_cli_names_the_broken_file_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN["unknown check kind"][0])
    result = CliRunner().invoke(app, ["eval", "--suite", str(path), "--model", "reference", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"].startswith(f"{path}:8:")


# -- running, resuming, reporting (reference pseudo-model: no inference) ---------------------------------


def test_reference_run_resumes_after_interruption_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = eval_cli("--suite", str(SMALL), "--model", "reference", "--out", str(out))
    assert scores_by_model(first)["reference"]["passed"] == 1.0
    records = sorted((out / "records" / "reference").glob("*.json"))
    assert len(records) == 3
    # An interrupted run lost its last trial; the rerun does only that one and leaves the others alone.
    kept = {p: p.stat().st_mtime_ns for p in records[1:]}
    records[0].unlink()
    again = eval_cli("--suite", str(SMALL), "--model", "reference", "--out", str(out))
    assert records[0].is_file() and {p: p.stat().st_mtime_ns for p in records[1:]} == kept
    assert again["scores"] == first["scores"]
    report = (out / "report.md").read_text()
    assert "| reference | 100.0% |" in report and "GPT-4 rows are missing" in report
    assert "<svg" in (out / "report.html").read_text() and (out / "latency.svg").is_file()


def test_paper_suite_report_has_the_published_reference_rows(tmp_path: Path) -> None:
    out = tmp_path / "paper"
    eval_cli("--suite", str(SUITES[1]), "--model", "reference", "--out", str(out), "--case",
             Suite.load(SUITES[1]).cases[0].id)
    report = (out / "report.md").read_text()
    assert report.count("(published†)") == 3 and "77.8% (7/9)" in report
    assert "Published, not measured here: arXiv:2510.08576" in report


def test_a_run_folder_refuses_a_changed_suite(tmp_path: Path) -> None:
    suite = tmp_path / "small.yaml"
    shutil.copy(SMALL, suite)
    suite.write_text(suite.read_text().replace("../../evals", str(ROOT / "evals")))
    eval_cli("--suite", str(suite), "--model", "reference", "--out", str(tmp_path / "run"))
    suite.write_text(suite.read_text().replace("call the plumber", "call the electrician"))
    result = CliRunner().invoke(app, ["eval", "--suite", str(suite), "--model", "reference", "--out",
                                      str(tmp_path / "run"), "--json"])
    assert result.exit_code == 2 and "different version" in json.loads(result.stdout)["error"]


# -- the embedded model, end to end ---------------------------------------------------------------------


@pytest.mark.model
def test_embedded_model_run_is_recorded_and_replays_to_the_same_figures(tmp_path: Path) -> None:
    out = tmp_path / "run"
    recorded = eval_cli("--suite", str(SMALL), "--model", "llamacpp:smollm2", "--model", "reference",
                        "--out", str(out))
    model = scores_by_model(recorded)["llamacpp:smollm2"]
    assert model["trials"] == 3 and model["latency_median_s"] > 0 and model["tokens_in"] > 500
    trials = {t.case: t for t in load_trials(out) if t.model == "llamacpp:smollm2"}
    # Every raw response is on disk, with the prompt it answered.
    for trial in trials.values():
        assert trial.trace is not None and trial.trace.attempts
        assert all(a.raw and a.messages for a in trial.trace.attempts)
        # The verdict comes from executing the workflow, not from its text.
        if trial.valid:
            assert trial.verdict is not None and trial.verdict.steps
    replayed = eval_cli("--replay", str(out), "--out", str(tmp_path / "replay"))
    assert replayed["scores"] == recorded["scores"]
    assert all(s["replay_diverged"] == 0 for s in replayed["scores"])
    again = {t.case: t for t in load_trials(tmp_path / "replay") if t.model == "llamacpp:smollm2"}
    assert {c: t.passed for c, t in again.items()} == {c: t.passed for c, t in trials.items()}


@pytest.mark.model
def test_server_backend_trials_run_in_parallel_and_compare_beside_another_run(tmp_path: Path,
                                                                             llama_server: str) -> None:
    spec = f"openai:smollm2@{llama_server}"
    server = eval_cli("--suite", str(SMALL), "--model", spec, "--jobs", "3", "--out", str(tmp_path / "server"),
                      "--case", "add-task", "--case", "refuse-wipe")
    assert scores_by_model(server)[spec]["trials"] == 2
    eval_cli("--suite", str(SMALL), "--model", "reference", "--out", str(tmp_path / "ref"))
    both = eval_cli("--suite", str(SMALL), "--model", "reference", "--out", str(tmp_path / "ref"),
                    "--compare", str(tmp_path / "server"))
    assert set(scores_by_model(both)) == {"reference", spec}
    assert spec in (tmp_path / "ref" / "report.md").read_text()
