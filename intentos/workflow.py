"""A Workflow: a deterministic state machine over the functions of the installed apps.

Each state calls one function. Its arguments may reference earlier results
(`${state.result.field}`); it names the state to go to on success (`next`) and on
failure (`on_failure`). With `for_each` (a list, or one reference to a list) the call runs once
per item, `${item}` in its arguments standing for the current item; its result is
`{"items": [each call's result], "count": N}`. `done` and `failed` are the terminal states. A state that may
be entered again (a retry loop) must carry `max_visits`; validation refuses cycles
without such a bound, so every workflow terminates.

A workflow is data. It reads and writes YAML and JSON, and the state list form that
models produce (`states: [{name: ..., call: ...}]`) is accepted beside the mapping form
people write (`states: {name: {call: ...}}`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from intentos import yamlfile
from intentos.errors import WorkflowFileError
from intentos.references import WRITTEN_NAME, whole_reference

DONE = "done"
FAILED = "failed"
TERMINALS = (DONE, FAILED)
STATE_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"
WRITTEN_STATE_NAME = f"^{WRITTEN_NAME}$"  # what a model may write as a name (bounded; see references)
ARGS_MAX_DEPTH = yamlfile.MAX_DEPTH
MAX_FOR_EACH_ITEMS = 50  # calls of one for_each state: more is a validation problem, or a failed step at run time
# The order a model writes a state's keys in: the name first. Measured with Qwen2.5-Coder-1.5B (grammar, with
# intentos.tidy): call first and name first both pass 11/20 BFCL simple_python cases, but call first ends each
# state on its name and the model then often writes the same state again until its budget runs out (three
# everyday desktop intents looped for 768 tokens); name first planned all three right.
STATE_KEYS = ("name", "call", "args", "for_each", "next", "on_failure")


def in_writing_order(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """States (list form) with their keys in STATE_KEYS order, unknown keys last: how prompts show them."""
    rank = {key: i for i, key in enumerate(STATE_KEYS)}
    return [dict(sorted(state.items(), key=lambda kv: rank.get(kv[0], len(rank)))) if isinstance(state, dict)
            else state for state in states]


class State(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call: str = Field(description="the function, as app.verb")
    args: dict[str, Any] = Field(default_factory=dict)
    for_each: list[Any] | str | None = Field(
        None, description="run the call once per item: a list, or one reference ${STATE.result.PATH} to a list; "
                          "${item} (or ${item.FIELD}) in args is the current item")
    next: str = Field(DONE, description="state to enter when the call succeeds")
    on_failure: str = Field(FAILED, description="state to enter when the call fails")
    max_visits: int | None = Field(None, ge=1, le=1000, description="bound on entries; required on a loop")
    note: str | None = Field(None, description="why this step, for the person reading the plan")

    @field_validator("args", mode="before")
    @classmethod
    def _bounded_args(cls, args: Any) -> Any:
        # Arguments are walked recursively later (references, pydantic, the journal): bound their nesting here,
        # whether they come from a file, a model's reply or a journal.
        if yamlfile.nesting_depth(args, ARGS_MAX_DEPTH) > ARGS_MAX_DEPTH:
            raise ValueError(f"arguments nest deeper than {ARGS_MAX_DEPTH} levels")
        return args

    @field_validator("for_each", mode="before")
    @classmethod
    def _list_or_reference(cls, value: Any) -> Any:
        if isinstance(value, str) and whole_reference(value) is None:
            raise ValueError("for_each must be a list or exactly one reference ${STATE.result.PATH} to a list, "
                             f"not {value!r}")
        if isinstance(value, list) and yamlfile.nesting_depth(value, ARGS_MAX_DEPTH) > ARGS_MAX_DEPTH:
            raise ValueError(f"for_each nests deeper than {ARGS_MAX_DEPTH} levels")
        return value


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intent: str | None = None
    start: str
    states: dict[str, State]

    @model_validator(mode="before")
    @classmethod
    def _states_from_list(cls, data: Any) -> Any:
        # Models emit a list of named states (an array is easy to constrain); people write a mapping.
        # In a list, a state without `next` goes on to the one after it (the last one to `done`),
        # so a linear plan needs no transitions at all.
        if isinstance(data, dict) and isinstance(data.get("states"), list):
            items = data["states"]
            states: dict[str, Any] = {}
            for i, item in enumerate(items):
                if not isinstance(item, dict) or "name" not in item:
                    raise ValueError(f"states[{i}] needs a name")
                body = dict(item)
                name = body.pop("name")
                if not isinstance(name, str):
                    raise ValueError(f"states[{i}].name must be text")
                if name in states:
                    raise ValueError(f"state {name!r} is defined twice")
                if "next" not in body:
                    following = items[i + 1] if i + 1 < len(items) else None
                    body["next"] = following.get("name", DONE) if isinstance(following, dict) else DONE
                states[name] = body
            data = {**data, "states": states}
            data.setdefault("start", next(iter(states), ""))
        return data

    @field_validator("states")
    @classmethod
    def _names(cls, states: dict[str, State]) -> dict[str, State]:
        if not states:
            raise ValueError("a workflow needs at least one state")
        for name in states:
            if name in TERMINALS:
                raise ValueError(f"{name!r} is a terminal state and cannot be defined")
            if not _valid_name(name):
                raise ValueError(f"state name {name!r} must be letters, digits, '_' or '-'")
        return states

    # -- graph -----------------------------------------------------------------------------

    def successors(self, name: str) -> list[str]:
        state = self.states[name]
        return [state.next] if state.next == state.on_failure else [state.next, state.on_failure]

    # -- serialization ---------------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_data(), indent=indent, ensure_ascii=False)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_data(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_json(cls, text: str, name: str = "<string>") -> Workflow:
        """A workflow from JSON text; bad JSON, nesting deeper than yamlfile.MAX_DEPTH or a bad shape is a
        WorkflowFileError naming `name` (and the line, where known)."""
        if len(text) > yamlfile.MAX_FILE_BYTES:
            raise WorkflowFileError(name, f"the text is larger than {yamlfile.MAX_FILE_BYTES:,} bytes")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowFileError(name, f"malformed JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
        except RecursionError:
            raise WorkflowFileError(name, f"nesting deeper than {yamlfile.MAX_DEPTH} levels") from None
        except ValueError as exc:  # e.g. an integer with too many digits
            raise WorkflowFileError(name, f"malformed JSON: {yamlfile.one_line(exc)}") from None
        if yamlfile.nesting_depth(data) > yamlfile.MAX_DEPTH:
            raise WorkflowFileError(name, f"nesting deeper than {yamlfile.MAX_DEPTH} levels")
        if not isinstance(data, dict):
            raise WorkflowFileError(name, "a workflow must be a mapping with `start` and `states`")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'top level'}: {yamlfile.one_line(e['msg'])}"
                                 for e in exc.errors())
            raise WorkflowFileError(name, problems) from None
        except ValueError as exc:  # raised by the list-form converter
            raise WorkflowFileError(name, yamlfile.one_line(exc)) from None

    @classmethod
    def from_yaml(cls, text: str, name: str = "<string>") -> Workflow:
        return from_loaded(yamlfile.loads(text, name))

    @classmethod
    def load(cls, path: str | Path) -> Workflow:
        """Read a workflow file (YAML or JSON: JSON is YAML), with file:line errors."""
        return from_loaded(yamlfile.load(path))


def from_loaded(doc: yamlfile.LoadedYaml, at: yamlfile.Location = ()) -> Workflow:
    data = doc.data
    for key in at:
        data = data[key]
    if not isinstance(data, dict):
        raise doc.error("a workflow must be a mapping with `start` and `states`", at)
    try:
        return Workflow.model_validate(data)
    except ValidationError as exc:
        raise doc.validation_error(exc, at) from None
    except ValueError as exc:  # raised by the list-form converter
        raise WorkflowFileError(doc.path, str(exc), doc.line_of(at + ("states",))) from None


def _valid_name(name: str) -> bool:
    return re.fullmatch(STATE_NAME, name) is not None
