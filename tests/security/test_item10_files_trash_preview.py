"""Item 10 (files): trashing a link trashes the link itself, never what it names, and the confirmation says so;
a write, copy, move or unzip with overwrite: true says which existing item goes to the trash."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from intentos.app import Context
from intentos.apps.files import FilesApp, PathArgs, RestoreArgs, TransferArgs, UnzipArgs, WriteArgs
from intentos.executor import ConfirmRequest, Executor
from intentos.table import FunctionTable
from intentos.workflow import Workflow


@pytest.fixture
def files(ctx: Context) -> FilesApp:
    app = FilesApp(ctx)
    app.seed({"Photos/a.jpg": "a", "Photos/b.jpg": "b", "Photos/2025/c.jpg": "c", "notes.txt": "buy milk",
              "Docs/report.txt": "report"})
    os.symlink("Photos", ctx.sandbox.root / "Pics")
    os.symlink("../notes.txt", ctx.sandbox.root / "Docs/notes-link.txt")
    return app


def _run(ctx: Context, call: str, args: dict, answer: bool = True) -> tuple[list[ConfirmRequest], object]:
    asked: list[ConfirmRequest] = []

    def confirm(request: ConfirmRequest) -> bool:
        asked.append(request)
        return answer

    workflow = Workflow.model_validate({"states": [{"name": "step", "call": call, "args": args}]})
    view = Executor(FunctionTable([FilesApp]), ctx, confirm=confirm).run(workflow)
    return asked, view


def test_trashing_a_link_to_a_folder_trashes_the_link_and_says_so(files: FilesApp, ctx: Context) -> None:
    root = ctx.sandbox.root
    asked, view = _run(ctx, "files.trash", {"path": "Pics"})
    assert view.status == "done", view.error
    details = " | ".join(asked[0].details)
    assert "Pics is a link to Photos" in details and "the link itself goes to the trash, not Photos" in details
    assert not os.path.lexists(root / "Pics")
    assert sorted(p.name for p in (root / "Photos").iterdir()) == ["2025", "a.jpg", "b.jpg"]
    [entry] = ctx.sandbox.trash_entries()
    assert entry.original == "Pics"
    assert files.restore(RestoreArgs(path="Pics")).path == "Pics" and os.path.islink(root / "Pics")


def test_trashing_a_link_to_a_file_keeps_the_file(files: FilesApp, ctx: Context) -> None:
    asked, view = _run(ctx, "files.trash", {"path": "Docs/notes-link.txt"})
    assert view.status == "done", view.error
    assert any("the link itself goes to the trash, not notes.txt" in line for line in asked[0].details)
    assert (ctx.sandbox.root / "notes.txt").read_text() == "buy milk"
    assert not os.path.lexists(ctx.sandbox.root / "Docs/notes-link.txt")
    assert files.trash(PathArgs(path="notes.txt")).path == "notes.txt"


def test_trash_preview_of_a_folder_counts_its_files(files: FilesApp, ctx: Context) -> None:
    asked, view = _run(ctx, "files.trash", {"path": "Photos"}, answer=False)
    assert view.status == "declined"
    assert asked[0].details == ("folder Photos (3 files) goes to the trash",)
    assert (ctx.sandbox.root / "Photos/a.jpg").exists()
    assert files.preview("trash", PathArgs(path="notes.txt")) == ["file notes.txt (8 bytes) goes to the trash"]


def test_overwrite_previews_name_what_goes_to_the_trash(files: FilesApp, ctx: Context) -> None:
    assert files.preview("write", WriteArgs(path="notes.txt", text="x", overwrite=True)) == [
        "the existing file notes.txt (8 bytes) goes to the trash and is replaced"]
    assert files.preview("write", WriteArgs(path="notes.txt", text="x")) == []
    assert files.preview("write", WriteArgs(path="Docs/notes-link.txt", text="x", overwrite=True)) == [
        "Docs/notes-link.txt is a link to notes.txt",
        "the existing file notes.txt (8 bytes) goes to the trash and is replaced"]
    assert files.preview("copy", TransferArgs(source="Docs/report.txt", destination="notes.txt", overwrite=True)) == [
        "the existing file notes.txt (8 bytes) goes to the trash and is replaced"]
    assert files.preview("move", TransferArgs(source="notes.txt", destination="Photos", overwrite=True)) == []
    assert files.preview("move", TransferArgs(source="Docs", destination="Photos/2025", overwrite=True)) == []
    files.seed({"Archive/Photos/old.jpg": "old"})
    assert files.preview("move", TransferArgs(source="Photos", destination="Archive/", overwrite=True)) == [
        "the existing folder Archive/Photos (1 file) goes to the trash and is replaced"]
    assert files.preview("move", TransferArgs(source="Pics", destination="Archive/Pics2")) == [
        "Pics is a link to Photos; the link itself is moved, not Photos"]

    with zipfile.ZipFile(ctx.sandbox.root / "pack.zip", "w") as zf:
        zf.writestr("Docs/report.txt", "new report")
        zf.writestr("Docs/new.txt", "new")
    lines = files.preview("unzip", UnzipArgs(archive="pack.zip", destination=".", overwrite=True))
    assert lines == ["1 existing file goes to the trash and is replaced: Docs/report.txt"]

    # Through the executor, the prompt carries the same line, and the step does what it said.
    asked, view = _run(ctx, "files.write", {"path": "notes.txt", "text": "new", "overwrite": True})
    assert view.status == "done", view.error
    assert asked[0].details == ("the existing file notes.txt (8 bytes) goes to the trash and is replaced",)
    assert [e.original for e in ctx.sandbox.trash_entries()] == ["notes.txt"]


def test_preview_never_leaks_an_outside_link_target(files: FilesApp, ctx: Context, tmp_path: Path) -> None:
    (tmp_path / "secret").mkdir()
    os.symlink(tmp_path / "secret", ctx.sandbox.root / "out")
    lines = files.preview("trash", PathArgs(path="out"))
    assert lines == ["out is a link that leads outside the sandbox; the link itself goes to the trash"]
    assert all(str(tmp_path) not in line for line in lines)
