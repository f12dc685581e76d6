"""BFCL v4 as eval suites: data from the installed bfcl-eval, BFCL's own checkers, our adapter around them.

The scorer is checked on hand-verified passes and failures of each category (answers
written here, decided by reading BFCL's possible answers), and against the package's
own ground truth: every single-turn ground truth, turned into a workflow, passes
BFCL's checker, and the multi-turn ground truth, executed on our API apps, passes its
state and response checkers. The model tests run two cases of each category on the
embedded model and replay them offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.backends.replay import ReplayBackend
from intentos.cli import app
from intentos.controller import ControllerSettings
from intentos.eval.bfcl import data
from intentos.eval.bfcl.ast_check import check_calls, checker_module
from intentos.eval.bfcl.functions import NameMap, intentos_name, params_model
from intentos.eval.bfcl.multi_turn import parse_call, render_call
from intentos.eval.bfcl.suite import BfclSuite, load_bfcl_suite, single_turn_table
from intentos.eval.record import load_trials, read_manifest
from intentos.eval.runner import ExternalSuite, sample_cases
from intentos.eval.suites import load_suite

pytestmark = pytest.mark.skipif(data.importlib.util.find_spec("bfcl_eval") is None,
                                reason="bfcl-eval is not installed (make bfcl)")
SETTINGS = ControllerSettings(max_attempts=1)


def eval_cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["eval", *args, "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    payload = json.loads(result.stdout)
    assert result.exit_code == 0, payload
    return payload


@pytest.fixture(scope="module")
def suites() -> dict[str, BfclSuite]:
    return {c: load_bfcl_suite(c) for c in data.CATEGORIES}


def replayed(suite: BfclSuite, case_id: str, *answers: dict[str, Any]):
    """Run a case as if a model had answered each prompt with these workflows (no model involved)."""
    backend = ReplayBackend([json.dumps(a) for a in answers], spec="hand")
    return suite.run_trial(suite.case(case_id), 0, backend, SETTINGS, "hand")


def states(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"states": [{"name": f"s{i}", "call": c, "args": a} for i, (c, a) in enumerate(calls)]}


# -- the package and its absence ------------------------------------------------------------------------


def test_missing_bfcl_eval_fails_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.BfclUnavailable, match=r"pip install --no-deps bfcl-eval.*make bfcl"):
        load_suite("bfcl:simple_python")
    result = CliRunner().invoke(app, ["eval", "--suite", "bfcl:simple_python", "--model", "reference", "--json"])
    assert result.exit_code == 2 and "pip install --no-deps bfcl-eval" in json.loads(result.stdout)["error"]


def test_an_unknown_category_is_named() -> None:
    with pytest.raises(data.BfclUnavailable, match="unknown BFCL category 'simple_rust'"):
        load_suite("bfcl:simple_rust")


def test_the_ast_checker_is_bfcls_own_file_without_its_sdk_imports() -> None:
    module = checker_module()
    assert Path(module.__file__).parts[-3:] == ("eval_checker", "ast_eval", "ast_checker.py")
    assert "bfcl_eval" in Path(module.__file__).parts
    assert "bfcl_eval.constants.model_config" not in sys.modules  # the stand-in is not left behind
    # In a fresh interpreter (other tests here import openai themselves): loading it pulls in no model SDK.
    probe = ("import sys; from intentos.eval.bfcl.ast_check import checker_module; checker_module(); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'anthropic', 'openai', 'google', 'mistralai'}))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr


def test_the_categories_load_whole(suites: dict[str, BfclSuite]) -> None:
    sizes = {c: len(s.cases) for c, s in suites.items()}
    assert sizes == {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200,
                     "irrelevance": 240, "multi_turn_base": 200}
    case = suites["simple_python"].case("simple_python_0")
    assert case.intent.startswith("Find the area of a triangle") and case.difficulty == "easy"
    assert suites["simple_python"].ref() == "bfcl:simple_python" and len(suites["simple_python"].digest()) == 64
    # The runner hands their trials to them: an external suite by what it does (the runner's Protocol).
    assert all(isinstance(s, ExternalSuite) for s in suites.values())
    assert load_suite("bfcl:irrelevance").ref() == "bfcl:irrelevance"


# -- names and parameter models -------------------------------------------------------------------------


def test_names_map_to_app_verb_and_back() -> None:
    names = NameMap.build(["math.factorial", "calculate_triangle_area", "a.b.c", "agent.x"])
    assert set(names.to_bfcl) == {"math.factorial", "tools.calculate_triangle_area", "a.b.c", "x_agent.x"}
    assert names.to_intentos["agent.x"] == "x_agent.x" and names.to_bfcl["a.b.c"] == "a.b.c"
    assert intentos_name("spotify.play") == "spotify.play"
    with pytest.raises(ValueError, match="both map to"):
        NameMap.build(["tools.f", "f"])


def test_bfcl_types_become_pydantic_fields() -> None:
    model = params_model("t", {"type": "dict", "required": ["n", "xs"], "properties": {
        "n": {"type": "integer"}, "x": {"type": "float"}, "xs": {"type": "array", "items": {"type": "float"}},
        "pair": {"type": "tuple", "items": {"type": "integer"}}, "opts": {"type": "dict", "properties": {
            "rank": {"type": "string", "enum": ["a", "b"]}}}, "anything": {"type": "any"},
        "class": {"type": "string"}}})
    schema = model.model_json_schema()
    assert schema["required"] == ["n", "xs"]
    assert schema["properties"]["xs"] == {"items": {"type": "number"}, "title": "Xs", "type": "array"}
    assert "class" in schema["properties"]  # a keyword keeps its BFCL name as the alias
    ok = model.model_validate({"n": 3, "xs": [1, 2.5], "class": "x", "opts": {"rank": "a"}, "pair": [1, 2]})
    assert ok.model_dump(by_alias=True, exclude_unset=True)["class"] == "x"
    with pytest.raises(ValueError):
        model.model_validate({"n": 3, "xs": [1], "opts": {"rank": "c"}})


def test_the_functions_of_a_case_make_its_function_table(suites: dict[str, BfclSuite]) -> None:
    table, names = single_turn_table(suites["multiple"].case("multiple_0"))
    assert "triangle_properties.get" in table and {"agent.say", "agent.ask", "agent.refuse"} <= set(table.functions)
    assert "agent.check" not in table  # only the ways to talk or decline sit beside BFCL's functions
    line = next(x for x in table.prompt_text().splitlines() if "triangle_properties.get(" in x)
    assert "side1: int" in line and "get_area?: bool" in line and "Args: side1:" in line


# -- hand-verified verdicts, single turn -------------------------------------------------------------------


def test_simple_python_hand_verified(suites: dict[str, BfclSuite]) -> None:
    entry = suites["simple_python"].case("simple_python_0").entry
    answer = suites["simple_python"].case("simple_python_0").answer  # base [10], height [5], unit ["units", ""]
    fns = entry["function"]

    def verdict(*calls: dict) -> Any:
        return check_calls("simple_python", fns, list(calls), answer)

    assert verdict({"calculate_triangle_area": {"base": 10, "height": 5}}).valid
    assert verdict({"calculate_triangle_area": {"base": 10, "height": 5, "unit": "Units"}}).valid  # normalised
    assert verdict({"calculate_triangle_area": {"base": 10, "height": 6}}).error_type == "value_error:others"
    assert verdict({"calculate_triangle_area": {"base": "10", "height": 5}}).error_type == "type_error:simple"
    assert verdict({"calculate_triangle_area": {"base": 10}}).error_type.endswith("missing_required")
    assert verdict({"calculate_triangle_area": {"base": 10, "height": 5, "color": "red"}}).error_type.endswith(
        "unexpected_param")
    assert not verdict({"triangle_area": {"base": 10, "height": 5}}).valid
    assert not verdict({"calculate_triangle_area": {"base": 10, "height": 5}},
                       {"calculate_triangle_area": {"base": 10, "height": 5}}).valid
    assert check_calls("simple_python", fns, [], answer).error_type == "ast_decoder:empty"


def test_single_turn_workflows_are_scored_through_the_whole_path(suites: dict[str, BfclSuite]) -> None:
    """A model's workflow → our names mapped back → BFCL's checker; agent steps are not calls."""
    simple = suites["simple_python"]
    good = states(("tools.calculate_triangle_area", {"base": 10, "height": 5}),
                  ("agent.say", {"message": "The area is computed."}))
    assert replayed(simple, "simple_python_0", good).passed
    trial = replayed(simple, "simple_python_0", states(("tools.calculate_triangle_area", {"base": 5, "height": 10})))
    assert not trial.passed and "value_error" in trial.verdict.checks[0].detail
    multiple = suites["multiple"]  # multiple_2: country_info.capital(country="Brazil") among three functions
    assert replayed(multiple, "multiple_2", states(("country_info.capital", {"country": "Brazil"}))).passed
    assert not replayed(multiple, "multiple_2", states(("country_info.population", {"country": "Brazil"}))).passed
    parallel = suites["parallel"]  # parallel_0: spotify.play Taylor Swift 20, Maroon 5 15, in any order
    both = states(("spotify.play", {"artist": "Maroon 5", "duration": 15}),
                  ("spotify.play", {"artist": "Taylor Swift", "duration": 20}))
    assert replayed(parallel, "parallel_0", both).passed
    assert not replayed(parallel, "parallel_0", states(("spotify.play", {"artist": "Maroon 5", "duration": 15})))\
        .passed
    swapped = states(("spotify.play", {"artist": "Maroon 5", "duration": 20}),
                     ("spotify.play", {"artist": "Taylor Swift", "duration": 15}))
    assert not replayed(parallel, "parallel_0", swapped).passed
    pm = suites["parallel_multiple"]  # parallel_multiple_0: sum_of_multiples(1, 1000, [3, 5]), product_of_primes(5)
    right = states(("math_toolkit.product_of_primes", {"count": 5}),
                   ("math_toolkit.sum_of_multiples", {"lower_limit": 1, "upper_limit": 1000, "multiples": [3, 5]}))
    assert replayed(pm, "parallel_multiple_0", right).passed
    wrong = states(("math_toolkit.product_of_primes", {"count": 5}),
                   ("math_toolkit.sum_of_multiples", {"lower_limit": 1, "upper_limit": 1000, "multiples": [3, 4]}))
    assert not replayed(pm, "parallel_multiple_0", wrong).passed


def test_irrelevance_passes_only_without_a_call(suites: dict[str, BfclSuite]) -> None:
    irrelevance = suites["irrelevance"]  # irrelevance_0: a triangle's area, only a BMI function offered
    refuse = states(("agent.refuse", {"reason": "no function computes a triangle's area"}))
    assert replayed(irrelevance, "irrelevance_0", refuse).passed
    assert replayed(irrelevance, "irrelevance_0", states(("agent.say", {"message": "It is 25 m²."}))).passed
    call = states(("tools.determine_body_mass_index", {"weight": 10.0, "height": 5.0}))
    assert not replayed(irrelevance, "irrelevance_0", call).passed
    # A reply that never becomes a workflow runs nothing: BFCL counts an undecodable answer as no call.
    garbage = irrelevance.run_trial(irrelevance.case("irrelevance_0"), 0, ReplayBackend(["no JSON here"], spec="x"),
                                    SETTINGS, "x")
    assert not garbage.valid and garbage.passed


@pytest.mark.parametrize("category", data.SINGLE_TURN)
def test_bfcls_own_answers_pass_and_altered_ones_fail(category: str, suites: dict[str, BfclSuite]) -> None:
    """Agreement with the package's possible answers: every ground truth passes; a changed value fails."""
    suite = suites[category]
    failed = [c.id for c in suite.cases if not suite.run_trial(c, 0, None, SETTINGS, "reference").passed]
    assert failed == []
    if category == "irrelevance":
        return
    altered = 0
    for case in suite.cases[:40]:
        trial = suite.run_trial(case, 0, None, SETTINGS, "reference")
        workflow = trial.workflow
        args = workflow["states"][0]["args"]
        key = next((k for k, v in args.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)),
                   None)
        if key is None:
            continue
        args[key] = args[key] + 7919 if isinstance(args[key], (int, float)) else args[key] + " zzz"
        assert not replayed(suite, case.id, workflow).passed, case.id
        altered += 1
    assert altered >= 30


# -- multi turn -----------------------------------------------------------------------------------------------


def test_call_strings_round_trip() -> None:
    assert render_call("mv", {"source": "a b.pdf", "destination": "temp"}) == \
        "mv(source='a b.pdf', destination='temp')"
    assert parse_call("sort('final_report.pdf')", ["GorillaFileSystem"]) == ("sort", {"file_name": "final_report.pdf"})


def test_multi_turn_ground_truth_executed_on_our_apps_passes(suites: dict[str, BfclSuite]) -> None:
    suite = suites["multi_turn_base"]
    for case in suite.cases[:6]:
        trial = suite.run_trial(case, 0, None, SETTINGS, "reference")
        assert trial.passed, (case.id, trial.verdict.checks[0].detail)
        classes = case.entry["involved_classes"]
        assert [[parse_call(c, classes) for c in t.calls] for t in trial.turns] == [
            [parse_call(c, classes) for c in turn] for turn in case.answer]


def test_multi_turn_hand_verified(suites: dict[str, BfclSuite]) -> None:
    """multi_turn_base_0: four turns on the Gorilla file system, answered as a model would, one workflow each."""
    suite = suites["multi_turn_base"]
    fs = "file_system"
    turns = [
        states((f"{fs}.cd", {"folder": "document"}), (f"{fs}.mkdir", {"dir_name": "temp"}),
               (f"{fs}.mv", {"source": "final_report.pdf", "destination": "temp"})),
        states((f"{fs}.cd", {"folder": "temp"}), (f"{fs}.grep", {"file_name": "final_report.pdf",
                                                                 "pattern": "budget analysis"})),
        states((f"{fs}.sort", {"file_name": "final_report.pdf"})),
        states((f"{fs}.cd", {"folder": ".."}), (f"{fs}.mv", {"source": "previous_report.pdf", "destination": "temp"}),
               (f"{fs}.cd", {"folder": "temp"}),
               (f"{fs}.diff", {"file_name1": "final_report.pdf", "file_name2": "previous_report.pdf"})),
    ]
    trial = replayed(suite, "multi_turn_base_0", *turns)
    assert trial.passed, trial.verdict.checks[0].detail
    assert len(trial.turns) == 4 and trial.turns[0].calls[1] == "mkdir(dir_name='temp')"
    assert "Earlier in this conversation" in trial.turns[1].intent and "mkdir(dir_name='temp')" in trial.turns[1].intent
    # The folder made under another name: the file system's state differs from the ground truth's.
    wrong = [states((f"{fs}.cd", {"folder": "document"}), (f"{fs}.mkdir", {"dir_name": "tmp"}),
                    (f"{fs}.mv", {"source": "final_report.pdf", "destination": "tmp"})), *turns[1:]]
    trial = replayed(suite, "multi_turn_base_0", *wrong)
    assert not trial.passed and "instance_state_mismatch" in trial.verdict.checks[0].detail
    # Answering a turn with talk only: BFCL fails the turn as empty.
    idle = [turns[0], states(("agent.say", {"message": "Searching now."})), *turns[2:]]
    trial = replayed(suite, "multi_turn_base_0", *idle)
    assert not trial.passed and "empty_turn_model_response" in trial.verdict.checks[0].detail


# -- sampling, records, replay, report ----------------------------------------------------------------------


def test_sampling_is_seeded_and_recorded(tmp_path: Path, suites: dict[str, BfclSuite]) -> None:
    cases = suites["parallel"].cases
    assert [c.id for c in sample_cases(cases, 5, 3)] == [c.id for c in sample_cases(cases, 5, 3)]
    assert [c.id for c in sample_cases(cases, 5, 3)] != [c.id for c in sample_cases(cases, 5, 4)]
    assert len(sample_cases(cases, 500, 0)) == 200
    out = tmp_path / "run"
    first = eval_cli("--suite", "bfcl:parallel", "--model", "reference", "--limit", "4", "--seed", "3", "--out",
                     str(out))
    assert first["sample"] == {"limit": 4, "seed": 3, "cases": 4, "suite_cases": 200}
    assert first["scores"][0]["passed"] == 1.0 and first["scores"][0]["trials"] == 4
    manifest = read_manifest(out)
    assert manifest is not None and manifest.suite_path == "bfcl:parallel" and manifest.limit == 4
    report = (out / "report.md").read_text()
    assert "sample: 4 of 200 cases (--limit 4 --seed 3)" in report
    assert "gpt-4o-2024-11-20 (FC) (published†) | 93.0%" in report and "PMLR 267:48371-48392" in report
    again = eval_cli("--replay", str(out), "--out", str(tmp_path / "replay"))
    assert again["scores"] == first["scores"]


# -- the embedded model ---------------------------------------------------------------------------------------

MODEL = "llamacpp:smollm2"
PICKS = {"simple_python": ["simple_python_0", "simple_python_1"], "multiple": ["multiple_2", "multiple_1"],
         "parallel": ["parallel_0", "parallel_1"], "parallel_multiple": ["parallel_multiple_0", "parallel_multiple_1"],
         "irrelevance": ["irrelevance_0", "irrelevance_1"]}


@pytest.fixture(scope="module")
def model_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Two cases of each single-turn category and one multi-turn case on the embedded model, one attempt each."""
    runs = {}
    root = tmp_path_factory.mktemp("bfcl-model")
    picks = {**PICKS, "multi_turn_base": [_shortest_multi_turn()]}
    for category, ids in picks.items():
        out = root / category
        args = [a for i in ids for a in ("--case", i)]
        # One attempt of at most 160 tokens: SmolLM2 sometimes repeats a state until the cap, and the machine is slow.
        runs[category] = out, eval_cli("--suite", f"bfcl:{category}", "--model", MODEL, "--max-attempts", "1",
                                       "--max-tokens", "160", "--out", str(out), *args)
    return runs


def _shortest_multi_turn() -> str:
    suite = load_bfcl_suite("multi_turn_base")
    return min(suite.cases, key=lambda c: (len(c.entry["question"]), sum(len(t) for t in c.answer))).id


@pytest.mark.model
def test_embedded_model_runs_every_category_and_replays(model_runs: dict, tmp_path: Path) -> None:
    for category, (out, result) in model_runs.items():
        (score,) = result["scores"]
        assert score["model"] == MODEL and score["trials"] == (1 if category == "multi_turn_base" else 2)
        assert score["tokens_in"] > 200 and score["latency_median_s"] > 0
        for trial in load_trials(out):
            assert trial.trace is not None and trial.trace.attempts and trial.verdict is not None
            assert trial.verdict.checks[0].check.startswith("BFCL")
        replay = eval_cli("--replay", str(out), "--out", str(tmp_path / category))
        assert replay["scores"] == result["scores"], category
        assert replay["scores"][0]["replay_diverged"] == 0
    multi = load_trials(model_runs["multi_turn_base"][0])[0]
    assert len(multi.turns) >= 1 and sum(t.attempts for t in multi.turns) == len(multi.trace.attempts)
