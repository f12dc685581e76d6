"""Item 16 (files): a dangling link does not break a listing, and an archive cannot make `files.unzip`
hold gigabytes in memory, create links, or unpack more members or bytes than the caps allow."""

from __future__ import annotations

import io
import os
import stat
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pytest

import intentos.apps.files as files_module
from intentos.app import Context
from intentos.apps.files import FilesApp, FindArgs, ListArgs, PathArgs, UnzipArgs, ZipArgs
from intentos.errors import AppError

MB = 1 << 20


@pytest.fixture
def files(ctx: Context) -> FilesApp:
    app = FilesApp(ctx)
    app.seed({"Docs/real.txt": "real"})
    return app


def _one_line(exc: BaseException, *names: str) -> str:
    message = str(exc)
    assert "\n" not in message, message
    for name in names:
        assert name in message, message
    return message


def test_dangling_links_do_not_break_a_listing(files: FilesApp, ctx: Context) -> None:
    docs = ctx.sandbox.root / "Docs"
    os.symlink("missing.txt", docs / "dangling")           # inside, names nothing
    os.symlink("/nonexistent/place/x", docs / "gone")       # outside, names nothing
    os.symlink("loop-b", docs / "loop-a")                   # a loop
    os.symlink("loop-a", docs / "loop-b")
    listed = files.list(ListArgs(folder="Docs"))
    assert listed.paths == ["Docs/dangling", "Docs/real.txt"]
    dangling = listed.entries[0]
    assert dangling.kind == "link" and dangling.target is None and dangling.size is None
    assert files.list(ListArgs(recursive=True)).paths == ["Docs", "Docs/dangling", "Docs/real.txt"]
    assert files.find(FindArgs(pattern="*")).paths == ["Docs", "Docs/dangling", "Docs/real.txt"]
    assert files.find(FindArgs(text="real")).paths == ["Docs/real.txt"]
    assert files.info(PathArgs(path="Docs")).files == 1
    assert files.summary() == "2 files, 1 folder; top folders: Docs"
    assert files.zip(ZipArgs(paths=["Docs"], archive="docs.zip")).members == ["Docs/real.txt"]


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _declare_sizes(raw: bytes, size: int) -> bytes:
    """Rewrite every member's uncompressed size, in the local and the central headers, to `size`: the
    headers are the attacker's to write."""
    data = bytearray(raw)
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        while at != -1:
            data[at + offset: at + offset + 4] = struct.pack("<I", size)
            at = data.find(sig, at + 4)
    return bytes(data)


def test_a_member_declaring_a_gigabyte_is_refused_before_anything_is_read(files: FilesApp, ctx: Context) -> None:
    bomb = _declare_sizes(_zip({"big.bin": bytes(MB)}), 1 << 30)  # a 1 KB archive claiming 1 GiB
    ctx.sandbox.write_bytes("bomb.zip", bomb)
    tracemalloc.start()
    try:
        with pytest.raises(AppError) as info:
            files.unzip(UnzipArgs(archive="bomb.zip", destination="out"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _one_line(info.value, "bomb.zip", "big.bin")
    assert peak < 16 * MB
    assert not (ctx.sandbox.root / "out").exists()


def test_an_archive_unpacking_to_more_than_the_total_cap_is_refused(files: FilesApp, ctx: Context) -> None:
    many = _declare_sizes(_zip({f"part-{i}.bin": bytes(1000) for i in range(12)}), 200 * 10**6)
    ctx.sandbox.write_bytes("many.zip", many)
    with pytest.raises(AppError) as info:
        files.unzip(UnzipArgs(archive="many.zip", destination="out"))
    _one_line(info.value, "many.zip", "refused")
    assert not (ctx.sandbox.root / "out").exists()


def test_a_member_that_inflates_past_its_header_is_refused(files: FilesApp, ctx: Context) -> None:
    # Declares 1000 bytes, inflates to 8 MB: never more than the declared size is produced, and it fails.
    liar = _declare_sizes(_zip({"first.txt": b"a", "liar.bin": bytes(8 * MB)}), 1000)
    ctx.sandbox.write_bytes("liar.zip", liar)
    with pytest.raises(AppError) as info:
        files.unzip(UnzipArgs(archive="liar.zip", destination="out"))
    _one_line(info.value, "liar.zip", "liar.bin")
    out = ctx.sandbox.root / "out"
    assert not (out / "liar.bin").exists()
    assert all(p.stat().st_size <= 1000 for p in out.rglob("*") if p.is_file())


def test_members_are_streamed_one_at_a_time(files: FilesApp, ctx: Context) -> None:
    ctx.sandbox.write_bytes("two.zip", _zip({"a.bin": bytes(16 * MB), "b.bin": bytes(16 * MB)}))
    tracemalloc.start()
    try:
        out = files.unzip(UnzipArgs(archive="two.zip", destination="out"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.count == 2 and (ctx.sandbox.root / "out/b.bin").stat().st_size == 16 * MB
    assert peak < 40 * MB, f"peak {peak / MB:.0f} MB for two 16 MB members"


def test_too_many_members_are_refused(files: FilesApp, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    three = _zip({f"f{i}.txt": b"x" for i in range(3)})
    claims = bytearray(three)
    end = claims.rfind(b"PK\x05\x06")  # the end record claims 60,000 members: refused before they are parsed
    claims[end + 8: end + 12] = struct.pack("<HH", 60_000, 60_000)
    ctx.sandbox.write_bytes("claims.zip", bytes(claims))
    ctx.sandbox.write_bytes("three.zip", three)
    monkeypatch.setattr(files_module, "MAX_MEMBERS", 2)
    for name in ("claims.zip", "three.zip"):
        with pytest.raises(AppError) as info:
            files.unzip(UnzipArgs(archive=name, destination="out"))
        _one_line(info.value, name, "members")
    assert not (ctx.sandbox.root / "out").exists()
    ctx.sandbox.write_bytes("two.zip", _zip({"a.txt": b"a", "b.txt": b"b"}))
    assert files.unzip(UnzipArgs(archive="two.zip")).count == 2  # at the cap: fine


def test_link_members_are_not_created_as_links(files: FilesApp, ctx: Context, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("OUTSIDE")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.txt", "fine")
        link = zipfile.ZipInfo("evil")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, str(tmp_path / "secret.txt"))
    ctx.sandbox.write_bytes("links.zip", buf.getvalue())
    out = files.unzip(UnzipArgs(archive="links.zip", destination="out"))
    assert out.paths == ["out/ok.txt"] and out.skipped == ["evil"]
    assert not os.path.lexists(ctx.sandbox.root / "out/evil")
