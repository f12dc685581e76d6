"""One model-file format for every skill: a JSON header and a torch state dict, nothing pickled.

Bellamy, Enel and the fault localizers save `{"header": JSON text, "state": tensors}`; the log
detectors save a flat bundle of tensors and plain values. All are serialized in memory (`to_bytes`,
`blob_bytes`) and read back from bytes by `torch_load`, the one reader, with
torch.load(weights_only=True), so a model file is data and never code, and an app reads and
writes it only through the sandbox; every way a file can be wrong (missing, too big, foreign,
another kind or version, weights of another shape) is a ModelFileError naming the path.
`save` / `load` are the same on a path anywhere, for the CLI and tests.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from intentos.errors import IntentosError
from intentos.skills.kit.files import MAX_DATA_BYTES, LocalReadError, read_local, write_local

H = TypeVar("H", bound=BaseModel)


class ModelFileError(IntentosError):
    """A saved model could not be read or does not fit what it is used for."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


STATE = "state"  # the key of the state dict in a file (the fault localizers' files say "state_dict")


def to_bytes(header: BaseModel, state: dict[str, Any], state_key: str = STATE) -> bytes:
    """A header and a state dict as the bytes of a model file."""
    return blob_bytes({"header": header.model_dump_json(), state_key: state})


def blob_bytes(blob: dict[str, Any]) -> bytes:
    """Tensors and plain containers in torch's zip format, which `torch_load` reads back."""
    import torch

    buf = io.BytesIO()
    torch.save(blob, buf)
    return buf.getvalue()


def save(path: str | Path, header: BaseModel, state: dict[str, Any]) -> Path:
    """Write a model file anywhere (CLI, tests); the app writes `to_bytes` through the sandbox."""
    return write_local(path, to_bytes(header, state))


def read_local_model(path: str | Path) -> bytes:
    """The bytes of a model file anywhere (CLI, tests); a ModelFileError names a missing or unreadable one."""
    try:
        return read_local(path, what="model file")
    except LocalReadError as exc:
        reason = "no such model file" if str(exc) == "no such file" else str(exc)
        raise ModelFileError(f"{path}: {reason}") from None


def load(path: str | Path, header_type: type[H], kind: str, version: int, label: str) -> tuple[H, dict[str, Any]]:
    """`from_bytes` of a model file anywhere (CLI, tests)."""
    return from_bytes(read_local_model(path), str(path), header_type, kind, version, label)


def from_bytes(data: bytes, name: str, header_type: type[H], kind: str, version: int,
               label: str) -> tuple[H, dict[str, Any]]:
    """The header (checked to be `kind` of `version`) and the state dict of a saved `label` model."""
    header, state = read_blob(data, name, header_type, label)
    found_kind, found_version = getattr(header, "kind", None), getattr(header, "version", None)
    if found_kind != kind or found_version != version:
        raise ModelFileError(f"{name}: a {found_kind} model of version {found_version}, "
                             f"not {label} model of version {version}")
    return header, state


def read_blob(data: bytes, name: str, header_type: type[H], label: str,
              state_key: str = STATE) -> tuple[H, dict[str, Any]]:
    """The validated header and the state dict of the model file `name`, whatever its kind."""
    blob = torch_load(data, name)
    if not isinstance(blob, dict) or not isinstance(blob.get("header"), str) or not isinstance(blob.get(state_key),
                                                                                                dict):
        raise ModelFileError(f"{name}: not {label} model file (no header/{state_key})")
    try:
        header = header_type.model_validate(json.loads(blob["header"]))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ModelFileError(f"{name}: bad model header: {where}: {err['msg']}") from None
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{name}: bad model header: {str(exc) or type(exc).__name__}") from None
    return header, blob[state_key]


def torch_load(data: bytes, name: str, refusal: str = "not a model file") -> Any:
    """torch.load(weights_only=True) of a model file's bytes: tensors and plain containers, never code.

    Before torch sees it, the zip archive torch writes is checked to hold only stored (uncompressed)
    members of no more than MAX_DATA_BYTES in all, so a small file cannot unpack into a huge one.
    """
    import torch

    if data[:4] == b"PK\x03\x04":
        try:
            members = zipfile.ZipFile(io.BytesIO(data)).infolist()
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise ModelFileError(f"{name}: {refusal} (a damaged archive: {exc})") from None
        if any(m.compress_type != zipfile.ZIP_STORED for m in members) or \
                sum(m.file_size for m in members) > MAX_DATA_BYTES:
            raise ModelFileError(f"{name}: {refusal} (compressed or oversized archive members)")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its own
        raise ModelFileError(f"{name}: {refusal} ({type(exc).__name__}: {_first(exc)})") from None


def load_state(net: Any, state: dict[str, Any], name: str) -> None:
    """Put saved weights into a freshly built network; any mismatch is a ModelFileError naming the file."""
    try:
        net.load_state_dict(state)
    except Exception as exc:  # shapes, missing keys, a non-tensor value
        raise ModelFileError(f"{name}: weights do not fit the header: {str(exc)[:200]}") from None


def _first(exc: BaseException) -> str:
    """The first sentence of an exception's message, short (torch's can run to a page)."""
    text = " ".join(str(exc).split()).split(". ")[0]
    return text if len(text) <= 100 else text[:97] + "..."
