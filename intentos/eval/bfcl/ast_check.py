"""Scoring single-turn answers with BFCL's own AST checker.

`bfcl_eval.eval_checker.ast_eval.ast_checker` is pure Python, but importing it the
normal way pulls `bfcl_eval.constants.model_config`, which imports every model
handler and with them the SDKs (anthropic, openai, …) we do not install. It uses
that mapping for one thing: whether a model's provider rewrote `.` to `_` in function
names. Our calls carry BFCL's names unchanged, so the module is loaded from its file
with a stand-in for that one import that answers "no rewriting"; every rule (function
name, required parameters, values among the possible answers, types, strings
normalised) is BFCL's code.

The irrelevance category is BFCL's relevance rule: the answer passes when no
function call was made (a workflow that only says, asks or refuses).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from functools import cache
from typing import Any

from pydantic import BaseModel

from intentos.eval.bfcl.data import package_root
from intentos.workflow import DONE, FAILED, Workflow

AGENT_APP = "agent"
_LOCK = threading.Lock()


class AstVerdict(BaseModel):
    valid: bool
    error: str | None = None
    error_type: str | None = None


class _NoRewrite:
    underscore_to_dot = False


class _Models(dict):
    def __missing__(self, key: str) -> _NoRewrite:
        return _NoRewrite()


@cache
def checker_module() -> types.ModuleType:
    """BFCL's ast_checker.py, executed with a stand-in for its model-handler import."""
    root = package_root()
    path = root / "eval_checker" / "ast_eval" / "ast_checker.py"
    name = "bfcl_eval.constants.model_config"
    stub = types.ModuleType(name)
    stub.MODEL_CONFIG_MAPPING = _Models()  # type: ignore[attr-defined]
    with _LOCK:
        saved = sys.modules.get(name)
        sys.modules[name] = stub
        try:
            spec = importlib.util.spec_from_file_location("intentos_bfcl_ast_checker", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            # Leave sys.modules as found: the real module_config must still fail loudly if anything imports it.
            if saved is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved
    return module


def check_calls(category: str, functions: list[dict[str, Any]], calls: list[dict[str, dict[str, Any]]],
                answer: list[dict[str, Any]] | None) -> AstVerdict:
    """BFCL's verdict on `calls` (`[{bfcl_name: {param: value}}]`) for one entry of `category`."""
    if category == "irrelevance":
        # BFCL: "irrelevance test means no function call outputted".
        if calls:
            return AstVerdict(valid=False, error=f"made {len(calls)} call(s) where none fits",
                              error_type="irrelevance_error:decoder_success")
        return AstVerdict(valid=True)
    from bfcl_eval.constants.enums import Language

    if not calls:
        return AstVerdict(valid=False, error="no function call was made", error_type="ast_decoder:empty")
    result = checker_module().ast_checker(functions, calls, answer, Language.PYTHON, category, "intentos")
    error = result.get("error")
    text = "; ".join(map(str, error))[:600] if isinstance(error, list) else (str(error) if error else None)
    return AstVerdict(valid=bool(result["valid"]), error=text or None, error_type=result.get("error_type"))


def success_path(workflow: Workflow) -> list[str]:
    """The states a run visits when every call succeeds: the calls the model committed to."""
    seen, path, current = set(), [], workflow.start
    while current not in (DONE, FAILED) and current in workflow.states and current not in seen:
        seen.add(current)
        path.append(current)
        current = workflow.states[current].next
    return path


def workflow_calls(workflow: Workflow, to_bfcl: dict[str, str]) -> list[dict[str, dict[str, Any]]]:
    """The workflow's BFCL calls, in order, as the model wrote their arguments; agent.* steps are not calls."""
    calls = []
    for name in success_path(workflow):
        state = workflow.states[name]
        if state.call.partition(".")[0] == AGENT_APP:
            continue
        calls.append({to_bfcl.get(state.call, state.call): dict(state.args)})
    return calls
