"""BFCL's executable multi-turn APIs as intentos apps, and BFCL's state-based checker.

Each API class (file system, messaging, ticketing, travel booking, vehicle control,
trading, …) is loaded from the installed bfcl-eval with the case's initial
configuration, once per case, and shared by every turn: a `Session` kept in the
context's settings. Each BFCL method becomes a function whose parameter model comes
from BFCL's function document and whose result model from its `response` schema, so
workflows can reference results (`${ls.result.current_directory_content}`).

Every call that reaches an API is logged as the Python call string BFCL's own
checker consumes (`mv(source='a.pdf', destination='temp')`). Judging hands those
strings, turn by turn, to `multi_turn_checker`, which replays them on fresh instances
beside the ground truth and compares the instances' attributes after each turn
(state) and that the model's results contain the ground truth's (response).
"""

from __future__ import annotations

import ast
import copy
import importlib
import json
import re
import threading
import uuid
from typing import Any

from pydantic import BaseModel

from intentos.app import App
from intentos.errors import AppError
from intentos.eval.bfcl.data import func_doc, package_root
from intentos.eval.bfcl.functions import describe, params_model
from intentos.function import Effect, function

SESSION_KEY = "bfcl_session"
# Short app names for the API classes (what the model reads before each function).
APP_NAMES = {
    "GorillaFileSystem": "file_system", "MathAPI": "math", "MessageAPI": "message", "TwitterAPI": "twitter",
    "TicketAPI": "ticket", "TradingBot": "trading", "TravelAPI": "travel", "VehicleControlAPI": "vehicle",
}
_CHECK_LOCK = threading.Lock()


class Session:
    """The live API instances of one case and every call made on them, per turn."""

    def __init__(self, entry: dict[str, Any]) -> None:
        from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING, STATELESS_CLASSES

        package_root()
        self.instances: dict[str, Any] = {}
        for class_name in entry["involved_classes"]:
            module = importlib.import_module(CLASS_FILE_PATH_MAPPING[class_name])
            instance = getattr(module, class_name)()
            if class_name not in STATELESS_CLASSES:
                # As BFCL's executor does: a deep copy, so the entry's configuration is never mutated.
                instance._load_scenario(copy.deepcopy(entry.get("initial_config", {}).get(class_name, {})),
                                        long_context=False)
            self.instances[class_name] = instance
        self.turns: list[list[str]] = []

    def begin_turn(self) -> None:
        self.turns.append([])

    def call(self, class_name: str, method: str, kwargs: dict[str, Any]) -> Any:
        if not self.turns:
            self.begin_turn()
        self.turns[-1].append(render_call(method, kwargs))
        return getattr(self.instances[class_name], method)(**kwargs)


def render_call(method: str, kwargs: dict[str, Any]) -> str:
    """A call as BFCL writes it: `name(key=repr(value), ...)` (values are Python literals)."""
    return f"{method}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def api_app(class_name: str, excluded: frozenset[str] = frozenset()) -> type[App]:
    """An App class over one BFCL API class: its documented methods, less the case's excluded ones."""
    methods: dict[str, Any] = {}
    for doc in func_doc(class_name):
        if doc["name"] in excluded:
            continue
        methods[f"fn_{doc['name']}"] = _api_method(class_name, doc)
    name = APP_NAMES.get(class_name, re.sub(r"\W", "_", class_name).lower())
    blurb = " ".join(str(func_doc(class_name)[0].get("description", "")).split()).split(" Tool description:")[0]
    return type(f"Bfcl_{class_name}", (App,), {"name": name, "description": blurb[:200], **methods})


def _api_method(class_name: str, doc: dict[str, Any]) -> Any:
    verb = doc["name"]
    params = params_model(f"{verb}_args", doc.get("parameters", {}))
    result = params_model(f"{verb}_result", doc.get("response", {}), result=True)

    def call(self: App, args: BaseModel) -> BaseModel:
        session: Session = self.ctx.settings[SESSION_KEY]
        # Only the arguments the workflow gave, under BFCL's names: the call is the model's, not our defaults.
        out = session.call(class_name, verb, args.model_dump(by_alias=True, exclude_unset=True))
        if isinstance(out, dict) and set(out) == {"error"}:
            raise AppError(str(out["error"]))  # BFCL's APIs report failure as {"error": ...}
        data = out if isinstance(out, dict) else {"result": out}
        # Some APIs return non-JSON numbers (MathAPI: mpmath's mpf); the journal needs plain JSON.
        return result.model_validate(json.loads(json.dumps(data, default=_plain)))

    call.__annotations__ = {"args": params, "return": result}
    call.__doc__ = describe(doc) or verb
    call.__name__ = call.__qualname__ = verb
    return function(Effect.WRITE, verb=verb)(call)


def _plain(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def parse_call(text: str, class_names: list[str]) -> tuple[str, dict[str, Any]]:
    """A ground-truth call string → (method, kwargs); positional arguments take the documented order."""
    node = ast.parse(text.strip(), mode="eval").body
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"not a plain call: {text!r}")
    method = node.func.id
    kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    if node.args:
        order = next((list(d.get("parameters", {}).get("properties", {}))
                      for c in class_names for d in func_doc(c) if d["name"] == method), [])
        for name, arg in zip(order, node.args, strict=False):
            kwargs[name] = ast.literal_eval(arg)
    return method, kwargs


def class_of(method: str, class_names: list[str]) -> str:
    for c in class_names:
        if any(d["name"] == method for d in func_doc(c)):
            return c
    raise KeyError(method)


class MultiTurnVerdict(BaseModel):
    valid: bool
    error: str | None = None
    error_type: str | None = None


def check(entry: dict[str, Any], ground_truth: list[list[str]], turns: list[list[str]]) -> MultiTurnVerdict:
    """BFCL's multi_turn_checker on the calls made in each turn (one step per turn: the workflow's calls)."""
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_checker as checker
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils

    turns = turns + [[] for _ in range(len(ground_truth) - len(turns))]
    decoded = [[calls] if calls else [] for calls in turns]
    # BFCL's executor caches instances in its module globals by model name and entry id; a fresh name per
    # check keeps two checks of the same entry apart, and the instances are dropped afterwards.
    model = f"intentos_{uuid.uuid4().hex}"
    with _CHECK_LOCK:
        try:
            result = checker.multi_turn_checker(decoded, ground_truth, entry, entry["id"].rsplit("_", 1)[0], model)
        finally:
            space = vars(multi_turn_utils)
            for key in [k for k in space if k.startswith(model)]:
                del space[key]
    return MultiTurnVerdict(valid=bool(result.get("valid")), error=result.get("error_message"),
                            error_type=result.get("error_type"))
