"""Item 7: moving or copying a folder never carries a relative link to a place where it points outside the
sandbox, and copying a folder leaves intentos' own folders (.trash, .intentos) behind.

`a/b/link -> ../../x` names the sandbox's own `x`; moved or copied to the top level as `b/link`, the same
text would name the `x` next to the sandbox. The files app refuses with one line naming the path and
changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from intentos.app import Context
from intentos.apps.files import FilesApp, ListArgs, ReadArgs, TransferArgs
from intentos.errors import AppError
from intentos.executor import Executor
from intentos.table import FunctionTable
from intentos.workflow import Workflow


@pytest.fixture
def files(ctx: Context, tmp_path: Path) -> FilesApp:
    (tmp_path / "x").write_text("OUTSIDE")  # what the link would name from its new place
    app = FilesApp(ctx)
    app.seed({"x": "inside x", "a/b/keep.txt": "keep"})
    os.symlink("../../x", ctx.sandbox.root / "a/b/link")
    return app


def _entries(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if ".intentos" not in p.parts)


def _one_line(exc: BaseException, *names: str) -> str:
    message = str(exc)
    assert "\n" not in message, message
    for name in names:
        assert name in message, message
    return message


@pytest.mark.parametrize("verb", ["move", "copy"])
def test_a_folder_whose_link_would_point_outside_is_not_moved_or_copied(
        files: FilesApp, ctx: Context, verb: str) -> None:
    root = ctx.sandbox.root
    assert files.read(ReadArgs(path="a/b/link")).text == "inside x"  # inside, where it is
    before = _entries(root)
    with pytest.raises(AppError) as info:
        getattr(files, verb)(TransferArgs(source="a/b", destination="b"))
    _one_line(info.value, "a/b", "outside the sandbox")
    assert _entries(root) == before  # nothing moved, nothing half-copied, no temporary folder
    assert os.readlink(root / "a/b/link") == "../../x"
    # Into an existing folder at the top: the same refusal.
    with pytest.raises(AppError):
        getattr(files, verb)(TransferArgs(source="a/b", destination="."))
    assert _entries(root) == before


def test_a_link_moved_by_itself_is_refused_too(files: FilesApp, ctx: Context) -> None:
    root = ctx.sandbox.root
    with pytest.raises(AppError) as info:
        files.move(TransferArgs(source="a/b/link", destination="link"))
    _one_line(info.value, "a/b/link")
    assert not os.path.lexists(root / "link") and os.path.islink(root / "a/b/link")
    # Copying a link copies what it names, inside: a plain file, never a link.
    files.copy(TransferArgs(source="a/b/link", destination="copied.txt"))
    assert not os.path.islink(root / "copied.txt") and (root / "copied.txt").read_text() == "inside x"


def test_moves_that_keep_links_inside_still_work(files: FilesApp, ctx: Context) -> None:
    root = ctx.sandbox.root
    moved = files.move(TransferArgs(source="a/b", destination="c/b"))
    assert moved.path == "c/b" and os.readlink(root / "c/b/link") == "../../x"
    assert files.read(ReadArgs(path="c/b/link")).text == "inside x"
    copied = files.copy(TransferArgs(source="c/b", destination="d/b"))
    assert copied.path == "d/b" and os.path.islink(root / "d/b/link")
    assert files.read(ReadArgs(path="d/b/link")).text == "inside x"


def test_refusal_through_the_executor_is_one_failed_step(files: FilesApp, ctx: Context) -> None:
    workflow = Workflow.model_validate({"states": [
        {"name": "mv", "call": "files.move", "args": {"source": "a/b", "destination": "b"}}]})
    view = Executor(FunctionTable([FilesApp]), ctx, confirm=lambda request: True).run(workflow)
    assert view.status == "failed"
    assert "a/b" in view.error and "\n" not in view.error and "outside the sandbox" in view.error
    assert not (ctx.sandbox.root / "b").exists()


def test_copying_a_folder_leaves_intentos_own_folders_behind(files: FilesApp, ctx: Context) -> None:
    sb = ctx.sandbox
    sb.write_text("F/a.txt", "a")
    sb.write_text("F/.trash/old/entry.json", "{}")
    sb.write_text("F/sub/.intentos/state.json", "{}")
    sb.write_text("F/sub/b.txt", "b")
    files.copy(TransferArgs(source="F", destination="G"))
    assert _entries(sb.root / "G") == ["a.txt", "sub", "sub/b.txt"]
    assert files.list(ListArgs(folder="G", recursive=True)).paths == ["G/a.txt", "G/sub", "G/sub/b.txt"]
