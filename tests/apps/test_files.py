"""The files app, through its functions, on a real sandbox."""

from __future__ import annotations

import base64
import zipfile

import pytest

from intentos.app import Context
from intentos.apps.files import (
    AppendArgs,
    FilesApp,
    FindArgs,
    ListArgs,
    PathArgs,
    ReadArgs,
    RestoreArgs,
    TransferArgs,
    UnzipArgs,
    WriteArgs,
    ZipArgs,
)
from intentos.errors import AppError, SandboxError
from intentos.executor import Executor
from intentos.table import FunctionTable
from intentos.workflow import Workflow


@pytest.fixture
def files(ctx: Context) -> FilesApp:
    app = FilesApp(ctx)
    app.seed({
        "Documents/report.txt": "Quarterly report\nrevenue up\n",
        "Documents/Trip/itinerary.md": "# Lisbon\nFlight TP123\n",
        "Downloads/photo.jpg": {"base64": base64.b64encode(b"\xff\xd8\xff\xe0binary\x00data").decode()},
        "Downloads/empty/": None,
        "notes.txt": "buy milk",
    })
    return app


def test_seed_and_summary(files: FilesApp, ctx: Context) -> None:
    assert (ctx.sandbox.root / "Downloads/photo.jpg").read_bytes().startswith(b"\xff\xd8")
    assert (ctx.sandbox.root / "Downloads/empty").is_dir()
    assert files.summary() == "4 files, 4 folders; top folders: Documents, Downloads"
    assert FilesApp(ctx).summary() != ""
    with pytest.raises(AppError, match="base64"):
        files.seed({"bad.bin": {"base64": "not base64!"}})


def test_list_hides_internal_folders(files: FilesApp, ctx: Context) -> None:
    files.trash(PathArgs(path="notes.txt"))
    ctx.sandbox.write_text(".intentos/state.json", "{}")
    top = files.list(ListArgs())
    assert top.paths == ["Documents", "Downloads"]
    assert [e.kind for e in top.entries] == ["folder", "folder"]
    deep = files.list(ListArgs(folder="Documents", recursive=True))
    assert deep.paths == ["Documents/report.txt", "Documents/Trip", "Documents/Trip/itinerary.md"]
    report = deep.entries[0]
    assert report.size == len("Quarterly report\nrevenue up\n") and report.modified.endswith("+01:00")
    assert files.list(ListArgs(pattern="*.MD", recursive=True)).paths == ["Documents/Trip/itinerary.md"]
    with pytest.raises(AppError, match="notes.txt does not exist"):
        files.list(ListArgs(folder="notes.txt"))
    with pytest.raises(AppError, match="inside .trash"):
        files.list(ListArgs(folder=".trash"))


def test_find_by_pattern_and_text(files: FilesApp) -> None:
    assert files.find(FindArgs(pattern="*.txt")).paths == ["Documents/report.txt", "notes.txt"]
    assert files.find(FindArgs(text="FLIGHT")).paths == ["Documents/Trip/itinerary.md"]
    assert files.find(FindArgs(pattern="Trip/*", under="Documents")).paths == ["Documents/Trip/itinerary.md"]
    assert files.find(FindArgs(pattern="*.txt", text="milk")).count == 1
    assert files.find(FindArgs(text="binary")).paths == []  # binary files are not searched as text
    limited = files.find(FindArgs(pattern="*", max_results=2))
    assert limited.count == 2 and limited.truncated
    with pytest.raises(AppError, match="needs a pattern"):
        files.find(FindArgs())


def test_read_text_limit_and_binary(files: FilesApp) -> None:
    text = files.read(ReadArgs(path="Documents/report.txt", max_chars=9))
    assert text.text == "Quarterly" and text.truncated and text.chars == 28
    with pytest.raises(AppError, match="photo.jpg is a binary file"):
        files.read(ReadArgs(path="Downloads/photo.jpg"))
    with pytest.raises(AppError, match="is a folder"):
        files.read(ReadArgs(path="Documents"))
    with pytest.raises(AppError, match="missing.txt does not exist"):
        files.read(ReadArgs(path="missing.txt"))


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "Documents/../../x"])
def test_paths_outside_the_sandbox_are_refused(files: FilesApp, path: str) -> None:
    with pytest.raises(SandboxError):
        files.read(ReadArgs(path=path))
    with pytest.raises(SandboxError):
        files.write(WriteArgs(path=path, text="x"))
    with pytest.raises(SandboxError):
        files.copy(TransferArgs(source="notes.txt", destination=path))


def test_symlink_leading_out_is_refused_and_hidden(files: FilesApp, ctx: Context, tmp_path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (ctx.sandbox.root / "link.txt").symlink_to(outside)
    with pytest.raises(SandboxError, match="symlink"):
        files.read(ReadArgs(path="link.txt"))
    assert "link.txt" not in files.list(ListArgs()).paths


def test_write_refuses_overwrite_without_flag_and_trashes_old_version(files: FilesApp, ctx: Context) -> None:
    created = files.write(WriteArgs(path="New/hello.txt", text="hi"))
    assert created.created and created.path == "New/hello.txt" and created.size == 2
    with pytest.raises(AppError, match="already exists; pass overwrite: true"):
        files.write(WriteArgs(path="notes.txt", text="new"))
    assert (ctx.sandbox.root / "notes.txt").read_text() == "buy milk"
    replaced = files.write(WriteArgs(path="notes.txt", text="new", overwrite=True))
    assert (ctx.sandbox.root / "notes.txt").read_text() == "new"
    assert replaced.replaced_trash_id and not replaced.created
    files.trash(PathArgs(path="notes.txt"))
    assert files.restore(RestoreArgs(trash_id=replaced.replaced_trash_id)).path == "notes.txt"
    assert (ctx.sandbox.root / "notes.txt").read_text() == "buy milk"
    with pytest.raises(AppError, match="inside .trash"):
        files.write(WriteArgs(path=".trash/x.txt", text="x"))


def test_append_adds_a_line_and_creates(files: FilesApp, ctx: Context) -> None:
    files.append(AppendArgs(path="notes.txt", text="eggs"))
    assert (ctx.sandbox.root / "notes.txt").read_text() == "buy milk\neggs"
    made = files.append(AppendArgs(path="log/today.txt", text="one\n"))
    assert made.created and (ctx.sandbox.root / "log/today.txt").read_text() == "one\n"
    with pytest.raises(AppError, match="binary"):
        files.append(AppendArgs(path="Downloads/photo.jpg", text="x"))


def test_copy_move_mkdir(files: FilesApp, ctx: Context) -> None:
    root = ctx.sandbox.root
    assert files.mkdir(PathArgs(path="Archive/2026")).created
    assert not files.mkdir(PathArgs(path="Archive/2026")).created
    with pytest.raises(AppError, match="is a file"):
        files.mkdir(PathArgs(path="notes.txt"))
    copied = files.copy(TransferArgs(source="notes.txt", destination="Archive/2026"))
    assert copied.path == "Archive/2026/notes.txt" and (root / "notes.txt").exists()
    files.copy(TransferArgs(source="Documents/Trip", destination="Trip-copy"))
    assert (root / "Trip-copy/itinerary.md").read_text().startswith("# Lisbon")
    with pytest.raises(AppError, match="already exists"):
        files.move(TransferArgs(source="notes.txt", destination="Archive/2026/notes.txt"))
    with pytest.raises(AppError, match="into itself"):
        files.move(TransferArgs(source="Documents", destination="Documents/Trip/inner"))
    moved = files.move(TransferArgs(source="Documents/report.txt", destination="Archive/report-q1.txt"))
    assert moved.source == "Documents/report.txt" and moved.path == "Archive/report-q1.txt"
    assert not (root / "Documents/report.txt").exists()
    replaced = files.move(TransferArgs(source="notes.txt", destination="Archive/2026/notes.txt", overwrite=True))
    assert replaced.replaced_trash_id and not (root / "notes.txt").exists()


def test_a_file_sent_to_a_new_name_without_an_extension_goes_into_a_folder_of_that_name(
        files: FilesApp, ctx: Context) -> None:
    root = ctx.sandbox.root
    copied = files.copy(TransferArgs(source="Documents/report.txt", destination="Documents/Quarterly"))
    assert copied.path == "Documents/Quarterly/report.txt" and (root / "Documents/Quarterly/report.txt").is_file()
    # A new name with an extension is a rename, as before; so is a name without one for a file without one.
    assert files.copy(TransferArgs(source="notes.txt", destination="Archive/old-notes.txt")).path == \
        "Archive/old-notes.txt"
    (root / "README").write_text("hi")
    assert files.move(TransferArgs(source="README", destination="READ-ME")).path == "READ-ME"


def test_zip_and_unzip(files: FilesApp, ctx: Context) -> None:
    archive = files.zip(ZipArgs(paths=["Documents/Trip", "notes.txt"], archive="Backups/trip"))
    assert archive.path == "Backups/trip.zip"
    assert sorted(archive.members) == ["Trip/itinerary.md", "notes.txt"]
    with zipfile.ZipFile(ctx.sandbox.root / archive.path) as zf:
        assert zf.read("notes.txt") == b"buy milk"
    with pytest.raises(AppError, match="already exists"):
        files.zip(ZipArgs(paths=["notes.txt"], archive="Backups/trip.zip"))
    out = files.unzip(UnzipArgs(archive="Backups/trip.zip"))
    assert out.folder == "Backups/trip" and out.count == 2
    assert (ctx.sandbox.root / "Backups/trip/Trip/itinerary.md").exists()
    with pytest.raises(AppError, match="already exists.*nothing was unpacked"):
        files.unzip(UnzipArgs(archive="Backups/trip.zip"))
    assert files.unzip(UnzipArgs(archive="Backups/trip.zip", overwrite=True)).count == 2
    with pytest.raises(AppError, match="not a readable zip"):
        files.unzip(UnzipArgs(archive="notes.txt"))


def test_unzip_refuses_members_that_escape(files: FilesApp, ctx: Context) -> None:
    with zipfile.ZipFile(ctx.sandbox.root / "evil.zip", "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../../escape.txt", "bad")
    with pytest.raises(AppError, match="unsafe member"):
        files.unzip(UnzipArgs(archive="evil.zip", destination="out"))
    assert not (ctx.sandbox.root / "out/ok.txt").exists()


def test_trash_and_restore_by_id_and_path(files: FilesApp, ctx: Context) -> None:
    trashed = files.trash(PathArgs(path="Documents/Trip"))
    assert trashed.path == "Documents/Trip" and not (ctx.sandbox.root / "Documents/Trip").exists()
    assert files.restore(RestoreArgs(trash_id=trashed.trash_id)).path == "Documents/Trip"
    files.trash(PathArgs(path="notes.txt"))
    assert files.restore(RestoreArgs(path="notes.txt")).path == "notes.txt"
    assert (ctx.sandbox.root / "notes.txt").read_text() == "buy milk"
    with pytest.raises(AppError, match="nothing from notes.txt"):
        files.restore(RestoreArgs(path="notes.txt"))
    with pytest.raises(AppError, match="sandbox root"):
        files.trash(PathArgs(path="."))


def test_info(files: FilesApp) -> None:
    info = files.info(PathArgs(path="Documents/report.txt"))
    assert (info.kind, info.lines, info.size) == ("file", 2, 28)
    assert files.info(PathArgs(path="Downloads/photo.jpg")).lines is None
    folder = files.info(PathArgs(path="Documents"))
    assert (folder.kind, folder.files, folder.size) == ("folder", 2, 28 + len("# Lisbon\nFlight TP123\n"))


def test_through_the_executor(files: FilesApp, ctx: Context) -> None:
    table = FunctionTable([FilesApp])
    workflow = Workflow.model_validate({"states": [
        {"name": "find", "call": "files.find", "args": {"pattern": "*.txt"}},
        {"name": "pack", "call": "files.zip", "args": {"paths": "${find.result.paths}", "archive": "texts.zip"}},
        {"name": "drop", "call": "files.trash", "args": {"path": "${pack.result.path}"}},
    ]})
    view = Executor(table, ctx, confirm=lambda request: True).run(workflow)
    assert view.status == "done", view.error
    assert view.results["pack"]["count"] == 2
    assert len(ctx.sandbox.trash_entries()) == 1
