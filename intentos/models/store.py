"""Where pulled models live, and whether one there is valid.

The cache folder: `$INTENTOS_MODELS_DIR`, else `$INTENTOS_HOME/models`, else
`$XDG_CACHE_HOME/intentos/models`, else `~/.cache/intentos/models`. In it a pulled model is two files:

    NAME.gguf     the assembled model, renamed into place only after it was verified
    NAME.json     the record of that verification: size, sha256, mtime, GGUF architecture and name

A model is valid only when both exist and agree with the registry. A later use compares the file's
size and mtime with the record; when they differ the file is hashed again (and the record refreshed
if it still matches). A pull in progress or interrupted leaves `NAME.gguf.partial` and a `.pull-NAME-*`
folder: neither name is ever taken for a model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intentos.errors import BackendError
from intentos.models.registry import KnownModel, get_model, load_registry

HASH_CHUNK = 4 << 20
SIDECAR_VERSION = 1


def models_dir() -> Path:
    if env := os.environ.get("INTENTOS_MODELS_DIR"):
        return Path(env).expanduser()
    if env := os.environ.get("INTENTOS_HOME"):
        return Path(env).expanduser() / "models"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "intentos" / "models"


def model_file(model: KnownModel) -> Path:
    return models_dir() / f"{model.name}.gguf"


def sidecar_file(model: KnownModel) -> Path:
    return models_dir() / f"{model.name}.json"


def partial_file(model: KnownModel) -> Path:
    return models_dir() / f"{model.name}.gguf.partial"


def pull_command(name: str) -> str:
    return f"intentos models pull {name}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_sidecar(model: KnownModel, path: Path, sha256: str, header: dict[str, Any]) -> None:
    """Record a verified file (written to a temporary name, then renamed over the record)."""
    st = path.stat()
    record = {
        "version": SIDECAR_VERSION, "name": model.name, "file": path.name, "size": st.st_size,
        "sha256": sha256, "mtime_ns": st.st_mtime_ns, "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "gguf": header, "source": model.packages(),
    }
    target = sidecar_file(model)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def read_sidecar(model: KnownModel) -> dict[str, Any] | None:
    try:
        data = json.loads(sidecar_file(model).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class ModelStatus:
    model: KnownModel
    pulled: bool
    path: Path
    detail: str              # why not pulled, or what was verified

    def row(self) -> dict[str, Any]:
        """What `intentos models --json` lists for a known model."""
        m = self.model
        size = m.size
        if m.is_embedded and self.pulled:
            size = self.path.stat().st_size
        return {
            "name": m.name, "spec": m.spec, "description": m.description, "embedded": m.is_embedded,
            "pulled": self.pulled, "size": size, "path": str(self.path), "sha256": m.sha256,
            "detail": self.detail, "pull": None if m.is_embedded or self.pulled else pull_command(m.name),
            "measured": dict(m.measured),
        }


def check(model: KnownModel, rehash: bool = True) -> ModelStatus:
    """Whether `model` is present and verified. `rehash`: hash a file whose size or mtime changed since
    its verification (and refresh the record when it still matches); without it such a file counts as
    not pulled."""
    if model.is_embedded:
        try:
            path = model.embedded_path()
        except BackendError as exc:
            return ModelStatus(model, False, Path(model.file), str(exc))
        if not path.is_file():
            return ModelStatus(model, False, path, f"no model file at {path}")
        return ModelStatus(model, True, path, "embedded")
    path = model_file(model)
    try:
        st = path.stat()
    except OSError:
        return ModelStatus(model, False, path, "not pulled")
    record = read_sidecar(model)
    if record is None or record.get("sha256") != model.sha256 or record.get("size") != model.size:
        return ModelStatus(model, False, path, "not verified (no matching verification record)")
    if st.st_size == record.get("size") and st.st_mtime_ns == record.get("mtime_ns"):
        return ModelStatus(model, True, path, "verified")
    if not rehash:
        return ModelStatus(model, False, path, "changed since it was verified")
    if st.st_size != model.size:
        return ModelStatus(model, False, path, f"size check failed: {st.st_size} bytes, expected {model.size}")
    digest = sha256_of(path)
    if digest != model.sha256:
        return ModelStatus(model, False, path, f"sha256 check failed: {digest}, expected {model.sha256}")
    write_sidecar(model, path, digest, record.get("gguf") or {})
    return ModelStatus(model, True, path, "verified (hashed again)")


def resolve(name: str, registry: dict[str, KnownModel] | None = None) -> Path:
    """The verified file of a known model; a model not pulled (or no longer valid) raises BackendError
    naming the one command that pulls it."""
    model = get_model(name, registry)
    status = check(model)
    if status.pulled:
        return status.path
    if model.is_embedded:
        raise BackendError(status.detail)
    if status.detail == "not pulled":
        raise BackendError(f"the model {name} is not pulled; pull it with: {pull_command(name)}")
    raise BackendError(f"the model {name} at {status.path} is not valid ({status.detail}); "
                       f"pull it again with: {pull_command(name)}")


def statuses(registry: dict[str, KnownModel] | None = None, rehash: bool = False) -> list[ModelStatus]:
    return [check(m, rehash=rehash) for m in (registry if registry is not None else load_registry()).values()]
