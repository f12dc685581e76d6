"""Where BFCL's data lives (the installed `bfcl-eval` package) and how a category is read.

bfcl-eval pins numpy and many model SDKs; intentos never installs those. The package is
installed with `--no-deps` and only its data files and pure-Python checkers and API
classes are used, so this module finds it with `find_spec` and never imports its
top-level handlers.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

from intentos.errors import IntentosError

INSTALL_HINT = "install it with `.venv/bin/pip install --no-deps bfcl-eval` (or `make bfcl`)"
SINGLE_TURN = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
MULTI_TURN = ("multi_turn_base",)
CATEGORIES = SINGLE_TURN + MULTI_TURN
PREFIX = "BFCL_v4_"


class BfclUnavailable(IntentosError):
    """bfcl-eval is not installed, or a category or file is not where it should be."""


def package_root() -> Path:
    """The installed bfcl_eval package folder; a clear error naming the install command when missing."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BfclUnavailable(f"the BFCL suites need the bfcl-eval package, which is not installed; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def version() -> str:
    try:
        return importlib.metadata.version("bfcl-eval")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise BfclUnavailable(f"unknown BFCL category {category!r}; supported: {', '.join(CATEGORIES)}")
    return category


def data_file(category: str) -> Path:
    path = package_root() / "data" / f"{PREFIX}{check_category(category)}.json"
    if not path.is_file():
        raise BfclUnavailable(f"{path} is missing: the installed bfcl-eval {version()} lacks category {category!r}")
    return path


def answer_file(category: str) -> Path | None:
    """The possible-answer file; irrelevance has none (the answer is: no call)."""
    path = package_root() / "data" / "possible_answer" / f"{PREFIX}{check_category(category)}.json"
    return path if path.is_file() else None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@cache
def load_entries(category: str) -> tuple[dict[str, Any], ...]:
    """The category's test entries, in file order."""
    return tuple(_jsonl(data_file(category)))


@cache
def load_answers(category: str) -> dict[str, Any]:
    """Ground truth by entry id (empty for irrelevance)."""
    path = answer_file(category)
    return {row["id"]: row["ground_truth"] for row in _jsonl(path)} if path else {}


def digest(category: str) -> str:
    """A hash of the category's data and answers: a recorded run replays only against the same data."""
    h = hashlib.sha256(f"bfcl-eval {category}\n".encode())
    for path in (data_file(category), answer_file(category)):
        if path is not None:
            h.update(path.read_bytes())
    return h.hexdigest()


@cache
def func_doc(class_name: str) -> tuple[dict[str, Any], ...]:
    """The function documents of one multi-turn API class (what the model is shown)."""
    from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING

    package_root()
    name = MULTI_TURN_FUNC_DOC_FILE_MAPPING.get(class_name)
    if name is None:
        raise BfclUnavailable(f"bfcl-eval has no function docs for API class {class_name!r}")
    return tuple(_jsonl(package_root() / "data" / "multi_turn_func_doc" / name))
