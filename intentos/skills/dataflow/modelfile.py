"""One file per model, Bellamy's and Enel's alike: a JSON header and a torch state dict, nothing pickled.

Read back with torch.load(weights_only=True), so a model file is data and never code; every way a
file can be wrong (missing, foreign, another kind or version) is a ModelFileError naming the path.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from intentos.errors import IntentosError

H = TypeVar("H", bound=BaseModel)


class ModelFileError(IntentosError):
    """A saved model could not be read or does not fit what it is used for."""


def _blob(header: BaseModel, state: dict[str, Any]) -> dict[str, Any]:
    return {"header": header.model_dump_json(), "state": state}


def save(path: str | Path, header: BaseModel, state: dict[str, Any]) -> Path:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_blob(header, state), path)
    return path


def to_bytes(header: BaseModel, state: dict[str, Any]) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(_blob(header, state), buf)
    return buf.getvalue()


def load(path: str | Path, header_type: type[H], kind: str, version: int, label: str) -> tuple[H, dict[str, Any]]:
    """The header (checked to be `kind` of `version`) and the state dict of a saved `label` model."""
    import torch

    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except Exception as exc:  # torch raises many kinds for a file that is not its own
        raise ModelFileError(f"{path}: not a model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict) or "header" not in blob or "state" not in blob:
        raise ModelFileError(f"{path}: not {label} model file (no header/state)")
    try:
        header = header_type.model_validate(json.loads(blob["header"]))
    except (ValueError, ValidationError) as exc:
        raise ModelFileError(f"{path}: bad model header: {str(exc).splitlines()[0]}") from None
    found_kind, found_version = getattr(header, "kind", None), getattr(header, "version", None)
    if found_kind != kind or found_version != version:
        raise ModelFileError(f"{path}: a {found_kind} model of version {found_version}, "
                             f"not {label} model of version {version}")
    return header, blob["state"]
