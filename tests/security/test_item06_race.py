"""Item 6: no check-then-use race. While another process swaps a folder of the sandbox for a link to a
folder outside it, over and over, `files.read` never returns the outside file and `files.write` never
creates anything outside (not even a temporary file).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from intentos.app import Context
from intentos.apps.files import FilesApp, ReadArgs, WriteArgs

SWAP_SECONDS = 3.0

# Swaps `d` (a real folder) with `d.link` (a link to the outside folder) until the time is up: an atomic
# exchange (renameat2 RENAME_EXCHANGE) where the kernel has it, else two renames each way.
SWAPPER = r"""
import ctypes, os, sys, time
root, outside, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
os.chdir(root)
os.symlink(outside, "d.link")
libc = ctypes.CDLL(None, use_errno=True)
exchange = getattr(libc, "renameat2", None)
AT_FDCWD, RENAME_EXCHANGE = -100, 2

def swap():
    if exchange is not None and exchange(AT_FDCWD, b"d", AT_FDCWD, b"d.link", RENAME_EXCHANGE) == 0:
        return
    os.rename("d", "d.tmp"); os.rename("d.link", "d"); os.rename("d.tmp", "d.link")

print("ready", flush=True)
end = time.monotonic() + seconds
swaps = 0
while time.monotonic() < end:
    swap()
    swaps += 1
if os.path.islink("d"):  # leave the real folder in place
    swap()
print(swaps, flush=True)
"""


def test_read_and_write_never_reach_outside_while_a_folder_is_swapped(ctx: Context, tmp_path: Path) -> None:
    outside = tmp_path / "out"
    outside.mkdir()
    (outside / "secret.txt").write_text("OUTSIDE")
    files = FilesApp(ctx)
    files.seed({"d/secret.txt": "inside"})
    before = sorted(p.name for p in outside.iterdir())

    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(ctx.sandbox.root), str(outside),
                                str(SWAP_SECONDS)], stdout=subprocess.PIPE, text=True)
    try:
        assert swapper.stdout is not None and swapper.stdout.readline().strip() == "ready"
        leaked = reads = writes = tries = 0
        deadline = time.monotonic() + SWAP_SECONDS + 1.5
        while swapper.poll() is None and time.monotonic() < deadline:
            tries += 1
            try:
                text = files.read(ReadArgs(path="d/secret.txt")).text
                reads += 1
                leaked += text == "OUTSIDE"
            except Exception as exc:  # refused or not there at that instant: fine, but one line
                assert "\n" not in str(exc)
            try:
                files.write(WriteArgs(path=f"d/new-{tries}.txt", text="written inside"))
                writes += 1
            except Exception as exc:
                assert "\n" not in str(exc)
        swapped = int(swapper.communicate(timeout=5)[0].split()[-1])
    finally:
        if swapper.poll() is None:
            swapper.kill()
            swapper.wait()

    after = sorted(p.name for p in outside.iterdir())
    assert leaked == 0, f"{leaked} of {reads} reads returned the outside file"
    assert after == before, f"created outside the sandbox: {sorted(set(after) - set(before))}"
    assert (outside / "secret.txt").read_text() == "OUTSIDE"
    assert swapped > 100 and tries > 20, (swapped, tries)
    assert reads > 0 and writes > 0, (reads, writes, tries)
    # Everything written landed in the real folder, and no temporary file was left anywhere.
    root = ctx.sandbox.root
    assert not [p for p in root.rglob("*.tmp")]
    assert (root / "d/secret.txt").read_text() == "inside"
