"""The sandbox refuses every way out and never destroys on removal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from intentos.errors import SandboxError
from intentos.sandbox import Sandbox


def test_paths_resolve_inside(sandbox: Sandbox) -> None:
    assert sandbox.resolve("a/b.txt") == sandbox.root / "a" / "b.txt"
    assert sandbox.resolve("a/../b.txt") == sandbox.root / "b.txt"
    assert sandbox.resolve(str(sandbox.root / "c.txt")) == sandbox.root / "c.txt"
    assert sandbox.relative(sandbox.root / "a" / "b.txt") == "a/b.txt"


@pytest.mark.parametrize("path", ["../outside.txt", "a/../../outside.txt", "/etc/passwd", "~/x"])
def test_escapes_are_refused_with_the_path_named(sandbox: Sandbox, path: str) -> None:
    with pytest.raises(SandboxError, match="outside the sandbox") as info:
        sandbox.resolve(path)
    assert repr(path) in str(info.value)


def test_symlink_leading_out_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("top secret")
    os.symlink(secret, sandbox.root / "link")
    with pytest.raises(SandboxError, match="symlink"):
        sandbox.resolve("link/key.txt")
    with pytest.raises(SandboxError):
        sandbox.write_text("link/new.txt", "x")
    assert not (secret / "new.txt").exists()


def test_symlink_inside_is_fine(sandbox: Sandbox) -> None:
    (sandbox.root / "real").mkdir()
    os.symlink(sandbox.root / "real", sandbox.root / "alias")
    assert sandbox.resolve("alias/x.txt") == sandbox.root / "real" / "x.txt"


def test_trash_and_restore(sandbox: Sandbox) -> None:
    sandbox.write_text("docs/a.txt", "keep me")
    entry = sandbox.trash("docs/a.txt")
    assert not (sandbox.root / "docs/a.txt").exists()
    assert [e.original for e in sandbox.trash_entries()] == ["docs/a.txt"]
    assert sandbox.restore(entry.id) == "docs/a.txt"
    assert (sandbox.root / "docs/a.txt").read_text() == "keep me"
    with pytest.raises(SandboxError, match="no trash entry"):
        sandbox.restore(entry.id)


def test_restore_refuses_to_overwrite(sandbox: Sandbox) -> None:
    sandbox.write_text("a.txt", "old")
    entry = sandbox.trash("a.txt")
    sandbox.write_text("a.txt", "new")
    with pytest.raises(SandboxError, match="something else is there"):
        sandbox.restore(entry.id)
    assert (sandbox.root / "a.txt").read_text() == "new"


def test_atomic_write_leaves_no_temp_files(sandbox: Sandbox) -> None:
    sandbox.write_text("x/y.txt", "one")
    sandbox.write_text("x/y.txt", "two")
    assert [p.name for p in (sandbox.root / "x").iterdir()] == ["y.txt"]


def test_a_missing_path_names_the_deepest_folder_on_its_way_that_exists(sandbox: Sandbox) -> None:
    sandbox.mkdir("Projects")
    sandbox.mkdir("Projects/shop")
    assert sandbox.missing("Projects/shop/logs/web.log") == ("Projects/shop/logs/web.log does not exist; "
                                                             "Projects/shop exists")
    # Only the last part missing: its folder is no news.
    assert sandbox.missing("Projects/shop/app.py") == "Projects/shop/app.py does not exist"
    assert sandbox.missing("Nowhere/at/all.txt") == "Nowhere/at/all.txt does not exist"
