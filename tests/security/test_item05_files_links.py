"""Item 5: links inside the folders the files app walks, and hard links, never show or read what is outside.

A hard link to a file outside the sandbox is refused by `files.read` (and `info`, `find`, `zip`) with one line
naming the path; a symbolic link inside a folder that leads outside is neither listed, searched, read nor
packed; a link that leads inside is listed and read through the sandbox.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentos.app import Context
from intentos.apps.files import FilesApp, FindArgs, ListArgs, PathArgs, ReadArgs, ZipArgs
from intentos.cli import app as cli_app
from intentos.errors import AppError, IntentosError

SECRET = "OUTSIDE-SECRET the attacker wants"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET)
    (folder / "classified.txt").write_text(SECRET)
    return folder


@pytest.fixture
def files(ctx: Context) -> FilesApp:
    app = FilesApp(ctx)
    app.seed({"notes.txt": "buy milk\n", "Docs/real.txt": "inside text\n"})
    return app


def _one_line_naming(exc: BaseException, path: str) -> str:
    message = str(exc)
    assert "\n" not in message and path in message, message
    assert "OUTSIDE-SECRET" not in message
    return message


def _hard_link(outside: Path, ctx: Context, name: str) -> None:
    try:
        os.link(outside / "secret.txt", ctx.sandbox.root / name)
    except OSError as exc:  # pragma: no cover - a file system without hard links
        pytest.skip(f"no hard links here: {exc}")


def test_read_of_a_hard_link_to_an_outside_file_is_refused(files: FilesApp, ctx: Context, outside: Path) -> None:
    _hard_link(outside, ctx, "Docs/hl.txt")
    with pytest.raises(AppError) as info:
        files.read(ReadArgs(path="Docs/hl.txt"))
    assert "hard link" in _one_line_naming(info.value, "Docs/hl.txt")
    with pytest.raises(AppError) as info:
        files.info(PathArgs(path="Docs/hl.txt"))
    _one_line_naming(info.value, "Docs/hl.txt")
    # Searched for text: not read, so not found.
    assert files.find(FindArgs(text="outside-secret")).paths == []
    # Packed: refused naming the file, and no archive left behind.
    with pytest.raises(AppError) as info:
        files.zip(ZipArgs(paths=["Docs"], archive="docs.zip"))
    _one_line_naming(info.value, "Docs/hl.txt")
    assert not (ctx.sandbox.root / "docs.zip").exists()
    assert (outside / "secret.txt").read_text() == SECRET


def test_hard_link_through_the_cli_is_one_line_without_the_data(ctx: Context, outside: Path) -> None:
    FilesApp(ctx).seed({"a.txt": "a"})
    _hard_link(outside, ctx, "hl.txt")
    result = CliRunner().invoke(cli_app, ["call", "files.read", "--args", json.dumps({"path": "hl.txt"}),
                                          "--sandbox", str(ctx.sandbox.root), "--json", "--yes"])
    assert result.exit_code == 1, result.output
    assert "OUTSIDE-SECRET" not in result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["status"] == "failed" and out["result"] is None
    assert "hl.txt" in out["error"] and "\n" not in out["error"]


def test_links_leading_out_of_a_folder_are_not_listed_searched_or_packed(
        files: FilesApp, ctx: Context, outside: Path) -> None:
    docs = ctx.sandbox.root / "Docs"
    os.symlink(outside, docs / "out")                       # a folder outside
    os.symlink(outside / "secret.txt", docs / "secret.txt")  # a file outside, absolute
    os.symlink("../../outside/secret.txt", docs / "rel.txt")  # a file outside, relative
    os.symlink("../../outside", docs / "relout")
    listed = files.list(ListArgs(folder="Docs", recursive=True))
    assert listed.paths == ["Docs/real.txt"]
    assert not any("classified" in p or "secret" in p for p in files.list(ListArgs(recursive=True)).paths)
    assert files.find(FindArgs(pattern="*", under="Docs")).paths == ["Docs/real.txt"]
    assert files.find(FindArgs(text="outside-secret")).paths == []
    assert files.find(FindArgs(text="inside text")).paths == ["Docs/real.txt"]
    folder = files.info(PathArgs(path="Docs"))
    assert (folder.files, folder.size) == (1, len("inside text\n"))
    archive = files.zip(ZipArgs(paths=["Docs"], archive="docs.zip"))
    assert archive.members == ["Docs/real.txt"]
    raw = (ctx.sandbox.root / "docs.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        assert zf.namelist() == ["Docs/real.txt"]
        assert all(b"OUTSIDE-SECRET" not in zf.read(n) for n in zf.namelist())
    for path in ("Docs/secret.txt", "Docs/rel.txt", "Docs/out/secret.txt"):
        with pytest.raises(IntentosError) as info:
            files.read(ReadArgs(path=path))
        _one_line_naming(info.value, path)


def test_links_leading_inside_are_listed_and_read_through_the_sandbox(files: FilesApp, ctx: Context) -> None:
    docs = ctx.sandbox.root / "Docs"
    os.symlink("../notes.txt", docs / "alias.txt")
    os.symlink(ctx.sandbox.root / "Docs", ctx.sandbox.root / "docs-alias")
    listed = files.list(ListArgs(folder="Docs"))
    assert listed.paths == ["Docs/alias.txt", "Docs/real.txt"]
    alias = listed.entries[0]
    assert alias.kind == "link" and alias.target == "notes.txt"
    assert files.read(ReadArgs(path="Docs/alias.txt")).text == "buy milk\n"
    assert files.find(FindArgs(text="milk", under="Docs")).paths == ["Docs/alias.txt"]
    archive = files.zip(ZipArgs(paths=["Docs"], archive="docs.zip"))
    assert archive.members == ["Docs/alias.txt", "Docs/real.txt"]
    with zipfile.ZipFile(ctx.sandbox.root / "docs.zip") as zf:
        assert zf.read("Docs/alias.txt") == b"buy milk\n"
        info = zf.getinfo("Docs/alias.txt")
        assert (info.external_attr >> 16) & 0o170000 == 0o100000  # packed as a regular file, not a link
    # The whole sandbox listed: the folder link is shown, not walked into twice.
    every = files.list(ListArgs(recursive=True)).paths
    assert "docs-alias" in every and not any(p.startswith("docs-alias/") for p in every)
